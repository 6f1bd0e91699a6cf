package flows

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

// The package rules of every programme live here, and only here: what a
// resident may choose and what it costs.

// Applicant is who a package choice is checked for.
type Applicant struct {
	Age     int
	Groups  []string // declared priority groups; those that follow from age are added
	Insured storage.Insured
	// MinorAlone: a 14-17-year-old signing without a guardian, who takes
	// no package they would pay for.
	MinorAlone bool
}

// InGroup reports whether the applicant belongs to a priority group, declared
// or following from age.
func (a Applicant) InGroup(group string) bool {
	return slices.Contains(a.Groups, group) || slices.Contains(profile.Words().DerivedGroups(a.Age), group)
}

// groupNames are priority groups as residents read them, joined with 、.
func groupNames(codes []string) string {
	var names []string
	for _, c := range codes {
		names = append(names, profile.Name(profile.Words().PriorityGroups, c))
	}
	return strings.Join(names, "、")
}

// ResidentGroups are a resident's priority groups: those declared at
// signing (stored as a JSON array) and those following from their birth
// date (YYYY-MM-DD) at a moment.
func ResidentGroups(s *storage.Sealer, declared, birthDate string, at time.Time) ([]string, error) {
	groups, err := openGroups(s, declared)
	if err != nil {
		return nil, err
	}
	if birth, err := time.ParseInLocation("2006-01-02", birthDate, Shanghai); err == nil {
		groups = append(groups, profile.Words().DerivedGroups(Age(birth, at))...)
	}
	return groups, nil
}

// The priority groups a resident declares are health status: they are kept
// sealed, as the consent text promises, like the ID number.
const groupsField = "priority_groups"

// SealGroups seals declared priority groups for storage.
func SealGroups(s *storage.Sealer, groups []string) (string, error) {
	plain, err := json.Marshal(append([]string{}, groups...))
	if err != nil {
		return "", err
	}
	return s.Seal(groupsField, string(plain))
}

// openGroups reads stored priority groups: sealed, or (written before they
// were sealed, until SealLegacyGroups has run) a clear JSON list.
func openGroups(s *storage.Sealer, stored string) ([]string, error) {
	plain := stored
	if stored != "" && !strings.HasPrefix(stored, "[") {
		var err error
		if plain, err = s.Open(groupsField, stored); err != nil {
			return nil, fmt.Errorf("flows: priority groups: %w", err)
		}
	}
	var groups []string
	if plain == "" {
		return nil, nil
	}
	if err := json.Unmarshal([]byte(plain), &groups); err != nil {
		return nil, fmt.Errorf("flows: priority groups: %w", err)
	}
	return groups, nil
}

// SealLegacyGroups seals the priority groups stored in clear before they
// were sealed; the server runs it at start. It returns how many it sealed.
func SealLegacyGroups(ctx context.Context, db *storage.DB, s *storage.Sealer) (int, error) {
	rows, err := db.ClearGroups(ctx)
	if err != nil {
		return 0, err
	}
	for _, r := range rows {
		groups, err := openGroups(s, r.Groups)
		if err != nil {
			return 0, err
		}
		sealed, err := SealGroups(s, groups)
		if err != nil {
			return 0, err
		}
		if err := db.SealGroups(ctx, r.ResidentID, r.Groups, sealed); err != nil {
			return 0, err
		}
	}
	return len(rows), nil
}

// GroupTags are the keyed hashes of declared priority groups: the blind
// index that lets staff list a group's residents while the groups stay
// sealed.
func GroupTags(s *storage.Sealer, groups []string) []string {
	tags := make([]string, len(groups))
	for i, g := range groups {
		tags[i] = s.Hash(groupsField, g)
	}
	return tags
}

// IndexLegacyGroups writes the group tags of residents signed before they
// were kept; the server runs it at start. It returns how many it indexed.
func IndexLegacyGroups(ctx context.Context, db *storage.DB, s *storage.Sealer) (int, error) {
	rows, err := db.UnindexedGroups(ctx)
	if err != nil {
		return 0, err
	}
	for _, r := range rows {
		groups, err := openGroups(s, r.Groups)
		if err != nil {
			return 0, err
		}
		if err := db.SetGroupTags(ctx, r.ResidentID, GroupTags(s, groups)); err != nil {
			return 0, err
		}
	}
	return len(rows), nil
}

// FilterByGroup narrows a residents search to a priority group: one that
// follows from age (65岁以上老年人) by a range of birth dates on the day,
// a declared one by its tag. It reports false for a code the vocabulary
// does not know.
func FilterByGroup(f *storage.ResidentFilter, s *storage.Sealer, code string, now time.Time) bool {
	term, ok := findTerm(code)
	if !ok {
		return false
	}
	op, bound := term.AgeRule()
	today := now.In(Shanghai)
	switch op {
	case ">=": // born on or before this day bound years ago
		f.BornUntil = today.AddDate(-bound, 0, 0).Format("2006-01-02")
	case "<=": // born after this day bound+1 years ago
		f.BornAfter = today.AddDate(-bound-1, 0, 0).Format("2006-01-02")
	default:
		f.GroupTag = s.Hash(groupsField, code)
	}
	return true
}

// Refusal is a choice the programme does not allow, with the reason in the
// words the resident reads.
type Refusal struct {
	Package string // code of the package refused; "" for the choice as a whole
	Reason  string
}

func (r *Refusal) Error() string { return r.Reason }

func refuse(code, message string, data any) *Refusal {
	text, err := templates.Message(message, data)
	if err != nil {
		text = message
	}
	return &Refusal{Package: code, Reason: text}
}

// Eligible says whether the applicant may hold the package by age and
// priority group; prerequisites are checked against a whole choice by
// CheckChoice.
func Eligible(p storage.Package, a Applicant) error {
	if p.MinAge != nil && a.Age < *p.MinAge {
		return refuse(p.Code, "refuse_min_age", map[string]any{"Name": p.Name, "Age": *p.MinAge})
	}
	if p.MaxAge != nil && a.Age > *p.MaxAge {
		return refuse(p.Code, "refuse_max_age", map[string]any{"Name": p.Name, "Age": *p.MaxAge})
	}
	if len(p.Groups) > 0 && !slices.ContainsFunc(p.Groups, a.InGroup) {
		return refuse(p.Code, "refuse_groups", map[string]any{"Name": p.Name, "Groups": groupNames(p.Groups)})
	}
	// A basic package whose amount is not given stays open: the basic
	// public-health services cost nothing, and a minor may sign them alone.
	if fen, known := p.Price(a.Insured).Resident(); a.MinorAlone && (fen > 0 || !known && p.Kind != storage.Basic) {
		return refuse(p.Code, "refuse_minor_paid", map[string]any{"Name": p.Name, "Known": known})
	}
	return nil
}

// CheckChoice says whether a set of packages can make one contract for the
// applicant: exactly one basic package; every package known, chosen once
// and eligible; personalised and add-on packages on top of a basic one and
// of the packages they require. It returns the first rule broken.
func CheckChoice(c storage.Catalog, a Applicant, codes []string) error {
	var basics []string
	chosen := map[string]bool{}
	for _, code := range codes {
		p, ok := c.Package(code)
		if !ok {
			return refuse(code, "refuse_unknown", nil)
		}
		if chosen[code] {
			return refuse(code, "refuse_twice", p.Name)
		}
		chosen[code] = true
		if p.Kind == storage.Basic {
			basics = append(basics, p.Name)
		}
	}
	if len(basics) != 1 {
		return refuse("", "refuse_basic_count", map[string]any{"Count": len(basics), "Names": strings.Join(basics, "、")})
	}
	if err := checkPersonalisedMax(c, codes); err != nil {
		return err
	}
	for _, code := range codes {
		p, _ := c.Package(code)
		if err := Eligible(p, a); err != nil {
			return err
		}
		if len(p.Requires) > 0 && !slices.ContainsFunc(p.Requires, func(r string) bool { return chosen[r] }) {
			var names []string
			for _, r := range p.Requires {
				if rp, ok := c.Package(r); ok {
					names = append(names, rp.Name)
				}
			}
			return refuse(code, "refuse_requires", map[string]any{"Name": p.Name, "Requires": strings.Join(names, "或")})
		}
	}
	return nil
}

// checkPersonalisedMax applies a programme's limit on personalised
// packages a contract (Linzi: "可以合理选择其中一种服务包").
func checkPersonalisedMax(c storage.Catalog, codes []string) error {
	s, err := profile.SettingsOf(c)
	if err != nil || s.PersonalisedMax == 0 {
		return err
	}
	var names []string
	last := ""
	for _, code := range codes {
		if p, _ := c.Package(code); p.Kind == storage.Personalised {
			names, last = append(names, p.Name), code
		}
	}
	if len(names) > s.PersonalisedMax {
		// It names the last one chosen, which a renewal drops.
		return refuse(last, "refuse_personalised_max", map[string]any{"Max": s.PersonalisedMax, "Names": strings.Join(names, "、")})
	}
	return nil
}

// Fees is what a choice of packages costs, frozen into a contract at signing.
type Fees struct {
	Packages     map[string]storage.Split // per package code
	Total        storage.Split            // by payer, all packages together
	ResidentPays int64                    // fen, of the known shares
}

// Price adds up a choice for the applicant's insurance.
func Price(c storage.Catalog, a Applicant, codes []string) Fees {
	f := Fees{Packages: map[string]storage.Split{}, Total: storage.Split{}}
	for _, code := range codes {
		p, ok := c.Package(code)
		if !ok {
			continue
		}
		f.add(code, p.Price(a.Insured))
	}
	return f
}

// add puts a package's split into the fees; a share unknown in any package
// leaves that payer's total unknown.
func (f *Fees) add(code string, split storage.Split) {
	f.Packages[code] = split
	for payer, fen := range split {
		if fen == storage.Unknown || f.Total[payer] == storage.Unknown {
			f.Total[payer] = storage.Unknown
			continue
		}
		f.Total[payer] += fen
	}
	f.ResidentPays, _ = f.Total.Resident()
}

// regionPlace is the place a profile is named after ("哈尔滨市"), or "" for
// a profile named after the service itself ("家庭医生签约服务"), so words that
// put the place before 家庭医生服务包 do not say the service twice.
func regionPlace(p storage.Profile) string {
	if strings.Contains(p.Name, "家庭医生") {
		return ""
	}
	return p.Name
}
