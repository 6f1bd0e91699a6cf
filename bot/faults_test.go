package bot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
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
// Redis fails to keep the conversation afterwards; the conversation is not
// taken up again at the answered question, and no second contract is made.
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
	// The state from before the step was dropped: 同意 again makes nothing,
	// and 我的签约 shows the contract that committed.
	chat(t, srv, resident, "同意")
	mine := chat(t, srv, resident, "我的签约")
	contracts, err := srv.DB.ContractsManagedBy(context.Background(), resident)
	if err != nil || len(contracts) != 1 || !strings.Contains(mine, number) {
		t.Fatalf("%d contracts (%v); 我的签约 said:\n%s", len(contracts), err, mine)
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

// On embedded defaults a conversation outlives a restart of the server.
func TestConversationOutlivesARestartOnEmbeddedDefaults(t *testing.T) {
	env := map[string]string{"JIAYI_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "jiayi.db")}
	first, _ := newServer(t, env, Options{})
	for _, s := range []string{"签约", "1"} {
		chat(t, first, "o_restart", s)
	}
	first.Close()
	second, _ := newServer(t, env, Options{})
	if reply := chat(t, second, "o_restart", "王秀英"); !strings.Contains(reply, "单独同意") {
		t.Fatalf("after a restart the signing did not go on:\n%s", reply)
	}
}

// When Redis comes back empty, the next message says the conversation was
// lost and how to start it again, instead of not understanding the answer;
// a message that asks for something is answered as well.
func TestALostConversationIsNamed(t *testing.T) {
	ctx := context.Background()
	srv, _ := newServer(t, nil, Options{})
	for _, s := range []string{"签约", "1"} {
		chat(t, srv, "o_lost", s)
	}
	chat(t, srv, "o_lost_too", "签约")
	srv.Redis.Client.FlushDB(ctx) // Redis restarted without its data
	reply := chat(t, srv, "o_lost", "王秀英")
	if !strings.Contains(reply, "没能保存下来") || !strings.Contains(reply, "回复“签约”重新开始") || strings.Contains(reply, "没看懂") {
		t.Fatalf("after the loss, an answer got:\n%s", reply)
	}
	if reply := chat(t, srv, "o_lost", "帮助"); strings.Contains(reply, "没能保存下来") {
		t.Fatalf("the loss is told twice:\n%s", reply)
	}
	reply = chat(t, srv, "o_lost_too", "服务包")
	if !strings.Contains(reply, "没能保存下来") || !strings.Contains(reply, "服务包") {
		t.Fatalf("after the loss, a request got:\n%q", reply)
	}
	// Someone whose conversation had ended is told nothing of a loss.
	if reply := chat(t, srv, "o_never", "帮助"); strings.Contains(reply, "没能保存下来") {
		t.Fatalf("a new user is told of a loss:\n%s", reply)
	}
}

// A flood from one WeChat user is counted in Redis, across instances: past
// the limit the sender is told once to slow down and the rest are not run,
// while everyone else is answered as usual.
func TestAFloodFromOneSenderIsLimited(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, stack storagetest.Stack) {
		env := map[string]string{"JIAYI_DATABASE_URL": stack.DatabaseURL, "JIAYI_REDIS_URL": stack.RedisURL,
			"JIAYI_MAX_MESSAGES_PER_MINUTE": "5"}
		a, _ := newServer(t, env, Options{RedisPrefix: stack.Redis.Prefix})
		b := a
		if stack.Name == "services" { // PostgreSQL takes a second instance; SQLite refuses it
			b, _ = newServer(t, env, Options{RedisPrefix: stack.Redis.Prefix})
		}
		slow, err := templates.Message("slow_down", nil)
		if err != nil {
			t.Fatal(err)
		}
		var answered, told, silent int
		for i := range 12 {
			srv := []*Server{a, b}[i%2]
			switch reply := chat(t, srv, "o_flood", "帮助"); {
			case strings.Contains(reply, slow):
				told++
			case reply == "success":
				silent++
			case strings.Contains(reply, "签约"):
				answered++
			default:
				t.Fatalf("message %d: %s", i, reply)
			}
			if reply := chat(t, srv, "o_calm_"+fmt.Sprint(i), "帮助"); !strings.Contains(reply, "签约") {
				t.Fatalf("another resident during the flood got: %s", reply)
			}
		}
		if answered != 5 || told != 1 || silent != 6 {
			t.Fatalf("answered %d, told to slow down %d, not run %d; want 5, 1, 6", answered, told, silent)
		}
	})
}

// One address cannot hold more connections than the cap; a freed place can
// be taken again.
func TestConnectionsPerAddressAreCapped(t *testing.T) {
	_, base := live(t, map[string]string{"JIAYI_MAX_CONNS_PER_IP": "2"}, Options{})
	addr := strings.TrimPrefix(base, "http://")
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	refused := func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return true
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprint(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		b, _ := io.ReadAll(c)
		return !strings.Contains(string(b), "200 OK")
	}
	if !refused() {
		t.Fatal("a third connection from the address was served")
	}
	held[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for refused() {
		if time.Now().After(deadline) {
			t.Fatal("a freed place was not given back")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
