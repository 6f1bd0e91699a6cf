package profile

import (
	"fmt"
	"regexp"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// A profile says where each value comes from in YAML comments: "source:"
// with the programme document's sentence in 「」, or "assumed" where the
// document does not give it. A shown price or target must have a source (a
// price the document does not give is written unknown, never guessed); the
// team model, partner hospitals, visit length, home-visit groups and each
// package must have one or the other, and the assumed ones are shown as
// such.

// marks are what a profile's comments say.
type marks struct {
	assumedPackages map[string]bool
	assumedSettings []string
	errs            []error
}

// Quotes returns every sentence a profile cites, in document order.
func Quotes(data []byte) []string {
	var out []string
	for _, m := range quotePattern.FindAllStringSubmatch(string(data), -1) {
		out = append(out, joinLines(m[1]))
	}
	return out
}

var quotePattern = regexp.MustCompile(`(?s)「(.*?)」`)

// joinLines undoes a quote's wrapping over comment lines.
func joinLines(q string) string {
	var b strings.Builder
	for i, line := range strings.Split(q, "\n") {
		line = strings.TrimSpace(line)
		if i > 0 {
			line = strings.TrimSpace(strings.TrimPrefix(line, "#"))
		}
		b.WriteString(line)
	}
	return b.String()
}

func readMarks(data []byte) (marks, error) {
	m := marks{assumedPackages: map[string]bool{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return m, err
	}
	if len(doc.Content) == 0 {
		return m, nil
	}
	root := doc.Content[0]
	setting := func(name string, in *yaml.Node, key string) {
		k, v := pair(in, key)
		switch c := comments(k, v); {
		case k == nil:
		case hasSource(c):
		case strings.Contains(c, "assumed"):
			m.assumedSettings = append(m.assumedSettings, name)
		default:
			m.bad("%s: say where it comes from (# source: 「the document's sentence」) or mark it # assumed", name)
		}
	}
	setting("team_model", root, "team_model")
	setting("partner_hospitals", root, "partner_hospitals")
	_, appts := pair(root, "appointments")
	setting("min_visit_minutes", appts, "min_visit_minutes")
	setting("home_visit_groups", appts, "home_visit_groups")
	setting("max_upcoming", appts, "max_upcoming")
	setting("cancel_before_hours", appts, "cancel_before_hours")
	setting("quiet_hours", root, "quiet_hours")
	if k, v := pair(root, "personalised_max"); k != nil && !hasSource(comments(k, v)) {
		m.bad("personalised_max: cite the document (# source: 「…」)")
	}
	if tk, targets := pair(root, "targets"); targets != nil {
		all := hasSource(tk.HeadComment + tk.LineComment)
		for i := 0; i+1 < len(targets.Content); i += 2 {
			if !all && !hasSource(comments(targets.Content[i], targets.Content[i+1])) {
				m.bad("targets: %s has no source; a target the document does not set is left out", targets.Content[i].Value)
			}
		}
	}
	_, pkgs := pair(root, "packages")
	if pkgs == nil {
		return m, nil
	}
	for _, p := range pkgs.Content {
		m.readPackage(p)
	}
	return m, nil
}

func (m *marks) readPackage(p *yaml.Node) {
	ck, cv := pair(p, "code")
	if ck == nil {
		return
	}
	code := cv.Value
	// A package written on one line carries its marks at the line's end.
	oneLine := ""
	if p.Style&yaml.FlowStyle != 0 {
		oneLine = p.LineComment
	}
	switch c := p.HeadComment + oneLine + comments(ck, cv); {
	case hasSource(c):
	case strings.Contains(c, "assumed"):
		m.assumedPackages[code] = true
	default:
		m.bad("package %s: cite the document that names it (# source: 「…」) or mark it # assumed", code)
	}
	pk, pv := pair(p, "price")
	if pk == nil {
		return
	}
	c := comments(pk, pv) + oneLine
	if strings.Contains(comments(pk, pv), "assumed") {
		m.bad("package %s: a price the document does not give is written unknown, not assumed", code)
	}
	if !hasSource(c) && showsAmount(pv) {
		m.bad("package %s: the price shows an amount or 免费; cite the document (# source: 「…」) or write unknown", code)
	}
}

// showsAmount reports whether a price would show residents an amount or
// that they pay nothing: any share other than unknown, or no resident share.
func showsAmount(price *yaml.Node) bool {
	for _, key := range []string{"local", "elsewhere"} {
		_, split := pair(price, key)
		if split == nil || split.Kind != yaml.MappingNode {
			continue
		}
		if k, _ := pair(split, "resident"); k == nil {
			return true
		}
		for i := 1; i < len(split.Content); i += 2 {
			if split.Content[i].Value != "unknown" {
				return true
			}
		}
	}
	return false
}

func (m *marks) bad(format string, args ...any) { m.errs = append(m.errs, fmt.Errorf(format, args...)) }

func hasSource(comment string) bool {
	return strings.Contains(comment, "source:") && strings.Contains(comment, "「")
}

// pair finds a key in a mapping node.
func pair(m *yaml.Node, key string) (*yaml.Node, *yaml.Node) {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i], m.Content[i+1]
		}
	}
	return nil, nil
}

// comments are the comments on a key and its value: above the key, after
// it, after a one-line value, and above the first line of a block value.
func comments(k, v *yaml.Node) string {
	if k == nil {
		return ""
	}
	c := k.HeadComment + "\n" + k.LineComment + "\n" + v.HeadComment + "\n" + v.LineComment
	if v.Kind == yaml.MappingNode && v.Style&yaml.FlowStyle == 0 && len(v.Content) > 0 {
		c += "\n" + v.Content[0].HeadComment
	}
	return c
}
