package profile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
	yaml "go.yaml.in/yaml/v3"
)

// Settings are a profile's rules beyond its catalog, stored with it.
type Settings struct {
	TeamModel        TeamModel        `json:"team_model" yaml:"team_model"`
	PartnerHospitals *Hospitals       `json:"partner_hospitals,omitempty" yaml:"partner_hospitals"`
	PriorityGroups   []string         `json:"priority_groups" yaml:"priority_groups"`
	Appointments     AppointmentRules `json:"appointments" yaml:"appointments"`
	Targets          map[string]int   `json:"targets" yaml:"targets"`
	QuietHours       *QuietHours      `json:"quiet_hours,omitempty" yaml:"quiet_hours"`
	// PersonalisedMax is how many personalised packages one contract may
	// hold; 0: any number (Linzi's residents choose one).
	PersonalisedMax int `json:"personalised_max,omitempty" yaml:"personalised_max"`
	// Assumed names the settings the programme document does not give
	// (team_model, partner_hospitals, min_visit_minutes, home_visit_groups):
	// the console shows them as assumed so an institution checks them.
	Assumed []string `json:"assumed,omitempty" yaml:"-"`
}

// IsAssumed reports whether a setting was not given by the programme.
func (s Settings) IsAssumed(name string) bool { return slices.Contains(s.Assumed, name) }

// QuietHours are the hours (Asia/Shanghai) when reminders and broadcasts to
// residents wait; transactional notices go at any hour.
type QuietHours struct {
	From int `json:"from" yaml:"from"` // hour it starts, e.g. 21
	To   int `json:"to" yaml:"to"`     // hour it ends, e.g. 8
}

// Quiet is the profile's quiet hours, 21:00-08:00 unless it says otherwise.
func (s Settings) Quiet() QuietHours {
	if s.QuietHours != nil {
		return *s.QuietHours
	}
	return QuietHours{From: 21, To: 8}
}

// Contains reports whether a moment falls in the quiet hours.
func (q QuietHours) Contains(at time.Time, loc *time.Location) bool {
	h := at.In(loc).Hour()
	if q.From > q.To {
		return h >= q.From || h < q.To
	}
	return h >= q.From && h < q.To
}

// TeamModel says which roles a family-doctor team has.
type TeamModel struct {
	Label string   `json:"label" yaml:"label"` // 1+1+1, 1+1+X, 1+2+3
	Roles []string `json:"roles" yaml:"roles"`
}

// Hospitals are the partner hospitals a resident chooses from (Harbin's
// 1+2+3: one district and one tertiary hospital).
type Hospitals struct {
	District []string `json:"district" yaml:"district"`
	Tertiary []string `json:"tertiary" yaml:"tertiary"`
}

// AppointmentRules govern booking.
type AppointmentRules struct {
	MinVisitMinutes int `json:"min_visit_minutes" yaml:"min_visit_minutes"`
	// HomeVisitGroups may book home visits whatever they hold; holders of
	// a package with a home-visit item may book them too.
	HomeVisitGroups   []string `json:"home_visit_groups" yaml:"home_visit_groups"`
	MaxUpcoming       int      `json:"max_upcoming,omitempty" yaml:"max_upcoming"`               // 0: 3
	CancelBeforeHours int      `json:"cancel_before_hours,omitempty" yaml:"cancel_before_hours"` // 0: 2
}

// Upcoming is how many upcoming visits a resident may hold.
func (r AppointmentRules) Upcoming() int {
	if r.MaxUpcoming > 0 {
		return r.MaxUpcoming
	}
	return 3
}

// CancelBefore is how long before a visit it can still be cancelled or moved online.
func (r AppointmentRules) CancelBefore() time.Duration {
	if r.CancelBeforeHours > 0 {
		return time.Duration(r.CancelBeforeHours) * time.Hour
	}
	return 2 * time.Hour
}

// file is a profile as written in YAML.
type file struct {
	Code     string `yaml:"code"`
	Name     string `yaml:"name"`
	Settings `yaml:",inline"`
	Packages []filePackage `yaml:"packages"`
}

type filePackage struct {
	Code        string `yaml:"code"`
	Name        string `yaml:"name"`
	Kind        string `yaml:"kind"`
	Default     bool   `yaml:"default"`
	Summary     string `yaml:"summary"`
	TermMonths  int    `yaml:"term_months"`
	Eligibility struct {
		MinAge   *int     `yaml:"min_age"`
		MaxAge   *int     `yaml:"max_age"`
		Groups   []string `yaml:"groups"`
		Requires []string `yaml:"requires"`
	} `yaml:"eligibility"`
	Items []struct {
		Name    string   `yaml:"name"`
		PerYear int      `yaml:"per_year"`
		Visit   string   `yaml:"visit"` // the visit kind that fulfils it: clinic, home, checkup, followup, referral
		For     []string `yaml:"for"`   // the priority groups it is due for; none: every holder
	} `yaml:"items"`
	Price struct {
		Local     amounts   `yaml:"local"`
		Elsewhere elsewhere `yaml:"elsewhere"`
	} `yaml:"price"`
}

// amounts is a price split as written: payer to fen, or "unknown" where
// the programme gives no amount.
type amounts map[string]int64

func (a *amounts) UnmarshalYAML(n *yaml.Node) error {
	var raw map[string]string
	if err := n.Decode(&raw); err != nil {
		return err
	}
	*a = amounts{}
	for payer, v := range raw {
		if v == "unknown" {
			(*a)[payer] = storage.Unknown
			continue
		}
		fen, err := strconv.ParseInt(v, 10, 64)
		if err != nil || fen < 0 {
			return fmt.Errorf("line %d: %s: %q is not an amount in fen or unknown", n.Line, payer, v)
		}
		(*a)[payer] = fen
	}
	return nil
}

// elsewhere is the price for residents insured outside the district: a
// split of its own, or derived from the local one.
type elsewhere struct {
	Given   amounts
	Derived string // insurance_to_resident, without_insurance
}

// Derivations of the elsewhere price from the local one.
const (
	// InsuranceToResident: the resident pays the local insurance share
	// too (Changzhou: 医保支付 moves to 个人支付).
	InsuranceToResident = "insurance_to_resident"
	// WithoutInsurance: the local price without its insurance share.
	WithoutInsurance = "without_insurance"
)

func (e *elsewhere) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		e.Derived = n.Value
		return nil
	}
	return n.Decode(&e.Given)
}

func (e elsewhere) stated() bool { return e.Given != nil || e.Derived != "" }

// Derive applies a derivation to a local split.
func Derive(local storage.Split, how string) (storage.Split, error) {
	out := storage.Split{}
	for payer, fen := range local {
		if payer != "insurance" {
			out[payer] = fen
		}
	}
	ins, ok := local["insurance"]
	switch {
	case how == WithoutInsurance:
	case how != InsuranceToResident:
		return nil, fmt.Errorf("elsewhere: %q is neither a split nor %s or %s", how, InsuranceToResident, WithoutInsurance)
	case !ok:
	case ins == storage.Unknown || out["resident"] == storage.Unknown:
		out["resident"] = storage.Unknown
	default:
		out["resident"] += ins
	}
	return out, nil
}

// Load reads and checks a shipped profile.
func Load(code string) (storage.Catalog, error) {
	data, path, err := templates.Profile(code)
	if err != nil {
		return storage.Catalog{}, fmt.Errorf("unknown region profile %q; known: %s", code, strings.Join(templates.ProfileCodes(), ", "))
	}
	return Parse(path, data)
}

// Parse reads a profile's YAML and checks it against the vocabulary and the
// programme's rules. Every problem found is reported, each with the file and
// the package it is in.
func Parse(path string, data []byte) (storage.Catalog, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return storage.Catalog{}, fmt.Errorf("%s: %w", path, err)
	}
	marks, err := readMarks(data)
	if err != nil {
		return storage.Catalog{}, fmt.Errorf("%s: %w", path, err)
	}
	errs := check(f)
	errs = append(errs, marks.errs...)
	if len(errs) > 0 {
		for i, e := range errs {
			errs[i] = fmt.Errorf("%s: %w", path, e)
		}
		return storage.Catalog{}, errors.Join(errs...)
	}
	f.Settings.Assumed = marks.assumedSettings
	settings, err := json.Marshal(f.Settings)
	if err != nil {
		return storage.Catalog{}, err
	}
	c := storage.Catalog{Profile: storage.Profile{Code: f.Code, Name: f.Name, Settings: settings}}
	for _, fp := range f.Packages {
		p := storage.Package{
			Code: fp.Code, Name: fp.Name, Kind: storage.PackageKind(fp.Kind), Default: fp.Default,
			Summary: fp.Summary, TermMonths: fp.TermMonths, MinAge: fp.Eligibility.MinAge, MaxAge: fp.Eligibility.MaxAge,
			Groups: fp.Eligibility.Groups, Requires: fp.Eligibility.Requires,
			Prices:  map[storage.Insured]storage.Split{storage.InsuredLocal: split(fp.Price.Local)},
			Assumed: marks.assumedPackages[fp.Code],
		}
		if p.TermMonths == 0 {
			p.TermMonths = 12
		}
		switch e := fp.Price.Elsewhere; {
		case e.Given != nil:
			p.Prices[storage.InsuredElsewhere] = split(e.Given)
		case e.Derived != "":
			p.Prices[storage.InsuredElsewhere], _ = Derive(p.Prices[storage.InsuredLocal], e.Derived) // checked
		}
		for _, it := range fp.Items {
			p.Items = append(p.Items, storage.Item{Name: it.Name, PerYear: it.PerYear, VisitKind: it.Visit, For: it.For})
		}
		c.Packages = append(c.Packages, p)
	}
	return c, nil
}

func split(m amounts) storage.Split {
	s := storage.Split{}
	for payer, fen := range m {
		if fen != 0 {
			s[payer] = fen
		}
	}
	return s
}

// SettingsOf decodes the settings stored with a catalog.
func SettingsOf(c storage.Catalog) (Settings, error) {
	var s Settings
	if err := json.Unmarshal(c.Profile.Settings, &s); err != nil {
		return s, fmt.Errorf("profile settings of %s: %w", c.Profile.Code, err)
	}
	return s, nil
}

// InsuredMatters reports whether the catalog prices residents insured
// outside the district apart, so signing must ask where they are insured.
func InsuredMatters(c storage.Catalog) bool {
	for _, p := range c.Packages {
		if _, ok := p.Prices[storage.InsuredElsewhere]; ok {
			return true
		}
	}
	return false
}
