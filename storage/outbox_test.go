package storage_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

func push(key, to string) storage.Push {
	return storage.Push{Key: key, Kind: "sign_request", Recipient: to, Fields: map[string]string{"number": "QY1"}}
}

func TestOutboxWritesEachKeyOnce(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		for range 3 { // a step replayed after a crash
			if err := db.Apply(ctx, storage.Changes{Pushes: []storage.Push{push("c:1:req", "o_doc")}}); err != nil {
				t.Fatal(err)
			}
		}
		rows, _ := db.OutboxFor(ctx, "o_doc")
		if len(rows) != 1 || rows[0].State != "pending" {
			t.Fatalf("outbox = %+v", rows)
		}
	})
}

func TestOutboxClaimLeaseAndRetry(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		now := time.Now()
		later := push("c:2:later", "o")
		later.Due = now.Add(time.Hour)
		urgent := push("c:2:urgent", "o")
		reminder := push("c:2:reminder", "o")
		reminder.Priority = 2
		db.Apply(ctx, storage.Changes{Pushes: []storage.Push{reminder, later, urgent}})
		now = now.Add(time.Second) // due "now" at enqueue, a moment after the test's clock

		// In quiet hours only transactional pushes (priority 0) are claimed.
		if quiet, _ := db.ClaimDue(ctx, 10, time.Nanosecond, now, 0); len(quiet) != 1 || quiet[0].Key != "c:2:urgent" {
			t.Fatalf("quiet-hours claim = %+v", quiet)
		}
		now = now.Add(time.Second) // that lease is over

		got, err := db.ClaimDue(ctx, 10, time.Minute, now, 99)
		if err != nil || len(got) != 2 || got[0].Key != "c:2:urgent" || got[1].Key != "c:2:reminder" || got[1].Attempts != 1 {
			t.Fatalf("claim = %+v, %v", got, err)
		}
		if f, _ := got[0].Fields(); f["number"] != "QY1" {
			t.Fatalf("fields = %v", f)
		}
		if again, _ := db.ClaimDue(ctx, 10, time.Minute, now, 99); len(again) != 0 {
			t.Fatalf("leased rows claimed again: %+v", again)
		}
		// The dispatcher died: after the lease the rows come back.
		back, _ := db.ClaimDue(ctx, 10, time.Minute, now.Add(2*time.Minute), 99)
		if len(back) != 2 || back[1].Attempts != 2 {
			t.Fatalf("after the lease: %+v", back)
		}
		db.MarkSent(ctx, back[0].ID, now)
		db.MarkFailed(ctx, back[1].ID, "system busy", now.Add(3*time.Minute))
		if r, _ := db.ClaimDue(ctx, 10, time.Minute, now.Add(150*time.Second), 99); len(r) != 0 {
			t.Fatalf("retried before its time: %+v", r)
		}
		r, _ := db.ClaimDue(ctx, 10, time.Minute, now.Add(4*time.Minute), 99)
		if len(r) != 1 || r[0].Key != "c:2:reminder" {
			t.Fatalf("retry: %+v", r)
		}
		db.MarkFailed(ctx, r[0].ID, "template invalid", time.Time{})
		rows, _ := db.OutboxFor(ctx, "o")
		states := map[string]string{}
		for _, row := range rows {
			states[row.Key] = row.State + ":" + row.LastError
		}
		if states["c:2:urgent"] != "sent:" || states["c:2:reminder"] != "dead:template invalid" || states["c:2:later"] != "pending:" {
			t.Fatalf("states = %v", states)
		}
	})
}

// A claimed push handed back untried is claimable again at once, with the
// attempt its claim counted; a release naming an older claim does nothing,
// and a failure record never undoes a sent push.
func TestReleasedClaimsComeBackWithTheirAttempt(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		db.Apply(ctx, storage.Changes{Pushes: []storage.Push{push("r:1", "o_r1"), push("r:2", "o_r2")}})
		now := time.Now().Add(time.Second)
		rows, err := db.ClaimDue(ctx, 10, time.Minute, now, 99)
		if err != nil || len(rows) != 2 {
			t.Fatalf("claim: %+v %v", rows, err)
		}
		if err := db.ReleaseClaim(ctx, rows[0].ID, rows[0].LeaseUntil.Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := db.ReleaseClaim(ctx, rows[1].ID, rows[1].LeaseUntil); err != nil {
			t.Fatal(err)
		}
		again, err := db.ClaimDue(ctx, 10, time.Minute, now, 99)
		if err != nil || len(again) != 1 || again[0].Key != "r:2" || again[0].Attempts != 1 {
			t.Fatalf("after releasing r:2 only: %+v %v", again, err)
		}
		if err := db.MarkSent(ctx, again[0].ID, now); err != nil {
			t.Fatal(err)
		}
		if err := db.MarkFailed(ctx, again[0].ID, "late news of a failure", time.Time{}); err != nil {
			t.Fatal(err)
		}
		if sent, _ := db.OutboxFor(ctx, "o_r2"); len(sent) != 1 || sent[0].State != "sent" {
			t.Fatalf("a sent push after a stale failure: %+v", sent)
		}
	})
}

func TestUnfollowCancelsPendingPushes(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		db.Apply(ctx, storage.Changes{Pushes: []storage.Push{push("r:1", "o_gone"), push("r:2", "o_stays")}})
		db.Apply(ctx, storage.Changes{Seen: &storage.UserSeen{OpenID: "o_gone", Subscribed: false, EventTime: time.Now()}})
		gone, _ := db.OutboxFor(ctx, "o_gone")
		stays, _ := db.OutboxFor(ctx, "o_stays")
		if gone[0].State != "cancelled" || stays[0].State != "pending" {
			t.Fatalf("gone %+v, stays %+v", gone, stays)
		}
	})
}

// Dispatchers in several instances claim at once: no row goes to two.
func TestConcurrentClaimsNeverShareARow(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		var pushes []storage.Push
		for i := range 200 {
			pushes = append(pushes, push(fmt.Sprintf("bulk:%d", i), "o_bulk"))
		}
		if err := db.Apply(ctx, storage.Changes{Pushes: pushes}); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		seen := map[int64]int{}
		var wg sync.WaitGroup
		for range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					rows, err := db.ClaimDue(ctx, 7, time.Minute, time.Now(), 99)
					if err != nil {
						t.Error(err)
						return
					}
					if len(rows) == 0 {
						return
					}
					mu.Lock()
					for _, r := range rows {
						seen[r.ID]++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(seen) != 200 {
			t.Fatalf("%d rows claimed, want 200", len(seen))
		}
		for id, n := range seen {
			if n != 1 {
				t.Fatalf("row %d claimed %d times", id, n)
			}
		}
	})
}

func TestCampaignClaims(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		now := time.Now()
		if ok, err := db.ClaimCampaign(ctx, "flu", 2026, now, time.Hour); !ok || err != nil {
			t.Fatalf("first claim: %v %v", ok, err)
		}
		if ok, _ := db.ClaimCampaign(ctx, "flu", 2026, now.Add(time.Minute), time.Hour); ok {
			t.Fatal("claimed while another instance expands")
		}
		if ok, _ := db.ClaimCampaign(ctx, "flu", 2026, now.Add(2*time.Hour), time.Hour); !ok {
			t.Fatal("an expansion that died is not taken over")
		}
		db.FinishCampaign(ctx, "flu", 2026, 12, now.Add(2*time.Hour))
		if ok, _ := db.ClaimCampaign(ctx, "flu", 2026, now.Add(9*time.Hour), time.Hour); ok {
			t.Fatal("a finished campaign claimed again")
		}
		if ok, _ := db.ClaimCampaign(ctx, "flu", 2027, now, time.Hour); !ok {
			t.Fatal("next year is a new campaign")
		}
	})
}

// Turning a kind of reminder off withdraws what of it is still waiting.
func TestRemindersOffWithdrawsPending(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if err := db.SetReminders(ctx, "o_never", storage.ReminderSettings{}, nil, nil); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("settings for someone never seen: %v", err)
		}
		db.Apply(ctx, storage.Changes{Seen: &storage.UserSeen{OpenID: "o_r", Subscribed: true, EventTime: time.Now()}})
		db.Enqueue(ctx, []storage.Push{
			{Key: "s", Kind: "seasonal_reminder", Recipient: "o_r"},
			{Key: "p", Kind: "personal_reminder", Recipient: "o_r"},
			{Key: "b", Kind: "booking_created", Recipient: "o_r"},
		})
		if err := db.SetReminders(ctx, "o_r", storage.ReminderSettings{Seasonal: false, Personal: true},
			[]string{"seasonal_reminder"}, []string{"personal_reminder"}); err != nil {
			t.Fatal(err)
		}
		states := map[string]string{}
		rows, _ := db.OutboxFor(ctx, "o_r")
		for _, r := range rows {
			states[r.Key] = r.State
		}
		if states["s"] != "cancelled" || states["p"] != "pending" || states["b"] != "pending" {
			t.Fatalf("states = %v", states)
		}
		if s, _ := db.Reminders(ctx, "o_r"); s.Seasonal || !s.Personal {
			t.Fatalf("settings = %+v", s)
		}
	})
}

// A push with no due time is due at the time the database stamps: the
// sandbox's clock once SetClock gave it one.
func TestOutboxStampsWithTheSetClock(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		ahead := time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second)
		db.SetClock(func() time.Time { return ahead })
		if err := db.Apply(ctx, storage.Changes{Pushes: []storage.Push{push("c:clock:req", "o_clock")}}); err != nil {
			t.Fatal(err)
		}
		if early, err := db.ClaimDue(ctx, 10, time.Minute, ahead.Add(-time.Second), 99); err != nil || len(early) != 0 {
			t.Fatalf("claimed before the set clock's time: %+v %v", early, err)
		}
		rows, err := db.ClaimDue(ctx, 10, time.Minute, ahead, 99)
		if err != nil || len(rows) != 1 || rows[0].Key != "c:clock:req" {
			t.Fatalf("claimed %+v %v, want one due at %s", rows, err, ahead)
		}
	})
}

// A push past its moment is cancelled, not sent late; one still in time,
// and one that never goes stale, are sent.
func TestStalePushesAreCancelledNotSent(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		now := time.Now()
		// One being sent when it goes stale is left to its sender.
		sending := push("c:stale:sending", "o_stale_sending")
		sending.StaleAt = now.Add(time.Minute)
		db.Apply(ctx, storage.Changes{Pushes: []storage.Push{sending}})
		if claimed, _ := db.ClaimDue(ctx, 1, 3*time.Hour, now.Add(time.Second), 99); len(claimed) != 1 || claimed[0].Key != "c:stale:sending" {
			t.Fatalf("claimed %+v", claimed)
		}
		stale, fresh, never := push("c:stale:agenda", "o_stale"), push("c:stale:reminder", "o_stale"), push("c:stale:request", "o_stale")
		stale.StaleAt = now.Add(time.Hour)
		fresh.StaleAt = now.Add(3 * time.Hour)
		if err := db.Apply(ctx, storage.Changes{Pushes: []storage.Push{stale, fresh, never}}); err != nil {
			t.Fatal(err)
		}
		later := now.Add(2 * time.Hour) // the dispatcher was away for two hours
		rows, err := db.ClaimDue(ctx, 10, time.Minute, later, 99)
		if err != nil || len(rows) != 2 || rows[0].Key == "c:stale:agenda" || rows[1].Key == "c:stale:agenda" {
			t.Fatalf("claimed %+v %v", rows, err)
		}
		if e, _ := db.OutboxFor(ctx, "o_stale_sending"); len(e) != 1 || e[0].State != "pending" {
			t.Fatalf("the push being sent: %+v", e)
		}
		entries, _ := db.OutboxFor(ctx, "o_stale")
		for _, e := range entries {
			if e.Key == "c:stale:agenda" && (e.State != "cancelled" || e.LastError == "") {
				t.Fatalf("the stale push: %+v", e)
			}
		}
	})
}
