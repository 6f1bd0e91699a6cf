package flows

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// BenchmarkDailyJobsPerResident measures what the daily background jobs
// cost a resident, at each size in JIAYI_BENCH_SIZES (default 2000,20000
// residents, seeded as jiayi demo seed does), on SQLite and, with
// JIAYI_TEST_DATABASE_URL, PostgreSQL: personal reminders and the seasonal
// calendar on 8 December (大雪's window), the digest on the 16th, contract
// expiry. Each reports µs a resident; linear jobs cost the same at every
// size. Run it with -benchtime 1x: each iteration seeds anew.
func BenchmarkDailyJobsPerResident(b *testing.B) {
	sizes := []int{2000, 20000}
	if raw := os.Getenv("JIAYI_BENCH_SIZES"); raw != "" {
		sizes = nil
		for _, f := range strings.Split(raw, ",") {
			var n int
			fmt.Sscan(f, &n)
			sizes = append(sizes, n)
		}
	}
	dbs := map[string]func(b *testing.B) *storage.DB{"sqlite": func(b *testing.B) *storage.DB { return storagetest.SQLite(b) }}
	if pg := os.Getenv("JIAYI_TEST_DATABASE_URL"); pg != "" {
		dbs["postgres"] = func(b *testing.B) *storage.DB { return storagetest.Postgres(b, pg) }
	}
	seededAt := time.Date(2026, 12, 1, 12, 0, 0, 0, Shanghai)
	snow, digest := time.Date(2026, 12, 8, 9, 5, 0, 0, Shanghai), time.Date(2026, 12, 16, 10, 5, 0, 0, Shanghai)
	for name, open := range dbs {
		for _, n := range sizes {
			b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
				ctx := context.Background()
				spent := map[string]time.Duration{}
				for b.Loop() {
					b.StopTimer()
					db := open(b)
					if err := profile.Ensure(ctx, db, "kunming"); err != nil {
						b.Fatal(err)
					}
					sealer, _ := storage.NewSealer(make([]byte, 32))
					if _, err := SeedDemo(ctx, db, sealer, n, seededAt); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					for _, job := range []struct {
						name string
						run  func() (int, error)
					}{
						{"expiry", func() (int, error) { return db.ExpireContracts(ctx, snow.Format(time.DateOnly)) }},
						{"personal", func() (int, error) { return RunPersonal(ctx, db, sealer, snow) }},
						{"seasonal", func() (int, error) { return RunSeasonal(ctx, db, sealer, snow) }},
						{"digest", func() (int, error) { r, err := RunDigest(ctx, db, digest); return r.Tips, err }},
					} {
						start := time.Now()
						if _, err := job.run(); err != nil {
							b.Fatal(job.name, err)
						}
						spent[job.name] += time.Since(start)
					}
				}
				for job, d := range spent {
					b.ReportMetric(float64(d.Microseconds())/float64(b.N)/float64(n), job+"-µs/resident")
				}
			})
		}
	}
}
