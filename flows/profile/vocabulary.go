// Package profile reads the region profiles in templates/profiles: the
// programme's team model, priority groups, package catalog with prices,
// appointment rules and indicator targets. A profile that breaks a rule
// fails to load with the file, the package and the reason.
package profile

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/jiayi-health/jiayi/templates"
	yaml "go.yaml.in/yaml/v3"
)

// Term is a code and the name people read for it.
type Term struct {
	Code    string `yaml:"code"`
	Name    string `yaml:"name"`
	Derived string `yaml:"derived"` // priority groups only: "age >= 65", "age <= 6"
	// Who may declare a priority group, when not everyone may: a sex
	// (female, male) and an age range, inclusive (0: no bound).
	Sex    string `yaml:"sex"`
	MinAge int    `yaml:"min_age"`
	MaxAge int    `yaml:"max_age"`
}

// Fits says whether a person of this sex ("" unknown) and age may be in
// the group: a group is not offered to someone who cannot be in it.
func (t Term) Fits(sex string, age int) bool {
	return (t.Sex == "" || sex == "" || t.Sex == sex) && age >= t.MinAge && (t.MaxAge == 0 || age <= t.MaxAge)
}

// Vocabulary names every code a profile may use.
type Vocabulary struct {
	PriorityGroups []Term `yaml:"priority_groups"`
	Payers         []Term `yaml:"payers"`
	Indicators     []Term `yaml:"indicators"`
	PackageKinds   []Term `yaml:"package_kinds"`
}

var (
	vocabOnce sync.Once
	vocab     Vocabulary
	vocabErr  error
)

// Words returns the vocabulary from templates/vocabulary.yaml.
func Words() Vocabulary {
	vocabOnce.Do(func() {
		vocabErr = yaml.Unmarshal(templates.Vocabulary(), &vocab)
		for _, g := range vocab.PriorityGroups {
			if _, _, err := parseDerived(g.Derived); err != nil && vocabErr == nil {
				vocabErr = fmt.Errorf("group %s: %w", g.Code, err)
			}
		}
	})
	if vocabErr != nil {
		panic("templates/vocabulary.yaml: " + vocabErr.Error())
	}
	return vocab
}

func find(terms []Term, code string) (Term, bool) {
	for _, t := range terms {
		if t.Code == code {
			return t, true
		}
	}
	return Term{}, false
}

// Name is the readable name of a code in a list of terms, or the code.
func Name(terms []Term, code string) string {
	if t, ok := find(terms, code); ok {
		return t.Name
	}
	return code
}

// DerivedGroups lists the priority groups that follow from an age.
func (v Vocabulary) DerivedGroups(age int) []string {
	var out []string
	for _, g := range v.PriorityGroups {
		op, bound, err := parseDerived(g.Derived)
		if err != nil || op == "" {
			continue
		}
		if (op == ">=" && age >= bound) || (op == "<=" && age <= bound) {
			out = append(out, g.Code)
		}
	}
	return out
}

// AgeRule is the age a priority group follows from: ">=" 65 for
// 65岁以上老年人, "" for a group people declare.
func (t Term) AgeRule() (op string, bound int) {
	op, bound, _ = parseDerived(t.Derived) // checked when the vocabulary loads
	return op, bound
}

// parseDerived reads "age >= 65" or "age <= 6"; "" is no rule.
func parseDerived(s string) (op string, bound int, err error) {
	if s == "" {
		return "", 0, nil
	}
	f := strings.Fields(s)
	if len(f) != 3 || f[0] != "age" || (f[1] != ">=" && f[1] != "<=") {
		return "", 0, fmt.Errorf("derived rule %q is not 'age >= N' or 'age <= N'", s)
	}
	bound, err = strconv.Atoi(f[2])
	return f[1], bound, err
}
