package turn_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/bot/turn"
	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
	"github.com/jiayi-health/jiayi/templates"
)

// A panic anywhere in a turn ends that turn only: the resident gets the busy
// reply, the panic is logged and counted, the claim is dropped so WeChat's
// retry runs the message again, and every later message is still served.
func TestAPanicInATurnEndsThatTurnOnly(t *testing.T) {
	var logs bytes.Buffer
	var panics atomic.Int32
	// An engine without a database panics on its first query: a real panic
	// from a real code path, standing for a bug in any flow.
	r := &turn.Runner{Stores: turn.Stores{Redis: storagetest.Embedded(t)}, Engine: &flows.Engine{},
		Log: slog.New(slog.NewJSONHandler(&logs, nil)), Panicked: func() { panics.Add(1) }}
	busy, err := templates.Message("busy", nil)
	if err != nil {
		t.Fatal(err)
	}
	send := func(key string) (string, turn.Disposition) {
		return r.Handle(context.Background(), turn.Message{DedupeKey: key,
			In: flows.Inbound{OpenID: "o_panic", Kind: flows.Text, Text: "签约 王秀英 13812345678", At: time.Now()}})
	}
	for i, key := range []string{"m1", "m1", "m2"} { // m1 again: WeChat's retry runs it again
		reply, how := send(key)
		if reply != busy || how != turn.Failed {
			t.Fatalf("message %d: %q %s, want the busy reply", i, reply, how)
		}
		if got := panics.Load(); got != int32(i+1) {
			t.Fatalf("message %d: %d panics counted, want %d", i, got, i+1)
		}
	}
	r.Wait()
	if !strings.Contains(logs.String(), `"msg":"turn panicked"`) || !strings.Contains(logs.String(), "nil pointer dereference") {
		t.Fatalf("the panic is not logged with its cause:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "13812345678") || strings.Contains(logs.String(), "王秀英") {
		t.Fatal("the log holds what the resident wrote")
	}
}

// A panic while sending a reply that missed the deadline ends there too.
func TestAPanicDeliveringALateReplyIsRecovered(t *testing.T) {
	var panics atomic.Int32
	r := &turn.Runner{Stores: turn.Stores{DB: storagetest.SQLite(t), Redis: storagetest.Embedded(t)},
		Engine: &flows.Engine{DB: storagetest.SQLite(t), Sealer: sealer(t)}, Log: slog.New(slog.DiscardHandler),
		Deadline: time.Nanosecond, Panicked: func() { panics.Add(1) },
		Deliver: func(context.Context, string, string) error { panic("the sender broke") }}
	_, how := r.Handle(context.Background(), turn.Message{DedupeKey: "m1",
		In: flows.Inbound{OpenID: "o_late", Kind: flows.Text, Text: "帮助", At: time.Now()}})
	r.Wait()
	if how != turn.Late || panics.Load() != 1 {
		t.Fatalf("answered %s with %d panics counted, want late and 1", how, panics.Load())
	}
}

func sealer(t *testing.T) *storage.Sealer {
	t.Helper()
	s, err := storage.NewSealer(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The finished reply a retry gets waits in Redis sealed, and the retry gets
// it in words.
func TestTheReplyKeptForRetriesIsSealed(t *testing.T) {
	redis := storagetest.Embedded(t)
	r := &turn.Runner{Stores: turn.Stores{DB: storagetest.SQLite(t), Redis: redis},
		Engine: &flows.Engine{DB: storagetest.SQLite(t), Sealer: sealer(t)}, Log: slog.New(slog.DiscardHandler)}
	m := turn.Message{DedupeKey: "m1", In: flows.Inbound{OpenID: "o_seal", Kind: flows.Text, Text: "帮助", At: time.Now()}}
	first, how := r.Handle(context.Background(), m)
	help, _ := templates.Message("help", nil)
	if first != help || how != turn.Replied {
		t.Fatalf("first: %q %s", first, how)
	}
	keys, err := redis.Client.Keys(context.Background(), "*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys %v %v", keys, err)
	}
	for _, k := range keys {
		if v, err := redis.Client.Get(context.Background(), k).Result(); err == nil && strings.Contains(v, "签约") {
			t.Fatalf("%s holds the reply in clear: %q", k, v)
		}
	}
	again, how := r.Handle(context.Background(), m)
	r.Wait()
	if again != help || how != turn.Duplicate {
		t.Fatalf("retry: %q %s", again, how)
	}
}

// An instance killed in the middle of a turn leaves its claim on the
// message and the user's lock behind, and renews neither. Both lapse before
// WeChat retries, 5 s after its first try, so the retry is answered in time
// rather than waiting for the dead instance.
func TestAKilledHoldersLockLapsesBeforeWeChatsRetry(t *testing.T) {
	rawURL := os.Getenv("JIAYI_TEST_REDIS_URL")
	if rawURL == "" {
		if storagetest.InCI() {
			t.Fatal("CI=true but JIAYI_TEST_REDIS_URL is not set")
		}
		t.Skip("needs a Redis server (JIAYI_TEST_REDIS_URL)")
	}
	live := storagetest.RealRedis(t, rawURL)
	u, _ := url.Parse(rawURL)
	proxy := storagetest.NewProxy(t, u.Host)
	u.Host = proxy.Addr()
	c, err := storage.OpenRedis(u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dead := storage.NewRedis(c, live.Prefix) // the instance about to be killed
	ctx := context.Background()
	msg := turn.Message{DedupeKey: "m1", In: flows.Inbound{OpenID: "o_killed", Kind: flows.Text, Text: "帮助", At: time.Now()}}
	if state, _, _, err := dead.Claim(ctx, "o_killed", "m1", 3*time.Second); err != nil || state != storage.MessageNew {
		t.Fatalf("claim: %v %v", state, err)
	}
	if _, err := dead.LockUser(ctx, "o_killed", turn.DefaultLockTTL); err != nil {
		t.Fatal(err)
	}
	proxy.Cut() // kill -9: its connections drop, nothing is renewed or released
	time.Sleep(5 * time.Second)

	db := storagetest.SQLite(t)
	r := &turn.Runner{Stores: turn.Stores{DB: db, Redis: live}, Engine: &flows.Engine{DB: db, Sealer: sealer(t)},
		Log: slog.New(slog.DiscardHandler)}
	reply, how := r.Handle(ctx, msg)
	r.Wait()
	if how != turn.Replied || !strings.Contains(reply, "签约") {
		t.Fatalf("WeChat's retry was answered %s: %q", how, reply)
	}
}

// The reply deadline counts from when the request came, not from when its
// turn began: a message that waited for room out of its time is answered
// "success" at once, and its reply goes as a customer-service message.
func TestTheDeadlineCountsFromTheRequestsArrival(t *testing.T) {
	var delivered []string
	var mu sync.Mutex
	r := &turn.Runner{Stores: turn.Stores{DB: storagetest.SQLite(t), Redis: storagetest.Embedded(t)},
		Engine: &flows.Engine{DB: storagetest.SQLite(t), Sealer: sealer(t)}, Log: slog.New(slog.DiscardHandler),
		Deadline: time.Second, Deliver: func(_ context.Context, openID, text string) error {
			mu.Lock()
			defer mu.Unlock()
			delivered = append(delivered, text)
			return nil
		}}
	m := turn.Message{DedupeKey: "m1", In: flows.Inbound{OpenID: "o_waited", Kind: flows.Text, Text: "帮助", At: time.Now()},
		Arrived: time.Now().Add(-time.Second)}
	began := time.Now()
	reply, how := r.Handle(context.Background(), m)
	if reply != "" || how != turn.Late || time.Since(began) > 500*time.Millisecond {
		t.Fatalf("a message past its time: %q %s after %v", reply, how, time.Since(began))
	}
	r.Wait()
	help, _ := templates.Message("help", nil)
	if len(delivered) != 1 || delivered[0] != help {
		t.Fatalf("delivered %q", delivered)
	}
}
