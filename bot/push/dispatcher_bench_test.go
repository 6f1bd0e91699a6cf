package push

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/bot/wechat"
	"github.com/jiayi-health/jiayi/bot/wechat/sandbox"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// BenchmarkDispatcher measures how many pushes a second one dispatcher
// sends to the WeChat stand-in, each recorded as sent at once, with
// WeChat's rate limits lifted (as JIAYI_WECHAT_RATES would): on SQLite and,
// with JIAYI_TEST_DATABASE_URL, PostgreSQL, a real Redis with
// JIAYI_TEST_REDIS_URL for the access token. Each iteration sends 2,000
// template messages to distinct residents; JIAYI_BENCH_WORKERS sets how
// many recipients it sends to at once (default DefaultWorkers), and
// JIAYI_BENCH_LATENCY (say 50ms) how long each call to the stand-in takes,
// as WeChat's own do (run with -run '^$': the SDK's transport is set once).
func BenchmarkDispatcher(b *testing.B) {
	const pushes = 2000
	workers := DefaultWorkers
	if raw := os.Getenv("JIAYI_BENCH_WORKERS"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 {
			b.Fatalf("JIAYI_BENCH_WORKERS=%q: want a whole number of workers, 1 or more", raw)
		}
		workers = n
	}
	if raw := os.Getenv("JIAYI_BENCH_LATENCY"); raw != "" {
		latency, err := time.ParseDuration(raw)
		if err != nil {
			b.Fatal(err)
		}
		wechat.UseTransport(slowTransport{sandbox.Transport{}, latency})
	}
	stacks := map[string]func(b *testing.B) storagetest.Stack{"sqlite": func(b *testing.B) storagetest.Stack {
		return storagetest.Stack{DB: storagetest.SQLite(b), Redis: storagetest.Embedded(b)}
	}}
	if pg := os.Getenv("JIAYI_TEST_DATABASE_URL"); pg != "" {
		stacks["postgres"] = func(b *testing.B) storagetest.Stack {
			return storagetest.Stack{DB: storagetest.Postgres(b, pg), Redis: storagetest.Embedded(b)}
		}
	}
	for name, open := range stacks {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			var sent int
			var spent time.Duration
			for b.Loop() {
				b.StopTimer()
				s := open(b)
				d, standIn := dispatcher(b, s.DB, s.Redis)
				d.Rates = map[string]float64{apiTemplate: 100000, apiCustomer: 100000, apiMass: 100000}
				d.Workers = workers
				batch := make([]storage.Push, pushes)
				for i := range batch {
					batch[i] = storage.Push{Key: fmt.Sprintf("b:%d", i), Kind: "sign_request", Recipient: fmt.Sprintf("o_%d", i),
						Fields: map[string]string{"number": "QY2611230001"}}
				}
				if err := s.DB.Enqueue(ctx, batch); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				for d.DispatchOnce(ctx) > 0 {
				}
				spent += time.Since(start)
				b.StopTimer()
				for _, m := range standIn.Outbox("") {
					if m.Kind == "template" {
						sent++
					}
				}
				b.StartTimer()
			}
			if sent != pushes*b.N {
				b.Fatalf("sent %d of %d", sent, pushes*b.N)
			}
			b.ReportMetric(float64(sent)/spent.Seconds(), "pushes/s")
			b.ReportMetric(float64(workers), "workers")
		})
	}
}

// slowTransport answers each call after latency, as WeChat's API does.
type slowTransport struct {
	http.RoundTripper
	latency time.Duration
}

func (t slowTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	time.Sleep(t.latency)
	return t.RoundTripper.RoundTrip(r)
}
