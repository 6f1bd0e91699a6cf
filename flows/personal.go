package flows

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jiayi-health/jiayi/storage"
)

// Personal reminders come from each active contract and its packages:
// chronic follow-ups when one is due and none is booked, the elderly yearly
// check-up, children's check-ups by age in months, and renewal 30 and 7 days
// before the end; and the schedules of templates/schedules.yaml: children's
// check-ups and vaccines by age in months, antenatal and postnatal visits by
// the expected due date recorded at signing or in the console. Each says
// what to do next and how to stop.

// reminderWindow is how many days late a missed day's reminder still goes.
const reminderWindow = 3

// personalChunk is how many contracts, by ID, one claim of a day's personal
// reminders takes (see runChunks). Tests split a small population with a
// smaller one.
var personalChunk int64 = 10000

// ErrUnfinished says a day's personal reminders are not all enqueued yet:
// another instance holds a chunk of them, or held one and died. Run again
// later; a dead instance's chunk is taken over when its lease passes.
var ErrUnfinished = errors.New("flows: the day's personal reminders are not finished; another instance holds a part")

// RunPersonal enqueues the personal reminders due today for every active
// contract and says how many were new, chunk by chunk with any other instances, once a day: a second
// run on the same day finds the day's run finished and does nothing. Keys
// name the contract and the occasion, so a chunk run twice (its instance
// died) adds nothing.
func RunPersonal(ctx context.Context, db *storage.DB, s *storage.Sealer, now time.Time) (int, error) {
	cat, err := db.Catalog(ctx)
	if err != nil {
		return 0, err
	}
	sched, err := PersonalSchedules()
	if err != nil {
		return 0, err
	}
	chunk := func(ctx context.Context, c storage.CampaignChunk, codes []string) (map[string]int, error) {
		n, err := personalChunkRun(ctx, db, s, cat, sched, c, now)
		return map[string]int{codes[0]: n}, err
	}
	day := now.In(Shanghai)
	code := "personal:" + day.Format(time.DateOnly)
	n, _, unfinished, err := runChunks(ctx, db, []string{code}, day.Year(), realTime(now), personalChunk, storage.ByContract, chunk)
	if err == nil && unfinished {
		err = ErrUnfinished
	}
	return n, err
}

// personalChunkRun enqueues the reminders due today for the active
// contracts of one chunk, read whole (the last, open-ended chunk a chunk's
// worth at a time).
func personalChunkRun(ctx context.Context, db *storage.DB, s *storage.Sealer, cat storage.Catalog, sched Schedules,
	chunk storage.CampaignChunk, now time.Time) (int, error) {
	after := chunk.FirstID
	total := 0
	for {
		contracts, err := db.ActiveContractsPage(ctx, after, chunk.LastID, int(personalChunk))
		if err != nil || len(contracts) == 0 {
			return total, err
		}
		countRows(ctx, len(contracts))
		last := contracts[len(contracts)-1].ID
		// Terms are a year: visits before the one before last do not count.
		visits, err := db.VisitSummaries(ctx, after, last, now.AddDate(-2, 0, 0), now)
		if err != nil {
			return total, err
		}
		var pushes []storage.Push
		for _, c := range contracts {
			ps, err := personalFor(s, cat, sched, c, visits[c.ID], now)
			if err != nil {
				return total, err
			}
			pushes = append(pushes, ps...)
		}
		n, err := db.EnqueueNew(ctx, pushes)
		total += n
		if err != nil || len(contracts) < int(personalChunk) {
			return total, err // a short read was the chunk's last
		}
		after = last
	}
}

// within reports whether today is on or up to reminderWindow days after due.
func within(today, due time.Time) bool {
	return !today.Before(due) && today.Sub(due) <= reminderWindow*24*time.Hour
}

func personalFor(s *storage.Sealer, cat storage.Catalog, sched Schedules, c storage.ContractView, visits storage.VisitSummary, now time.Time) ([]storage.Push, error) {
	if !c.TermEnd.Valid {
		return nil, nil
	}
	end, err := time.ParseInLocation("2006-01-02", c.TermEnd.String, Shanghai)
	if err != nil {
		return nil, nil
	}
	groups, err := ResidentGroups(s, c.Groups, c.BirthDate, now)
	if err != nil {
		return nil, err
	}
	today := StartOfDay(now)
	start := end.AddDate(0, -c.TermMonths, 1)
	due := today.Add(9 * time.Hour)
	if due.Before(now) {
		due = now
	}
	var pushes []storage.Push
	perYear := itemsPerYear(cat, c, "followup", groups)
	add := func(key, what string) {
		pushes = append(pushes, PersonalReminder{Key: key, OpenID: c.ManagerOpenID, Resident: c.ResidentName, Due: due,
			Text: mustMessage("personal_"+what, map[string]any{"Name": c.ResidentName, "End": c.TermEnd.String, "PerYear": perYear})}.Push())
	}
	for _, before := range []int{30, 7} {
		if within(today, end.AddDate(0, 0, -before)) {
			add(fmt.Sprintf("renew:%s:%s:%d", c.Number, c.TermEnd.String, before), "renewal")
		}
	}
	if perYear > 0 {
		if ok, key := followUpDue(c, visits, start, today, perYear); ok {
			add(key, "followup")
		}
	}
	if slices.Contains(groups, "elderly") && within(today, start.AddDate(0, 0, 30)) {
		if last := visits.LastDone["checkup"]; last.Before(start) {
			add(fmt.Sprintf("checkup:%s:%s", c.Number, c.TermEnd.String), "elderly_checkup")
		}
	}
	var more []scheduled
	if d, ok, err := openDue(s, c.DueDate); err != nil {
		return nil, err
	} else if ok {
		more = sched.pregnancyReminders(c.ResidentID, d, today)
	}
	if birth, err := time.ParseInLocation("2006-01-02", c.BirthDate, Shanghai); err == nil {
		more = append(more, sched.childReminders(c.ResidentID, birth, today)...)
	}
	for _, r := range more {
		r.data["Name"] = c.ResidentName
		pushes = append(pushes, PersonalReminder{Key: r.key, OpenID: c.ManagerOpenID, Resident: c.ResidentName, Due: due,
			Text: mustMessage(r.message, r.data)}.Push())
	}
	return pushes, nil
}

// itemsPerYear is how often a year the contract's packages promise visits
// of a kind to a resident in these groups: a chronic follow-up in the basic
// package is for hypertension and diabetes patients, not every holder.
func itemsPerYear(cat storage.Catalog, c storage.ContractView, kind string, groups []string) int {
	n := 0
	for _, cp := range c.Packages {
		if p, ok := cat.Package(cp.Code); ok {
			for _, it := range p.Items {
				if it.VisitKind == kind && it.DueFor(groups) {
					n = max(n, it.PerYear)
				}
			}
		}
	}
	return n
}

// followUpDue: with perYear follow-ups a year, one is due every 365/perYear
// days after the last one (or the term's start); none is due while one is
// booked. The key names the period, so each period reminds once.
func followUpDue(c storage.ContractView, visits storage.VisitSummary, start, today time.Time, perYear int) (bool, string) {
	interval := 365 / perYear
	last := start
	if at := visits.LastDone["followup"]; at.After(last) {
		last = StartOfDay(at)
	}
	if today.Before(last.AddDate(0, 0, interval)) || visits.Upcoming["followup"] {
		return false, ""
	}
	period := int(today.Sub(start).Hours()/24) / interval
	return true, "followup:" + c.Number + ":" + c.TermEnd.String + ":" + strconv.Itoa(period)
}
