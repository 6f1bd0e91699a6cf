// Package templates holds every word jiayi says to residents and doctors
// (Simplified Chinese), and later the reminder calendar, region profiles and
// console assets. Code elsewhere names a message; the words live here.
package templates

import (
	"bytes"
	"embed"
	"fmt"
	"strings"
	"text/template"
)

//go:embed messages/*.txt
var messageFiles embed.FS

var messages = template.Must(template.New("").Option("missingkey=error").ParseFS(messageFiles, "messages/*.txt"))

// Message renders the message file messages/NAME.txt with data. Surrounding
// blank lines are trimmed so files can end with a newline.
func Message(name string, data any) (string, error) {
	t := messages.Lookup(name + ".txt")
	if t == nil {
		return "", fmt.Errorf("templates.Message: no message %q", name)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("templates.Message %s: %w", name, err)
	}
	return strings.TrimSpace(b.String()), nil
}

// MessageNames lists every message file, for tests that check them all.
func MessageNames() []string {
	var names []string
	for _, t := range messages.Templates() {
		if n, ok := strings.CutSuffix(t.Name(), ".txt"); ok {
			names = append(names, n)
		}
	}
	return names
}
