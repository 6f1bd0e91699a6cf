package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// indicatorOf finds one indicator in an API answer.
func indicatorOf(t *testing.T, out map[string]any, code string) map[string]any {
	t.Helper()
	list, _ := out["indicators"].([]any)
	for _, i := range list {
		if m, _ := i.(map[string]any); m["code"] == code {
			return m
		}
	}
	t.Fatalf("no %s in %v", code, out)
	return nil
}

func TestIndicatorsInTheConsole(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, s storagetest.Stack) {
		o := newOrg(t, s)
		ctx := context.Background()
		// The national profile sets no target; this region sets 30 %
		// coverage, so the page has a target to show.
		cat, _ := o.db.Catalog(ctx)
		settings, _ := profile.SettingsOf(cat)
		settings.Targets = map[string]int{"coverage": 30}
		cat.Profile.Settings, _ = json.Marshal(settings)
		if err := o.db.SaveCatalog(ctx, cat, "test"); err != nil {
			t.Fatal(err)
		}
		_, visit := bookedVisit(t, o.db)
		communities, _, _ := o.db.ListCommunities(ctx, storage.Scope{Institution: o.home}, storage.Page{})
		if err := o.db.SetPopulation(ctx, storage.Scope{Institution: o.home}, communities[0].ID, 200, nil, "2026-10-31", "test"); err != nil {
			t.Fatal(err)
		}
		b := o.browser(t)
		b.signIn("admin", testPassword)
		path := fmt.Sprintf("/admin/api/appointments/%d/visit", visit)
		if code, out := b.apiJSON("POST", path, `{"status": "done", "readings": {"systolic": 85, "diastolic": 135}}`); code != http.StatusBadRequest ||
			!strings.Contains(fmt.Sprint(out), "血压读数不在合理范围") {
			t.Fatalf("a reading no one has: %d %v", code, out)
		}
		if code, _ := b.apiJSON("POST", path, `{"status": "done", "readings": {"systolic": 135, "diastolic": 85}}`); code != 200 {
			t.Fatalf("finish the visit: %d", code)
		}
		// Since yesterday: the visit an hour ago counts even just after
		// midnight on New Year's Day.
		recent := "?from=" + time.Now().In(flows.Shanghai).AddDate(0, 0, -1).Format("2006-01-02")
		code, out := b.api("GET", "/admin/api/indicators"+recent, "")
		if code != 200 || len(out["indicators"].([]any)) != len(profile.Words().Indicators) {
			t.Fatalf("indicators: %d %v", code, out)
		}
		// One resident signed of the 200 recorded in 幸福社区: 0.5 %, under
		// the region's 30 %.
		if c := indicatorOf(t, out, "coverage"); c["numerator"] != 1.0 || c["denominator"] != 200.0 || c["value"] != 0.5 ||
			c["target"] != 30.0 || c["below"] != true {
			t.Errorf("coverage: %v", c)
		}
		if a := out["activity"].(map[string]any); a["signings"] != 1.0 || a["visits"] != 1.0 {
			t.Errorf("activity: %v", a)
		}
		teams := out["breakdown"].(map[string]any)["team"].([]any)
		if len(teams) != 2 {
			t.Errorf("teams in the breakdown: %v", teams)
		}
		// Another institution's admin sees none of it; the doctor of the
		// other team sees none of their colleague's visits.
		away := o.browser(t)
		away.signIn("awayadmin", testPassword)
		if _, out := away.api("GET", "/admin/api/indicators", ""); out["activity"].(map[string]any)["signings"] != 0.0 {
			t.Errorf("another institution's indicators: %v", out["activity"])
		}
		if _, err := CreateStaff(ctx, o.db, storage.Scope{}, NewStaff{Username: "doctor2", Role: storage.RoleDoctor, Institution: o.home,
			Doctor: o.doctors[1].ID, Password: testPassword}, "test"); err != nil {
			t.Fatal(err)
		}
		other := o.browser(t)
		other.signIn("doctor2", testPassword)
		if _, out := other.api("GET", "/admin/api/indicators"+recent, ""); out["activity"].(map[string]any)["visits"] != 0.0 {
			t.Errorf("another team's doctor sees the visit: %v", out["activity"])
		}
		doc := o.browser(t)
		doc.signIn("doctor", testPassword)
		if _, out := doc.api("GET", "/admin/api/indicators"+recent, ""); out["activity"].(map[string]any)["visits"] != 1.0 {
			t.Errorf("the team's doctor does not see their visit: %v", out["activity"])
		}
		// The doctor narrows the page to the communities their team serves.
		if doc.get("/admin/indicators"); !strings.Contains(doc.last, "<option>幸福社区</option>") || strings.Contains(doc.last, "<option>光明社区</option>") ||
			!strings.Contains(doc.last, "以下是您团队的数据") {
			t.Errorf("the doctor's page offers:\n%s", doc.last)
		}
		for _, bad := range []string{"?from=2026-13-01", "?from=2026-07-02&to=2026-07-01", "?community=" + "不存在的社区"} {
			if code, out := b.api("GET", "/admin/api/indicators"+bad, ""); code != http.StatusBadRequest {
				t.Errorf("%s: %d %v", bad, code, out)
			}
		}
		if code, out := b.api("GET", "/admin/api/indicators?community="+communities[0].Name, ""); code != 200 ||
			indicatorOf(t, out, "coverage")["denominator"] != 200.0 {
			t.Errorf("one community: %d %v", code, out)
		}
		// The page shows the figure beside its target; the breakdown
		// exports as CSV for Excel.
		if code := b.get("/admin/indicators"); code != 200 || !strings.Contains(b.last, "<strong>0.5%</strong>") ||
			!strings.Contains(b.last, "≥ 30%") || !strings.Contains(b.last, "低于目标") {
			t.Fatalf("the page: %d\n%s", code, b.last)
		}
		if code := b.get("/admin/indicators.csv?table=community"); code != 200 ||
			!strings.HasPrefix(b.last, "\xef\xbb\xbf名称,签约率（%）,签约率分子,签约率分母,重点人群签约率（%）") ||
			!strings.Contains(b.last, "\n"+communities[0].Name+",0.5,1,200,") {
			t.Fatalf("the community CSV: %d\n%s", code, b.last)
		}
		// This year's signing is a bar in the month's chart and a row of
		// the months' CSV.
		month := time.Now().In(flows.Shanghai).Format("2006-01")
		if code := b.get("/admin/indicators"); code != 200 || !strings.Contains(b.last, "<title>每月新签约（人）</title>") ||
			!strings.Contains(b.last, "<title>"+month[2:]+"：1</title>") {
			t.Fatalf("the charts: %d\n%s", code, b.last)
		}
		if code := b.get("/admin/indicators.csv?table=months"); code != 200 || !strings.Contains(b.last, "\n"+month+",1,") {
			t.Fatalf("the months CSV: %d\n%s", code, b.last)
		}
		// A date the page cannot read keeps the form to correct it.
		if code := b.get("/admin/indicators?from=2026-13-01"); code != http.StatusBadRequest || !strings.Contains(b.last, "开始日期请写成") ||
			!strings.Contains(b.last, "<option>"+communities[0].Name+"</option>") {
			t.Fatalf("a bad date: %d\n%s", code, b.last)
		}
		if code := b.get("/admin/indicators.csv?table=nothing"); code != http.StatusBadRequest {
			t.Fatalf("an unknown table: %d", code)
		}
	})
}

// Every figure opens to the residents behind it, in the caller's scope.
func TestIndicatorFiguresOpenToTheirResidents(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, s storagetest.Stack) {
		o := newOrg(t, s)
		ctx := context.Background()
		number, _ := bookedVisit(t, o.db)
		contract, _ := o.db.ContractByNumber(ctx, number)
		communities, _, _ := o.db.ListCommunities(ctx, storage.Scope{Institution: o.home}, storage.Page{})
		o.db.SetPopulation(ctx, storage.Scope{Institution: o.home}, communities[0].ID, 200, nil, "2026-10-31", "test")
		b := o.browser(t)
		b.signIn("admin", testPassword)
		code, out := b.api("GET", "/admin/api/indicators/coverage/members", "")
		items, _ := out["items"].([]any)
		if code != 200 || len(items) != 1 || out["total"] != 1.0 {
			t.Fatalf("coverage members: %d %v", code, out)
		}
		m := items[0].(map[string]any)
		if m["resident"].(map[string]any)["name"] != "王秀英" || m["numerator"] != 1.0 || strings.Contains(fmt.Sprint(m), "1955-03-02") {
			t.Errorf("the member: %v", m)
		}
		// The breakdown's figure links to its group's residents.
		b.get("/admin/indicators?by=team")
		link := fmt.Sprintf(`/admin/indicators/paid_share?id=%d&amp;kind=team`, contract.TeamID)
		if !strings.Contains(b.last, link) {
			t.Fatalf("no link %s on the page:\n%s", link, b.last)
		}
		if code := b.get(fmt.Sprintf("/admin/indicators/paid_share?kind=team&id=%d", contract.TeamID)); code != 200 || !strings.Contains(b.last, "王秀英") {
			t.Fatalf("the team's members page: %d\n%s", code, b.last)
		}
		if code := b.get("/admin/indicators/nothing"); code != http.StatusBadRequest {
			t.Fatalf("an unknown indicator: %d", code)
		}
		away := o.browser(t)
		away.signIn("awayadmin", testPassword)
		if _, out := away.api("GET", "/admin/api/indicators/coverage/members", ""); out["total"] != 0.0 {
			t.Fatalf("another institution's admin sees members: %v", out)
		}
		// A team outside the caller's scope is not found, not an empty list.
		if code, out := away.api("GET", fmt.Sprintf("/admin/api/indicators/paid_share/members?kind=team&id=%d", contract.TeamID), ""); code != http.StatusNotFound {
			t.Fatalf("another institution's team: %d %v", code, out)
		}
	})
}

func TestAssessmentSheet(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, s storagetest.Stack) {
		o := newOrg(t, s)
		bookedVisit(t, o.db)
		b := o.browser(t)
		b.signIn("viewer", testPassword)
		now := time.Now().In(flows.Shanghai)
		quarter := fmt.Sprintf("%d-%d", now.Year(), (int(now.Month())+2)/3)
		if code := b.get("/admin/assessment?quarter=" + quarter); code != 200 || !strings.Contains(b.last, "（"+quarter+" 季度）") ||
			!strings.Contains(b.last, "林静家庭医生团队") || !strings.Contains(b.last, "考核人") ||
			!strings.Contains(b.last, fmt.Sprintf("考核期 %d-%02d-01 至", now.Year(), (int(now.Month())-1)/3*3+1)) {
			t.Fatalf("the sheet: %d\n%s", code, b.last)
		}
		if code := b.get(fmt.Sprintf("/admin/assessment?quarter=%d-1", now.Year()+1)); code != http.StatusBadRequest || !strings.Contains(b.last, "开始日期不能晚于今天") {
			t.Fatalf("a quarter still to come: %d", code)
		}
		if code := b.get("/admin/assessment?quarter=2026-5"); code != http.StatusBadRequest {
			t.Fatalf("a fifth quarter: %d", code)
		}
		if code := b.get("/admin/assessment"); code != 200 || !strings.Contains(b.last, "上一季度") {
			t.Fatalf("the last whole quarter: %d", code)
		}
	})
}
