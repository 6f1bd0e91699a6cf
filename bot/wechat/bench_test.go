package wechat

import (
	"os"
	"testing"

	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// BenchmarkReceive measures one new text message through the whole webhook:
// signature, parse, claim, lock, session, SQL write, session save, reply.
// Run on the embedded stack always, on PostgreSQL and Redis when the test
// services are configured.
func BenchmarkReceive(b *testing.B) {
	stacks := map[string]func(t testing.TB) storagetest.Stack{
		"embedded": func(t testing.TB) storagetest.Stack {
			return storagetest.Stack{DB: storagetest.SQLite(t), Redis: storagetest.Embedded(t)}
		},
	}
	if pg, rd := os.Getenv("JIAYI_TEST_DATABASE_URL"), os.Getenv("JIAYI_TEST_REDIS_URL"); pg != "" && rd != "" {
		stacks["services"] = func(t testing.TB) storagetest.Stack {
			return storagetest.Stack{DB: storagetest.Postgres(t, pg), Redis: storagetest.RealRedis(t, rd)}
		}
	}
	for name, stack := range stacks {
		for _, m := range []mode{plain, safe} {
			b.Run(name+"/"+string(m), func(b *testing.B) {
				h := newHarness(b, stack(b), "bench")
				b.ResetTimer()
				for i := range b.N {
					if rec := h.post(text("o_bench", "帮助", int64(i+1)), m); rec.Code != 200 {
						b.Fatal(rec.Code)
					}
				}
			})
		}
	}
}
