package profile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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
}

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
	MinVisitMinutes   int      `json:"min_visit_minutes" yaml:"min_visit_minutes"`
	HomeVisitGroups   []string `json:"home_visit_groups" yaml:"home_visit_groups"`
	HomeVisitPackages []string `json:"home_visit_packages" yaml:"home_visit_packages"`
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
		Local     map[string]int64 `yaml:"local"`
		Elsewhere map[string]int64 `yaml:"elsewhere"`
	} `yaml:"price"`
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
	assumed, err := assumedPrices(data)
	if err != nil {
		return storage.Catalog{}, fmt.Errorf("%s: %w", path, err)
	}
	if errs := check(f); len(errs) > 0 {
		for i, e := range errs {
			errs[i] = fmt.Errorf("%s: %w", path, e)
		}
		return storage.Catalog{}, errors.Join(errs...)
	}
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
			Prices:       map[storage.Insured]storage.Split{storage.InsuredLocal: split(fp.Price.Local)},
			PriceAssumed: assumed[fp.Code],
		}
		if p.TermMonths == 0 {
			p.TermMonths = 12
		}
		if fp.Price.Elsewhere != nil {
			p.Prices[storage.InsuredElsewhere] = split(fp.Price.Elsewhere)
		}
		for _, it := range fp.Items {
			p.Items = append(p.Items, storage.Item{Name: it.Name, PerYear: it.PerYear, VisitKind: it.Visit, For: it.For})
		}
		c.Packages = append(c.Packages, p)
	}
	return c, nil
}

func split(m map[string]int64) storage.Split {
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

// assumedPrices finds the packages whose price carries a "# assumed"
// comment: the seed programme gave no number and one was chosen.
func assumedPrices(data []byte) (map[string]bool, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	root := doc.Content[0]
	pkgs := mapValue(root, "packages")
	if pkgs == nil {
		return out, nil
	}
	for _, p := range pkgs.Content {
		code := mapValue(p, "code")
		if code != nil && p.Style&yaml.FlowStyle != 0 && strings.Contains(p.LineComment, "assumed") {
			out[code.Value] = true // a package written on one line
		}
		for i := 0; code != nil && i+1 < len(p.Content); i += 2 {
			if p.Content[i].Value == "price" && (saysAssumed(p.Content[i]) || saysAssumed(p.Content[i+1])) {
				out[code.Value] = true
			}
		}
	}
	return out, nil
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func saysAssumed(n *yaml.Node) bool {
	if strings.Contains(n.LineComment+n.HeadComment+n.FootComment, "assumed") {
		return true
	}
	for _, c := range n.Content {
		if saysAssumed(c) {
			return true
		}
	}
	return false
}
