package flows

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

// Seasonal tips are not notices, so WeChat lets them go neither as
// template messages (no marketing there) nor to anyone at any time. A tip
// goes as a customer-service message to a resident who wrote to the
// account in the last 48 hours. Everyone else's tips wait for the digest:
// on the 1st and the 16th of each month, at 10:00, the tips waiting for
// each WeChat user are put into one mass message (群发), one per set of
// identical tips, so a resident gets at most two of WeChat's four mass
// messages a month from the calendar.

// DigestHour is the hour (Asia/Shanghai) of the 1st and the 16th the
// digest goes at.
const DigestHour = 10

// digestMargin is how long before the 48 hours end a resident is no
// longer counted as inside them: a tip claimed then may be sent a little
// later.
const digestMargin = time.Hour

// serviceWindow is how long after someone's last message WeChat lets an
// account write to them freely.
const serviceWindow = 48 * time.Hour

// digestMaxTips bounds one digest: the rest of a resident's tips wait for
// the next one, so the message stays short enough to read.
const digestMaxTips = 6

// NextDigest is the first digest at or after t.
func NextDigest(t time.Time) time.Time {
	l := t.In(Shanghai)
	for _, day := range []int{1, 16} {
		if at := time.Date(l.Year(), l.Month(), day, DigestHour, 0, 0, 0, Shanghai); !at.Before(l) {
			return at
		}
	}
	return time.Date(l.Year(), l.Month()+1, 1, DigestHour, 0, 0, 0, Shanghai)
}

// InServiceWindow says whether someone last seen at lastSeen may be sent a
// customer-service message at now, with a margin for the time a send takes.
func InServiceWindow(lastSeen, now time.Time) bool {
	return !lastSeen.IsZero() && now.Sub(lastSeen) < serviceWindow-digestMargin
}

// HoldForDigest makes a seasonal tip wait for the next digest after now.
// A tip may go in the first digest after its window closes, not later: it
// goes stale a day after that digest (so a tip left out of it, or held
// after it, is withdrawn, and says why).
func HoldForDigest(p storage.Push, now time.Time) storage.Push {
	p.Priority = PriorityHeld
	p.Due = NextDigest(now)
	if until, err := time.Parse(time.RFC3339, p.Fields["until"]); err == nil {
		p.StaleAt = NextDigest(until).Add(24 * time.Hour)
	} else if !p.StaleAt.IsZero() { // written before tips said when their window ends
		p.StaleAt = NextDigest(p.StaleAt).Add(24 * time.Hour)
	}
	return p
}

// ComposeDigests turns the tips waiting for WeChat users into the digest's
// mass messages: each user's tips (the same tip for two of their family
// once) make one text, and users whose texts are alike share a message. A
// mass message needs two openids, so a user alone with their tips joins a
// message whose tips are all among theirs, or shares with another such
// user the tips the two have in common; tips left out wait for the next
// digest. Within an institution only, so each sees its own.
func ComposeDigests(tips []storage.HeldTip, day time.Time) ([]storage.DigestMessage, error) {
	type user struct {
		institution int64
		openID      string
		tips        []storage.HeldTip // distinct texts, in the order they fell due
	}
	users := map[string]*user{}
	byUser := map[string][]storage.HeldTip{} // every tip, a family's copies too
	var order []string
	for _, t := range tips {
		byUser[t.OpenID] = append(byUser[t.OpenID], t)
		u := users[t.OpenID]
		if u == nil {
			u = &user{institution: t.Institution, openID: t.OpenID}
			users[t.OpenID], order = u, append(order, t.OpenID)
		}
		if !slices.ContainsFunc(u.tips, func(h storage.HeldTip) bool { return sameTip(h, t) }) {
			u.tips = append(u.tips, t)
		}
	}
	slices.Sort(order)
	type group struct {
		institution int64
		tips        []storage.HeldTip
		openIDs     []string
	}
	var groups []*group
	byContent := map[string]*group{}
	for _, id := range order {
		u := users[id]
		slices.SortStableFunc(u.tips, func(a, b storage.HeldTip) int {
			return cmp.Or(cmp.Compare(a.Fields["from"], b.Fields["from"]), a.Due.Compare(b.Due), cmp.Compare(a.OutboxID, b.OutboxID))
		})
		key := fmt.Sprint(u.institution, contentKey(u.tips))
		g := byContent[key]
		if g == nil {
			g = &group{institution: u.institution, tips: u.tips}
			byContent[key] = g
			groups = append(groups, g)
		}
		g.openIDs = append(g.openIDs, id)
	}
	// Users alone with their tips: into the largest shared message that
	// holds only tips of theirs, or paired with another such user.
	var alone []*group
	for _, g := range groups {
		if len(g.openIDs) == 1 {
			alone = append(alone, g)
		}
	}
	for i, a := range alone {
		if len(a.openIDs) != 1 {
			continue // taken by an earlier pairing
		}
		var best *group
		for _, g := range groups {
			if len(g.openIDs) >= 2 && g.institution == a.institution && subset(g.tips, a.tips) && (best == nil || len(g.tips) > len(best.tips)) {
				best = g
			}
		}
		if best != nil {
			best.openIDs = append(best.openIDs, a.openIDs[0])
			a.openIDs = nil
			continue
		}
		for _, b := range alone[i+1:] {
			if len(b.openIDs) != 1 || b.institution != a.institution {
				continue
			}
			if common := intersect(a.tips, b.tips); len(common) > 0 {
				shared := &group{institution: a.institution, tips: common, openIDs: []string{a.openIDs[0], b.openIDs[0]}}
				groups = append(groups, shared)
				a.openIDs, b.openIDs = nil, nil
				break
			}
		}
	}
	var out []storage.DigestMessage
	for _, g := range groups {
		if len(g.openIDs) < 2 {
			continue // their tips wait: for a message to them, or the next digest
		}
		g.tips = g.tips[:min(len(g.tips), digestMaxTips)]
		body, err := digestText(g.tips)
		if err != nil {
			return nil, err
		}
		m := storage.DigestMessage{Institution: g.institution, Title: fmt.Sprintf("健康提示 %d月%d日", day.Month(), day.Day()),
			Body: body, OpenIDs: g.openIDs}
		for _, id := range g.openIDs {
			for _, t := range byUser[id] {
				if slices.ContainsFunc(g.tips, func(h storage.HeldTip) bool { return sameTip(h, t) }) {
					m.Tips = append(m.Tips, t.OutboxID)
				}
			}
		}
		slices.Sort(m.OpenIDs)
		out = append(out, m)
	}
	return out, nil
}

func sameTip(a, b storage.HeldTip) bool {
	return a.Fields["text"] == b.Fields["text"] && a.Fields["article"] == b.Fields["article"]
}

func contentKey(tips []storage.HeldTip) string {
	var b strings.Builder
	for _, t := range tips {
		b.WriteString(t.Fields["text"] + "\x00" + t.Fields["article"] + "\x01")
	}
	return b.String()
}

// subset says whether every tip of some is among all.
func subset(some, all []storage.HeldTip) bool {
	for _, t := range some {
		if !slices.ContainsFunc(all, func(h storage.HeldTip) bool { return sameTip(h, t) }) {
			return false
		}
	}
	return true
}

func intersect(a, b []storage.HeldTip) []storage.HeldTip {
	var out []storage.HeldTip
	for _, t := range a {
		if slices.ContainsFunc(b, func(h storage.HeldTip) bool { return sameTip(h, t) }) {
			out = append(out, t)
		}
	}
	return out
}

// digestText is one digest message's tips in words; as every broadcast's,
// its title heads it and how to stop tips ends it.
func digestText(tips []storage.HeldTip) (string, error) {
	var list []map[string]string
	for _, t := range tips {
		// Its day, as a digest may come a week or two after it.
		on := ""
		if from, err := time.ParseInLocation(time.DateOnly, t.Fields["from"], Shanghai); err == nil {
			on = fmt.Sprintf("%d月%d日", from.Month(), from.Day())
		}
		list = append(list, map[string]string{"name": t.Fields["name"], "day": on, "text": t.Fields["text"], "article": t.Fields["article"]})
	}
	return templates.Message("seasonal_digest", map[string]any{"tips": list})
}

// campaignLease is how long the digest's run may take before another
// instance takes it over as dead.
const campaignLease = 30 * time.Minute

// RunDigest sends the tips waiting for the digest when one is due, and
// first gives back to the dispatcher those of residents who wrote since
// their tips were held. It says what it did: the tips given back, and those
// put into digests.
func RunDigest(ctx context.Context, db *storage.DB, now time.Time) (storage.DigestRun, error) {
	wroteSince := now.Add(-(serviceWindow - digestMargin))
	released, err := db.ReleaseHeld(ctx, PriorityHeld, PrioritySeasonal, now, wroteSince)
	if err != nil {
		return storage.DigestRun{}, err
	}
	// Each digest time is run once, by one instance: tips that fall due
	// between two (put back by admins, say) wait for the next, so the
	// calendar never sends more than its two mass messages a month.
	slot := LastDigest(now)
	code := "digest:" + slot.Format(time.DateOnly)
	if mine, err := db.ClaimCampaign(ctx, code, slot.Year(), now, campaignLease); err != nil || !mine {
		return storage.DigestRun{Released: int(released)}, err
	}
	day := now.In(Shanghai)
	run, err := db.Digest(ctx, storage.DigestRequest{Held: PriorityHeld, Now: now, Slot: slot, Next: NextDigest(slot.Add(time.Minute)),
		WroteSince: wroteSince, Month: day.Format("2006-01"), Day: slot.Format(time.DateOnly), Priority: PrioritySeasonal,
		Compose: func(tips []storage.HeldTip) ([]storage.DigestMessage, error) { return ComposeDigests(tips, slot) }})
	run.Released = int(released)
	if err != nil {
		return run, err
	}
	return run, db.FinishCampaign(ctx, code, slot.Year(), run.Tips, now)
}

// LastDigest is the last digest time at or before t.
func LastDigest(t time.Time) time.Time {
	l := t.In(Shanghai)
	for _, at := range []time.Time{time.Date(l.Year(), l.Month(), 16, DigestHour, 0, 0, 0, Shanghai),
		time.Date(l.Year(), l.Month(), 1, DigestHour, 0, 0, 0, Shanghai)} {
		if !at.After(l) {
			return at
		}
	}
	return time.Date(l.Year(), l.Month()-1, 16, DigestHour, 0, 0, 0, Shanghai)
}
