package profile

import (
	"strings"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

func TestEveryShippedProfileLoads(t *testing.T) {
	want := []string{"harbin", "kunming", "linzi", "national", "township", "yaoguan"}
	if got := templates.ProfileCodes(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("profiles = %v, want %v", got, want)
	}
	for _, code := range want {
		c, err := Load(code)
		if err != nil {
			t.Errorf("%s: %v", code, err)
			continue
		}
		if c.Profile.Code != code {
			t.Errorf("%s: code %q", code, c.Profile.Code)
		}
		if _, err := SettingsOf(c); err != nil {
			t.Errorf("%s: %v", code, err)
		}
	}
}

// yuan writes a split in yuan for readable expectations.
type yuan map[string]int64

func (y yuan) fen() storage.Split {
	s := storage.Split{}
	for k, v := range y {
		s[k] = v * 100
	}
	return s
}

type priceCase struct {
	code      string
	kind      storage.PackageKind
	local     yuan
	elsewhere yuan // nil: priced as local
	assumed   bool
	requires  []string
	groups    []string
}

func checkPrices(t *testing.T, region string, cases []priceCase) storage.Catalog {
	t.Helper()
	c, err := Load(region)
	if err != nil {
		t.Fatal(err)
	}
	for _, pc := range cases {
		p, ok := c.Package(pc.code)
		if !ok {
			t.Errorf("%s: no package %s", region, pc.code)
			continue
		}
		if p.Kind != pc.kind {
			t.Errorf("%s/%s: kind %s, want %s", region, pc.code, p.Kind, pc.kind)
		}
		if !equalSplit(p.Price(storage.InsuredLocal), pc.local.fen()) {
			t.Errorf("%s/%s: local price %v, want %v", region, pc.code, p.Price(storage.InsuredLocal), pc.local.fen())
		}
		wantElse := pc.local
		if pc.elsewhere != nil {
			wantElse = pc.elsewhere
		}
		if !equalSplit(p.Price(storage.InsuredElsewhere), wantElse.fen()) {
			t.Errorf("%s/%s: elsewhere price %v, want %v", region, pc.code, p.Price(storage.InsuredElsewhere), wantElse.fen())
		}
		if p.PriceAssumed != pc.assumed {
			t.Errorf("%s/%s: assumed %v, want %v", region, pc.code, p.PriceAssumed, pc.assumed)
		}
		if pc.requires != nil && strings.Join(p.Requires, ",") != strings.Join(pc.requires, ",") {
			t.Errorf("%s/%s: requires %v, want %v", region, pc.code, p.Requires, pc.requires)
		}
		if pc.groups != nil && strings.Join(p.Groups, ",") != strings.Join(pc.groups, ",") {
			t.Errorf("%s/%s: groups %v, want %v", region, pc.code, p.Groups, pc.groups)
		}
	}
	return c
}

func equalSplit(a, b storage.Split) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// The Changzhou fee schedule, exactly as the seed gives it.
func TestYaoguanPrices(t *testing.T) {
	c := checkPrices(t, "yaoguan", []priceCase{
		{code: "public_health", kind: storage.Basic, local: yuan{}},
		{code: "basic_medical", kind: storage.Basic, local: yuan{"public_health": 50, "insurance": 50, "resident": 50},
			elsewhere: yuan{"public_health": 50, "resident": 100}},
		{code: "health_management", kind: storage.Basic, local: yuan{"public_health": 50, "insurance": 30, "resident": 70},
			elsewhere: yuan{"public_health": 50, "resident": 100}},
		{code: "checkup_addon", kind: storage.AddOn, local: yuan{"resident": 50}, requires: []string{"health_management"}},
		{code: "diabetes_addon", kind: storage.AddOn, local: yuan{"resident": 360},
			requires: []string{"public_health", "basic_medical"}, groups: []string{"diabetes"}},
		{code: "elderly", kind: storage.Personalised, local: yuan{"resident": 30}, assumed: true},
	})
	if !InsuredMatters(c) {
		t.Error("Yaoguan prices residents insured elsewhere apart")
	}
	basics := 0
	for _, p := range c.Packages {
		if p.Kind == storage.Basic {
			basics++
		}
	}
	if basics != 3 {
		t.Errorf("Yaoguan has %d basic tiers, want 3", basics)
	}
	s, _ := SettingsOf(c)
	if s.Appointments.MinVisitMinutes != 8 || s.Appointments.Upcoming() != 3 || s.Appointments.CancelBefore() != 2*time.Hour || s.Targets["priority_coverage"] != 60 || s.Targets["elderly_coverage"] != 60 {
		t.Errorf("Yaoguan settings = %+v", s)
	}
}

func TestLinziPackages(t *testing.T) {
	c := checkPrices(t, "linzi", []priceCase{
		{code: "basic", kind: storage.Basic, local: yuan{"district": 75, "town": 75}},
		{code: "elderly", kind: storage.Personalised, local: yuan{"resident": 50}, assumed: true},
		{code: "hypertension", kind: storage.Personalised, local: yuan{"resident": 60}, assumed: true, groups: []string{"hypertension"}},
		{code: "diabetes", kind: storage.Personalised, local: yuan{"resident": 60}, assumed: true, groups: []string{"diabetes"}},
		{code: "stroke", kind: storage.Personalised, local: yuan{"resident": 80}, assumed: true},
		{code: "tcm", kind: storage.Personalised, local: yuan{"resident": 50}, assumed: true},
	})
	personalised := 0
	var items []string
	for _, p := range c.Packages {
		if p.Kind == storage.Personalised {
			personalised++
		}
		for _, it := range p.Items {
			items = append(items, it.Name)
		}
	}
	if personalised != 12 {
		t.Errorf("Linzi has %d personalised packages, want 12", personalised)
	}
	all := strings.Join(items, "|")
	for _, extra := range []string{"家庭病床", "扩大项目健康体检", "预约转诊", "二次报销", "免费接送", "中医"} {
		if !strings.Contains(all, extra) {
			t.Errorf("Linzi offers no %s", extra)
		}
	}
	if s, _ := SettingsOf(c); s.TeamModel.Label != "1+1+1" || len(s.TeamModel.Roles) != 3 {
		t.Errorf("Linzi team model = %+v", s.TeamModel)
	}
	if InsuredMatters(c) {
		t.Error("only Yaoguan prices residents insured elsewhere apart")
	}
}

func TestKunmingPackages(t *testing.T) {
	c := checkPrices(t, "kunming", []priceCase{
		{code: "basic", kind: storage.Basic, local: yuan{}},
		{code: "chronic", kind: storage.Personalised, local: yuan{"insurance": 30, "resident": 30}, assumed: true},
		{code: "maternal_child", kind: storage.Personalised, local: yuan{"resident": 50}, assumed: true},
		{code: "tcm", kind: storage.Personalised, local: yuan{"resident": 40}, assumed: true},
		{code: "home_visit", kind: storage.Personalised, local: yuan{"insurance": 60, "resident": 60}, assumed: true,
			groups: []string{"disabled", "bedbound", "dementia"}},
		{code: "elderly", kind: storage.Personalised, local: yuan{"resident": 30}, assumed: true},
	})
	basic, _ := c.Package("basic")
	publicHealth := 0
	for _, it := range basic.Items {
		if !strings.HasPrefix(it.Name, "基本医疗") {
			publicHealth++
		}
	}
	if publicHealth != 14 {
		t.Errorf("Kunming's basic package lists %d public-health categories, want 14", publicHealth)
	}
}

func TestHarbinPartnerHospitals(t *testing.T) {
	c := checkPrices(t, "harbin", []priceCase{
		{code: "basic", kind: storage.Basic, local: yuan{}},
		{code: "chronic", kind: storage.Personalised, local: yuan{"insurance": 30, "resident": 30}, assumed: true},
	})
	s, _ := SettingsOf(c)
	if s.TeamModel.Label != "1+2+3" || s.PartnerHospitals == nil || len(s.PartnerHospitals.District) == 0 || len(s.PartnerHospitals.Tertiary) == 0 {
		t.Fatalf("Harbin settings = %+v", s)
	}
}

func TestTownshipTargets(t *testing.T) {
	c := checkPrices(t, "township", []priceCase{
		{code: "basic", kind: storage.Basic, local: yuan{}},
		{code: "chronic", kind: storage.Personalised, local: yuan{"public_health": 20, "resident": 20}, assumed: true},
	})
	s, _ := SettingsOf(c)
	want := map[string]int{"priority_coverage": 80, "fulfilment": 90, "satisfaction": 85, "chronic_managed": 75}
	for k, v := range want {
		if s.Targets[k] != v {
			t.Errorf("township target %s = %d, want %d", k, s.Targets[k], v)
		}
	}
	cst := time.FixedZone("CST", 8*3600)
	if q := s.Quiet(); q.From != 21 || q.To != 8 || !q.Contains(time.Date(2026, 1, 1, 22, 0, 0, 0, cst), cst) ||
		q.Contains(time.Date(2026, 1, 1, 12, 0, 0, 0, cst), cst) || !q.Contains(time.Date(2026, 1, 1, 7, 59, 0, 0, cst), cst) {
		t.Errorf("township quiet hours = %+v", q)
	}
	chronic, _ := c.Package("chronic")
	if chronic.Items[0].Name != "面对面随访" || chronic.Items[0].PerYear != 4 {
		t.Errorf("chronic follow-ups = %+v", chronic.Items[0])
	}
}

func TestNationalIsTheSensibleDefault(t *testing.T) {
	checkPrices(t, "national", []priceCase{{code: "basic", kind: storage.Basic, local: yuan{}}})
}

// A good profile to break one rule at a time.
const good = `
code: test
name: 测试
team_model: {label: 1+1+X, roles: [医生]}
priority_groups: [elderly]
appointments: {min_visit_minutes: 10}
packages:
  - {code: b, name: 基础包, kind: basic, default: true, summary: s, items: [{name: 随访, per_year: 4}], price: {local: {}}}
  - {code: p1, name: 个性化1, kind: personalised, summary: s, items: [{name: 随访, per_year: 4}], price: {local: {resident: 100}}}
  - {code: p2, name: 个性化2, kind: personalised, summary: s, items: [{name: 随访, per_year: 4}], price: {local: {resident: 100}}}
  - {code: p3, name: 个性化3, kind: personalised, summary: s, items: [{name: 随访, per_year: 4}], price: {local: {resident: 100}}}
  - {code: a, name: 增值包, kind: addon, summary: s, eligibility: {requires: [b]}, items: [{name: 体检, per_year: 1}], price: {local: {resident: 100}}}
`

func TestBrokenProfilesNameFilePackageAndReason(t *testing.T) {
	if _, err := Parse("t.yaml", []byte(good)); err != nil {
		t.Fatalf("the good profile fails: %v", err)
	}
	cases := []struct{ name, from, to, want string }{
		{"unknown priority group", "priority_groups: [elderly]", "priority_groups: [aliens]", `unknown priority group "aliens"`},
		{"unknown group in a package", "code: p1, name: 个性化1, kind: personalised,", "code: p1, name: 个性化1, kind: personalised, eligibility: {groups: [vampires]},", `package p1: unknown priority group "vampires"`},
		{"missing prerequisite", "requires: [b]", "requires: [nope]", `package a: prerequisite names missing package "nope"`},
		{"negative price", "price: {local: {resident: 100}}}\n  - {code: p2", "price: {local: {resident: -100}}}\n  - {code: p2", "package p1: price.local: negative price"},
		{"two defaults", "code: p1, name: 个性化1, kind: personalised,", "code: p1, name: 个性化1, kind: basic, default: true,", "exactly one basic package must be marked default (2 are)"},
		{"unknown payer", "{resident: 100}}}\n  - {code: p3", "{landlord: 100}}}\n  - {code: p3", `package p2: price.local: unknown payer "landlord"`},
		{"too few personalised", "kind: personalised, summary: s, items: [{name: 随访, per_year: 4}], price: {local: {resident: 100}}}\n  - {code: a", "kind: addon, eligibility: {requires: [b]}, summary: s, items: [{name: 随访, per_year: 4}], price: {local: {resident: 100}}}\n  - {code: a", "at least one basic and three personalised"},
		{"misspelt field", "summary: s, items", "sumary: s, items", "field sumary not found"},
		{"cancel window too long", "min_visit_minutes: 10}", "min_visit_minutes: 10, cancel_before_hours: 99}", "cancel_before_hours"},
		{"quiet hours", "priority_groups: [elderly]", "priority_groups: [elderly]\nquiet_hours: {from: 8, to: 8}", "quiet_hours"},
		{"add-on without a base", "eligibility: {requires: [b]}, items: [{name: 体检", "items: [{name: 体检", "package a: an add-on must name"},
	}
	for _, c := range cases {
		broken := strings.Replace(good, c.from, c.to, 1)
		if broken == good {
			t.Fatalf("%s: replacement did not apply", c.name)
		}
		_, err := Parse("templates/profiles/test.yaml", []byte(broken))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "templates/profiles/test.yaml") {
			t.Errorf("%s: err = %v\nwant it to name the file and say %q", c.name, err, c.want)
		}
	}
}

func TestUnknownRegionNamesTheKnownOnes(t *testing.T) {
	_, err := Load("atlantis")
	if err == nil || !strings.Contains(err.Error(), "atlantis") || !strings.Contains(err.Error(), "yaoguan") || !strings.Contains(err.Error(), "national") {
		t.Fatalf("err = %v", err)
	}
}

func TestAssumedMarkerIsReadInEveryPlacement(t *testing.T) {
	doc := strings.Replace(good, "price: {local: {resident: 100}}}\n  - {code: p2", "price: {local: {resident: 100}}} # assumed\n  - {code: p2", 1)
	c, err := Parse("t.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	p1, _ := c.Package("p1")
	p2, _ := c.Package("p2")
	if !p1.PriceAssumed || p2.PriceAssumed {
		t.Fatalf("assumed: p1 %v p2 %v", p1.PriceAssumed, p2.PriceAssumed)
	}
}

func TestDerivedGroups(t *testing.T) {
	v := Words()
	for age, want := range map[int]string{70: "elderly", 65: "elderly", 64: "", 6: "child", 0: "child", 7: ""} {
		if got := strings.Join(v.DerivedGroups(age), ","); got != want {
			t.Errorf("age %d: %q, want %q", age, got, want)
		}
	}
}

// Linzi's programme sets no hard targets ("不下硬指标"): its indicators show
// without a verdict.
func TestLinziSetsNoTargets(t *testing.T) {
	c, err := Load("linzi")
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := SettingsOf(c); len(s.Targets) != 0 {
		t.Fatalf("Linzi targets = %v", s.Targets)
	}
}
