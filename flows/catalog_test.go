package flows

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
)

func catalog(t testing.TB, region string) storage.Catalog {
	t.Helper()
	c, err := profile.Load(region)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestYaoguanChoices(t *testing.T) {
	c := catalog(t, "yaoguan")
	// Ages come from synthetic ID numbers, as signing will derive them.
	ageOf := func(birth string) int {
		p, err := ParseID(synthID("320412", birth, "011"), today)
		if err != nil {
			t.Fatal(err)
		}
		return Age(p.Birth, today)
	}
	diabetic := Applicant{Age: ageOf("19700315"), Groups: []string{"diabetes"}}
	healthy := Applicant{Age: ageOf("19900101")}
	elder := Applicant{Age: ageOf("19550101")}
	cases := []struct {
		name  string
		who   Applicant
		codes []string
		want  string // "" accepted; else a phrase of the reason
	}{
		{"the free tier alone", healthy, []string{"public_health"}, ""},
		{"basic-medical tier", healthy, []string{"basic_medical"}, ""},
		{"no basic package", healthy, []string{"elderly"}, "需要选一个基础服务包"},
		{"two basic tiers", healthy, []string{"basic_medical", "health_management"}, "基础服务包只能选一个"},
		{"health-check add-on on health management", healthy, []string{"health_management", "checkup_addon"}, ""},
		{"health-check add-on on the free tier", healthy, []string{"public_health", "checkup_addon"}, "需要同时签约健康管理服务包"},
		{"diabetes add-on on the free tier", diabetic, []string{"public_health", "diabetes_addon"}, ""},
		{"diabetes add-on on basic medical", diabetic, []string{"basic_medical", "diabetes_addon"}, ""},
		{"diabetes add-on on health management", diabetic, []string{"health_management", "diabetes_addon"}, "需要同时签约基本公共卫生服务包或基本医疗服务包"},
		{"diabetes add-on without diabetes", healthy, []string{"public_health", "diabetes_addon"}, "只面向2型糖尿病患者"},
		{"elderly package at 71", elder, []string{"public_health", "elderly"}, ""},
		{"elderly package at 36", healthy, []string{"public_health", "elderly"}, "需年满65岁"},
		{"elderly group follows from age", elder, []string{"public_health", "chronic"}, "只面向高血压患者"},
		{"chosen twice", diabetic, []string{"public_health", "diabetes_addon", "diabetes_addon"}, "选了两次"},
		{"unknown package", healthy, []string{"public_health", "nope"}, "没有这个服务包"},
		{"sickbed for the bed-bound", Applicant{Age: 80, Groups: []string{"bedbound"}}, []string{"public_health", "sickbed"}, ""},
	}
	for _, tc := range cases {
		err := CheckChoice(c, tc.who, tc.codes)
		var r *Refusal
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.want != "" && (!errors.As(err, &r) || !strings.Contains(r.Reason, tc.want)):
			t.Errorf("%s: err %v, want a refusal saying %q", tc.name, err, tc.want)
		}
	}
}

func TestChildPackageByAge(t *testing.T) {
	c := catalog(t, "linzi")
	child, _ := c.Package("child")
	if err := Eligible(child, Applicant{Age: 6}); err != nil {
		t.Errorf("6-year-old refused: %v", err)
	}
	if err := Eligible(child, Applicant{Age: 7}); err == nil || !strings.Contains(err.Error(), "6岁及以下") {
		t.Errorf("7-year-old: %v", err)
	}
}

func TestYaoguanFees(t *testing.T) {
	c := catalog(t, "yaoguan")
	cases := []struct {
		insured  storage.Insured
		codes    []string
		resident int64
		total    storage.Split
	}{
		{storage.InsuredLocal, []string{"public_health"}, 0, storage.Split{}},
		{storage.InsuredLocal, []string{"basic_medical"}, 5000, storage.Split{"public_health": 5000, "insurance": 5000, "resident": 5000}},
		{storage.InsuredElsewhere, []string{"basic_medical"}, 10000, storage.Split{"public_health": 5000, "resident": 10000}},
		{storage.InsuredLocal, []string{"health_management", "checkup_addon"}, 12000, storage.Split{"public_health": 5000, "insurance": 3000, "resident": 12000}},
		{storage.InsuredElsewhere, []string{"health_management", "checkup_addon"}, 15000, storage.Split{"public_health": 5000, "resident": 15000}},
		{storage.InsuredElsewhere, []string{"public_health", "diabetes_addon"}, 36000, storage.Split{"resident": 36000}},
	}
	for _, tc := range cases {
		f := Price(c, Applicant{Insured: tc.insured}, tc.codes)
		if f.ResidentPays != tc.resident || len(f.Total) != len(tc.total) {
			t.Errorf("%s %v: resident pays %d, total %v; want %d, %v", tc.insured, tc.codes, f.ResidentPays, f.Total, tc.resident, tc.total)
			continue
		}
		for payer, fen := range tc.total {
			if f.Total[payer] != fen {
				t.Errorf("%s %v: %s pays %d, want %d", tc.insured, tc.codes, payer, f.Total[payer], fen)
			}
		}
		if !f.Total.Known() {
			t.Errorf("%v: the document's own prices are known", tc.codes)
		}
	}
	// A package the document files without an amount leaves the resident's
	// total unknown, not a sum that pretends to be whole.
	if f := Price(c, Applicant{}, []string{"public_health", "elderly"}); f.Total.Known() || f.Total["resident"] != storage.Unknown {
		t.Errorf("an unknown share must stay unknown: %v", f.Total)
	}
}

// Linzi's residents choose one personalised package
// ("可以合理选择其中一种服务包"); a second is refused with the reason.
func TestLinziRefusesASecondPersonalisedPackage(t *testing.T) {
	c, err := profile.Load("linzi")
	if err != nil {
		t.Fatal(err)
	}
	a := Applicant{Age: 70, Groups: []string{"elderly", "hypertension"}}
	if err := CheckChoice(c, a, []string{"basic", "hypertension"}); err != nil {
		t.Fatalf("one personalised package: %v", err)
	}
	err = CheckChoice(c, a, []string{"basic", "hypertension", "elderly"})
	var r *Refusal
	if !errors.As(err, &r) || !strings.Contains(r.Reason, "只能选一种") || !strings.Contains(r.Reason, "高血压服务包、老年人服务包") {
		t.Fatalf("two personalised packages: %v", err)
	}
	y, _ := profile.Load("yaoguan")
	if err := CheckChoice(y, a, []string{"public_health", "elderly", "chronic"}); err != nil {
		t.Fatalf("Yaoguan sets no such limit: %v", err)
	}
}

// No choice the rules accept, in any profile, leaves a contract without
// exactly one basic package or with an add-on missing its base.
func TestNoAcceptedChoiceBreaksTheContractShape(t *testing.T) {
	groups := []string{"hypertension", "diabetes", "stroke", "copd", "maternal", "disabled", "bedbound", "dementia", "mental", "poverty"}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, region := range []string{"national", "linzi", "kunming", "yaoguan", "harbin", "township"} {
		c := catalog(t, region)
		accepted := 0
		for range 20000 {
			var codes []string
			for _, p := range c.Packages {
				if rng.IntN(3) == 0 {
					codes = append(codes, p.Code)
				}
			}
			if rng.IntN(10) == 0 && len(codes) > 0 {
				codes = append(codes, codes[0]) // a duplicate now and then
			}
			a := Applicant{Age: rng.IntN(100)}
			for _, g := range groups {
				if rng.IntN(4) == 0 {
					a.Groups = append(a.Groups, g)
				}
			}
			if CheckChoice(c, a, codes) != nil {
				continue
			}
			accepted++
			basics, seen := 0, map[string]bool{}
			for _, code := range codes {
				p, _ := c.Package(code)
				if seen[code] {
					t.Fatalf("%s: %v accepted with a duplicate", region, codes)
				}
				seen[code] = true
				if p.Kind == storage.Basic {
					basics++
				}
				if Eligible(p, a) != nil {
					t.Fatalf("%s: %v accepted with ineligible %s for %+v", region, codes, code, a)
				}
			}
			for _, code := range codes {
				p, _ := c.Package(code)
				ok := len(p.Requires) == 0
				for _, r := range p.Requires {
					ok = ok || seen[r]
				}
				if !ok {
					t.Fatalf("%s: %v accepted without %s's prerequisite", region, codes, code)
				}
			}
			if basics != 1 {
				t.Fatalf("%s: %v accepted with %d basic packages", region, codes, basics)
			}
		}
		if accepted < 100 {
			t.Errorf("%s: only %d of 20000 random choices accepted; the property was barely exercised", region, accepted)
		}
	}
}
