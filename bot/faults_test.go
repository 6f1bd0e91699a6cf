package bot

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage/storagetest"
	"github.com/jiayi-health/jiayi/templates"
	"github.com/redis/go-redis/v9"
)

// failSessionSaves makes Redis refuse the script that saves a conversation
// while armed: the step's effects have committed, the session write fails.
type failSessionSaves struct{ armed atomic.Bool }

func (f *failSessionSaves) DialHook(next redis.DialHook) redis.DialHook { return next }
func (f *failSessionSaves) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (f *failSessionSaves) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		if f.armed.Load() && (cmd.Name() == "evalsha" || cmd.Name() == "eval") && len(args) > 3 &&
			strings.HasSuffix(fmt.Sprint(args[3]), ":session") {
			err := errors.New("connection reset by peer (test)")
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

// A contract committed in the database is announced as made, even when
// Redis fails to keep the conversation afterwards; answering again finds the
// same contract instead of making a second.
func TestCommittedStepIsAnsweredWhenRedisFailsAfterIt(t *testing.T) {
	srv, _ := newServer(t, nil, Options{})
	hook := &failSessionSaves{}
	srv.Redis.Client.AddHook(hook)
	resident := "o_redis_fails_after"
	for _, s := range []string{"签约", "1", "王秀英", "同意", residentID, residentPhone, "1", "1", "1", "0"} {
		chat(t, srv, resident, s)
	}
	hook.armed.Store(true)
	reply := chat(t, srv, resident, "同意")
	hook.armed.Store(false)
	number := regexp.MustCompile(`QY\d{10}`).FindString(reply)
	if number == "" || !strings.Contains(reply, "待医生确认") {
		t.Fatalf("the contract committed, but the resident was told:\n%s", reply)
	}
	again := chat(t, srv, resident, "同意")
	contracts, err := srv.DB.ContractsManagedBy(context.Background(), resident)
	if err != nil || len(contracts) != 1 || !strings.Contains(again, number) {
		t.Fatalf("%d contracts (%v); answering again said:\n%s", len(contracts), err, again)
	}
}

// A frozen Redis (SIGSTOP) costs a resident a quick busy reply, within the
// 5 s WeChat waits (after which it drops the reply), and /readyz says why.
func TestFrozenRedisAnswersBusyWithinWeChatsDeadline(t *testing.T) {
	for _, real := range []bool{false, true} {
		t.Run(map[bool]string{false: "embedded", true: "redis"}[real], func(t *testing.T) {
			r, proxy, redisURL := storagetest.RedisBehindProxy(t, real)
			srv, _ := newServer(t, map[string]string{"JIAYI_REDIS_URL": redisURL}, Options{RedisPrefix: r.Prefix})
			if reply := chat(t, srv, "o_frozen", "帮助"); !strings.Contains(reply, "签约") {
				t.Fatalf("before the freeze: %s", reply)
			}
			busy, err := templates.Message("busy", nil)
			if err != nil {
				t.Fatal(err)
			}
			proxy.Freeze()
			defer proxy.Resume()
			start := time.Now()
			reply := chat(t, srv, "o_frozen", "帮助")
			took := time.Since(start)
			t.Logf("answered in %v with Redis frozen", took.Round(time.Millisecond))
			if !strings.Contains(reply, busy) {
				t.Fatalf("with Redis frozen the resident got %q", reply)
			}
			// WeChat's protocol limit, not a speed target: a later reply is dropped.
			if took >= 5*time.Second {
				t.Fatalf("answered after %v; WeChat gives up at 5 s", took)
			}
			start = time.Now()
			if rec := get(t, srv.Handler(), "/readyz", local); rec.Code != 503 || !strings.Contains(rec.Body.String(), `"redis":"unreachable"`) {
				t.Fatalf("readyz: %d %s", rec.Code, rec.Body)
			}
			if took := time.Since(start); took >= 5*time.Second {
				t.Fatalf("readyz took %v", took)
			}
		})
	}
}
