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
	// help is one reply; midflow goes round a signing's first steps (签约,
	// for whom, then 取消): replies mid-conversation, none of which writes
	// more than the turn's state.
	scripts := map[string][]string{"help": {"帮助"}, "midflow": {"签约", "1", "取消"}}
	for name, stack := range stacks {
		for _, m := range []mode{plain, safe} {
			for script, words := range scripts {
				b.Run(name+"/"+string(m)+"/"+script, func(b *testing.B) {
					h := newHarness(b, stack(b), "bench")
					b.ReportAllocs()
					b.ResetTimer()
					for i := range b.N {
						if rec := h.post(text("o_bench", words[i%len(words)], int64(i+1)), m); rec.Code != 200 {
							b.Fatal(rec.Code)
						}
					}
				})
			}
		}
	}
}
