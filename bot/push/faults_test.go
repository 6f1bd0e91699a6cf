package push

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/bot/wechat/sandbox"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// A Redis outage is not the push's fault: the access token is kept in
// memory, so pushes go on, and none uses up an attempt or dies for it.
func TestRedisOutageCostsPushesNothing(t *testing.T) {
	for _, real := range []bool{false, true} {
		t.Run(map[bool]string{false: "embedded", true: "redis"}[real], func(t *testing.T) {
			ctx := context.Background()
			db := storagetest.SQLite(t)
			r, proxy, _ := storagetest.RedisBehindProxy(t, real)
			d, standIn := dispatcher(t, db, r)
			d.MaxAttempts = 2
			clock := time.Now().Add(time.Second)
			d.Now = func() time.Time { return clock }

			// No token yet and Redis away: the token fetched is used all the same.
			proxy.Cut()
			enqueue(t, db, "cold", "sign_request", "o_cold")
			for range 3 {
				d.DispatchOnce(ctx)
				clock = clock.Add(2 * time.Hour)
			}
			// The token in memory serves the next push, Redis still away.
			enqueue(t, db, "warm", "sign_request", "o_warm")
			d.DispatchOnce(ctx)
			proxy.Resume()
			enqueue(t, db, "back", "sign_request", "o_back")
			d.DispatchOnce(ctx)
			for _, to := range []string{"o_cold", "o_warm", "o_back"} {
				if e := state(t, db, to); e.State != "sent" || e.Attempts != 1 {
					t.Errorf("%s: %+v", to, e)
				}
				if n := len(standIn.Outbox(to)); n != 1 {
					t.Errorf("%s received %d pushes", to, n)
				}
			}
		})
	}
}

// cutAfter sends as WeChat would and takes the database away right after the
// nth send, for outage long: the send happened, its record cannot be written.
type cutAfter struct {
	Sender
	n      int
	sends  atomic.Int32
	outage func()
}

func (c *cutAfter) SendTemplate(ctx context.Context, openID, templateID string, fields map[string]string) error {
	err := c.Sender.SendTemplate(ctx, openID, templateID, fields)
	if int(c.sends.Add(1)) == c.n {
		c.outage()
	}
	return err
}

// A PostgreSQL stop in the middle of a batch, longer than a claim's lease,
// sends no push twice from one dispatcher: each send is recorded at once,
// retried, kept until the database is back, and nothing more is claimed
// meanwhile. With two dispatchers on the database, at most the pushes each
// had in flight (one a worker) can go twice.
func TestDatabaseOutageSendsEachPushOnce(t *testing.T) {
	for _, instances := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d dispatchers", instances), func(t *testing.T) {
			db, proxy, _ := storagetest.PostgresBehindProxy(t)
			r := storagetest.Embedded(t)
			const pushes, workers = 30, 4
			for i := range pushes {
				enqueue(t, db, fmt.Sprintf("k%d", i), "sign_request", fmt.Sprintf("o_%d", i))
			}
			var once sync.Once
			outage := func() {
				once.Do(func() {
					proxy.Cut()
					time.AfterFunc(2*time.Second, proxy.Resume)
				})
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var standIns []*sandbox.StandIn
			var running sync.WaitGroup
			for range instances {
				d, standIn := dispatcher(t, db, r)
				standIns = append(standIns, standIn)
				d.Send = &cutAfter{Sender: d.Send, n: 5, outage: outage}
				// A lease far longer than a batch takes (sends paced at 1,000 a
				// second), and shorter than the outage.
				d.Lease, d.Interval = 1500*time.Millisecond, 20*time.Millisecond
				d.Rates = map[string]float64{apiTemplate: 1000}
				d.Workers = workers
				running.Add(1)
				go func() { defer running.Done(); d.Run(ctx) }()
			}
			raw := storagetest.SQL(t, db) // straight to the server, not through the proxy
			deadline := time.Now().Add(60 * time.Second)
			for {
				var sent int
				if err := raw.Get(&sent, `SELECT COUNT(*) FROM outbox WHERE state = 'sent'`); err != nil {
					t.Fatal(err)
				}
				if sent == pushes {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("only %d of %d sent", sent, pushes)
				}
				time.Sleep(50 * time.Millisecond)
			}
			cancel()
			running.Wait()
			doubled := 0
			for i := range pushes {
				got := 0
				for _, s := range standIns {
					got += len(s.Outbox(fmt.Sprintf("o_%d", i)))
				}
				if got == 0 {
					t.Errorf("o_%d got nothing", i)
				}
				doubled += max(got-1, 0)
			}
			t.Logf("%d dispatchers, a 2 s PostgreSQL stop after the 5th send: %d of %d pushes doubled", instances, doubled, pushes)
			// Alone, a dispatcher records what it had in flight before it
			// claims again; beside another, those pushes may be claimed by
			// the other first.
			allowed := 0
			if instances > 1 {
				allowed = instances * workers
			}
			if doubled > allowed {
				t.Errorf("%d pushes went twice; at most %d may", doubled, allowed)
			}
			// The pushes claimed but not tried when the database went were
			// handed back with their attempt: each push used one.
			var most int
			if err := raw.Get(&most, `SELECT MAX(attempts) FROM outbox`); err != nil || (instances == 1 && most != 1) {
				t.Errorf("a push used %d attempts (%v)", most, err)
			}
		})
	}
}

// A push that fails because the database could not be asked about its
// recipient is not at fault: the attempt its claim counted is given back.
func TestADatabaseLookupFailureCostsNoAttempt(t *testing.T) {
	ctx := context.Background()
	db, proxy, _ := storagetest.PostgresBehindProxy(t)
	d, _ := dispatcher(t, db, storagetest.Embedded(t))
	// The dispatcher's clock stands still: reconnecting after Resume may
	// take longer than the deferral's backoff, which must not make the row
	// due again within the test.
	still := time.Now().Add(time.Minute) // after the push falls due
	d.Now = func() time.Time { return still }
	// A kind without a template goes as a customer-service message, which
	// asks the database when the recipient last wrote.
	enqueue(t, db, "lookup", "note", "o_lookup")
	d.init()
	// The bucket's own clock, so no token refills between here and the
	// send: the send always waits, and the database goes while it does.
	limiter := d.limiters[apiCustomer]
	at := time.Now()
	limiter.now = func() time.Time { return at }
	limiter.last, limiter.tokens = at, 0
	var cut sync.Once
	limiter.sleep = func(ctx context.Context, wait time.Duration) error {
		cut.Do(proxy.Cut) // the database goes between the claim and the lookup
		at = at.Add(wait)
		return nil
	}
	if n := d.DispatchOnce(ctx); n != 1 {
		t.Fatalf("claimed %d", n)
	}
	proxy.Resume()
	if d.Unrecorded() != 1 {
		t.Fatalf("%d outcomes waiting for the database, want 1", d.Unrecorded())
	}
	d.DispatchOnce(ctx) // records what waited, before claiming anything
	if e := state(t, db, "o_lookup"); e.State != "pending" || e.Attempts != 0 || !strings.Contains(e.LastError, "infrastructure") {
		t.Fatalf("after the lookup failed: %+v", e)
	}
}

// A frozen PostgreSQL (stopped with SIGSTOP: connections open, nothing
// answers) cannot hold a dispatcher's shutdown: each record it tries to
// write gives up after a bound, and what is left is logged as at risk.
func TestFrozenDatabaseDoesNotHoldShutdown(t *testing.T) {
	db, proxy, _ := storagetest.PostgresBehindProxy(t)
	d, _ := dispatcher(t, db, storagetest.Embedded(t))
	for i := range 3 {
		enqueue(t, db, fmt.Sprintf("frozen%d", i), "sign_request", fmt.Sprintf("o_frozen%d", i))
	}
	d.Send = &cutAfter{Sender: d.Send, n: 1, outage: proxy.Freeze}
	defer proxy.Resume()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	for deadline := time.Now().Add(10 * time.Second); d.Send.(*cutAfter).sends.Load() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("nothing was sent")
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second): // a hang, not a speed: the bounds add up to about 15 s
		t.Fatal("the dispatcher did not stop with the database frozen")
	}
}
