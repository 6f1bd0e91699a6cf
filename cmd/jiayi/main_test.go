package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/jiayi-health/jiayi/bot/admin"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/bot"
	"github.com/jiayi-health/jiayi/bot/config"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

func TestVersionAndUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"version"}, func(string) string { return "" }, nil, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "jiayi ") {
		t.Fatalf("version: %d %q", code, out.String())
	}
	if code := run([]string{"frobnicate"}, func(string) string { return "" }, nil, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "usage") {
		t.Fatalf("unknown command: %d %q", code, errOut.String())
	}
}

func TestBadConfigurationStopsStartUpNamingTheVariable(t *testing.T) {
	env := map[string]string{"JIAYI_WECHAT_SECRET": "topsecretvalue123", "JIAYI_ADDR": "nonsense"}
	var out, errOut bytes.Buffer
	code := run([]string{"serve"}, func(k string) string { return env[k] }, nil, &out, &errOut)
	log := errOut.String()
	if code != 1 || !strings.Contains(log, "JIAYI_ADDR") || !strings.Contains(log, "JIAYI_REDIS_URL") {
		t.Fatalf("exit %d, log %s", code, log)
	}
	if strings.Contains(log, "topsecretvalue123") {
		t.Fatalf("log shows the secret: %s", log)
	}
}

func TestMigrateCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	env := map[string]string{"JIAYI_DATABASE_URL": "sqlite:" + path}
	var out, errOut bytes.Buffer
	if code := run([]string{"migrate"}, func(k string) string { return env[k] }, nil, &out, &errOut); code != 0 {
		t.Fatalf("migrate: %d %s", code, errOut.String())
	}
	db, err := storage.Open(context.Background(), "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if again, err := db.Migrate(context.Background()); err != nil || len(again) != 0 {
		t.Fatalf("after jiayi migrate, %v were still pending (%v)", again, err)
	}
}

// The binary as an operator runs it: it starts on embedded defaults in an
// empty directory, serves, and exits 0 on SIGTERM.
func TestServeStartsOnDefaultsAndStopsCleanlyOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "jiayi")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "JIAYI_ADDR=127.0.0.1:0")
	for _, kv := range os.Environ() { // only the embedded defaults
		if strings.HasPrefix(kv, "JIAYI_") && !strings.HasPrefix(kv, "JIAYI_TEST_") {
			t.Fatalf("test environment sets %s", kv)
		}
	}
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stderr)
	addr, sandboxWarned := "", false
	for addr == "" && lines.Scan() {
		var entry struct{ Msg, Addr, Level string }
		json.Unmarshal(lines.Bytes(), &entry)
		sandboxWarned = sandboxWarned || (entry.Level == "WARN" && strings.Contains(entry.Msg, "SANDBOX MODE"))
		if entry.Msg == "listening" {
			addr = entry.Addr
		}
	}
	if addr == "" || !sandboxWarned {
		t.Fatalf("no listening address or sandbox warning in the log")
	}
	// Next the log names the simulator's address, for a browser here.
	simURL := ""
	if lines.Scan() {
		simURL = regexp.MustCompile(`http://\S+/sim`).FindString(lines.Text())
	}
	go io.Copy(io.Discard, stderr)
	if simURL == "" {
		t.Fatal("the log does not say where the simulator is")
	}
	if page, err := http.Get(simURL); err != nil || page.StatusCode != 200 {
		t.Fatalf("%s: %v %v", simURL, page, err)
	} else {
		page.Body.Close()
	}
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", resp, err)
	}
	resp.Body.Close()
	if _, err := os.Stat(filepath.Join(dir, "jiayi.db")); err != nil {
		t.Fatalf("no jiayi.db in the working directory: %v", err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("still running 20 s after SIGTERM")
	}
}

func TestSimChatsWithASandboxServer(t *testing.T) {
	web := sandboxWeb(t, map[string]string{"JIAYI_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "sim.db")})

	var out, errOut bytes.Buffer
	in := strings.NewReader("帮助\n/voice 预约。\n/quit\n")
	if code := run([]string{"sim", "-url", web.URL, "-openid", "o_sim", "-follow"}, func(string) string { return "" }, in, &out, &errOut); code != 0 {
		t.Fatalf("sim exit %d: %s", code, errOut.String())
	}
	got := out.String()
	for _, want := range []string{"欢迎关注", "帮助 —— 再看一次", "预约需要先签约家庭医生"} {
		if !strings.Contains(got, want) {
			t.Errorf("sim output lacks %q:\n%s", want, got)
		}
	}
	// A server with another token refuses the simulator, and it says why.
	code := run([]string{"sim", "-url", web.URL}, func(k string) string { return map[string]string{"JIAYI_WECHAT_TOKEN": "other"}[k] }, strings.NewReader(""), &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "JIAYI_WECHAT_TOKEN") {
		t.Fatalf("wrong token: exit %d, %s", code, errOut.String())
	}
}

func TestProfileLoadShowsAndAsksBeforeReplacing(t *testing.T) {
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "p.db")
	env := func(region string) func(string) string {
		return func(k string) string {
			return map[string]string{"JIAYI_DATABASE_URL": dbURL, "JIAYI_REGION": region}[k]
		}
	}
	regionOf := func() string {
		db, err := storage.Open(context.Background(), dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		code, _ := db.ProfileCode(context.Background())
		return code
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"profile", "load", "-yes"}, env("linzi"), nil, &out, &errOut); code != 0 || regionOf() != "linzi" {
		t.Fatalf("first load: %d %s %s", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := run([]string{"profile", "load"}, env("yaoguan"), strings.NewReader("no\n"), &out, &errOut); code != 1 || regionOf() != "linzi" {
		t.Fatalf("declined load: exit %d, region %s", code, regionOf())
	}
	if !strings.Contains(out.String(), "profile: linzi (淄博市临淄区) -> yaoguan") || !strings.Contains(out.String(), "Nothing changed.") {
		t.Fatalf("declined load said:\n%s", out.String())
	}
	out.Reset()
	if code := run([]string{"profile", "load"}, env("yaoguan"), strings.NewReader("yes\n"), &out, &errOut); code != 0 || regionOf() != "yaoguan" {
		t.Fatalf("accepted load: exit %d, region %s\n%s", code, regionOf(), out.String())
	}
	out.Reset()
	if code := run([]string{"profile", "load"}, env("yaoguan"), nil, &out, &errOut); code != 0 || !strings.Contains(out.String(), "already holds") {
		t.Fatalf("load of the same profile: %d %s", code, out.String())
	}
	if code := run([]string{"profile", "unload"}, env("yaoguan"), nil, &out, &errOut); code != 2 {
		t.Fatalf("unknown profile subcommand: %d", code)
	}
}

func TestAdminCreateUserAndResetPassword(t *testing.T) {
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "a.db")
	env := func(k string) string { return map[string]string{"JIAYI_DATABASE_URL": dbURL}[k] }
	ctx := context.Background()
	db, err := storage.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateInstitution(ctx, storage.Institution{Code: "fenghuang", Name: "凤凰镇卫生院", Kind: "township_centre"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	create := func(stdin string, args ...string) int {
		out.Reset()
		errOut.Reset()
		return run(append([]string{"admin", "create-user"}, args...), env, strings.NewReader(stdin), &out, &errOut)
	}
	if code := create("a long password\n", "wang", "--role", "admin", "--institution", "nowhere"); code != 1 || !strings.Contains(errOut.String(), "jiayi org import") {
		t.Fatalf("unknown institution: %d %s", code, errOut.String())
	}
	if code := create("short\n", "wang", "--role", "admin", "--institution", "fenghuang"); code != 1 || !strings.Contains(errOut.String(), "密码至少") {
		t.Fatalf("short password: %d %s", code, errOut.String())
	}
	if code := create("", "wang", "--role", "admin", "--institution", "fenghuang"); code != 1 || !strings.Contains(errOut.String(), "no password") {
		t.Fatalf("no password: %d %s", code, errOut.String())
	}
	if code := create("a long password\n", "wang", "--role", "admin", "--institution", "fenghuang"); code != 0 || !strings.Contains(out.String(), "Created wang (admin)") {
		t.Fatalf("create: %d %s %s", code, out.String(), errOut.String())
	}
	if code := create("a long password\n", "wang", "--role", "admin", "--institution", "fenghuang"); code != 1 || !strings.Contains(errOut.String(), "已被使用") {
		t.Fatalf("the same name twice: %d %s", code, errOut.String())
	}
	if code := create("a long password\n", "--role", "admin"); code != 2 {
		t.Fatalf("no name: %d", code)
	}
	s, err := db.StaffByUsername(ctx, "wang")
	if err != nil || s.Role != storage.RoleAdmin || strings.Contains(s.PasswordHash, "a long password") || !strings.HasPrefix(s.PasswordHash, "$argon2id$") {
		t.Fatalf("stored account: %+v %v", s, err)
	}
	out.Reset()
	if code := run([]string{"admin", "reset-password", "wang"}, env, strings.NewReader("another long one\n"), &out, &errOut); code != 0 {
		t.Fatalf("reset: %d %s", code, errOut.String())
	}
	after, _ := db.StaffByUsername(ctx, "wang")
	if after.PasswordVersion != s.PasswordVersion+1 || !admin.VerifyPassword(after.PasswordHash, "another long one") {
		t.Fatalf("after reset: %+v", after)
	}
}

func TestOrgImportIsADryRunUntilApplied(t *testing.T) {
	dir := t.TempDir()
	dbURL := "sqlite:" + filepath.Join(dir, "o.db")
	env := func(k string) string { return map[string]string{"JIAYI_DATABASE_URL": dbURL}[k] }
	file := filepath.Join(dir, "org.csv")
	os.WriteFile(file, []byte("类型,机构代码,名称,机构类别,电话,乡镇街道,常住人口,职称,负责医生,服务社区,成员\n"+
		"机构,hedong,河东镇卫生院,乡镇卫生院,0531-1,,,,,,\n社区,hedong,河东村,,,河东镇,900,,,,\n"+
		"医生,hedong,孔医生,,,,,全科医师,,,\n团队,hedong,孔医生团队,,,,,,孔医生,河东村,\n"), 0o600)
	var out, errOut bytes.Buffer
	if code := run([]string{"org", "import", file}, env, nil, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "line 5: create: 团队 孔医生团队") || !strings.Contains(out.String(), "Dry run") {
		t.Fatalf("dry run: %d %s %s", code, out.String(), errOut.String())
	}
	count := func() int {
		db, err := storage.Open(context.Background(), dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		n, _ := db.InstitutionCount(context.Background())
		return n
	}
	if n := count(); n != 0 {
		t.Fatalf("the dry run wrote %d institutions", n)
	}
	out.Reset()
	if code := run([]string{"org", "import", "-apply", file}, env, nil, &out, &errOut); code != 0 || !strings.Contains(out.String(), "Imported.") || count() != 1 {
		t.Fatalf("apply: %d %s %s", code, out.String(), errOut.String())
	}
	if code := run([]string{"org", "import"}, env, nil, &out, &errOut); code != 2 {
		t.Fatalf("no file: %d", code)
	}
}

// jiayi demo seed fills a database and says what it made, as JSON.
func TestDemoSeed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seed.db")
	env := map[string]string{"JIAYI_DATABASE_URL": "sqlite:" + path, "JIAYI_REGION": "kunming"}
	getenv := func(k string) string { return env[k] }
	var out, errOut bytes.Buffer
	if code := run([]string{"demo", "seed"}, getenv, nil, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "--residents N") {
		t.Fatalf("without a count: %d %s", code, errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"demo", "seed", "--residents", "1200"}, getenv, nil, &out, &errOut); code != 0 {
		t.Fatalf("seed: %d %s", code, errOut.String())
	}
	var made struct {
		Residents, Teams, Institutions int
	}
	if err := json.Unmarshal(out.Bytes(), &made); err != nil || made.Residents != 1200 || made.Teams != 2 || made.Institutions != 1 {
		t.Fatalf("made %s (%v)", out.String(), err)
	}
}

// jiayi demo remove deletes what a sandbox loaded, says what as JSON, does
// nothing the second time, and on SQLite waits for the server to stop.
func TestDemoRemove(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, stack storagetest.Stack) {
		env := map[string]string{"JIAYI_DATABASE_URL": stack.DatabaseURL, "JIAYI_PII_KEY": strings.Repeat("ab", 32)}
		getenv := func(k string) string { return env[k] }
		cfg, err := config.Load(getenv)
		if err != nil {
			t.Fatal(err)
		}
		srv, err := bot.New(context.Background(), cfg, slog.New(slog.DiscardHandler), bot.Options{RedisPrefix: stack.Redis.Prefix})
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		var out, errOut bytes.Buffer
		if stack.Name == "embedded" {
			if code := run([]string{"demo", "remove"}, getenv, nil, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "already running") {
				t.Fatalf("while the sandbox runs: %d %s", code, errOut.String())
			}
		}
		srv.Close()
		removed := func() map[string]int {
			t.Helper()
			out.Reset()
			if code := run([]string{"demo", "remove"}, getenv, nil, &out, &errOut); code != 0 {
				t.Fatalf("demo remove: %d %s", code, errOut.String())
			}
			var n map[string]int
			if err := json.Unmarshal(out.Bytes(), &n); err != nil {
				t.Fatalf("%s: %v", out.String(), err)
			}
			return n
		}
		first := removed()
		if first["institutions"] != 1 || first["doctors"] < 2 || first["binding_codes"] != first["doctors"] || first["staff"] != 1 {
			t.Fatalf("removed %v", first)
		}
		if _, err := stack.DB.StaffByUsername(context.Background(), "admin"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("the sandbox's console admin: %v", err)
		}
		for table, n := range removed() {
			if n != 0 {
				t.Errorf("the second run removed %d of %s", n, table)
			}
		}
	})
	var out, errOut bytes.Buffer
	if code := run([]string{"demo", "remove", "now"}, func(string) string { return "" }, nil, &out, &errOut); code != 2 ||
		!strings.Contains(errOut.String(), "jiayi demo remove") {
		t.Fatalf("demo remove with an argument: %d %s", code, errOut.String())
	}
}
