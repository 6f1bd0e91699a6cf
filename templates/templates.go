// Package templates holds every word jiayi says to residents and doctors
// (Simplified Chinese), and later the reminder calendar, region profiles and
// console assets. Code elsewhere names a message; the words live here.
package templates

import (
	"bytes"
	"embed"
	"fmt"
	"strings"
	"sync"
	"text/template"
)

//go:embed messages/*.txt
var messageFiles embed.FS

var messages = template.Must(template.New("").Option("missingkey=error").Funcs(template.FuncMap{
	"yuan":        Yuan,
	"add":         func(a, b int) int { return a + b },
	"clinicPhone": func() string { return ClinicPhone },
}).ParseFS(messageFiles, "messages/*.txt"))

// ClinicPhone marks, in a rendered message, where a refusal says whom to
// ask: whoever sends the message replaces it with the phone of the
// resident's institution (the message clinic_phone), which templates cannot
// know.
const ClinicPhone = "\uE000"

// Yuan writes an amount in fen as yuan, without trailing zeros: 5000 is
// "50", 5050 is "50.5".
func Yuan(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	s := fmt.Sprintf("%s%d.%02d", sign, fen/100, fen%100)
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}

// plain keeps the messages rendered without data, which never change: help,
// the busiest reply, is one, and every turn compares its answer with
// not_understood. Rendering them each time was a twentieth of a reply's work.
var plain sync.Map // name → string

// Message renders the message file messages/NAME.txt, or the template
// {{define "NAME"}} in one of them, with data. Surrounding blank lines are
// trimmed so files can end with a newline.
func Message(name string, data any) (string, error) {
	if data == nil {
		if text, ok := plain.Load(name); ok {
			return text.(string), nil
		}
	}
	text, err := render(name, data)
	if err == nil && data == nil {
		plain.Store(name, text)
	}
	return text, err
}

func render(name string, data any) (string, error) {
	t := messages.Lookup(name + ".txt")
	if t == nil {
		t = messages.Lookup(name)
	}
	if t == nil {
		return "", fmt.Errorf("templates.Message: no message %q", name)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("templates.Message %s: %w", name, err)
	}
	return strings.TrimSpace(b.String()), nil
}

// MessageNames lists every message, for tests that check them all.
func MessageNames() []string {
	var names []string
	for _, t := range messages.Templates() {
		if t.Name() != "" && !strings.HasPrefix(t.Name(), "_") { // _files only hold {{define}}s
			names = append(names, strings.TrimSuffix(t.Name(), ".txt"))
		}
	}
	return names
}

//go:embed vocabulary.yaml phrases.yaml seasonal.yaml schedules.yaml menu.yaml profiles/*.yaml demo/*.yaml
var dataFiles embed.FS

// Seasonal is the seasonal reminder calendar (seasonal.yaml).
func Seasonal() []byte {
	b, err := dataFiles.ReadFile("seasonal.yaml")
	if err != nil {
		panic("templates: seasonal.yaml missing from the build: " + err.Error())
	}
	return b
}

// Schedules are the personal health schedules (schedules.yaml): vaccines
// and check-ups by age, antenatal and postnatal visits by due date.
func Schedules() []byte {
	b, err := dataFiles.ReadFile("schedules.yaml")
	if err != nil {
		panic("templates: schedules.yaml missing from the build: " + err.Error())
	}
	return b
}

// MenuFile is the account's custom menu (menu.yaml).
func MenuFile() []byte {
	b, err := dataFiles.ReadFile("menu.yaml")
	if err != nil {
		panic("templates: menu.yaml missing from the build: " + err.Error())
	}
	return b
}

// Demo returns the sandbox demo data for a region profile.
func Demo(code string) (data []byte, path string, err error) {
	path = "templates/demo/" + code + ".yaml"
	data, err = dataFiles.ReadFile("demo/" + code + ".yaml")
	if err != nil {
		return nil, path, fmt.Errorf("templates.Demo: no demo data for %q", code)
	}
	return data, path, nil
}

// Vocabulary is the YAML naming the codes profiles use (priority groups,
// payers, indicators, package kinds).
func Vocabulary() []byte {
	b, err := dataFiles.ReadFile("vocabulary.yaml")
	if err != nil {
		panic("templates: vocabulary.yaml missing from the build: " + err.Error())
	}
	return b
}

// ProfileCodes lists the region profiles shipped in profiles/, sorted.
func ProfileCodes() []string {
	entries, _ := dataFiles.ReadDir("profiles")
	var codes []string
	for _, e := range entries {
		if code, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			codes = append(codes, code)
		}
	}
	return codes
}

// ProfilePath is where a region profile lives in the repository.
func ProfilePath(code string) string { return "templates/profiles/" + code + ".yaml" }

// Profile returns a region profile's YAML and its path for messages.
func Profile(code string) (data []byte, path string, err error) {
	path = ProfilePath(code)
	data, err = dataFiles.ReadFile("profiles/" + code + ".yaml")
	if err != nil {
		return nil, path, fmt.Errorf("templates.Profile: no profile %q", code)
	}
	return data, path, nil
}

// Console holds the staff console's pages (html/template) and assets, all
// served from the binary: clinics run it on intranets with no way out.
//
//go:embed console
var Console embed.FS

// Sim holds the browser simulator's page and assets (sandbox mode only),
// served from the binary like the console: no CDN.
//
//go:embed sim
var Sim embed.FS

// Phrases is what residents say and what jiayi takes it to mean
// (phrases.yaml).
func Phrases() []byte {
	b, err := dataFiles.ReadFile("phrases.yaml")
	if err != nil {
		panic("templates: phrases.yaml missing from the build: " + err.Error())
	}
	return b
}
