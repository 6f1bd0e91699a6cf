package flows

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jiayi-health/jiayi/storage"
)

// A city's page sums each team's totals, counted in the background
// (RefreshRollups) for the periods staff open most: this year, quarter and
// month to date, last month and last quarter. A deployment of a few teams
// (a township) counts every report live; one with more than rollupTeams
// keeps rollups, and its institution and city reports read them while
// they are fresh. A doctor's report, a drill-down and any other period
// are counted live.

// rollupTeams is the number of teams above which a deployment keeps
// rollups (a variable so tests can keep them for two).
var rollupTeams = 50

// How old a team's totals may be before they are counted again, and
// before a report stops trusting them and counts live: the periods to
// date change by the minute; closed ones only when a visit of theirs is
// marked late.
const (
	recountOpen    = 5 * time.Minute
	recountClosed  = 24 * time.Hour
	trustOpen      = 2 * time.Hour // one instance takes 53 min for a round of Kunming's 4,223 teams
	trustClosed    = 48 * time.Hour
	claimLifetime  = 2 * time.Minute // an instance that died counting loses its claim after it
	staleBatchSize = 50
)

// rollupPeriod is a kept period, open (to date) or closed.
type rollupPeriod struct {
	Period
	open bool
}

// rollupPeriods are the periods kept at now.
func rollupPeriods(now time.Time) []rollupPeriod {
	today := StartOfDay(now)
	tomorrow := today.AddDate(0, 0, 1)
	month := time.Date(today.Year(), today.Month(), 1, 0, 0, 0, 0, Shanghai)
	quarter := time.Date(today.Year(), (today.Month()-1)/3*3+1, 1, 0, 0, 0, 0, Shanghai)
	year := time.Date(today.Year(), 1, 1, 0, 0, 0, 0, Shanghai)
	return []rollupPeriod{
		{Period{From: year, To: tomorrow}, true},
		{Period{From: quarter, To: tomorrow}, true},
		{Period{From: month, To: tomorrow}, true},
		{Period{From: month.AddDate(0, -1, 0), To: month}, false},
		{Period{From: quarter.AddDate(0, -3, 0), To: quarter}, false},
	}
}

// rollupKey names a period's rollups: its days, or its first day and
// "to-date" for one running to today or past it (no visit after today is
// done yet, so its figures are the same). A period to date keeps its key
// when the day turns, so its rollups count on past midnight.
func rollupKey(p Period, now time.Time) string {
	if !p.To.Before(StartOfDay(now).AddDate(0, 0, 1)) {
		return p.From.Format("2006-01-02") + "/to-date"
	}
	return p.From.Format("2006-01-02") + "/" + p.To.AddDate(0, 0, -1).Format("2006-01-02")
}

// RollupRun is what one RefreshRollups call did.
type RollupRun struct {
	Counted int `json:"counted"` // team totals counted
	Failed  int `json:"failed"`  // team totals whose count failed (the error returned is the first)
	Stale   int `json:"stale"`   // team totals still due a count when the time ran out
}

// RefreshRollups counts the team totals most overdue, open periods first,
// until budget is spent; several instances share the work through claims.
// A deployment of rollupTeams teams or fewer keeps none (and drops any it
// kept when it had more). A team whose count fails is left for the next
// call; the others are counted.
func RefreshRollups(ctx context.Context, db *storage.DB, s *storage.Sealer, now func() time.Time, budget time.Duration) (RollupRun, error) {
	var run RollupRun
	n, err := db.TeamCount(ctx)
	if err != nil {
		return run, err
	}
	start := now()
	var periods []rollupPeriod
	var keys []string
	if n > rollupTeams {
		for _, p := range rollupPeriods(start) {
			if key := rollupKey(p.Period, start); !slices.Contains(keys, key) { // in a quarter's first month, it and the month are one
				periods, keys = append(periods, p), append(keys, key)
			}
		}
	}
	if err := db.DropRollupsExcept(ctx, keys); err != nil {
		return run, err
	}
	// Round robin over the periods, a batch of each at a time, so those to
	// date do not starve the closed ones; a team's totals are counted (or
	// tried) at most once a call.
	var first error
	tried := map[string]bool{}
	for progress := true; progress && ctx.Err() == nil; {
		progress = false
		for i, p := range periods {
			recount := recountClosed
			if p.open {
				recount = recountOpen
			}
			t := now()
			teams, err := db.StaleRollups(ctx, keys[i], t.Add(-claimLifetime), staleBatchSize)
			if err != nil {
				return run, err
			}
			for _, team := range teams {
				done := fmt.Sprint(keys[i], team.TeamID)
				if tried[done] || team.AsOf.Valid && t.Sub(team.AsOf.Time) < recount {
					continue
				}
				if now().Sub(start) >= budget {
					run.Stale++
					continue
				}
				tried[done], progress = true, true
				switch counted, err := countTeam(ctx, db, s, p.Period, keys[i], team.TeamID, now()); {
				case err != nil:
					run.Failed++
					first = cmp.Or(first, err)
				case counted:
					run.Counted++
				}
			}
		}
	}
	return run, first
}

// countTeam counts one team's totals of a period, if no other instance is;
// it reports whether it did.
func countTeam(ctx context.Context, db *storage.DB, s *storage.Sealer, p Period, key string, team int64, now time.Time) (bool, error) {
	claim, err := db.ClaimRollup(ctx, key, team, now, now.Add(-claimLifetime))
	if err != nil || claim.IsZero() {
		return false, err
	}
	q, _, err := indicatorQuery(ctx, db, s, IndicatorScope{}, p, now)
	var totals []storage.PlaceTotal
	if err == nil {
		q.TeamID = team
		totals, err = db.CountIndicators(ctx, q)
	}
	if err == nil {
		err = db.SaveRollup(ctx, key, team, claim, now, totals)
	}
	if err != nil {
		return false, errors.Join(fmt.Errorf("flows.RefreshRollups: team %d, %s: %w", team, key, err),
			db.ReleaseRollup(context.WithoutCancel(ctx), key, team, claim))
	}
	return true, nil
}

// fromRollups reads a report's totals from the rollups when the report is
// an institution's or the city's over a kept period and every team's
// totals are fresh enough; ok is false otherwise.
func fromRollups(ctx context.Context, db *storage.DB, in IndicatorScope, q storage.IndicatorQuery, p Period, now time.Time) (
	totals storage.IndicatorTotals, countedAt time.Time, ok bool, err error) {
	if in.Scope.Doctor != 0 {
		return totals, countedAt, false, nil
	}
	key, trust := rollupKey(p, now), time.Duration(0)
	for _, kept := range rollupPeriods(now) {
		if rollupKey(kept.Period, now) == key {
			trust = trustClosed
			if kept.open {
				trust = trustOpen
			}
		}
	}
	if trust == 0 {
		return totals, countedAt, false, nil
	}
	r, err := db.RollupTotals(ctx, key, in.Scope, in.CommunityID)
	if err != nil || !r.Complete || now.Sub(r.AsOf) > trust {
		return totals, countedAt, false, err
	}
	if totals, err = db.RollupExtras(ctx, q); err != nil {
		return totals, countedAt, false, err
	}
	totals.Totals = r.Totals
	return totals, r.AsOf, true, nil
}
