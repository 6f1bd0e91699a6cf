package flows

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
)

func TestNextDigestIsTheFirstOrSixteenthAtTen(t *testing.T) {
	for _, c := range []struct{ now, want string }{
		{"2026-12-01 09:59", "2026-12-01 10:00"},
		{"2026-12-01 10:00", "2026-12-01 10:00"},
		{"2026-12-01 10:01", "2026-12-16 10:00"},
		{"2026-12-16 10:01", "2027-01-01 10:00"},
		{"2027-02-20 00:00", "2027-03-01 10:00"},
	} {
		now, _ := time.ParseInLocation("2006-01-02 15:04", c.now, Shanghai)
		if got := NextDigest(now).In(Shanghai).Format("2006-01-02 15:04"); got != c.want {
			t.Errorf("after %s: %s, want %s", c.now, got, c.want)
		}
	}
}

// tip is a held tip numbered id, for openID of institution inst, with the
// words of entry code.
func tip(id int64, openID string, inst int64, code string, day int) storage.HeldTip {
	return storage.HeldTip{OutboxID: id, OpenID: openID, Institution: inst, Due: time.Date(2026, 12, 1, 10, 0, 0, 0, Shanghai),
		Fields: map[string]string{"name": code, "text": "提示" + code, "article": "", "from": fmt.Sprintf("2026-11-%02d", day)}}
}

// sent lists, per openid, the tip codes its digest message says, and the
// tips (outbox IDs) it carries.
func sent(t *testing.T, msgs []storage.DigestMessage) (words map[string]string, carried map[int64]bool) {
	t.Helper()
	words, carried = map[string]string{}, map[int64]bool{}
	for _, m := range msgs {
		if len(m.OpenIDs) < 2 {
			t.Errorf("a mass message to %v: WeChat needs two openids", m.OpenIDs)
		}
		for _, o := range m.OpenIDs {
			if _, dup := words[o]; dup {
				t.Errorf("%s is in two messages of one digest", o)
			}
			var codes []string
			for _, line := range strings.Split(m.Body, "\n") {
				if strings.HasPrefix(line, "【") {
					code := strings.TrimPrefix(strings.Split(line, "】")[0], "【")
					codes = append(codes, strings.Split(code, "（")[0])
				}
			}
			words[o] = strings.Join(codes, ",")
		}
		for _, id := range m.Tips {
			carried[id] = true
		}
	}
	return words, carried
}

func TestDigestGroupsLikeTipsAndLeavesNoOneAlone(t *testing.T) {
	day := time.Date(2026, 12, 1, 10, 0, 0, 0, Shanghai)
	tips := []storage.HeldTip{
		// Two residents with the same two tips; one of them manages her
		// mother, whose copy of tip A is the same tip.
		tip(1, "o_a", 1, "A", 20), tip(2, "o_a", 1, "B", 22), tip(3, "o_a", 1, "A", 20),
		tip(4, "o_b", 1, "A", 20), tip(5, "o_b", 1, "B", 22),
		// Alone with A, B and C: joins the message of A and B; C waits.
		tip(6, "o_c", 1, "A", 20), tip(7, "o_c", 1, "B", 22), tip(8, "o_c", 1, "C", 23),
		// Two alone with tips in common (D) and one each not: both get D.
		tip(9, "o_d", 1, "D", 21), tip(10, "o_d", 1, "E", 21),
		tip(11, "o_e", 1, "D", 21), tip(12, "o_e", 1, "F", 21),
		// Alone with a tip no one else has: waits.
		tip(13, "o_f", 1, "G", 21),
		// The same tips in another institution: a message of its own.
		tip(14, "o_g", 2, "A", 20), tip(15, "o_g", 2, "B", 22),
		tip(16, "o_h", 2, "A", 20), tip(17, "o_h", 2, "B", 22),
	}
	msgs, err := ComposeDigests(tips, day)
	if err != nil {
		t.Fatal(err)
	}
	words, carried := sent(t, msgs)
	want := map[string]string{"o_a": "A,B", "o_b": "A,B", "o_c": "A,B", "o_d": "D", "o_e": "D", "o_g": "A,B", "o_h": "A,B"}
	if fmt.Sprint(words) != fmt.Sprint(want) {
		t.Errorf("digest: %v, want %v", words, want)
	}
	for _, id := range []int64{1, 2, 3, 4, 5, 6, 7, 9, 11, 14, 15, 16, 17} {
		if !carried[id] {
			t.Errorf("tip %d was sent but not marked", id)
		}
	}
	for _, id := range []int64{8, 10, 12, 13} {
		if carried[id] {
			t.Errorf("tip %d was marked sent but not in its message", id)
		}
	}
	for _, m := range msgs {
		// The broadcast's title heads it and its ending says how to stop: once.
		text, err := BroadcastText(m.Title, m.Body)
		if err != nil || strings.Count(text, "回复“提醒设置”可以关闭") != 1 || !strings.HasPrefix(text, "【健康提示 12月1日】\n【") ||
			strings.Count(text, "健康提示") != 1 || !strings.Contains(text, "（11月2") {
			t.Errorf("digest words: %q %v", text, err)
		}
		if m.Institution == 2 && !slices.Equal(m.OpenIDs, []string{"o_g", "o_h"}) {
			t.Errorf("institution 2's message: %v", m.OpenIDs)
		}
	}
}

// A resident with more tips than one digest holds gets the first ones;
// the rest wait for the next.
func TestDigestHoldsAFewTipsAtMost(t *testing.T) {
	var tips []storage.HeldTip
	for i := range digestMaxTips + 2 {
		for _, o := range []string{"o_a", "o_b"} {
			tips = append(tips, tip(int64(len(tips)+1), o, 1, string(rune('A'+i)), 10+i))
		}
	}
	msgs, err := ComposeDigests(tips, time.Date(2026, 12, 1, 10, 0, 0, 0, Shanghai))
	if err != nil {
		t.Fatal(err)
	}
	words, carried := sent(t, msgs)
	if words["o_a"] != "A,B,C,D,E,F" || len(carried) != 2*digestMaxTips {
		t.Errorf("digest: %v, %d tips marked", words, len(carried))
	}
}

// One alone whose many tips have waited (the first ones no one shares)
// still gets the tips they share with others.
func TestDigestCapComesAfterSharing(t *testing.T) {
	var tips []storage.HeldTip
	for i := range digestMaxTips + 1 {
		tips = append(tips, tip(int64(len(tips)+1), "o_alone", 1, fmt.Sprintf("old%d", i), 1+i))
	}
	for _, o := range []string{"o_alone", "o_a", "o_b"} {
		tips = append(tips, tip(int64(len(tips)+1), o, 1, "new", 20))
	}
	msgs, err := ComposeDigests(tips, time.Date(2026, 12, 1, 10, 0, 0, 0, Shanghai))
	if err != nil {
		t.Fatal(err)
	}
	if words, _ := sent(t, msgs); words["o_alone"] != "new" {
		t.Errorf("digest: %v", words)
	}
}

func TestLastDigestIsTheFirstOrSixteenthAtTenBefore(t *testing.T) {
	for _, c := range []struct{ now, want string }{
		{"2026-12-01 10:00", "2026-12-01 10:00"},
		{"2026-12-01 09:59", "2026-11-16 10:00"},
		{"2026-12-20 15:00", "2026-12-16 10:00"},
		{"2027-01-01 08:00", "2026-12-16 10:00"},
	} {
		now, _ := time.ParseInLocation("2006-01-02 15:04", c.now, Shanghai)
		if got := LastDigest(now).In(Shanghai).Format("2006-01-02 15:04"); got != c.want {
			t.Errorf("before %s: %s, want %s", c.now, got, c.want)
		}
	}
}

// Each digest time runs once: a tip that falls due after it (put back by
// admins switching an entry on again, say) waits for the next one rather
// than making a third mass message in a month.
func TestEachDigestTimeRunsOnce(t *testing.T) {
	e := engineFor(t, "national")
	ctx := context.Background()
	slot := time.Date(2026, 12, 16, 10, 0, 0, 0, Shanghai)
	e.DB.SetClock(func() time.Time { return slot.AddDate(0, 0, -10) })
	tip := func(key, to string, due time.Time) storage.Push {
		return HoldForDigest(SeasonalReminder{Key: key, OpenID: to, Name: "大雪", Text: "大雪到了。", Due: due}.Push(), due)
	}
	for _, o := range []string{"o_x1", "o_x2"} {
		e.DB.Apply(ctx, storage.Changes{Seen: &storage.UserSeen{OpenID: o, Subscribed: true, EventTime: slot.AddDate(0, 0, -10)}})
		e.DB.Enqueue(ctx, []storage.Push{tip("s:"+o, o, slot.AddDate(0, 0, -2))})
	}
	var runs storage.DigestRun
	for range 2 { // two instances
		run, err := RunDigest(ctx, e.DB, slot.Add(10*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		runs.Tips, runs.Messages = runs.Tips+run.Tips, runs.Messages+run.Messages
	}
	if runs.Tips != 2 || runs.Messages != 1 {
		t.Fatalf("two instances at the digest: %+v", runs)
	}
	if n := countKind(t, e, "o_x1", PushSeasonal, "pending"); n != 1 {
		t.Fatalf("the tip in the digest's batch: %d pending", n)
	}
	// Later tips due before the 16th (as after switching an entry back on).
	for _, o := range []string{"o_x1", "o_x2"} {
		p := tip("late:"+o, o, slot.AddDate(0, 0, -2))
		p.Due = slot.Add(-time.Hour)
		e.DB.Enqueue(ctx, []storage.Push{p})
	}
	if run, err := RunDigest(ctx, e.DB, slot.AddDate(0, 0, 4)); err != nil || run != (storage.DigestRun{}) {
		t.Fatalf("between digests: %+v %v", run, err)
	}
	if run, err := RunDigest(ctx, e.DB, time.Date(2027, 1, 1, 10, 5, 0, 0, Shanghai)); err != nil || run.Tips != 2 || run.Messages != 1 {
		t.Fatalf("at the next digest: %+v %v", run, err)
	}
}

// A tip for one resident is checked against WeChat's 48 hours when it will
// go: written at 22:00, it goes at 08:00 after quiet hours, and one who
// wrote 37.5 hours before 22:00 is 47.5 hours out by then.
func TestATipToOneCountsTheHoursToWhenItGoes(t *testing.T) {
	e := engineFor(t, "national")
	ctx := context.Background()
	cs, _ := e.DB.Communities(ctx)
	activeIn(t, e, "o_one", cs[0].ID, "1950-01-01")
	wrote := time.Date(2026, 12, 2, 8, 30, 0, 0, Shanghai)
	e.DB.SetClock(func() time.Time { return wrote })
	e.DB.Apply(ctx, storage.Changes{Seen: &storage.UserSeen{OpenID: "o_one", Subscribed: true, EventTime: wrote}})
	tip := BroadcastSpec{Title: "冬季保暖", Text: "天冷了，注意保暖。"}
	night := time.Date(2026, 12, 3, 22, 0, 0, 0, Shanghai)
	_, _, err := SendBroadcast(ctx, e.DB, e.Sealer, storage.Scope{}, tip, "admin", night)
	var r *Refusal
	if !errors.As(err, &r) || !strings.Contains(r.Reason, "只有一位居民") {
		t.Fatalf("at 22:00: %v", err)
	}
	if _, _, err := SendBroadcast(ctx, e.DB, e.Sealer, storage.Scope{}, tip, "admin", night.Add(-2*time.Hour)); err != nil {
		t.Fatalf("at 20:00, which is not quiet: %v", err)
	}
}

// A tip held for the digest goes back to the dispatcher once its resident
// writes, and the run says so.
func TestAHeldTipGoesBackWhenItsResidentWrites(t *testing.T) {
	e := engineFor(t, "national")
	ctx := context.Background()
	held := time.Date(2026, 12, 8, 9, 0, 0, 0, Shanghai)
	clock := held.AddDate(0, -1, 0) // followed a month before, silent since
	e.DB.SetClock(func() time.Time { return clock })
	e.DB.Apply(ctx, storage.Changes{Seen: &storage.UserSeen{OpenID: "o_back", Subscribed: true, EventTime: clock}})
	clock = held
	e.DB.Enqueue(ctx, []storage.Push{HoldForDigest(SeasonalReminder{Key: "s:back", OpenID: "o_back", Name: "大雪", Text: "大雪到了。", Due: held}.Push(), held)})
	if run, err := RunDigest(ctx, e.DB, held.Add(time.Hour)); err != nil || run.Released != 0 {
		t.Fatalf("before the resident wrote: %+v %v", run, err)
	}
	wrote := held.Add(2 * time.Hour)
	clock = wrote
	e.DB.Apply(ctx, storage.Changes{Seen: &storage.UserSeen{OpenID: "o_back", Subscribed: true, EventTime: wrote}})
	if run, err := RunDigest(ctx, e.DB, wrote.Add(10*time.Minute)); err != nil || run.Released != 1 {
		t.Fatalf("after the resident wrote: %+v %v", run, err)
	}
	if rows, err := e.DB.ClaimDue(ctx, 10, time.Minute, wrote.Add(11*time.Minute), PrioritySeasonal); err != nil || len(rows) != 1 {
		t.Fatalf("the tip given back is not due: %+v %v", rows, err)
	}
}
