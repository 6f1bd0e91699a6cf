package flows

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// sameFigures compares what two reports say, but for when.
func sameFigures(t *testing.T, where string, got, want Report) {
	t.Helper()
	got.AsOf, got.CountedAt, want.AsOf, want.CountedAt = time.Time{}, nil, time.Time{}, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\ngot  %+v\nwant %+v", where, got, want)
	}
}

// A city's report summed from its teams' rollups says what the live count
// says as of when they were counted, for the city, an institution and a
// community; it moves when the teams are counted again, and a doctor's
// report never reads them.
func TestRollupsSumToTheLiveFigures(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		w := newIndicatorWorld(t, db) // two teams; keep rollups for them
		defer func(n int) { rollupTeams = n }(rollupTeams)
		rollupTeams = 1
		counted := w.now
		clock := func() time.Time { return counted }
		year, _ := ParsePeriod("2026-01-01", "", counted)              // to date: open
		quarter, _ := ParsePeriod("2026-04-01", "2026-06-30", counted) // last quarter: closed
		huang := w.teams["黄"]
		scopes := map[string]IndicatorScope{"city": {}, "institution": {Scope: storage.Scope{Institution: huang.InstitutionID}},
			"community": {CommunityID: w.communityOf(t, "A")}}
		live := map[string]Report{}
		for name, in := range scopes {
			for _, p := range []Period{year, quarter} {
				r, err := Indicators(ctx, db, w.sealer, in, p, counted)
				if err != nil || r.CountedAt != nil {
					t.Fatalf("%s before any rollup: counted at %v, %v", name, r.CountedAt, err)
				}
				live[name+r.From] = r
			}
		}
		run, err := RefreshRollups(ctx, db, w.sealer, clock, time.Minute)
		// Two teams, four kept periods on 15 July: this year, this quarter
		// (this month too), last month, last quarter.
		if err != nil || run.Counted != 2*4 {
			t.Fatalf("refreshed %+v, %v", run, err)
		}
		later := counted.Add(10 * time.Minute)
		for name, in := range scopes {
			for _, p := range []Period{year, quarter} {
				r, err := Indicators(ctx, db, w.sealer, in, p, later)
				if err != nil {
					t.Fatal(err)
				}
				if r.CountedAt == nil || !r.CountedAt.Equal(counted) {
					t.Errorf("%s %s: counted at %v, want %v", name, r.From, r.CountedAt, counted)
				}
				sameFigures(t, name+" "+r.From, r, live[name+r.From])
			}
		}
		// A doctor's report is live: A's survey of May is withdrawn and
		// 赵's doctor sees it at once; the city sees it once 赵's team is
		// counted again, five minutes on, the closed quarter the next day.
		storagetest.SQL(t, db).MustExec(`UPDATE surveys SET score = NULL`)
		zhao := w.teams["赵"]
		mine, _ := Indicators(ctx, db, w.sealer, IndicatorScope{Scope: storage.Scope{Institution: zhao.InstitutionID, Doctor: zhao.DoctorID}},
			year, later)
		want(t, "赵's own", byCode(mine.Indicators), "satisfaction", 0, 0, "null", false)
		city, _ := Indicators(ctx, db, w.sealer, IndicatorScope{}, year, later)
		want(t, "city before a recount", byCode(city.Indicators), "satisfaction", 1, 2, 50, true)
		counted = counted.Add(6 * time.Minute)
		if run, err = RefreshRollups(ctx, db, w.sealer, clock, time.Minute); err != nil || run.Counted != 2*2 {
			t.Fatalf("refreshed %+v, %v: want the open periods only", run, err)
		}
		city, _ = Indicators(ctx, db, w.sealer, IndicatorScope{}, year, counted)
		want(t, "city after a recount", byCode(city.Indicators), "satisfaction", 0, 0, "null", false)
		if city.CountedAt == nil || !city.CountedAt.Equal(counted) {
			t.Errorf("city after a recount: counted at %v, want %v", city.CountedAt, counted)
		}
		// The closed quarter (A's survey of May) moves the next day.
		closed, _ := Indicators(ctx, db, w.sealer, IndicatorScope{}, quarter, counted)
		want(t, "last quarter before its recount", byCode(closed.Indicators), "satisfaction", 1, 1, 100, false)
		counted = counted.Add(25 * time.Hour)
		if _, err := RefreshRollups(ctx, db, w.sealer, clock, time.Minute); err != nil {
			t.Fatal(err)
		}
		closed, _ = Indicators(ctx, db, w.sealer, IndicatorScope{}, quarter, counted)
		want(t, "last quarter after its recount", byCode(closed.Indicators), "satisfaction", 0, 0, "null", false)
		if closed.CountedAt == nil || !closed.CountedAt.Equal(counted) {
			t.Errorf("last quarter after its recount: counted at %v, want %v", closed.CountedAt, counted)
		}
		// Rollups over two hours old are not trusted: the report counts live.
		stale, _ := Indicators(ctx, db, w.sealer, IndicatorScope{}, year, counted.Add(3*time.Hour))
		if stale.CountedAt != nil {
			t.Errorf("a report read rollups three hours old")
		}
	})
}

// A deployment of a few teams keeps no rollups: every report is live, and
// rollups kept while it had more are dropped.
func TestATownshipKeepsNoRollups(t *testing.T) {
	ctx := context.Background()
	db := storagetest.SQLite(t)
	w := newIndicatorWorld(t, db)
	clock := func() time.Time { return w.now }
	defer func(n int) { rollupTeams = n }(rollupTeams)
	rollupTeams = 1 // more teams than this: rollups kept
	if run, err := RefreshRollups(ctx, db, w.sealer, clock, time.Minute); err != nil || run.Counted == 0 {
		t.Fatalf("refreshed %+v, %v", run, err)
	}
	rollupTeams = 50 // back to a township
	run, err := RefreshRollups(ctx, db, w.sealer, clock, time.Minute)
	if err != nil || run.Counted != 0 {
		t.Fatalf("refreshed %+v, %v", run, err)
	}
	year, _ := ParsePeriod("2026-01-01", "", w.now)
	if r, _ := Indicators(ctx, db, w.sealer, IndicatorScope{}, year, w.now); r.CountedAt != nil {
		t.Errorf("a township's report read rollups kept when it had more teams")
	}
}

// communityOf is the community of the resident a contract key names.
func (w *indicatorWorld) communityOf(t *testing.T, key string) int64 {
	t.Helper()
	sql := storagetest.SQL(t, w.db)
	var id int64
	if err := sql.Get(&id, sql.Rebind(`SELECT r.community_id FROM contracts c JOIN residents r ON r.id = c.resident_id WHERE c.id = ?`),
		w.contract[key]); err != nil {
		t.Fatal(err)
	}
	return id
}

// When counting a round of one period takes longer than its totals stay
// fresh, the other periods still get counted: each team's totals once a
// call, the periods in turn.
func TestRollupsReachEveryPeriod(t *testing.T) {
	db := storagetest.SQLite(t)
	w := newIndicatorWorld(t, db)
	defer func(n int) { rollupTeams = n }(rollupTeams)
	rollupTeams = 1
	at := w.now
	slow := func() time.Time { at = at.Add(3 * time.Minute); return at } // every look at the clock, three minutes pass
	run, err := RefreshRollups(context.Background(), db, w.sealer, slow, 24*time.Hour)
	if err != nil || run.Counted != 2*4 {
		t.Fatalf("refreshed %+v, %v; want each of two teams once for each of four periods", run, err)
	}
	for _, p := range rollupPeriods(w.now) {
		r, err := db.RollupTotals(context.Background(), rollupKey(p.Period, w.now), storage.Scope{}, 0)
		if err != nil || !r.Complete {
			t.Errorf("period %s: complete %v, %v", rollupKey(p.Period, w.now), r.Complete, err)
		}
	}
}

// Contracts moving between teams leave both teams' totals to be counted
// again; until then the city counts live, so the moved contracts are
// counted once.
func TestAHandoverSendsTheCityLive(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		w := newIndicatorWorld(t, db)
		defer func(n int) { rollupTeams = n }(rollupTeams)
		rollupTeams = 1
		at := w.now
		if _, err := RefreshRollups(ctx, db, w.sealer, func() time.Time { return at }, time.Minute); err != nil {
			t.Fatal(err)
		}
		zhao, huang := w.teams["赵"], w.teams["黄"]
		if _, err := db.HandOverTeam(ctx, storage.Scope{}, zhao.ID, huang.ID, false, at, "test",
			func(storage.Handover, storage.Team, storage.Team) []storage.Push { return nil }); err != nil {
			t.Fatal(err)
		}
		quarter, _ := ParsePeriod("2026-04-01", "2026-06-30", at)
		r, err := Indicators(ctx, db, w.sealer, IndicatorScope{}, quarter, at.Add(time.Minute))
		if err != nil || r.CountedAt != nil {
			t.Fatalf("after a handover the city read rollups counted at %v, %v", r.CountedAt, err)
		}
		want(t, "after a handover", byCode(r.Indicators), "coverage", 2, 150, 1.3, false)
	})
}
