package flows

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/jiayi-health/jiayi/templates"
	yaml "go.yaml.in/yaml/v3"
)

// Understanding what residents say, typed or spoken. The matching is
// deterministic and explainable: a Meaning names the phrase that decided
// it, and the phrases live in templates/phrases.yaml for clinics to extend.

// Meaning is what jiayi takes a message to mean.
type Meaning struct {
	Intent string // "" when nothing matched
	Says   string // the word jiayi answers as, for intents that have one
	Phrase string // the phrase that decided it, as phrases.yaml writes it
	Whole  bool   // the message was that phrase alone
}

// Intents answered on their own rather than as a word typed alone.
const (
	intentUrgent        = "urgent"
	intentCrisis        = "crisis" // words of self-harm: 120 and the psychological aid line
	intentHealth        = "health"
	intentGreeting      = "greeting"
	intentThanks        = "thanks"
	intentCancelBooking = "cancel_booking"
	intentReschedule    = "reschedule"
	intentBook          = "book"
	intentSign          = "sign"
	intentContact       = "contact"     // the clinic's phone, hours, whereabouts
	intentInfoChange    = "info_change" // a new phone, a move: staff change it
	intentComplaint     = "complaint"
	intentAck           = "ack"   // 嗯 alone
	intentTrust         = "trust" // 你们不会是骗子吧
)

type phraseIntent struct {
	Name    string   `yaml:"name"`
	Says    string   `yaml:"says"`
	Phrases []string `yaml:"phrases"`
}

type phraseBook struct {
	Fillers   []string            `yaml:"fillers"`
	Particles []string            `yaml:"particles"`
	Controls  map[string][]string `yaml:"controls"`
	Intents   []phraseIntent      `yaml:"intents"`
}

var (
	phrasesOnce sync.Once
	phraseData  phraseBook
	phrasesErr  error
)

// phrases reads templates/phrases.yaml once; a broken file stops the
// process at its first message, and go test before that.
func phrases() *phraseBook {
	phrasesOnce.Do(func() { phraseData, phrasesErr = loadPhrases(templates.Phrases()) })
	if phrasesErr != nil {
		panic("templates/phrases.yaml: " + phrasesErr.Error())
	}
	return &phraseData
}

func loadPhrases(data []byte) (phraseBook, error) {
	var b phraseBook
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&b); err != nil {
		return b, err
	}
	seen := map[string]string{}
	for _, in := range b.Intents {
		if in.Name == "" || len(in.Phrases) == 0 {
			return b, fmt.Errorf("intent %q has no name or no phrases", in.Name)
		}
		for _, p := range in.Phrases {
			bare := strings.TrimLeft(p, "=~")
			if compact(bare) != bare || bare == "" || strings.Count(bare, "…") > 1 || len(p)-len(bare) > 1 ||
				(strings.HasPrefix(p, "=") && strings.Contains(bare, "…")) {
				return b, fmt.Errorf("intent %s: phrase %q must be written as read: no spaces, punctuation or upper case; at most one …; = or ~ before it, not both", in.Name, p)
			}
			if other, dup := seen[p]; dup {
				return b, fmt.Errorf("phrase %q belongs to both %s and %s", p, other, in.Name)
			}
			seen[p] = in.Name
		}
	}
	// Longest first, so 嗯嗯 goes before 嗯.
	slices.SortStableFunc(b.Fillers, func(x, y string) int { return len(y) - len(x) })
	return b, nil
}

// compact is a message as matching reads it: full-width forms folded,
// letters lower-cased, punctuation, symbols and spaces gone (… is kept for
// the phrases that use it).
func compact(s string) string {
	s = foldWidth(s)
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '…':
			b.WriteRune(r)
		case unicode.IsPunct(r), unicode.IsSpace(r), unicode.IsSymbol(r):
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// core is a message without the fillers it starts with and the particle
// it ends with ("嗯，那个，预约吧。" is "预约"); a message of fillers alone
// is kept as it is.
func core(said string) string {
	c := withoutLeadingFillers(strings.ReplaceAll(compact(said), "…", ""), 1)
	for _, p := range phrases().Particles {
		if len(c) > len(p) && strings.HasSuffix(c, p) {
			return c[:len(c)-len(p)]
		}
	}
	return c
}

// withoutLeadingFillers drops the fillers a compact message starts with,
// as long as at least keep characters are left.
func withoutLeadingFillers(c string, keep int) string {
	for trimmed := true; trimmed; {
		trimmed = false
		for _, f := range phrases().Fillers {
			if rest, ok := strings.CutPrefix(c, f); ok && utf8.RuneCountInString(rest) >= keep {
				c, trimmed = rest, true
			}
		}
	}
	return c
}

// Understand reads a message said outside any conversation. Urgent words
// come first, health words last; between them the longest phrase wins.
func Understand(said string) Meaning {
	whole := core(said)
	if whole == "" {
		return Meaning{}
	}
	if urgentReading(said) {
		return Meaning{Intent: intentUrgent, Phrase: "血压≥180/110"}
	}
	full := strings.ReplaceAll(compact(said), "…", "")
	// Phrases are looked for after the fillers it starts with (你好，我想预约
	// asks for 预约), or in the whole message when that finds nothing (医生好).
	if m := bestMeaning(withoutLeadingFillers(full, 2), whole); m.Intent != "" {
		return m
	}
	return bestMeaning(full, whole)
}

// bestMeaning is the best phrase found in c: urgent, then the rest, then
// health.
func bestMeaning(c, whole string) Meaning {
	var best [3]Meaning
	var bestLen [3]int
	for _, in := range phrases().Intents {
		tier := 1
		switch in.Name {
		case intentUrgent, intentCrisis:
			tier = 0
		case intentHealth:
			tier = 2
		}
		for _, p := range in.Phrases {
			if n, ok := phraseIn(p, c, whole); ok && n > bestLen[tier] {
				best[tier], bestLen[tier] = Meaning{Intent: in.Name, Says: in.Says, Phrase: p, Whole: strings.TrimLeft(p, "=~") == whole}, n
			}
		}
	}
	for _, m := range best {
		if m.Intent != "" {
			return m
		}
	}
	return Meaning{}
}

// phraseIn reports whether phrase appears in c, and its weight: its
// length in characters. "A…B" is A with B somewhere after it; "=A" is A
// alone (the message without its fillers is whole); "~A" is a topic word
// that weighs 1, so any action phrase in the message outweighs it.
func phraseIn(phrase, c, whole string) (int, bool) {
	if alone, ok := strings.CutPrefix(phrase, "="); ok {
		return utf8.RuneCountInString(alone), alone == whole
	}
	if topic, ok := strings.CutPrefix(phrase, "~"); ok {
		_, found := phraseIn(topic, c, whole)
		return 1, found
	}
	first, rest, gap := strings.Cut(phrase, "…")
	i := strings.Index(c, first)
	if i < 0 {
		return 0, false
	}
	if gap && !strings.Contains(c[i+len(first):], rest) {
		return 0, false
	}
	return utf8.RuneCountInString(first) + utf8.RuneCountInString(rest), true
}

// bpSaid finds a blood pressure said in a message: 血压180/110, 高压180.
var bpSaid = regexp.MustCompile(`(?:血压|高压)[^0-9]{0,4}([0-9]{2,3})(?:[/／、，,]|低压)?([0-9]{2,3})?`)

// urgentReading says a blood pressure said in a message is grade 3 (180
// systolic or 110 diastolic and above, the Chinese hypertension guideline's
// highest grade): worth the 120 line first, whatever else is asked.
func urgentReading(said string) bool {
	m := bpSaid.FindStringSubmatch(foldWidth(said))
	if m == nil {
		return false
	}
	sys, _ := strconv.Atoi(m[1])
	dia, _ := strconv.Atoi(m[2])
	return sys >= 180 || dia >= 110
}

// control is the control word (返回, 取消, 继续, 帮助, 不知道) a whole message
// means, or "".
func control(said string) string {
	c, bare := compact(said), core(said)
	for word, forms := range phrases().Controls {
		if slices.Contains(forms, c) || slices.Contains(forms, bare) {
			return word
		}
	}
	return ""
}

// says is the word a whole message means ("嗯，我要预约。" is not one; "预约。"
// and "嗯，预约" are 预约): the form that may leave an open conversation.
func says(said string) string {
	c, bare := compact(said), core(said)
	for _, in := range phrases().Intents {
		if in.Says != "" && (in.Says == c || in.Says == bare) {
			return in.Says
		}
	}
	return ""
}
