package main

import (
	"context"
	"encoding/hex"
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

	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// fakeWeChat records every template and mass message it is asked to send,
// slowly enough that a dispatcher can be killed in the middle. Like WeChat
// it refuses a mass message whose clientmsgid it has seen (45065), naming
// the job it already has.
type fakeWeChat struct {
	mu      sync.Mutex
	sent    map[string]int   // template messages per openid
	mass    map[string]int   // mass messages per openid
	jobs    map[string]int64 // clientmsgid -> msg_id
	repeats int              // mass messages refused as repeats
}

func newFakeWeChat() *fakeWeChat {
	return &fakeWeChat{sent: map[string]int{}, mass: map[string]int{}, jobs: map[string]int64{}}
}

func (f *fakeWeChat) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	switch r.URL.Path {
	case "/cgi-bin/stable_token", "/cgi-bin/token":
		fmt.Fprint(w, `{"access_token":"crash-test-token","expires_in":7200}`)
	case "/cgi-bin/message/template/send":
		var msg struct {
			ToUser string `json:"touser"`
		}
		json.Unmarshal(body, &msg)
		time.Sleep(5 * time.Millisecond)
		f.mu.Lock()
		f.sent[msg.ToUser]++
		f.mu.Unlock()
		fmt.Fprint(w, `{"errcode":0,"errmsg":"ok","msgid":1}`)
	case "/cgi-bin/message/mass/send":
		var msg struct {
			ToUser      []string `json:"touser"`
			ClientMsgID string   `json:"clientmsgid"`
		}
		json.Unmarshal(body, &msg)
		f.mu.Lock()
		if id, ok := f.jobs[msg.ClientMsgID]; ok && msg.ClientMsgID != "" {
			f.repeats++
			f.mu.Unlock()
			fmt.Fprintf(w, `{"errcode":45065,"errmsg":"clientmsgid exist","msg_id":%d}`, id)
			return
		}
		id := int64(len(f.jobs) + 1000)
		f.jobs[msg.ClientMsgID] = id
		for _, o := range msg.ToUser {
			f.mass[o]++
		}
		f.mu.Unlock()
		// The job is WeChat's before its answer leaves: an instance killed
		// now has sent the batch without knowing it.
		time.Sleep(200 * time.Millisecond)
		fmt.Fprintf(w, `{"errcode":0,"errmsg":"send job submission success","msg_id":%d}`, id)
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

func (f *fakeWeChat) massJobs() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.jobs)
}

// crashRig runs the built binary as instances on one PostgreSQL database
// and Redis, sending to a fake WeChat, to be killed with -9.
type crashRig struct {
	t      *testing.T
	db     *storage.DB
	wechat *fakeWeChat
	start  func() *exec.Cmd
}

func newCrashRig(t *testing.T) *crashRig {
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
	rig := &crashRig{t: t, db: db, wechat: newFakeWeChat()}
	api := httptest.NewServer(rig.wechat)
	t.Cleanup(api.Close)
	redis, err := storage.StartEmbeddedRedis()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { redis.Close() })
	dir := t.TempDir()
	bin := filepath.Join(dir, "jiayi")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	rig.start = func() *exec.Cmd {
		cmd := exec.Command(bin, "serve")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "JIAYI_ADDR=127.0.0.1:0", "JIAYI_DATABASE_URL="+dbURL, "JIAYI_REDIS_URL="+redis.URL(),
			"JIAYI_WECHAT_SECRET=crash-test-secret", "JIAYI_WECHAT_APPID=wx0123456789abcdef", "JIAYI_WECHAT_TOKEN=crashtest",
			"JIAYI_PII_KEY="+crashKey, "JIAYI_WECHAT_TEMPLATES=sign_request=tpl_sign",
			"JIAYI_WECHAT_API="+api.URL, "JIAYI_OUTBOX_LEASE=2s")
		cmd.Stderr = io.Discard
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	return rig
}

var crashKey = strings.Repeat("ab", 32)

// killWhen starts an instance, kills it with -9 once sent reports enough,
// then starts a second that runs until no push of the kind waits.
func (rig *crashRig) killWhen(kind string, enough func() bool) {
	t := rig.t
	first := rig.start()
	for deadline := time.Now().Add(30 * time.Second); !enough(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			first.Process.Kill()
			t.Fatal("the first instance sent too little")
		}
	}
	first.Process.Signal(syscall.SIGKILL)
	first.Wait()
	second := rig.start()
	defer func() { second.Process.Signal(syscall.SIGTERM); second.Wait() }()
	raw := storagetest.SQL(t, rig.db)
	var pending int
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		raw.GetContext(context.Background(), &pending, raw.Rebind(`SELECT COUNT(*) FROM outbox WHERE state <> 'sent' AND kind = ?`), kind)
		if pending == 0 {
			return
		}
	}
	var left []struct {
		Key   string `db:"idempotency_key"`
		State string `db:"state"`
		Error string `db:"last_error"`
	}
	raw.SelectContext(context.Background(), &left, raw.Rebind(`SELECT idempotency_key, state, last_error FROM outbox
		WHERE state <> 'sent' AND kind = ?`), kind)
	t.Fatalf("%d pushes still pending: %+v", pending, left)
}

// Kill -9 an instance in the middle of sending 300 pushes; a second instance
// finishes. Nothing may be lost; the one push the dead one had in flight
// may go twice, and the test reports how many did.
func TestKillNineMidDispatchLosesNothing(t *testing.T) {
	rig := newCrashRig(t)
	const n = 300
	var pushes []storage.Push
	for i := range n {
		pushes = append(pushes, storage.Push{Key: fmt.Sprintf("crash:%d", i), Kind: "sign_request", Recipient: fmt.Sprintf("o_%03d", i)})
	}
	if err := rig.db.Enqueue(context.Background(), pushes); err != nil {
		t.Fatal(err)
	}
	var atKill int
	rig.killWhen("sign_request", func() bool { _, atKill = rig.wechat.counts(); return atKill >= n/3 })
	recipients, total := rig.wechat.counts()
	lost, doubled := n-recipients, total-recipients
	t.Logf("killed after %d sends; %d pushes: %d lost, %d sent twice", atKill, n, lost, doubled)
	if lost != 0 {
		t.Fatalf("%d never sent", lost)
	}
	// Each send is recorded as it happens: only the one the dead instance
	// had in flight can go twice.
	if doubled > 1 {
		t.Fatalf("%d sent twice, more than the one in flight", doubled)
	}
}

// Kill -9 an instance in the middle of sending 30 broadcasts to the same
// residents; a second instance finishes. A batch the dead one had sent but
// not recorded goes again under the same clientmsgid, which WeChat refuses:
// every resident has every broadcast exactly once.
func TestKillNineMidBroadcastSendsNoTipTwice(t *testing.T) {
	rig := newCrashRig(t)
	ctx := context.Background()
	if err := profile.Ensure(ctx, rig.db, "national"); err != nil {
		t.Fatal(err)
	}
	key, _ := hex.DecodeString(crashKey)
	sealer, err := storage.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	const residents, broadcasts = 20, 30
	if _, err := flows.SeedDemo(ctx, rig.db, sealer, residents, time.Now()); err != nil {
		t.Fatal(err)
	}
	// The seeding makes each resident a follower of the account.
	for i := range broadcasts {
		// Each counts in a month of its own, so the monthly limit lets all
		// thirty reach everyone; transactional priority, so the hour the test
		// runs at is never quiet hours for them.
		if _, use, err := rig.db.CreateBroadcast(ctx, storage.Scope{}, storage.NewBroadcast{Title: "t", Body: fmt.Sprint(i),
			SegmentJSON: "{}", Month: fmt.Sprintf("%d-01", 2000+i), Due: time.Now(), Priority: flows.PriorityTransactional,
			Actor: "test"}); err != nil || use.Total != residents {
			t.Fatalf("broadcast %d: %+v %v", i, use, err)
		}
	}
	var atKill int
	rig.killWhen(storage.KindBroadcast, func() bool { atKill = rig.wechat.massJobs(); return atKill >= broadcasts/3 })
	rig.wechat.mu.Lock()
	defer rig.wechat.mu.Unlock()
	t.Logf("killed after %d mass sends; %d refused as repeats", atKill, rig.wechat.repeats)
	if rig.wechat.repeats == 0 {
		t.Fatal("the instance was not killed with a batch sent and unrecorded; the test proved nothing")
	}
	if len(rig.wechat.jobs) != broadcasts || len(rig.wechat.mass) != residents {
		t.Fatalf("%d jobs to %d residents, want %d to %d", len(rig.wechat.jobs), len(rig.wechat.mass), broadcasts, residents)
	}
	for openID, n := range rig.wechat.mass {
		if n != broadcasts {
			t.Fatalf("%s received %d tips, want %d", openID, n, broadcasts)
		}
	}
}
