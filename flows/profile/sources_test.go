package profile

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/jiayi-health/jiayi/templates"
)

// The programme documents the profiles model, by profile. The national
// profile has none of its own and may quote any of them.
var programmeFiles = map[string]string{
	"linzi":    "000_6c7a321292295a70.txt",
	"township": "001_3d8c1ad44b517610.txt",
	"kunming":  "002_a82a192f4ac183e8.txt",
	"yaoguan":  "003_a60904cb86e07540.txt",
	"harbin":   "004_ddce3435ccae7c36.txt",
}

// programmes finds the team's copies of the programme documents:
// JIAYI_PROGRAMMES if set, else ../shared/programmes next to this checkout,
// else /work/shared/programmes (where CI's fresh clones run).
func programmes(t *testing.T) string {
	t.Helper()
	for _, dir := range []string{os.Getenv("JIAYI_PROGRAMMES"), "../../../shared/programmes", "/work/shared/programmes"} {
		if dir == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, programmeFiles["linzi"])); err == nil {
			return dir
		}
	}
	t.Fatal("programme documents not found; set JIAYI_PROGRAMMES")
	return ""
}

// pronunciation marks some copies carry after a character: 衛(wèi).
var pronunciation = regexp.MustCompile(`\([^()\p{Han}]{1,8}\)`)

// Every sentence a profile cites is in its programme document, word for
// word (the traditional-character copies are quoted in their own
// characters, without the pronunciation marks).
func TestEveryCitedSentenceIsInTheDocument(t *testing.T) {
	dir := programmes(t)
	docs := map[string]string{}
	for code, file := range programmeFiles {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		docs[code] = pronunciation.ReplaceAllString(string(b), "")
	}
	for _, code := range templates.ProfileCodes() {
		data, _, err := templates.Profile(code)
		if err != nil {
			t.Fatal(err)
		}
		quotes := Quotes(data)
		if len(quotes) == 0 && code != "national" {
			t.Errorf("%s cites nothing", code)
		}
		for _, q := range quotes {
			found := false
			for c, doc := range docs {
				if (c == code || code == "national") && strings.Contains(doc, q) {
					found = true
				}
			}
			if !found {
				t.Errorf("%s cites 「%s」, which its programme document does not say", code, q)
			}
		}
	}
}
