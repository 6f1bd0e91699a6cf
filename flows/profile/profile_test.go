package profile

import (
	"slices"
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

// yuan writes a split in yuan for readable expectations; unk is a share
// the programme gives no amount for.
type yuan map[string]int64

const unk = -1

func (y yuan) fen() storage.Split {
	s := storage.Split{}
	for k, v := range y {
		s[k] = v * 100
		if v == unk {
			s[k] = storage.Unknown
		}
	}
	return s
}

type priceCase struct {
	code      string
	kind      storage.PackageKind
	local     yuan
	elsewhere yuan // nil: priced as local
	assumed   bool // the programme does not name the package
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
		if p.Assumed != pc.assumed {
			t.Errorf("%s/%s: assumed %v, want %v", region, pc.code, p.Assumed, pc.assumed)
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

// The Changzhou fee schedule, exactly as the document gives it; the
// personalised packages it files without amounts are unknown.
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
		{code: "elderly", kind: storage.Personalised, local: yuan{"resident": unk}, assumed: true},
		// The family sickbed's price is not in the schedule: no insurance
		// share is shown to anyone, insured here or elsewhere.
		{code: "sickbed", kind: storage.Personalised, local: yuan{"resident": unk}},
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
	if s.Appointments.MinVisitMinutes != 8 || s.Appointments.Upcoming() != 3 || s.Appointments.CancelBefore() != 2*time.Hour ||
		s.Targets["priority_coverage"] != 60 || s.Targets["elderly_coverage"] != 60 || s.Targets["paid_share"] != 10 {
		t.Errorf("Yaoguan settings = %+v", s)
	}
	if s.IsAssumed("min_visit_minutes") || !s.IsAssumed("team_model") || !s.IsAssumed("home_visit_groups") {
		t.Errorf("Yaoguan gives the 8-minute visit but not the team roles or home-visit groups: assumed %v", s.Assumed)
	}
}

// Linzi: the basic package on the public-health funds; the district's and
// the town's 75 yuan on each personalised package, the resident's own share
// not given; one personalised package a resident; 5 of 12 packages named.
func TestLinziPackages(t *testing.T) {
	funded := yuan{"district": 75, "town": 75, "resident": unk}
	c := checkPrices(t, "linzi", []priceCase{
		{code: "basic", kind: storage.Basic, local: yuan{"public_health": unk, "resident": unk}},
		{code: "elderly", kind: storage.Personalised, local: funded},
		{code: "hypertension", kind: storage.Personalised, local: funded, groups: []string{"hypertension"}},
		{code: "diabetes", kind: storage.Personalised, local: funded, groups: []string{"diabetes"}},
		{code: "stroke", kind: storage.Personalised, local: funded},
		{code: "tcm", kind: storage.Personalised, local: funded},
		{code: "maternal", kind: storage.Personalised, local: funded, assumed: true},
		{code: "sickbed", kind: storage.Personalised, local: funded, assumed: true},
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
	s, _ := SettingsOf(c)
	if s.TeamModel.Label != "1+1+1" || len(s.TeamModel.Roles) != 3 || s.IsAssumed("team_model") {
		t.Errorf("Linzi team model = %+v (assumed %v)", s.TeamModel, s.Assumed)
	}
	if s.PersonalisedMax != 1 {
		t.Errorf("Linzi residents choose one personalised package; max = %d", s.PersonalisedMax)
	}
	if InsuredMatters(c) {
		t.Error("only Yaoguan prices residents insured elsewhere apart")
	}
}

// Kunming: the basic package carries the chronic follow-ups, the 65+
// check-up, long prescriptions and priority referral; the personalised
// packages are charged at amounts the document does not give.
func TestKunmingPackages(t *testing.T) {
	c := checkPrices(t, "kunming", []priceCase{
		{code: "basic", kind: storage.Basic, local: yuan{"resident": unk}},
		{code: "chronic", kind: storage.Personalised, local: yuan{"resident": unk}},
		{code: "maternal_child", kind: storage.Personalised, local: yuan{"resident": unk}},
		{code: "tcm", kind: storage.Personalised, local: yuan{"resident": unk}},
		{code: "home_visit", kind: storage.Personalised, local: yuan{"resident": unk}, groups: []string{"disabled", "bedbound", "dementia"}},
		{code: "elderly", kind: storage.Personalised, local: yuan{"resident": unk}, assumed: true},
	})
	basic, _ := c.Package("basic")
	assertBasicCarries(t, "kunming", basic)
	var names []string
	for _, it := range basic.Items {
		names = append(names, it.Name)
	}
	for _, want := range []string{"慢病长处方", "优先预约转诊"} {
		if !strings.Contains(strings.Join(names, "|"), want) {
			t.Errorf("Kunming's basic package has no %s: %v", want, names)
		}
	}
	if s, _ := SettingsOf(c); len(s.Targets) != 0 {
		t.Errorf("Kunming's document sets no target; profile has %v", s.Targets)
	}
}

// assertBasicCarries checks the national basic public-health duties sit in
// the basic package: 4 follow-ups a year for hypertension and diabetes, a
// yearly check-up for the 65+.
func assertBasicCarries(t *testing.T, region string, basic storage.Package) {
	t.Helper()
	due := func(kind string, groups ...string) int {
		n := 0
		for _, it := range basic.Items {
			if it.VisitKind == kind && it.DueFor(groups) {
				n = max(n, it.PerYear)
			}
		}
		return n
	}
	if due("followup", "hypertension") < 4 || due("followup", "diabetes") < 4 {
		t.Errorf("%s: the basic package owes chronic patients 4 follow-ups a year: %+v", region, basic.Items)
	}
	if due("checkup", "elderly") < 1 {
		t.Errorf("%s: the basic package owes the 65+ a yearly check-up: %+v", region, basic.Items)
	}
	if due("followup") != 0 {
		t.Errorf("%s: chronic follow-ups fall due for every holder", region)
	}
}

func TestHarbinPartnerHospitalsAreTheDocuments(t *testing.T) {
	c := checkPrices(t, "harbin", []priceCase{
		{code: "basic", kind: storage.Basic, local: yuan{"resident": unk}},
		{code: "chronic", kind: storage.Personalised, local: yuan{"resident": unk}, assumed: true},
	})
	s, _ := SettingsOf(c)
	if s.TeamModel.Label != "1+2+3" || s.PartnerHospitals == nil ||
		strings.Join(s.PartnerHospitals.District, ",") != "哈尔滨市老年医院" || strings.Join(s.PartnerHospitals.Tertiary, ",") != "哈尔滨市第一医院" {
		t.Fatalf("Harbin settings = %+v", s)
	}
	if s.IsAssumed("partner_hospitals") || len(s.Targets) != 0 {
		t.Errorf("Harbin: hospitals assumed %v, targets %v", s.Assumed, s.Targets)
	}
	basic, _ := c.Package("basic")
	assertBasicCarries(t, "harbin", basic)
}

// The township scheme adds no cost for residents (不额外增加居民经济负担):
// the key groups' services sit in the free basic package.
func TestTownshipKeyGroupServicesAreFree(t *testing.T) {
	c := checkPrices(t, "township", []priceCase{
		{code: "basic", kind: storage.Basic, local: yuan{}},
		{code: "sickbed", kind: storage.Personalised, local: yuan{"resident": unk}},
	})
	basic, _ := c.Package("basic")
	assertBasicCarries(t, "township", basic)
	for _, p := range c.Packages {
		if p.Kind == storage.Personalised && len(p.Groups) > 0 && slices.ContainsFunc(p.Groups, func(g string) bool {
			return slices.Contains([]string{"hypertension", "diabetes", "elderly", "maternal", "child"}, g)
		}) {
			t.Errorf("township: key-group package %s is sold apart", p.Code)
		}
	}
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
}

func TestNationalIsTheSensibleDefault(t *testing.T) {
	c := checkPrices(t, "national", []priceCase{
		{code: "basic", kind: storage.Basic, local: yuan{}},
		{code: "chronic", kind: storage.Personalised, local: yuan{"resident": unk}, assumed: true},
	})
	basic, _ := c.Package("basic")
	assertBasicCarries(t, "national", basic)
}

// A good profile to break one rule at a time.
const good = `
code: test
name: 测试
team_model: {label: 1+1+X, roles: [医生]} # assumed
priority_groups: [elderly]
appointments:
  min_visit_minutes: 10 # source: 「十分钟」
  home_visit_groups: [] # assumed
packages:
  - {code: b, name: 基础包, kind: basic, default: true, summary: s, items: [{name: 随访, per_year: 4}], price: {local: {}}} # source: 「免费」
  - {code: p1, name: 个性化1, kind: personalised, summary: s, items: [{name: 随访, per_year: 4}], price: {local: {resident: 100}}} # source: 「一元」
  - {code: p2, name: 个性化2, kind: personalised, summary: s, items: [{name: 随访, per_year: 4}], price: {local: {resident: 100}}} # source: 「一元」
  - {code: p3, name: 个性化3, kind: personalised, summary: s, items: [{name: 随访, per_year: 4}], price: {local: {resident: unknown}}} # assumed
  - {code: a, name: 增值包, kind: addon, summary: s, eligibility: {requires: [b]}, items: [{name: 体检, per_year: 1}], price: {local: {resident: 100}}} # source: 「一元」
`

func TestBrokenProfilesNameFilePackageAndReason(t *testing.T) {
	if _, err := Parse("t.yaml", []byte(good)); err != nil {
		t.Fatalf("the good profile fails: %v", err)
	}
	cases := []struct{ name, from, to, want string }{
		{"unknown priority group", "priority_groups: [elderly]", "priority_groups: [aliens]", `unknown priority group "aliens"`},
		{"unknown group in a package", "code: p1, name: 个性化1, kind: personalised,", "code: p1, name: 个性化1, kind: personalised, eligibility: {groups: [vampires]},", `package p1: unknown priority group "vampires"`},
		{"missing prerequisite", "requires: [b]", "requires: [nope]", `package a: prerequisite names missing package "nope"`},
		{"negative price", "price: {local: {resident: 100}}} # source: 「一元」\n  - {code: p2", "price: {local: {resident: -100}}} # source: 「一元」\n  - {code: p2", `"-100" is not an amount in fen or unknown`},
		{"two defaults", "code: p1, name: 个性化1, kind: personalised,", "code: p1, name: 个性化1, kind: basic, default: true,", "exactly one basic package must be marked default (2 are)"},
		{"unknown payer", "{resident: 100}}} # source: 「一元」\n  - {code: p3", "{landlord: 100}}} # source: 「一元」\n  - {code: p3", `package p2: price.local: unknown payer "landlord"`},
		{"too few personalised", "code: p3, name: 个性化3, kind: personalised,", "code: p3, name: 个性化3, kind: addon, eligibility: {requires: [b]},", "at least one basic and three personalised"},
		{"misspelt field", "summary: s, items", "sumary: s, items", "field sumary not found"},
		{"cancel window too long", "  home_visit_groups: []", "  cancel_before_hours: 99\n  home_visit_groups: []", "cancel_before_hours"},
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

// Every shown price and target says where it comes from; a price the
// document does not give is unknown, never a guess marked assumed.
func TestPricesAndTargetsMustCiteTheirSource(t *testing.T) {
	cases := []struct{ name, from, to, want string }{
		{"price without a source", "price: {local: {resident: 100}}} # source: 「一元」\n  - {code: p2", "price: {local: {resident: 100}}}\n  - {code: p2",
			"package p1: cite the document that names it"},
		{"guessed price", "price: {local: {resident: 100}}} # source: 「一元」\n  - {code: p2", "price: {local: {resident: 100}}} # assumed\n  - {code: p2",
			"package p1: the price shows an amount"},
		{"free without a source", "price: {local: {}}} # source: 「免费」", "price: {local: {}}} # assumed", "package b: the price shows an amount or 免费"},
		{"target without a source", "priority_groups: [elderly]", "priority_groups: [elderly]\ntargets: {coverage: 30}", "targets: coverage has no source"},
		{"assumed target", "priority_groups: [elderly]", "priority_groups: [elderly]\ntargets: {coverage: 30} # assumed", "targets: coverage has no source"},
		{"team model unmarked", "roles: [医生]} # assumed", "roles: [医生]}", "team_model: say where it comes from"},
		{"insurance share without elsewhere", "{resident: 100}}} # source: 「一元」\n  - {code: p3", "{insurance: 100, resident: 100}}} # source: 「一元」\n  - {code: p3",
			"package p2: price: an insurance share needs the price for residents insured elsewhere"},
		{"bad derivation", "{resident: 100}}} # source: 「一元」\n  - {code: p3", "{insurance: 100, resident: 100}, elsewhere: cheaper}} # source: 「一元」\n  - {code: p3",
			`"cheaper" is neither a split nor`},
	}
	for _, c := range cases {
		broken := strings.Replace(good, c.from, c.to, 1)
		if broken == good {
			t.Fatalf("%s: replacement did not apply", c.name)
		}
		if _, err := Parse("t.yaml", []byte(broken)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v\nwant %q", c.name, err, c.want)
		}
	}
	c, err := Parse("t.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if p3, _ := c.Package("p3"); !p3.Assumed || !p3.PriceUnknown() {
		t.Errorf("p3: assumed %v, unknown price %v", p3.Assumed, p3.PriceUnknown())
	}
	if p1, _ := c.Package("p1"); p1.Assumed || p1.PriceUnknown() {
		t.Errorf("p1 is sourced and priced: %+v", p1)
	}
}

// The elsewhere price derives from the local one as the profile says.
func TestElsewhereDerivations(t *testing.T) {
	local := storage.Split{"public_health": 5000, "insurance": 3000, "resident": 7000}
	for how, want := range map[string]storage.Split{
		InsuranceToResident: {"public_health": 5000, "resident": 10000},
		WithoutInsurance:    {"public_health": 5000, "resident": 7000},
	} {
		if got, err := Derive(local, how); err != nil || !equalSplit(got, want) {
			t.Errorf("%s: %v, %v; want %v", how, got, err, want)
		}
	}
	if got, _ := Derive(storage.Split{"insurance": storage.Unknown, "resident": 100}, InsuranceToResident); got["resident"] != storage.Unknown {
		t.Errorf("an unknown insurance share moved to the resident must leave theirs unknown: %v", got)
	}
	doc := strings.Replace(good, "{resident: 100}}} # source: 「一元」\n  - {code: p3", "{insurance: 100, resident: 100}, elsewhere: insurance_to_resident}} # source: 「一元」\n  - {code: p3", 1)
	c, err := Parse("t.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if p2, _ := c.Package("p2"); !equalSplit(p2.Price(storage.InsuredElsewhere), storage.Split{"resident": 200}) {
		t.Errorf("derived elsewhere price = %v", p2.Price(storage.InsuredElsewhere))
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
