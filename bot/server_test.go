package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/bot/config"
	"github.com/jiayi-health/jiayi/bot/wechat/sandbox"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
	"github.com/silenceper/wechat/v2/util"
)

// syncBuffer is a log sink the server's goroutines may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newServer starts a sandbox server on its own SQLite file and embedded Redis
// unless env says otherwise.
func newServer(t testing.TB, env map[string]string, opt Options) (*Server, *syncBuffer) {
	t.Helper()
	if env == nil {
		env = map[string]string{}
	}
	if env["JIAYI_DATABASE_URL"] == "" {
		env["JIAYI_DATABASE_URL"] = "sqlite:" + filepath.Join(t.TempDir(), "jiayi.db")
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	// Without JIAYI_PII_KEY a sandbox keeps a generated key beside its SQLite
	// file, or on PostgreSQL in the working directory: here the source tree.
	// Such tests get a fixed key instead.
	if cfg.PIIKey == nil && !filepath.IsAbs(storage.KeyFileFor(cfg.DatabaseURL)) {
		cfg.PIIKey = bytes.Repeat([]byte{0x5a}, 32)
	}
	logs := &syncBuffer{}
	srv, err := New(context.Background(), cfg, slog.New(slog.NewJSONHandler(logs, nil)), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv, logs
}

func get(t *testing.T, h http.Handler, target, remote string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.RemoteAddr = remote
	req.Host = "127.0.0.1:8080"
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// postJSON posts a JSON body as a script on this machine would.
func postJSON(t *testing.T, h http.Handler, target, remote, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
	req.RemoteAddr, req.Host = remote, "127.0.0.1:8080"
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// signByChat signs a resident in chat with the national demo's answers
// (no declared groups, the first team, no extra package) and returns the
// contract number.
func signByChat(t *testing.T, srv *Server, openID string) string {
	t.Helper()
	for _, s := range []string{"签约", "1", "王秀英", "同意", residentID, residentPhone, "1", "0", "1", "0"} {
		chat(t, srv, openID, s)
	}
	number := regexp.MustCompile(`QY\d{10}`).FindString(chat(t, srv, openID, "同意"))
	if number == "" {
		t.Fatalf("%s's signing made no contract", openID)
	}
	return number
}

const local = "127.0.0.1:50000"

// postText sends a signed plaintext text message as WeChat would.
func postText(t testing.TB, h http.Handler, token, from, content string, msgID int) *httptest.ResponseRecorder {
	t.Helper()
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	body := fmt.Sprintf("<xml><ToUserName>gh_jiayi</ToUserName><FromUserName>%s</FromUserName><CreateTime>%s</CreateTime>"+
		"<MsgType>text</MsgType><Content><![CDATA[%s]]></Content><MsgId>%d</MsgId></xml>", from, ts, content, msgID)
	nonce := strconv.Itoa(msgID) // new for every message, as WeChat's are
	req := httptest.NewRequest(http.MethodPost, "/wechat?signature="+util.Signature(token, ts, nonce)+
		"&timestamp="+ts+"&nonce="+nonce+"&openid="+from, strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestHealthReadyAndMetrics(t *testing.T) {
	srv, _ := newServer(t, nil, Options{})
	h := srv.Handler()
	if rec := get(t, h, "/healthz", local); rec.Code != 200 {
		t.Fatalf("healthz %d", rec.Code)
	}
	if rec := get(t, h, "/readyz", local); rec.Code != 200 {
		t.Fatalf("readyz %d: %s", rec.Code, rec.Body)
	}
	postText(t, h, "jiayi", "o_metrics", "帮助", 1)
	postText(t, h, "jiayi", "o_metrics", "帮助", 1) // a retry
	body := get(t, h, "/metrics", local).Body.String()
	for _, want := range []string{
		`jiayi_wechat_requests_total{outcome="replied",type="text"} 1`,
		`jiayi_wechat_requests_total{outcome="duplicate",type="text"} 1`,
		`jiayi_wechat_dedupe_hits_total 1`,
		`jiayi_wechat_request_duration_seconds_count 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestReadyzFollowsEmbeddedRedis(t *testing.T) {
	srv, _ := newServer(t, nil, Options{})
	h := srv.Handler()
	srv.embedded.Close()
	if rec := get(t, h, "/readyz", local); rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"redis":"unreachable"`) {
		t.Fatalf("readyz with Redis stopped: %d %s", rec.Code, rec.Body)
	}
	if err := srv.embedded.Restart(); err != nil {
		t.Fatal(err)
	}
	waitReady(t, h)
}

// The same with a real redis-server that the test stops and starts again.
func TestReadyzFollowsARealRedis(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if storagetest.InCI() {
			t.Fatal("redis-server not installed")
		}
		t.Skip("redis-server not installed")
	}
	port := freePort(t)
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	redis := start()
	srv, _ := newServer(t, map[string]string{"JIAYI_REDIS_URL": fmt.Sprintf("redis://127.0.0.1:%d/0", port)}, Options{})
	h := srv.Handler()
	waitReady(t, h)
	redis.Process.Kill()
	redis.Wait()
	if rec := get(t, h, "/readyz", local); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("readyz with Redis killed: %d %s", rec.Code, rec.Body)
	}
	start()
	waitReady(t, h)
}

func waitReady(t *testing.T, h http.Handler) {
	t.Helper()
	var rec *httptest.ResponseRecorder
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if rec = get(t, h, "/readyz", local); rec.Code == 200 {
			return
		}
	}
	t.Fatalf("readyz never returned to 200: %d %s", rec.Code, rec.Body)
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestSandboxOutboxIsLoopbackOnly(t *testing.T) {
	srv, _ := newServer(t, nil, Options{ReplyDeadline: time.Nanosecond})
	h := srv.Handler()
	// A reply that misses its deadline goes out through the stand-in.
	postText(t, h, "jiayi", "o_box", "帮助", 3)
	srv.Turns.Wait()
	rec := get(t, h, "/sandbox/outbox?to=o_box", local)
	var got []sandbox.Message
	if err := json.Unmarshal(rec.Body.Bytes(), &got); rec.Code != 200 || err != nil {
		t.Fatalf("outbox: %d %v", rec.Code, err)
	}
	if len(got) != 1 || got[0].To != "o_box" || got[0].Kind != "customer-service" || !strings.Contains(got[0].Text, "签约") || got[0].At.IsZero() {
		t.Fatalf("outbox = %+v", got)
	}
	if rec := get(t, h, "/sandbox/outbox?to=o_box", "10.0.0.8:4000"); rec.Code != http.StatusNotFound {
		t.Fatalf("outbox from another host: %d", rec.Code)
	}
	if rec := get(t, h, "/sandbox/outbox?to=o_box", "[::1]:4000"); rec.Code != 200 {
		t.Fatalf("outbox over IPv6 loopback: %d", rec.Code)
	}
}

func TestProductionHasNoSandboxRoutes(t *testing.T) {
	standIn := sandbox.NewWithSecret("prod-secret-for-test")
	defer standIn.Close()
	srv, _ := newServer(t, map[string]string{
		"JIAYI_WECHAT_SECRET": "prod-secret-for-test", "JIAYI_WECHAT_APPID": "wx0123456789abcdef",
		"JIAYI_WECHAT_TOKEN": "prodtoken", "JIAYI_PII_KEY": strings.Repeat("ab", 32),
		"JIAYI_REDIS_URL": embeddedURL(t),
	}, Options{Transport: sandbox.Transport{}})
	h := srv.Handler()
	if srv.StandIn != nil {
		t.Fatal("production server built a stand-in")
	}
	for _, route := range []string{"/sandbox/outbox", "/sandbox/clock", "/sim", "/sim/setup", "/sim/assets/sim.js"} {
		if rec := get(t, h, route, local); rec.Code != http.StatusNotFound {
			t.Fatalf("sandbox route %s in production: %d", route, rec.Code)
		}
	}
	if code, _ := moveClock(t, h, `{"advance": "26h"}`); code != http.StatusNotFound {
		t.Fatalf("the clock moved in production: %d", code)
	}
	if rec := postText(t, h, "jiayi", "o_p", "帮助", 1); rec.Code != http.StatusForbidden {
		t.Fatalf("sandbox token accepted in production: %d", rec.Code)
	}
	if rec := postText(t, h, "prodtoken", "o_p", "帮助", 1); rec.Code != 200 || !strings.Contains(rec.Body.String(), "签约") {
		t.Fatalf("production reply: %d %s", rec.Code, rec.Body)
	}
}

func embeddedURL(t *testing.T) string {
	e, err := storage.StartEmbeddedRedis()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e.URL()
}

// Synthetic personal data, generated for this test (the ID's checksum is valid).
const (
	syntheticID    = "11010519491231002X"
	syntheticPhone = "13812345678"
	privateWords   = "我最近血压有点高"
)

func TestLogsHoldNoPersonalData(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, stack storagetest.Stack) {
		env := map[string]string{"JIAYI_DATABASE_URL": stack.DatabaseURL, "JIAYI_REDIS_URL": stack.RedisURL}
		srv, logs := newServer(t, env, Options{RedisPrefix: stack.Redis.Prefix})
		h := srv.Handler()
		openID := "oPrivateOpenID" + strconv.FormatInt(time.Now().UnixNano(), 10)
		for i, text := range []string{syntheticID, syntheticPhone, privateWords, "身份证" + syntheticID + "电话" + syntheticPhone} {
			postText(t, h, "jiayi", openID, text, 100+i)
		}
		// A failing turn logs its error; that must not carry the words either.
		srv.DB.Close()
		postText(t, h, "jiayi", openID, privateWords+syntheticPhone, 200)
		srv.Turns.Wait()
		out := logs.String()
		if !strings.Contains(out, `"route":"/wechat"`) || !strings.Contains(out, "turn failed") {
			t.Fatalf("the requests and the failure were not logged: %s", out)
		}
		for _, secret := range []string{syntheticID, syntheticPhone, privateWords, "血压", openID} {
			if strings.Contains(out, secret) {
				t.Errorf("log holds %q:\n%s", secret, out)
			}
		}
	})
}

func TestGracefulShutdownDrainsInFlightRequests(t *testing.T) {
	srv, _ := newServer(t, nil, Options{})
	addr, stop, served := serveOnLoopback(t, srv)

	// Hold the user's lock so the request is still in flight at shutdown.
	unlock, err := srv.Redis.LockUser(context.Background(), "o_drain", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	url := "http://" + addr + "/wechat?signature=" + util.Signature("jiayi", ts, "n") + "&timestamp=" + ts + "&nonce=n&openid=o_drain"
	body := "<xml><ToUserName>gh</ToUserName><FromUserName>o_drain</FromUserName><CreateTime>" + ts +
		"</CreateTime><MsgType>text</MsgType><Content>帮助</Content><MsgId>77</MsgId></xml>"
	answered := make(chan string, 1)
	go func() {
		resp, err := http.Post(url, "text/xml", strings.NewReader(body))
		if err != nil {
			answered <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answered <- string(b)
	}()
	time.Sleep(200 * time.Millisecond)
	stop() // SIGTERM in the binary
	time.Sleep(200 * time.Millisecond)
	unlock()
	if got := <-answered; !strings.Contains(got, "签约") {
		t.Fatalf("in-flight request answered %q", got)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve returned %v after a drain", err)
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Fatal("still serving after shutdown")
	}
}

func TestRegionProfileShowsInChat(t *testing.T) {
	srv, _ := newServer(t, map[string]string{"JIAYI_REGION": "yaoguan"}, Options{})
	rec := postText(t, srv.Handler(), "jiayi", "o_region", "服务包", 1)
	for _, want := range []string{"常州市武进区遥观镇", "2. 基本医疗服务包（个人付50元）", "8. 糖尿病增值包（个人付360元）"} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("reply lacks %q:\n%s", want, rec.Body)
		}
	}
}

func TestStartRefusesADatabaseOfAnotherRegion(t *testing.T) {
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "jiayi.db")
	first, _ := newServer(t, map[string]string{"JIAYI_DATABASE_URL": dbURL, "JIAYI_REGION": "linzi"}, Options{})
	first.Close()
	cfg, err := config.Load(func(k string) string {
		return map[string]string{"JIAYI_DATABASE_URL": dbURL, "JIAYI_REGION": "harbin"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(context.Background(), cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)), Options{})
	if err == nil || !strings.Contains(err.Error(), "jiayi profile load") || !strings.Contains(err.Error(), `"linzi"`) {
		t.Fatalf("start on another region's database: %v", err)
	}
}

func TestAdminAPITakesTheTokenWhenOneIsSet(t *testing.T) {
	without, _ := newServer(t, nil, Options{})
	if rec := get(t, without.Handler(), "/admin/api/packages", local); rec.Code != http.StatusUnauthorized {
		t.Fatalf("admin API without a session: %d", rec.Code)
	}
	req := httptest.NewRequest(http.MethodGet, "/admin/api/packages", nil)
	req.Header.Set("Authorization", "Bearer a-long-enough-admin-token")
	rec := httptest.NewRecorder()
	without.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("a bearer token where none is configured: %d", rec.Code)
	}
	with, _ := newServer(t, map[string]string{"JIAYI_ADMIN_TOKEN": "a-long-enough-admin-token"}, Options{})
	req = httptest.NewRequest(http.MethodGet, "/admin/api/packages?unknown=true", nil)
	req.Header.Set("Authorization", "Bearer a-long-enough-admin-token")
	rec = httptest.NewRecorder()
	with.Handler().ServeHTTP(rec, req)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"price_unknown":true`) {
		t.Fatalf("admin API: %d %s", rec.Code, rec.Body)
	}
}

func TestSandboxGeneratesItsPersonalDataKeyOnce(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"JIAYI_DATABASE_URL": "sqlite:" + filepath.Join(dir, "jiayi.db")}
	first, logs := newServer(t, env, Options{})
	sealed, err := first.Sealer.Seal("phone", syntheticPhone)
	if err != nil {
		t.Fatal(err)
	}
	first.Close()
	key, err := os.ReadFile(filepath.Join(dir, "jiayi.db.pii-key"))
	if err != nil {
		t.Fatalf("no key file beside the database: %v", err)
	}
	if strings.Contains(logs.String(), strings.TrimSpace(string(key))) {
		t.Fatal("the key reached the log")
	}
	second, _ := newServer(t, env, Options{})
	if got, err := second.Sealer.Open("phone", sealed); err != nil || got != syntheticPhone {
		t.Fatalf("a restart cannot read what the first start sealed: %v", err)
	}
}

func TestSandboxDemoData(t *testing.T) {
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "jiayi.db")
	env := map[string]string{"JIAYI_DATABASE_URL": dbURL, "JIAYI_REGION": "yaoguan"}
	srv, logs := newServer(t, env, Options{})
	var demo struct {
		Communities []struct {
			ID   int64
			Name string
		}
		Doctors []struct {
			ID          int64
			Name, Team  string
			BindingCode string `json:"binding_code"`
		}
		Admin struct{ Username, Password string }
	}
	rec := get(t, srv.Handler(), "/sandbox/demo", local)
	if err := json.Unmarshal(rec.Body.Bytes(), &demo); err != nil || rec.Code != 200 {
		t.Fatalf("demo: %d %v", rec.Code, err)
	}
	if len(demo.Communities) < 2 || len(demo.Communities) > 9 || demo.Communities[0].ID != 1 || len(demo.Doctors) < 2 {
		t.Fatalf("demo = %+v", demo)
	}
	first := demo.Doctors[0]
	if first.ID != 1 || len(first.BindingCode) != 8 || first.Team == "" {
		t.Fatalf("first doctor = %+v", first)
	}
	if rec := get(t, srv.Handler(), "/sandbox/demo", "192.168.1.9:999"); rec.Code != http.StatusNotFound {
		t.Fatalf("demo from another host: %d", rec.Code)
	}
	admin := demo.Admin
	if admin.Username != "admin" || len(admin.Password) < 10 || !strings.Contains(logs.String(), admin.Password) {
		t.Fatalf("demo admin %+v, or its password is not in the start-up log", admin)
	}
	if code := signIn(t, srv.Handler(), admin.Username, admin.Password); code != http.StatusSeeOther {
		t.Fatalf("the demo admin cannot sign in: %d", code)
	}
	if code := signIn(t, srv.Handler(), admin.Username, admin.Password+"x"); code != http.StatusUnauthorized {
		t.Fatalf("a wrong password for the demo admin: %d", code)
	}
	// Changed in the console, the start-up password is not shown as current.
	staff, _ := srv.DB.StaffByUsername(context.Background(), admin.Username)
	srv.DB.SetStaffPassword(context.Background(), storage.Scope{}, staff.ID, "$argon2id$changed", "test")
	var changed struct{ Admin map[string]any }
	json.Unmarshal(get(t, srv.Handler(), "/sandbox/demo", local).Body.Bytes(), &changed)
	if changed.Admin["password"] != nil || changed.Admin["note"] == nil {
		t.Fatalf("after a password change, /sandbox/demo says %v", changed.Admin)
	}
	// Every start issues fresh codes; the data is not loaded twice.
	srv.Close()
	again, _ := newServer(t, env, Options{})
	rec = get(t, again.Handler(), "/sandbox/demo", local)
	json.Unmarshal(rec.Body.Bytes(), &demo)
	if len(demo.Doctors) != 2 || demo.Doctors[0].BindingCode == first.BindingCode {
		t.Fatalf("after restart: %+v (first code was %s)", demo.Doctors, first.BindingCode)
	}
	if demo.Admin != admin {
		t.Fatalf("the demo admin changed on restart: %+v, was %+v", demo.Admin, admin)
	}
}

// signIn posts the console's sign-in form as a browser would, and returns
// the status.
func signIn(t *testing.T, h http.Handler, username, password string) int {
	t.Helper()
	page := httptest.NewRecorder()
	h.ServeHTTP(page, httptest.NewRequest(http.MethodGet, "/admin/login", nil))
	field := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page.Body.String())
	if field == nil {
		t.Fatalf("no CSRF field on the sign-in page: %d %s", page.Code, page.Body)
	}
	form := url.Values{"csrf": {field[1]}, "username": {username}, "password": {password}}
	req := httptest.NewRequest(http.MethodPost, "/admin/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range page.Result().Cookies() {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

// Started with another personal-data key than its data was sealed with, the
// server refuses to start and names the variable, instead of answering
// every resident "busy" for good.
func TestAnotherPersonalDataKeyRefusesToStart(t *testing.T) {
	env := map[string]string{"JIAYI_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "jiayi.db"),
		"JIAYI_PII_KEY": strings.Repeat("ab", 32)}
	first, _ := newServer(t, env, Options{})
	first.Close()
	env["JIAYI_PII_KEY"] = strings.Repeat("cd", 32)
	if err := refusedStart(t, env); !strings.Contains(err.Error(), "JIAYI_PII_KEY") {
		t.Fatalf("the error does not name the variable: %v", err)
	}
	env["JIAYI_PII_KEY"] = strings.Repeat("ab", 32)
	newServer(t, env, Options{}) // the right key still starts
}

// A second server on the same SQLite file refuses to start, saying why; once
// the first stops, it starts.
func TestOneServerPerSQLiteFile(t *testing.T) {
	env := map[string]string{"JIAYI_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "jiayi.db")}
	first, _ := newServer(t, env, Options{})
	if err := refusedStart(t, env); !errors.Is(err, storage.ErrInUse) || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("the refusal does not say why: %v", err)
	}
	first.Close()
	newServer(t, env, Options{})
}

// A client that sends half a request and stalls loses its connection after
// the read timeout instead of holding it.
func TestAStalledRequestIsDropped(t *testing.T) {
	srv, _ := newServer(t, nil, Options{ReadTimeout: 300 * time.Millisecond})
	addr, stop, served := serveOnLoopback(t, srv)
	defer func() { stop(); <-served }()

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /wechat HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: 1000\r\n\r\n<xml>")
	// The server closes the connection (EOF) long before this client gives
	// up waiting (a timeout error).
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(conn); err != nil {
		t.Fatalf("the stalled connection was held: %v", err)
	}
}

// refusedStart starts a server that must not start, and returns why.
func refusedStart(t *testing.T, env map[string]string) error {
	t.Helper()
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler), Options{})
	if err == nil {
		srv.Close()
		t.Fatal("the server started")
	}
	return err
}

// serveOnLoopback runs a server on a free loopback port: its address, how to
// stop it (as SIGTERM does) and where Serve's result arrives.
func serveOnLoopback(t *testing.T, srv *Server) (string, context.CancelFunc, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	return ln.Addr().String(), stop, served
}

// A production database starts with no organisation: until some community
// is served by a team, /readyz says why, and a resident who types 签约 is
// told at once that the service is opening, with the centre's phone.
func TestGoingLiveNeedsAnOrganisation(t *testing.T) {
	standIn := sandbox.NewWithSecret("prod-secret-for-test")
	defer standIn.Close()
	srv, _ := newServer(t, map[string]string{
		"JIAYI_WECHAT_SECRET": "prod-secret-for-test", "JIAYI_WECHAT_APPID": "wx0123456789abcdef",
		"JIAYI_WECHAT_TOKEN": "prodtoken", "JIAYI_PII_KEY": strings.Repeat("ab", 32),
		"JIAYI_REDIS_URL": embeddedURL(t),
	}, Options{Transport: sandbox.Transport{}})
	h := srv.Handler()
	rec := get(t, h, "/readyz", local)
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "no community is served by a team") {
		t.Fatalf("readyz with no organisation: %d %s", rec.Code, rec.Body)
	}
	ctx := context.Background()
	if _, err := srv.DB.CreateInstitution(ctx, storage.Institution{Code: "hedong", Name: "河东镇卫生院", Kind: "township_centre",
		Phone: "0531-88886666"}, []storage.Community{{Town: "河东镇", Name: "河东村"}}, nil); err != nil {
		t.Fatal(err)
	}
	reply := postText(t, h, "prodtoken", "o_early", "签约", 1).Body.String()
	if !strings.Contains(reply, "正在开通") || !strings.Contains(reply, "0531-88886666") || strings.Contains(reply, "为谁签约") {
		t.Fatalf("签约 before any team serves a community: %s", reply)
	}
	if rec := get(t, h, "/readyz", local); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("readyz with a community but no team: %d", rec.Code)
	}
	inst, _ := srv.DB.InstitutionByCode(ctx, "hedong")
	doctor, _ := srv.DB.CreateDoctor(ctx, storage.Doctor{InstitutionID: inst.ID, Name: "孔医生"}, "test")
	communities, _, _ := srv.DB.ListCommunities(ctx, storage.Scope{}, storage.Page{})
	if _, err := srv.DB.CreateTeam(ctx, inst.ID, storage.NewTeam{Name: "孔医生团队"}, doctor, []int64{communities[0].ID}, "test"); err != nil {
		t.Fatal(err)
	}
	if rec := get(t, h, "/readyz", local); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"organisation":"ok"`) {
		t.Fatalf("readyz once a team serves a community: %d %s", rec.Code, rec.Body)
	}
	if reply := postText(t, h, "prodtoken", "o_early", "签约", 2).Body.String(); !strings.Contains(reply, "为谁签约") {
		t.Fatalf("签约 once open: %s", reply)
	}
}
