package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// fakeWeChat records every template message it is asked to send, slowly
// enough that a dispatcher can be killed in the middle.
type fakeWeChat struct {
	mu   sync.Mutex
	sent map[string]int
}

func (f *fakeWeChat) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/cgi-bin/stable_token", "/cgi-bin/token":
		fmt.Fprint(w, `{"access_token":"crash-test-token","expires_in":7200}`)
	case "/cgi-bin/message/template/send":
		var msg struct {
			ToUser string `json:"touser"`
		}
		body, _ := io.ReadAll(r.Body)
		json.Unmarshal(body, &msg)
		time.Sleep(5 * time.Millisecond)
		f.mu.Lock()
		f.sent[msg.ToUser]++
		f.mu.Unlock()
		fmt.Fprint(w, `{"errcode":0,"errmsg":"ok","msgid":1}`)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeWeChat) counts() (recipients, total int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.sent {
		total += n
	}
	return len(f.sent), total
}

// Kill -9 an instance in the middle of sending 300 pushes; a second instance
// finishes. Nothing may be lost; the one push the dead one had in flight
// may go twice, and the test reports how many did.
func TestKillNineMidDispatchLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	pg := os.Getenv("JIAYI_TEST_DATABASE_URL")
	if pg == "" {
		if storagetest.InCI() {
			t.Fatal("CI=true but JIAYI_TEST_DATABASE_URL is not set")
		}
		t.Skip("needs PostgreSQL (JIAYI_TEST_DATABASE_URL)")
	}
	db, dbURL := storagetest.PostgresWithURL(t, pg)
	ctx := context.Background()
	const n = 300
	var pushes []storage.Push
	for i := range n {
		pushes = append(pushes, storage.Push{Key: fmt.Sprintf("crash:%d", i), Kind: "sign_request", Recipient: fmt.Sprintf("o_%03d", i)})
	}
	if err := db.Enqueue(ctx, pushes); err != nil {
		t.Fatal(err)
	}
	wechat := &fakeWeChat{sent: map[string]int{}}
	api := httptest.NewServer(wechat)
	defer api.Close()
	redis, err := storage.StartEmbeddedRedis()
	if err != nil {
		t.Fatal(err)
	}
	defer redis.Close()

	dir := t.TempDir()
	bin := filepath.Join(dir, "jiayi")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "serve")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "JIAYI_ADDR=127.0.0.1:0", "JIAYI_DATABASE_URL="+dbURL, "JIAYI_REDIS_URL="+redis.URL(),
			"JIAYI_WECHAT_SECRET=crash-test-secret", "JIAYI_WECHAT_APPID=wx0123456789abcdef", "JIAYI_WECHAT_TOKEN=crashtest",
			"JIAYI_PII_KEY="+strings.Repeat("ab", 32), "JIAYI_WECHAT_TEMPLATES=sign_request=tpl_sign",
			"JIAYI_WECHAT_API="+api.URL, "JIAYI_OUTBOX_LEASE=2s")
		cmd.Stderr = io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	first := start()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, total := wechat.counts(); total >= n/3 {
			break
		}
		if time.Now().After(deadline) {
			first.Process.Kill()
			t.Fatal("the first instance sent nothing")
		}
	}
	first.Process.Signal(syscall.SIGKILL)
	first.Wait()
	_, atKill := wechat.counts()

	second := start()
	defer func() { second.Process.Signal(syscall.SIGTERM); second.Wait() }()
	raw := storagetest.SQL(t, db)
	var pending int
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		raw.GetContext(ctx, &pending, `SELECT COUNT(*) FROM outbox WHERE state <> 'sent'`)
		if pending == 0 {
			break
		}
	}
	recipients, total := wechat.counts()
	lost, doubled := n-recipients, total-recipients
	t.Logf("killed after %d sends; %d pushes: %d lost, %d sent twice", atKill, n, lost, doubled)
	if pending != 0 || lost != 0 {
		t.Fatalf("%d still pending, %d never sent", pending, lost)
	}
	// Each send is recorded as it happens: only the one the dead instance
	// had in flight can go twice.
	if doubled > 1 {
		t.Fatalf("%d sent twice, more than the one in flight", doubled)
	}
}
