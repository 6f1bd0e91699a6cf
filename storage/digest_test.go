package storage_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

const heldPriority = 9 // flows.PriorityHeld

// heldTip is a seasonal tip for openID waiting for the digest since due.
func heldTip(key, openID, text string, due time.Time) storage.Push {
	return storage.Push{Key: key, Kind: storage.KindSeasonal, Recipient: openID, Priority: heldPriority, Due: due,
		StaleAt: due.Add(48 * time.Hour), Fields: map[string]string{"text": text}}
}

// oneMessage composes a digest as one message to everyone, carrying the
// tips with the given text.
func oneMessage(text string) func([]storage.HeldTip) ([]storage.DigestMessage, error) {
	return func(tips []storage.HeldTip) ([]storage.DigestMessage, error) {
		m := storage.DigestMessage{Title: "健康提示", Body: text}
		for _, t := range tips {
			if !slices.Contains(m.OpenIDs, t.OpenID) {
				m.OpenIDs, m.Institution = append(m.OpenIDs, t.OpenID), t.Institution
			}
			if t.Fields["text"] == text {
				m.Tips = append(m.Tips, t.OutboxID)
			}
		}
		return []storage.DigestMessage{m}, nil
	}
}

// signedFollowers signs a resident of the first seeded community for
// each openid, each following the account.
func signedFollowers(t *testing.T, db *storage.DB, openIDs ...string) {
	t.Helper()
	ids := seedOrganisation(t, db)
	for i, o := range openIDs {
		signResident(t, db, i+1, o, ids[0], nil, "1950-01-01")
	}
}

// usedUp gives openID every mass message of month.
func usedUp(t *testing.T, db *storage.DB, openID, month string) {
	t.Helper()
	raw := storagetest.SQL(t, db)
	if _, err := raw.Exec(raw.Rebind(`INSERT INTO mass_allowance (openid, month, used) VALUES (?, ?, ?)`), openID, month, storage.MassPerMonth); err != nil {
		t.Fatal(err)
	}
}

func outboxEntry(t *testing.T, db *storage.DB, openID, key string) storage.OutboxEntry {
	t.Helper()
	entries, err := db.OutboxFor(context.Background(), openID)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Key == key {
			return e
		}
	}
	t.Fatalf("no push %s to %s", key, openID)
	return storage.OutboxEntry{}
}

// The digest takes the tips held and due in one go: those in a message go
// as one broadcast within each one's monthly allowance, those of users
// who have had their four are withdrawn and reported, those left out wait
// for the next digest; a second digest, even at the same moment, finds
// nothing to take.
func TestDigestSendsHeldTipsOnceWithinTheAllowance(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		signedFollowers(t, db, "o_d1", "o_d2", "o_d3")
		now := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
		month, next := "2026-12", now.Add(15*24*time.Hour)
		usedUp(t, db, "o_d3", month)
		was := now.Add(-time.Hour)
		later := heldTip("t:1:later", "o_d1", "C", now.Add(time.Hour))
		later.StaleAt = time.Time{}
		longer := heldTip("t:3:B", "o_d3", "B", was) // its window is open past the next digest
		longer.StaleAt = next.Add(24 * time.Hour)
		if err := db.Enqueue(ctx, []storage.Push{heldTip("t:1:A", "o_d1", "A", was), heldTip("t:2:A", "o_d2", "A", was),
			heldTip("t:3:A", "o_d3", "A", was), longer, heldTip("t:2:B", "o_d2", "B", was), later}); err != nil {
			t.Fatal(err)
		}
		req := storage.DigestRequest{Held: heldPriority, Now: now, Next: next, Month: month, Day: "2026-12-01", Priority: 3, Compose: oneMessage("A")}
		run, err := db.Digest(ctx, req)
		if err != nil || run != (storage.DigestRun{Messages: 1, Tips: 2, OverLimit: 1, Left: 2}) {
			t.Fatalf("digest: %+v %v", run, err)
		}
		if again, err := db.Digest(ctx, req); err != nil || again != (storage.DigestRun{}) {
			t.Fatalf("a second digest: %+v %v", again, err)
		}
		states := func(want map[string]string) {
			t.Helper()
			for key, want := range want {
				if e := outboxEntry(t, db, "o_d"+key[2:3], key); e.State+" "+e.LastError != want {
					t.Errorf("%s: %s (%s), want %s", key, e.State, e.LastError, want)
				}
			}
		}
		// In the digest's batch, the tips wait for it; WeChat takes it, and they are sent.
		states(map[string]string{"t:1:A": "pending in the digest", "t:2:A": "pending in the digest",
			"t:3:A": "cancelled monthly mass messages used up", "t:3:B": "pending held: no one else has these tips", "t:1:later": "pending "})
		list, total, err := db.Broadcasts(ctx, storage.Scope{}, storage.Page{Limit: 10}, now)
		if err != nil || total != 1 || list[0].Audience != 3 || list[0].OverLimit != 1 || list[0].Body != "A" || list[0].CreatedBy != storage.DigestActor {
			t.Fatalf("broadcasts: %d %+v %v", total, list, err)
		}
		b, _ := db.BroadcastBatch(ctx, list[0].ID, 1)
		if !slices.Equal(b.OpenIDs, []string{"o_d1", "o_d2"}) {
			t.Errorf("the digest goes to %v", b.OpenIDs)
		}
		batch, err := db.ClaimDue(ctx, 10, time.Minute, now, 3)
		if err != nil || len(batch) != 1 || batch[0].Kind != storage.KindBroadcast {
			t.Fatalf("the digest's batch: %+v %v", batch, err)
		}
		if err := db.MarkBroadcastSubmitted(ctx, batch[0].ID, b, "job-1", now, nil); err != nil {
			t.Fatal(err)
		}
		states(map[string]string{"t:1:A": "sent sent in the digest", "t:2:A": "sent sent in the digest"})
		if mine, _, _ := db.Broadcasts(ctx, storage.Scope{Institution: 1}, storage.Page{Limit: 10}, now); len(mine) != 1 {
			t.Errorf("the institution's admins do not see its digest: %+v", mine)
		}
		// B waits for the next digest and is not stale before it.
		claimed, err := db.ClaimDue(ctx, 10, time.Minute, next.Add(time.Minute), heldPriority)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, c := range claimed {
			if c.Kind == storage.KindSeasonal {
				keys = append(keys, c.Key)
			}
		}
		slices.Sort(keys)
		if !slices.Equal(keys, []string{"t:1:later", "t:3:B"}) {
			t.Errorf("due at the next digest: %v", keys)
		}
		// B for o_d2 closed its window before the next digest: withdrawn, saying why it waited.
		states(map[string]string{"t:2:B": "cancelled held: no one else has these tips; moment passed"})
	})
}

func TestTwoDigestsAtOnceSendEachTipOnce(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		followers := []string{"o_c1", "o_c2", "o_c3", "o_c4"}
		signedFollowers(t, db, followers...)
		var pushes []storage.Push
		now := time.Now()
		for _, o := range followers {
			pushes = append(pushes, heldTip("c:"+o, o, "A", now.Add(-time.Minute)))
		}
		if err := db.Enqueue(ctx, pushes); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		runs := make([]storage.DigestRun, 4)
		for i := range runs {
			wg.Go(func() {
				var err error
				runs[i], err = db.Digest(ctx, storage.DigestRequest{Held: heldPriority, Now: now, Next: now.Add(time.Hour),
					Month: now.Format("2006-01"), Day: now.Format(time.DateOnly), Priority: 3, Compose: oneMessage("A")})
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		messages, tips := 0, 0
		for _, r := range runs {
			messages, tips = messages+r.Messages, tips+r.Tips
		}
		if messages != 1 || tips != 4 {
			t.Fatalf("four digests at once: %+v", runs)
		}
	})
}

// A tip held for someone who has since written goes back to the
// dispatcher; a claimed tip held for the digest gives its attempt back
// and does not go stale before the digest.
func TestHeldTipsComeBackWhenTheResidentWrites(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		now := time.Now()
		db.SetClock(func() time.Time { return now.Add(-72 * time.Hour) })
		db.Apply(ctx, seen("o_quiet", true, 1000))
		db.SetClock(func() time.Time { return now })
		db.Apply(ctx, seen("o_wrote", true, 1000))
		db.Enqueue(ctx, []storage.Push{heldTip("h:quiet", "o_quiet", "A", now.Add(time.Hour)), heldTip("h:wrote", "o_wrote", "A", now.Add(time.Hour))})
		n, err := db.ReleaseHeld(ctx, heldPriority, 3, now, now.Add(-47*time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("released %d %v", n, err)
		}
		claimed, err := db.ClaimDue(ctx, 10, time.Minute, now, 3)
		if err != nil || len(claimed) != 1 || claimed[0].Key != "h:wrote" {
			t.Fatalf("claimed %+v %v", claimed, err)
		}
		digest := now.Add(10 * 24 * time.Hour)
		if err := db.HoldTip(ctx, claimed[0].ID, heldPriority, digest, digest.Add(24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if again, _ := db.ClaimDue(ctx, 10, time.Minute, digest.Add(time.Hour), 3); len(again) != 0 {
			t.Fatalf("a held tip was claimed: %+v", again)
		}
		e := outboxEntry(t, db, "o_wrote", "h:wrote")
		if e.State != "pending" || e.Attempts != 0 || e.LastError != "held for the digest" {
			t.Fatalf("held: %+v", e)
		}
	})
}

// A digest message left with one user who has a mass message left, and who
// has not written lately, is not written: its tips wait, and no allowance
// is taken.
func TestDigestLeftWithOneWaits(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		signedFollowers(t, db, "o_e1", "o_e2")
		now := time.Now()
		usedUp(t, db, "o_e1", "2026-12")
		db.Enqueue(ctx, []storage.Push{heldTip("e:1", "o_e1", "A", now.Add(-time.Minute)), heldTip("e:2", "o_e2", "A", now.Add(-time.Minute))})
		run, err := db.Digest(ctx, storage.DigestRequest{Held: heldPriority, Now: now, Next: now.Add(time.Hour), Month: "2026-12", Day: "2026-12-01",
			Priority: 3, WroteSince: now.Add(time.Minute), Compose: oneMessage("A")})
		if err != nil || run != (storage.DigestRun{Left: 2}) {
			t.Fatalf("digest: %+v %v", run, err)
		}
		if e := outboxEntry(t, db, "o_e2", "e:2"); e.State != "pending" {
			t.Fatalf("the tip of the one alone: %+v", e)
		}
		use, _ := db.BroadcastAudience(ctx, storage.Scope{}, storage.Segment{}, "2026-12")
		if use.Used[0] != 1 || use.Used[storage.MassPerMonth] != 1 {
			t.Fatalf("allowance: %+v", use)
		}
	})
}

// A digest's batch that dies leaves its tips to the next digest; one
// withdrawn by an admin withdraws its tips.
func TestDigestTipsFollowTheirBatch(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		signedFollowers(t, db, "o_f1", "o_f2")
		now := time.Now()
		digest := func(text string) storage.DigestRun {
			t.Helper()
			run, err := db.Digest(ctx, storage.DigestRequest{Held: heldPriority, Now: now, Next: now.Add(time.Hour), Month: "2026-12",
				Day: "2026-12-01", Priority: 3, Compose: oneMessage(text)})
			if err != nil {
				t.Fatal(err)
			}
			return run
		}
		db.Enqueue(ctx, []storage.Push{heldTip("f:1:A", "o_f1", "A", now.Add(-time.Minute)), heldTip("f:2:A", "o_f2", "A", now.Add(-time.Minute))})
		if run := digest("A"); run.Tips != 2 {
			t.Fatalf("first digest: %+v", run)
		}
		if again := digest("A"); again.Tips != 0 {
			t.Fatalf("tips in a waiting batch taken again: %+v", again)
		}
		claimed, _ := db.ClaimDue(ctx, 10, time.Minute, now, 3)
		i := slices.IndexFunc(claimed, func(r storage.OutboxRow) bool { return r.Kind == storage.KindBroadcast })
		if i < 0 {
			t.Fatalf("no batch in %+v", claimed)
		}
		db.MarkFailed(ctx, claimed[i].ID, "WeChat refused", time.Time{}) // dead
		if run := digest("A"); run.Tips != 2 || run.Messages != 1 {
			t.Fatalf("after the batch died: %+v", run)
		}
		list, _, _ := db.Broadcasts(ctx, storage.Scope{}, storage.Page{Limit: 10}, now)
		if _, err := db.CancelBroadcast(ctx, storage.Scope{}, list[0].ID, "admin"); err != nil {
			t.Fatal(err)
		}
		for _, o := range []string{"o_f1", "o_f2"} {
			if e := outboxEntry(t, db, o, "f:"+o[3:]+":A"); e.State != "cancelled" || e.LastError != "broadcast cancelled" {
				t.Errorf("%s's tip after the digest was withdrawn: %+v", o, e)
			}
		}
		if run := digest("A"); run != (storage.DigestRun{}) {
			t.Fatalf("withdrawn tips taken again: %+v", run)
		}
	})
}
