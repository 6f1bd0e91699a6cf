package storage_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

func TestSessionVersioningRefusesStaleWrites(t *testing.T) {
	storagetest.ForEachRedis(t, func(t *testing.T, r *storage.Redis) {
		ctx := context.Background()
		s, err := r.LoadChatSession(ctx, "o1")
		if err != nil || s.Version != 0 || s.State != nil {
			t.Fatalf("new session = %+v, %v", s, err)
		}
		stale := s
		s.State = []byte(`{"step":"name"}`)
		saved, err := r.SaveTurn(ctx, storage.Turn{Session: s, SessionTTL: time.Minute})
		if err != nil || saved.Version != 1 {
			t.Fatalf("first save: %+v, %v", saved, err)
		}
		stale.State = []byte(`{"step":"old"}`)
		if _, err := r.SaveTurn(ctx, storage.Turn{Session: stale, SessionTTL: time.Minute}); !errors.Is(err, storage.ErrStaleChatSession) {
			t.Fatalf("stale save: err %v, want ErrStaleChatSession", err)
		}
		got, err := r.LoadChatSession(ctx, "o1")
		if err != nil || got.Version != 1 || string(got.State) != `{"step":"name"}` {
			t.Fatalf("after stale write: %+v, %v", got, err)
		}
	})
}

func TestSessionExpiresAfterTTL(t *testing.T) {
	storagetest.ForEachRedis(t, func(t *testing.T, r *storage.Redis) {
		ctx := context.Background()
		s := storage.ChatSession{OpenID: "o-ttl", State: []byte("x")}
		if _, err := r.SaveTurn(ctx, storage.Turn{Session: s, SessionTTL: 300 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		if got, _ := r.LoadChatSession(ctx, "o-ttl"); got.Version != 1 {
			t.Fatalf("session not stored: %+v", got)
		}
		time.Sleep(600 * time.Millisecond)
		got, err := r.LoadChatSession(ctx, "o-ttl")
		if err != nil || got.Version != 0 || got.State != nil {
			t.Fatalf("session after its TTL = %+v, %v; want it gone", got, err)
		}
	})
}

func TestClaimDedupesAMessage(t *testing.T) {
	storagetest.ForEachRedis(t, func(t *testing.T, r *storage.Redis) {
		ctx := context.Background()
		state, _, release, err := r.Claim(ctx, "o1", "m1", time.Second)
		if err != nil || state != storage.MessageNew || release == nil {
			t.Fatalf("first claim: %v, %v", state, err)
		}
		if state, _, _, _ := r.Claim(ctx, "o1", "m1", time.Second); state != storage.MessageInProgress {
			t.Fatalf("second claim while in progress = %v", state)
		}
		// The turn finishes: the reply is stored with the session.
		if _, err := r.SaveTurn(ctx, storage.Turn{Session: storage.ChatSession{OpenID: "o1"}, SessionTTL: time.Minute,
			MessageKey: "m1", Reply: "您好", ReplyTTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
		state, reply, _, err := r.Claim(ctx, "o1", "m1", time.Second)
		if err != nil || state != storage.MessageDone || reply != "您好" {
			t.Fatalf("claim after done = %v %q %v", state, reply, err)
		}
		release() // a late release must not remove the finished reply
		if state, reply, _ := r.MessageState(ctx, "o1", "m1"); state != storage.MessageDone || reply != "您好" {
			t.Fatalf("release removed the reply: %v %q", state, reply)
		}
	})
}

func TestClaimOfACrashedAttemptExpires(t *testing.T) {
	storagetest.ForEachRedis(t, func(t *testing.T, r *storage.Redis) {
		ctx := context.Background()
		if state, _, _, _ := r.Claim(ctx, "o2", "m1", 200*time.Millisecond); state != storage.MessageNew {
			t.Fatal("first claim refused")
		}
		// The attempt dies without releasing; a retry after the TTL runs it.
		time.Sleep(400 * time.Millisecond)
		if state, _, _, _ := r.Claim(ctx, "o2", "m1", time.Second); state != storage.MessageNew {
			t.Fatalf("retry after the marker expired = %v, want MessageNew", state)
		}
		// A released claim is free at once.
		state, _, release, _ := r.Claim(ctx, "o2", "m2", time.Minute)
		if state != storage.MessageNew {
			t.Fatal("claim m2 refused")
		}
		release()
		if state, _, _, _ := r.Claim(ctx, "o2", "m2", time.Minute); state != storage.MessageNew {
			t.Fatalf("claim after release = %v", state)
		}
	})
}

func TestUserLockSerialises(t *testing.T) {
	storagetest.ForEachRedis(t, func(t *testing.T, r *storage.Redis) {
		ctx := context.Background()
		var inside, maxInside atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				unlock, err := r.LockUser(ctx, "o3", 5*time.Second)
				if err != nil {
					t.Error(err)
					return
				}
				n := inside.Add(1)
				for {
					m := maxInside.Load()
					if n <= m || maxInside.CompareAndSwap(m, n) {
						break
					}
				}
				time.Sleep(10 * time.Millisecond)
				inside.Add(-1)
				unlock()
			}()
		}
		wg.Wait()
		if maxInside.Load() != 1 {
			t.Fatalf("%d holders at once", maxInside.Load())
		}
		// A held lock makes a waiter give up at its deadline.
		unlock, _ := r.LockUser(ctx, "o4", 5*time.Second)
		defer unlock()
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if _, err := r.LockUser(short, "o4", time.Second); !errors.Is(err, storage.ErrLockTimeout) {
			t.Fatalf("waiter on a held lock: %v", err)
		}
	})
}

// The user lock is short, so a dead holder's lock is soon gone, and renewed
// while its holder works, so a long turn keeps it.
func TestUserLockIsRenewedWhileHeld(t *testing.T) {
	storagetest.ForEachRedis(t, func(t *testing.T, r *storage.Redis) {
		ctx := context.Background()
		unlock, err := r.LockUser(ctx, "o5", 900*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		// Three lifetimes later the holder still has it.
		short, cancel := context.WithTimeout(ctx, 2700*time.Millisecond)
		defer cancel()
		if _, err := r.LockUser(short, "o5", 900*time.Millisecond); !errors.Is(err, storage.ErrLockTimeout) {
			t.Fatalf("a held lock was taken over: %v", err)
		}
		unlock()
		next, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		unlock2, err := r.LockUser(next, "o5", 900*time.Millisecond)
		if err != nil {
			t.Fatalf("after unlock: %v", err)
		}
		unlock2()
	})
}

func TestOpenRedisURLForms(t *testing.T) {
	for _, bad := range []string{"", "localhost:6379", "http://x", "redis://"} {
		if _, err := storage.OpenRedis(bad); err == nil {
			t.Errorf("OpenRedis(%q) accepted", bad)
		}
	}
	for _, good := range []string{"redis://127.0.0.1:6379/2", "redis://a:1?addr=b:2",
		"redis://a:26379?master_name=m&addr=b:26379", "rediss://u:p@h:6380"} {
		c, err := storage.OpenRedis(good)
		if err != nil {
			t.Errorf("OpenRedis(%q): %v", good, err)
			continue
		}
		c.Close()
	}
}

// BeginTurn claims a new message, takes the free lock and reads the
// session in one call; a second attempt at the same message finds it in
// progress, then finished with its reply. While another turn of the user
// holds the lock, the claim is made without it. The turn's save releases
// the lock it holds.
func TestBeginTurnClaimsLocksAndReadsTogether(t *testing.T) {
	storagetest.ForEachRedis(t, func(t *testing.T, r *storage.Redis) {
		ctx := context.Background()
		seed, err := r.SaveTurn(ctx, storage.Turn{Session: storage.ChatSession{OpenID: "o_begin", State: []byte(`{"flow":"signing"}`)},
			SessionTTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		start, err := r.BeginTurn(ctx, "o_begin", "m1", time.Minute, time.Minute, storage.Count{})
		if err != nil || start.State != storage.MessageNew || start.Lock == nil || start.Session.Version != seed.Version ||
			string(start.Session.State) != `{"flow":"signing"}` {
			t.Fatalf("first attempt: %+v %v", start, err)
		}
		if again, err := r.BeginTurn(ctx, "o_begin", "m1", time.Minute, time.Minute, storage.Count{}); err != nil || again.State != storage.MessageInProgress || again.Lock != nil {
			t.Fatalf("second attempt while the first works: %+v %v", again, err)
		}
		// Another message of the same user: claimed, but the lock is held.
		other, err := r.BeginTurn(ctx, "o_begin", "m2", time.Minute, time.Minute, storage.Count{})
		if err != nil || other.State != storage.MessageNew || other.Lock != nil {
			t.Fatalf("a message while a turn runs: %+v %v", other, err)
		}
		s := start.Session
		s.State = []byte(`{}`)
		if _, err := r.SaveTurn(ctx, storage.Turn{Session: s, SessionTTL: time.Minute, MessageKey: "m1", Reply: "好的", ReplyTTL: time.Minute,
			Lock: start.Lock}); err != nil {
			t.Fatal(err)
		}
		// The save let the lock go: the waiting turn takes it at once.
		waiting, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		lock, err := r.WaitUserLock(waiting, "o_begin", time.Minute)
		if err != nil {
			t.Fatalf("the lock after the save: %v", err)
		}
		lock.Unlock()
		start.Lock.Unlock()
		if done, err := r.BeginTurn(ctx, "o_begin", "m1", time.Minute, time.Minute, storage.Count{}); err != nil || done.State != storage.MessageDone || done.Reply != "好的" {
			t.Fatalf("a retry after the turn: %+v %v", done, err)
		}
		// Someone new: version 0, no state.
		fresh, err := r.BeginTurn(ctx, "o_new", "m1", time.Minute, time.Minute, storage.Count{})
		if err != nil || fresh.Lock == nil || fresh.Session.Version != 0 || fresh.Session.State != nil {
			t.Fatalf("a new user: %+v %v", fresh, err)
		}
		fresh.Lock.Unlock()
		fresh.Release()
		if again, err := r.BeginTurn(ctx, "o_new", "m1", time.Minute, time.Minute, storage.Count{}); err != nil || again.State != storage.MessageNew || again.Lock == nil {
			t.Fatalf("after a released claim and lock: %+v %v", again, err)
		}
	})
}

// With a Count, BeginTurn counts a new message in the same window as
// CountMessage: a message within the limit is claimed; one over it is
// neither claimed nor locked, and says how many the window holds; a retry
// counts once.
func TestBeginTurnCountsTheSender(t *testing.T) {
	storagetest.ForEachRedis(t, func(t *testing.T, r *storage.Redis) {
		ctx := context.Background()
		limit := storage.Count{Max: 2, Window: time.Minute}
		if n, err := r.CountMessage(ctx, "o_count", "m1", time.Minute); err != nil || n != 1 {
			t.Fatalf("counted by the webhook: %d %v", n, err)
		}
		first, err := r.BeginTurn(ctx, "o_count", "m1", time.Minute, time.Minute, limit)
		if err != nil || first.State != storage.MessageNew || first.Lock == nil {
			t.Fatalf("a message counted before: %+v %v", first, err)
		}
		first.Lock.Unlock()
		second, err := r.BeginTurn(ctx, "o_count", "m2", time.Minute, time.Minute, limit)
		if err != nil || second.State != storage.MessageNew {
			t.Fatalf("the second message: %+v %v", second, err)
		}
		second.Lock.Unlock()
		for range 2 { // the third, and WeChat's retry of it
			over, err := r.BeginTurn(ctx, "o_count", "m3", time.Minute, time.Minute, limit)
			if err != nil || over.State != storage.MessageLimited || over.Count != 3 || over.Lock != nil || over.Release != nil {
				t.Fatalf("the third message: %+v %v", over, err)
			}
		}
		// Not claimed: without a limit it would run.
		if free, err := r.BeginTurn(ctx, "o_count", "m3", time.Minute, time.Minute, storage.Count{}); err != nil || free.State != storage.MessageNew {
			t.Fatalf("the limited message was claimed: %+v %v", free, err)
		}
		if n, err := r.CountMessage(ctx, "o_count", "m4", time.Minute); err != nil || n != 4 {
			t.Fatalf("the window after: %d %v", n, err)
		}
	})
}
