package bot

import (
	"fmt"
	"os"
	"regexp"
	"testing"

	"github.com/jiayi-health/jiayi/bot/load"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// BenchmarkSigningAgree measures the committing 同意 of a signing through
// the whole server, each iteration a new resident brought to it untimed:
// on SQLite, and on PostgreSQL when JIAYI_TEST_DATABASE_URL is set (the
// chat sessions in the embedded store: the step's cost is its commit).
func BenchmarkSigningAgree(b *testing.B) {
	stacks := map[string]func() map[string]string{"sqlite": func() map[string]string { return map[string]string{} }}
	if pg := os.Getenv("JIAYI_TEST_DATABASE_URL"); pg != "" {
		stacks["postgres"] = func() map[string]string {
			_, u := storagetest.PostgresWithURL(b, pg)
			return map[string]string{"JIAYI_DATABASE_URL": u}
		}
	}
	number := regexp.MustCompile(`QY\d{10}`)
	for name, env := range stacks {
		b.Run(name, func(b *testing.B) {
			srv, _ := newServer(b, env(), Options{})
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				b.StopTimer()
				openID := fmt.Sprintf("o_bench_agree_%d", i)
				for _, s := range load.Signing(i)(i)[1:11] { // 签约 … 服务包: the steps before 同意
					chat(b, srv, openID, s.Action.Text)
				}
				b.StartTimer()
				if reply := chat(b, srv, openID, "同意"); !number.MatchString(reply) {
					b.Fatalf("同意 answered %q", reply)
				}
				i++
			}
		})
	}
}
