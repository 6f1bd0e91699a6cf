package flows

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// indicatorWorld is a small township (the township profile's demo
// organisation) with five residents whose contracts, visits and surveys are
// laid out by hand at fixed moments, so every indicator can be worked out
// on paper. The period is the first half of 2026; "now" is mid-July, so
// the figures are as of 2026-07-01 00:00.
//
//	A 河东村, 赵 team, born 1950 (76: elderly), hypertension; basic + chronic
//	  (personal share 20 yuan); in force since 2025-07-01; 4 follow-ups
//	  (Feb-May; blood pressure 150/95 in February, 130/80 in May) and 1
//	  check-up done; survey 5.
//	B 河东村, 赵 team, born 1980; basic; in force since 2026-03-01; a
//	  clinic visit missed in April.
//	C 河西村, 黄 team, born 1955 (71), diabetes; basic + chronic; in force
//	  since 2025-01-01, cancelled 2026-04-01; 2 follow-ups done (glucose
//	  6.1 in February); survey 3.
//	D 李家庄, 黄 team, born 1960 (66), diabetes; basic; in force since
//	  2025-02-01, renewed 2026-01-20; a check-up in June, glucose 7.5.
//	E 河西村, 黄 team, born 1990; basic; in force since 2025-03-01, expired
//	  2026-03-01.
//
// Populations: 河东村 100 (elderly 10, hypertension 5); 河西村 50
// (elderly 4); 李家庄 not recorded.
type indicatorWorld struct {
	db       *storage.DB
	sealer   *storage.Sealer
	period   Period
	now      time.Time
	teams    map[string]storage.Team
	contract map[string]int64
}

func day(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02", s, Shanghai)
	if err != nil {
		panic(err)
	}
	return t
}

func newIndicatorWorld(t *testing.T, db *storage.DB) *indicatorWorld {
	t.Helper()
	ctx := context.Background()
	if err := profile.Ensure(ctx, db, "township"); err != nil {
		t.Fatal(err)
	}
	if _, err := profile.LoadDemo(ctx, db, "township"); err != nil {
		t.Fatal(err)
	}
	// The world's own catalog, so the figures worked out on paper do not
	// move with the township profile: a basic package whose items no visit
	// fulfils, and a chronic package of 4 follow-ups and a check-up a year.
	cat, err := db.Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cat.Packages = []storage.Package{
		{Code: "basic", Name: "基本", Kind: storage.Basic, Default: true, Summary: "s", TermMonths: 12,
			Items:  []storage.Item{{Name: "健康档案建立与更新", PerYear: 1}, {Name: "健康教育与咨询", PerYear: 4}},
			Prices: map[storage.Insured]storage.Split{storage.InsuredLocal: {}}},
		{Code: "chronic", Name: "慢病", Kind: storage.Personalised, Summary: "s", TermMonths: 12,
			Groups: []string{"hypertension", "diabetes"},
			Items: []storage.Item{{Name: "面对面随访", PerYear: 4, VisitKind: "followup"}, {Name: "健康体检", PerYear: 1, VisitKind: "checkup"},
				{Name: "用药指导", PerYear: 4}},
			Prices: map[storage.Insured]storage.Split{storage.InsuredLocal: {"public_health": 2000, "resident": 2000}}},
	}
	if err := db.SaveCatalog(ctx, cat, "test"); err != nil {
		t.Fatal(err)
	}
	sealer, _ := storage.NewSealer(bytes.Repeat([]byte{7}, 32))
	w := &indicatorWorld{db: db, sealer: sealer, now: day("2026-07-15"), teams: map[string]storage.Team{}, contract: map[string]int64{}}
	w.period, _ = ParsePeriod("2026-01-01", "2026-06-30", w.now)
	communities, _, _ := db.ListCommunities(ctx, storage.Scope{}, storage.Page{})
	place := map[string]int64{}
	for _, m := range communities {
		place[m.Name] = m.ID
	}
	for _, name := range []string{"赵德明家庭医生团队", "黄梅家庭医生团队"} {
		teams, _ := db.TeamsServing(ctx, place["河西村"]) // both teams serve it
		for _, tm := range teams {
			if tm.Name == name {
				w.teams[name[:3]] = tm
			}
		}
	}
	sql := storagetest.SQL(t, db)
	sql.MustExec(sql.Rebind(`UPDATE communities SET residents = 100, priority_counts = '{"elderly":10,"hypertension":5}' WHERE id = ?`), place["河东村"])
	sql.MustExec(sql.Rebind(`UPDATE communities SET residents = 50, priority_counts = '{"elderly":4}' WHERE id = ?`), place["河西村"])
	chronic := []storage.ContractPackage{{Code: "basic", Name: "基本", Kind: "basic"},
		{Code: "chronic", Name: "慢病", Kind: "personalised", Split: storage.Split{"public_health": 2000, "resident": 2000}}}
	basic := chronic[:1]
	// D's basic package had no amount when signed: an unknown share on a
	// basic package is not paid signing (有偿签约).
	basicUnknown := []storage.ContractPackage{{Code: "basic", Name: "基本", Kind: "basic", Split: storage.Split{"resident": storage.Unknown}}}
	for _, r := range []struct {
		key, community, team, born, group, since string
		packages                                 []storage.ContractPackage
	}{
		{"A", "河东村", "赵", "1950-05-01", "hypertension", "2025-07-01", chronic},
		{"B", "河东村", "赵", "1980-05-01", "", "2026-03-01", basic},
		{"C", "河西村", "黄", "1955-05-01", "diabetes", "2025-01-01", chronic},
		{"D", "李家庄", "黄", "1960-05-01", "diabetes", "2025-02-01", basicUnknown},
		{"E", "河西村", "黄", "1990-05-01", "", "2025-03-01", basic},
	} {
		team := w.teams[r.team]
		var tags []string
		if r.group != "" {
			tags = GroupTags(sealer, []string{r.group})
		}
		since := day(r.since)
		number, _, err := db.CreateContract(ctx, storage.NewContract{RequestKey: "k" + r.key, Day: since.Format("060102"),
			Resident: storage.NewResident{ManagerOpenID: "o_" + r.key, Relation: "self", Name: "居民" + r.key, IDSealed: "s",
				IDHash: "id" + r.key, PhoneSealed: "s", PhoneHash: "p" + r.key, BirthDate: r.born, Sex: "female",
				CommunityID: place[r.community], GroupsSealed: "s", GroupTags: tags},
			TeamID: team.ID, DoctorID: team.DoctorID, Insured: storage.InsuredLocal, TermMonths: 12, AgreementVersion: "paper",
			AgreedAt: since, ConsentVersion: "paper", ConsentedAt: since, ConsentBy: "staff", Packages: r.packages,
			Active: true, TermEnd: since.AddDate(1, 0, -1).Format("2006-01-02")})
		if err != nil {
			t.Fatal(err)
		}
		k, _ := db.ContractByNumber(ctx, number)
		w.contract[r.key] = k.ID
	}
	event := func(key, from, to, reason, at string) {
		sql.MustExec(sql.Rebind(`INSERT INTO contract_events (contract_id, at, actor, from_status, to_status, reason) VALUES (?, ?, 'test', ?, ?, ?)`),
			w.contract[key], day(at).UTC(), from, to, reason)
		if from != to {
			sql.MustExec(sql.Rebind(`UPDATE contracts SET status = ?, ended_at = ? WHERE id = ?`), to, day(at).UTC(), w.contract[key])
		}
	}
	event("C", "active", "cancelled", "搬家", "2026-04-01")
	event("D", "active", "active", "renewed", "2026-01-20")
	event("E", "active", "expired", "term ended", "2026-03-01")
	for i, v := range []struct {
		key, kind, status, at string
		readings              Readings
	}{
		{"A", "followup", "done", "2026-02-10", Readings{Systolic: 150, Diastolic: 95}}, {"A", "followup", "done", "2026-03-10", Readings{}},
		{"A", "followup", "done", "2026-04-10", Readings{}}, {"A", "followup", "done", "2026-05-10", Readings{Systolic: 130, Diastolic: 80}},
		{"A", "checkup", "done", "2026-03-20", Readings{}}, {"B", "clinic", "no_show", "2026-04-15", Readings{}},
		{"C", "followup", "done", "2026-02-12", Readings{Glucose: 6.1}}, {"C", "followup", "done", "2026-03-12", Readings{}},
		{"D", "checkup", "done", "2026-06-05", Readings{Glucose: 7.5}},
		{"A", "followup", "done", "2025-12-10", Readings{}}, // before the period and the year: counts nowhere
	} {
		w.visit(t, i, v.key, v.kind, v.status, day(v.at).Add(9*time.Hour), v.readings)
	}
	w.survey(t, "A", 5, day("2026-05-11"))
	w.survey(t, "C", 3, day("2026-03-13"))
	// Two pushes sent in the period: to A's manager and to 赵's doctor.
	for i, to := range []string{"o_A", DoctorRecipient(w.teams["赵"].DoctorID)} {
		at := day("2026-05-01").UTC()
		sql.MustExec(sql.Rebind(`INSERT INTO outbox (idempotency_key, kind, recipient, payload, priority, due_at, state, created_at, sent_at)
			VALUES (?, 'seasonal_reminder', ?, '{}', 2, ?, 'sent', ?, ?)`), fmt.Sprintf("p%d", i), to, at, at, at)
	}
	return w
}

func (w *indicatorWorld) visit(t *testing.T, i int, key, kind, status string, at time.Time, r Readings) {
	t.Helper()
	sealed, err := sealReadings(w.sealer, r)
	if err != nil {
		t.Fatal(err)
	}
	sql := storagetest.SQL(t, w.db)
	var k struct {
		Resident int64 `db:"resident_id"`
		Doctor   int64 `db:"doctor_id"`
	}
	if err := sql.Get(&k, sql.Rebind(`SELECT resident_id, doctor_id FROM contracts WHERE id = ?`), w.contract[key]); err != nil {
		t.Fatal(err)
	}
	var slot int64
	if err := sql.Get(&slot, sql.Rebind(`INSERT INTO slots (doctor_id, day, starts_at, ends_at, capacity, booked) VALUES (?, ?, ?, ?, 1, 1) RETURNING id`),
		k.Doctor, at.Format("2006-01-02"), at.UTC(), at.Add(10*time.Minute).UTC()); err != nil {
		t.Fatal(err)
	}
	sql.MustExec(sql.Rebind(`INSERT INTO appointments (request_key, resident_id, contract_id, doctor_id, slot_id, kind, status, starts_at, ends_at,
		created_at, updated_at, readings_sealed, bp_class, glucose_class, readings_classed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`),
		fmt.Sprintf("v%d", i), k.Resident, w.contract[key], k.Doctor, slot, kind, status, at.UTC(), at.Add(10*time.Minute).UTC(), at.UTC(), at.UTC(),
		sealed.Sealed, sealed.BPClass, sealed.GlucoseClass)
}

func (w *indicatorWorld) survey(t *testing.T, key string, score int, at time.Time) {
	t.Helper()
	sql := storagetest.SQL(t, w.db)
	var visit int64
	if err := sql.Get(&visit, sql.Rebind(`SELECT MIN(id) FROM appointments WHERE contract_id = ? AND status = 'done'`), w.contract[key]); err != nil {
		t.Fatal(err)
	}
	sql.MustExec(sql.Rebind(`INSERT INTO surveys (appointment_id, openid, requested_at, score, answered_at) VALUES (?, ?, ?, ?, ?)`),
		visit, "o_"+key, at.UTC(), score, at.UTC())
}

func byCode(inds []Indicator) map[string]Indicator {
	out := map[string]Indicator{}
	for _, i := range inds {
		out[i.Code] = i
	}
	return out
}

// want checks one indicator: its numerator, denominator and value (nil:
// no denominator) and whether it is marked below target.
func want(t *testing.T, where string, got map[string]Indicator, code string, num, den float64, value any, below bool) {
	t.Helper()
	g, ok := got[code]
	if !ok {
		t.Errorf("%s: no %s", where, code)
		return
	}
	v := "null"
	if g.Value != nil {
		v = fmt.Sprint(*g.Value)
	}
	if g.Numerator != num || g.Denominator != den || v != fmt.Sprint(value) || g.Below != below {
		t.Errorf("%s %s = %v/%v = %s (below %v), want %v/%v = %v (below %v)", where, code, g.Numerator, g.Denominator, v, g.Below,
			num, den, value, below)
	}
}

func TestIndicatorsOnAHandBuiltTownship(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		w := newIndicatorWorld(t, db)
		r, err := Indicators(context.Background(), db, w.sealer, IndicatorScope{}, w.period, w.now)
		if err != nil {
			t.Fatal(err)
		}
		got := byCode(r.Indicators)
		if len(r.Indicators) != len(profile.Words().Indicators) {
			t.Fatalf("%d indicators, want one per vocabulary code", len(r.Indicators))
		}
		// Signed at the end: A, B (河东村), D (李家庄, no population).
		// 河东村 2 of 100, 河西村 0 of 50: 2/150. The township sets no target.
		want(t, "whole", got, "coverage", 2, 150, 1.3, false)
		if got["coverage"].Target != nil || *got["priority_coverage"].Target != 80 {
			t.Errorf("targets: coverage %v, priority %v", got["coverage"].Target, got["priority_coverage"].Target)
		}
		// Groups with a population: 河东村 elderly 1 (A) of 10 and
		// hypertension 1 (A) of 5; 河西村 elderly 0 of 4 (C ended): 2/19,
		// under the 80 % target.
		want(t, "whole", got, "priority_coverage", 2, 19, 10.5, true)
		want(t, "whole", got, "elderly_coverage", 1, 14, 7.1, false)
		// D renewed, E expired.
		want(t, "whole", got, "renewal", 1, 2, 50, false)
		// Chronic items (4 follow-ups, 1 check-up a year) due pro rata:
		// A 181 of 365 days, 2.4795 due, all delivered (4 follow-ups and a
		// check-up done); C 90 days, 1.2329 due, 0.9863 delivered (2
		// follow-ups against 0.9863 due, no check-up). 3.4658/3.7123.
		want(t, "whole", got, "fulfilment", 3.466, 3.712, 93.4, false)
		// Surveys 5 and 3: one of two scores 4 or 5, under 85 %.
		want(t, "whole", got, "satisfaction", 1, 2, 50, true)
		// Chronic patients signed at the end: A, with 4 follow-ups this year
		// (the one in December 2025 does not count), and D, with none;
		// under the 75 % target.
		want(t, "whole", got, "chronic_managed", 1, 2, 50, true)
		// A's latest blood pressure (May) is 130/80, though February's was
		// 150/95; D's fasting glucose in June is 7.5. C's 6.1 does not
		// count: C is no longer signed.
		want(t, "whole", got, "bp_control", 1, 1, 100, false)
		want(t, "whole", got, "glucose_control", 0, 1, 0, false)
		// Contracts at the end with a personal share: A; of residents in a
		// priority group: A (hypertension, 76) and D (66).
		want(t, "whole", got, "paid_share", 1, 2, 50, false)
		a := r.Activity
		if a.Signings != 1 || a.Renewals != 1 || a.Cancellations != 1 || a.Visits != 8 || a.VisitsByKind["followup"] != 6 ||
			a.VisitsByKind["checkup"] != 2 || a.NoShows != 1 || a.Pushes == nil || *a.Pushes != 2 {
			t.Errorf("activity: %+v", a)
		}
		// Pushes are counted for the whole scope only, not per group.
		if p := r.Breakdown["team"][0].Activity.Pushes; p != nil {
			t.Errorf("pushes in a team's row: %d", *p)
		}
		signedIn := map[string]int{}
		for _, m := range r.Communities {
			signedIn[m.Name] = m.Signed
		}
		if signedIn["河东村"] != 2 || signedIn["李家庄"] != 1 || signedIn["河西村"] != 0 {
			t.Errorf("signed by community: %v", signedIn)
		}
		// One community's report counts its residents' pushes, not the
		// doctor's.
		hedong := IndicatorScope{}
		for _, m := range r.Communities {
			if m.Name == "河东村" {
				hedong.CommunityID = m.ID
			}
		}
		if one, err := Indicators(context.Background(), db, w.sealer, hedong, w.period, w.now); err != nil || *one.Activity.Pushes != 1 {
			t.Errorf("河东村's pushes: %v %v", one.Activity.Pushes, err)
		}
		// Month by month: B signed in March; visits done 2 in February (A,
		// C), 3 in March (A's follow-up and check-up, C), 1 in April and
		// 1 in May (A), 1 in June (D); surveys: C's 3 in March, A's 5 in May.
		months := ""
		for _, m := range r.Months {
			sat := "-"
			if m.Satisfaction != nil {
				sat = fmt.Sprint(*m.Satisfaction)
			}
			months += fmt.Sprintf("%s:%d/%d/%s ", m.Month, m.Signings, m.Visits, sat)
		}
		if want := "2026-01:0/0/- 2026-02:0/2/- 2026-03:1/3/0 2026-04:0/1/- 2026-05:0/1/100 2026-06:0/1/- "; months != want {
			t.Errorf("months: %s, want %s", months, want)
		}
		// By team: 赵 has A and B, 黄 has C, D and E; teams have no
		// population, so no coverage.
		teams := map[string]map[string]Indicator{}
		for _, g := range r.Breakdown["team"] {
			teams[g.Name] = byCode(g.Indicators)
		}
		zhao, huang := teams["赵德明家庭医生团队"], teams["黄梅家庭医生团队"]
		want(t, "赵", zhao, "coverage", 0, 0, "null", false)
		want(t, "赵", zhao, "satisfaction", 1, 1, 100, false)
		want(t, "赵", zhao, "paid_share", 1, 1, 100, false)
		want(t, "黄", huang, "satisfaction", 0, 1, 0, true)
		want(t, "黄", huang, "renewal", 1, 2, 50, false)
		want(t, "黄", huang, "paid_share", 0, 1, 0, false)
		communities := map[string]map[string]Indicator{}
		for _, g := range r.Breakdown["community"] {
			communities[g.Name] = byCode(g.Indicators)
		}
		want(t, "河东村", communities["河东村"], "coverage", 2, 100, 2, false)
		want(t, "李家庄", communities["李家庄"], "coverage", 0, 0, "null", false)
		if len(r.Breakdown["institution"]) != 1 || len(r.Breakdown["doctor"]) != 2 {
			t.Errorf("breakdown: %d institutions, %d doctors", len(r.Breakdown["institution"]), len(r.Breakdown["doctor"]))
		}
	})
}

// A team's doctor sees their team's figures only.
func TestIndicatorsOfADoctorsTeam(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		w := newIndicatorWorld(t, db)
		huang := w.teams["黄"]
		r, err := Indicators(context.Background(), db, w.sealer, IndicatorScope{Scope: storage.Scope{Institution: huang.InstitutionID,
			Doctor: huang.DoctorID}}, w.period, w.now)
		if err != nil {
			t.Fatal(err)
		}
		got := byCode(r.Indicators)
		want(t, "黄's scope", got, "satisfaction", 0, 1, 0, true)
		// A team's signed residents are not a share of its communities'
		// population: other teams serve them too.
		want(t, "黄's scope", got, "coverage", 0, 0, "null", false)
		want(t, "黄's scope", got, "chronic_managed", 0, 1, 0, true)
		if r.Activity.Visits != 3 || r.Activity.NoShows != 0 {
			t.Errorf("黄's activity: %+v", r.Activity)
		}
		for _, g := range r.Breakdown["team"] {
			if g.Name != "黄梅家庭医生团队" {
				t.Errorf("another team in a doctor's breakdown: %s", g.Name)
			}
		}
		// Another institution's scope holds nothing of this one.
		other, _ := Indicators(context.Background(), db, w.sealer, IndicatorScope{Scope: storage.Scope{Institution: huang.InstitutionID + 100}},
			w.period, w.now)
		if o := byCode(other.Indicators); o["satisfaction"].Denominator != 0 || len(other.Breakdown["team"]) != 0 {
			t.Errorf("another institution's report: %+v", other.Indicators)
		}
	})
}

func TestParsePeriod(t *testing.T) {
	now := day("2026-07-15").Add(10 * time.Hour)
	p, err := ParsePeriod("", "", now)
	if err != nil || !p.From.Equal(day("2026-01-01")) || !p.To.Equal(day("2026-07-16")) {
		t.Fatalf("this year to date: %v %v", p, err)
	}
	// A start after today says so, with or without an end.
	for _, to := range []string{"", "2026-12-31"} {
		var refusal *Refusal
		if _, err := ParsePeriod("2026-08-01", to, now); !errors.As(err, &refusal) || !strings.Contains(refusal.Reason, "不能晚于今天") {
			t.Errorf("a start after today, to %q: %v", to, err)
		}
	}
	for _, bad := range [][2]string{{"2026-13-01", ""}, {"", "yesterday"}, {"2026-07-02", "2026-07-01"}, {"2000-01-01", "2026-01-01"}, {"2026-07-16", ""}} {
		var refusal *Refusal
		if _, err := ParsePeriod(bad[0], bad[1], now); !errors.As(err, &refusal) {
			t.Errorf("%v: %v", bad, err)
		}
	}
}

// Every figure opens to the residents behind it.
func TestIndicatorMembers(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		w := newIndicatorWorld(t, db)
		ctx := context.Background()
		members := func(code, kind string, id int64) string {
			t.Helper()
			list, err := IndicatorMembers(ctx, db, w.sealer, IndicatorScope{}, w.period, w.now, code, kind, id)
			if err != nil {
				t.Fatal(err)
			}
			names := map[int64]string{}
			for key, contract := range w.contract {
				names[contract] = key
			}
			out := ""
			for _, m := range list {
				out += fmt.Sprintf("%s %v/%v;", names[m.ContractID], m.Numerator, m.Denominator)
			}
			return out
		}
		if got := members("satisfaction", "", 0); got != "C 0/1;A 1/1;" && got != "A 1/1;C 0/1;" {
			t.Errorf("satisfaction: %s", got)
		}
		// Signed at the end in a community with a population: A and B;
		// D's 李家庄 recorded none.
		if got := members("coverage", "", 0); got != "A 1/0;B 1/0;" && got != "B 1/0;A 1/0;" {
			t.Errorf("coverage: %s", got)
		}
		if got := members("fulfilment", "team", w.teams["黄"].ID); got != "C 0.986/1.233;" {
			t.Errorf("黄's fulfilment: %s", got)
		}
		if got := members("renewal", "team", w.teams["赵"].ID); got != "" {
			t.Errorf("赵's renewals: %s", got)
		}
		var refusal *Refusal
		if _, err := IndicatorMembers(ctx, db, w.sealer, IndicatorScope{}, w.period, w.now, "nothing", "", 0); !errors.As(err, &refusal) {
			t.Errorf("an unknown indicator: %v", err)
		}
	})
}

// A doctor may mark a visit done early on its day: it counts at once, not
// from its start time.
func TestAVisitMarkedEarlyOnItsDayCounts(t *testing.T) {
	db := storagetest.SQLite(t)
	w := newIndicatorWorld(t, db)
	w.visit(t, 99, "B", "clinic", "done", day("2026-06-30").Add(15*time.Hour), Readings{})
	now := day("2026-06-30").Add(9 * time.Hour) // the visit is at 15:00
	period, _ := ParsePeriod("2026-06-01", "2026-06-30", now)
	r, err := Indicators(context.Background(), db, w.sealer, IndicatorScope{}, period, now)
	if err != nil {
		t.Fatal(err)
	}
	// June: D's check-up on the 5th, and B's visit this afternoon.
	if r.Activity.Visits != 2 || r.Activity.VisitsByKind["clinic"] != 1 || r.Months[0].Visits != 2 {
		t.Fatalf("June's visits: %+v, months %+v", r.Activity, r.Months)
	}
}

// A team is judged by the indicators its profile sets targets for, coverage
// rates aside (a team has no population): met when at or above target.
func TestAssessTeams(t *testing.T) {
	pct := func(v float64) *float64 { return &v }
	target := func(v int) *int { return &v }
	team := func(name string, satisfaction, fulfilment *float64, below bool) Group {
		return Group{Name: name, Indicators: []Indicator{
			{Code: "coverage", Target: target(30)},
			{Code: "fulfilment", Value: fulfilment, Target: target(90), Below: fulfilment != nil && *fulfilment < 90},
			{Code: "satisfaction", Value: satisfaction, Target: target(85), Below: below},
			{Code: "renewal", Value: pct(10)},
		}}
	}
	r := Report{Indicators: team("", nil, nil, false).Indicators, Breakdown: map[string][]Group{"team": {
		team("甲", pct(90), pct(95), false), team("乙", pct(50), nil, true)}}}
	judged, rows := AssessTeams(r)
	var codes []string
	for _, j := range judged {
		codes = append(codes, j.Code)
	}
	if fmt.Sprint(codes) != "[fulfilment satisfaction]" {
		t.Fatalf("judged by %v", codes)
	}
	if rows[0].Met != 2 || rows[1].Met != 0 || len(rows[1].Cells) != 2 {
		t.Fatalf("rows: %+v", rows)
	}
}

// A period ending on 31 December reads that year's follow-ups and
// readings, though its end is the next 1 January.
func TestAPeriodEndingAtTheYearsEnd(t *testing.T) {
	db := storagetest.SQLite(t)
	w := newIndicatorWorld(t, db)
	period, _ := ParsePeriod("2026-01-01", "2026-12-31", day("2027-01-15"))
	r, err := Indicators(context.Background(), db, w.sealer, IndicatorScope{}, period, day("2027-01-15"))
	if err != nil {
		t.Fatal(err)
	}
	got := byCode(r.Indicators)
	want(t, "2026", got, "chronic_managed", 1, 2, 50, true)
	want(t, "2026", got, "bp_control", 1, 1, 100, false)
}

// Readings recorded before their classes were kept count in the control
// rates once the server has classed them at start: A's latest blood
// pressure (130/80 in May) is controlled, D's glucose (7.5) is not.
func TestLegacyReadingsAreClassedAtStart(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		w := newIndicatorWorld(t, db)
		sql := storagetest.SQL(t, db)
		// Every visit unclassed, as bookings are: only those with readings
		// need classing.
		sql.MustExec(`UPDATE appointments SET bp_class = '', glucose_class = '', readings_classed = 0`)
		before, _ := Indicators(ctx, db, w.sealer, IndicatorScope{}, w.period, w.now)
		want(t, "unclassed", byCode(before.Indicators), "bp_control", 0, 1, 0, false)
		n, err := ClassifyLegacyReadings(ctx, db, w.sealer)
		if err != nil || n != 4 { // A's two blood pressures, C's and D's glucose
			t.Fatalf("classed %d visits, %v", n, err)
		}
		after, _ := Indicators(ctx, db, w.sealer, IndicatorScope{}, w.period, w.now)
		want(t, "classed", byCode(after.Indicators), "bp_control", 1, 1, 100, false)
		want(t, "classed", byCode(after.Indicators), "glucose_control", 0, 1, 0, false)
		if n, _ := ClassifyLegacyReadings(ctx, db, w.sealer); n != 0 {
			t.Errorf("classed %d visits again", n)
		}
		// Readings recorded again between reading a visit and classing it
		// keep the classes recorded with them.
		sql.MustExec(`UPDATE appointments SET readings_classed = 0 WHERE readings_sealed <> ''`)
		stale, _ := db.UnclassedReadings(ctx, 10)
		sql.MustExec(sql.Rebind(`UPDATE appointments SET readings_sealed = 'new', bp_class = 'kept', readings_classed = 1 WHERE id = ?`), stale[0].ID)
		if err := db.ClassReadings(ctx, stale[0], "", ""); err != nil {
			t.Fatal(err)
		}
		var class string
		sql.Get(&class, sql.Rebind(`SELECT bp_class FROM appointments WHERE id = ?`), stale[0].ID)
		if class != "kept" {
			t.Errorf("classing stale readings overwrote the new class with %q", class)
		}
	})
}

// A paper contract dated before the end of the one it follows leaves the
// resident with two contracts in force at the end for a while: they are
// counted once, on the later one.
func TestAResidentWithTwoContractsInForceCountsOnce(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		w := newIndicatorWorld(t, db)
		sql := storagetest.SQL(t, db)
		// B's contract ends on 2026-07-10, after the period; a second one
		// (a copy of it, on 黄's team) came into force on 2026-06-01.
		sql.MustExec(sql.Rebind(`UPDATE contracts SET status = 'expired', ended_at = ? WHERE id = ?`), day("2026-07-10").UTC(), w.contract["B"])
		huang := w.teams["黄"]
		sql.MustExec(sql.Rebind(`INSERT INTO contracts (number, request_key, resident_id, team_id, doctor_id, status, insured, term_months,
			term_end, agreement_version, agreed_at, consent_version, consented_at, consent_by, created_at, confirmed_at)
			SELECT 'QY-B2', 'kB2', resident_id, ?, ?, 'active', insured, term_months, '2027-05-31', agreement_version, agreed_at,
			consent_version, consented_at, consent_by, created_at, ? FROM contracts WHERE id = ?`),
			huang.ID, huang.DoctorID, day("2026-06-01").UTC(), w.contract["B"])
		r, err := Indicators(ctx, db, w.sealer, IndicatorScope{}, w.period, w.now)
		if err != nil {
			t.Fatal(err)
		}
		// Signed at the end: A, B (once, on 黄's team) and D; 河东村 counts
		// A and B against its 100 residents, 河西村 none of its 50.
		got := byCode(r.Indicators)
		want(t, "two contracts", got, "coverage", 2, 150, 1.3, false)
		for _, g := range r.Breakdown["team"] { // 赵 keeps A; B went to 黄
			if paid := byCode(g.Indicators)["paid_share"]; g.Name == "赵德明家庭医生团队" && (paid.Numerator != 1 || paid.Denominator != 1) {
				t.Errorf("赵's paid signings: %+v", paid)
			}
		}
		members, err := IndicatorMembers(ctx, db, w.sealer, IndicatorScope{}, w.period, w.now, "coverage", "", 0)
		if err != nil || len(members) != 2 {
			t.Errorf("coverage members %+v, %v", members, err)
		}
		// B is signed on 黄's team, not on 赵's, however the list is opened.
		for team, n := range map[string]int{"赵": 1, "黄": 1} {
			members, _ := IndicatorMembers(ctx, db, w.sealer, IndicatorScope{}, w.period, w.now, "coverage", "team", w.teams[team].ID)
			if len(members) != n || team == "黄" && members[0].ResidentID != residentOf(t, w, "B") {
				t.Errorf("%s's coverage members: %+v", team, members)
			}
		}
	})
}

func residentOf(t *testing.T, w *indicatorWorld, key string) int64 {
	t.Helper()
	sql := storagetest.SQL(t, w.db)
	var id int64
	if err := sql.Get(&id, sql.Rebind(`SELECT resident_id FROM contracts WHERE id = ?`), w.contract[key]); err != nil {
		t.Fatal(err)
	}
	return id
}

// An indicator whose denominator rounds to nothing has no value, as the
// API promises, rather than a percent of 0.
func TestAnIndicatorWithADenominatorRoundedAwayHasNoValue(t *testing.T) {
	tl := &tally{num: map[string]float64{"fulfilment": 0}, den: map[string]float64{"fulfilment": 0.0002}}
	for _, ind := range tl.indicators(profile.Settings{}) {
		if ind.Code == "fulfilment" && (ind.Denominator != 0 || ind.Value != nil) {
			t.Fatalf("a denominator rounded away: %+v", ind)
		}
	}
	tl.den["fulfilment"], tl.num["fulfilment"] = 2, 1
	for _, ind := range tl.indicators(profile.Settings{}) {
		if ind.Code == "fulfilment" && (ind.Value == nil || *ind.Value != 50) {
			t.Fatalf("1 of 2: %+v", ind)
		}
	}
}
