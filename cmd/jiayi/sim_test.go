package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jiayi-health/jiayi/bot"
	"github.com/jiayi-health/jiayi/bot/config"
)

// With an AES key the server takes only encrypted messages; the simulator,
// given the same key, speaks safe mode and reads the sealed replies.
func TestSimSpeaksSafeModeWithAnAESKey(t *testing.T) {
	env := map[string]string{
		"JIAYI_DATABASE_URL":   "sqlite:" + filepath.Join(t.TempDir(), "safe.db"),
		"JIAYI_WECHAT_AES_KEY": "jiayiTestKeyJiayiTestKeyJiayiTestKey0123456",
	}
	web := sandboxWeb(t, env)

	var out, errOut bytes.Buffer
	if code := run([]string{"sim", "-url", web.URL, "-openid", "o_sim_safe", "-follow"}, func(k string) string { return env[k] },
		strings.NewReader("帮助\n/quit\n"), &out, &errOut); code != 0 {
		t.Fatalf("sim exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "欢迎关注") || !strings.Contains(out.String(), "帮助 —— 再看一次") {
		t.Fatalf("safe-mode chat:\n%s", out.String())
	}
	// Coming back as the same user does not follow again.
	out.Reset()
	if code := run([]string{"sim", "-url", web.URL, "-openid", "o_sim_safe"}, func(k string) string { return env[k] },
		strings.NewReader("帮助\n/quit\n"), &out, &errOut); code != 0 || strings.Contains(out.String(), "欢迎关注") ||
		!strings.Contains(out.String(), "帮助 —— 再看一次") {
		t.Fatalf("the same user again: %d\n%s", code, out.String())
	}
	// Without the key the simulator writes plaintext, which is refused.
	errOut.Reset()
	if code := run([]string{"sim", "-url", web.URL}, func(string) string { return "" }, strings.NewReader(""), &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), "403") {
		t.Fatalf("plaintext to a safe-mode server: exit %d, %s", code, errOut.String())
	}
	// A key that cannot be one is named before anything is sent.
	errOut.Reset()
	if code := run([]string{"sim", "-url", web.URL}, func(k string) string { return map[string]string{"JIAYI_WECHAT_AES_KEY": "short"}[k] },
		strings.NewReader(""), &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "JIAYI_WECHAT_AES_KEY must be") {
		t.Fatalf("a short key: exit %d, %s", code, errOut.String())
	}
}

// sandboxWeb serves a sandbox server configured by env over HTTP, as jiayi
// serve would, for the simulator to talk to.
func sandboxWeb(t *testing.T, env map[string]string) *httptest.Server {
	t.Helper()
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	srv, err := bot.New(context.Background(), cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)), bot.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	web := httptest.NewServer(srv.Handler())
	t.Cleanup(web.Close)
	return web
}

// A script read from stdin plays as typed, each line shown after its
// prompt; -as names the same person every run without putting a phone
// number in the openid; /clock moves the sandbox clock.
func TestSimRunsScriptsAsOnePerson(t *testing.T) {
	env := map[string]string{"JIAYI_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "script.db")}
	web := sandboxWeb(t, env)
	play := func(script string) (string, string, int) {
		var out, errOut bytes.Buffer
		code := run([]string{"sim", "-url", web.URL, "-as", "13800000000"}, func(k string) string { return env[k] },
			strings.NewReader(script), &out, &errOut)
		return out.String(), errOut.String(), code
	}
	out, errOut, code := play("/follow\n# a comment is skipped\n帮助\n/clock 26h\n/clock next solar_term\n签约\n")
	if code != 0 || !strings.Contains(out, "欢迎关注") || !strings.Contains(out, "我> 帮助\n") ||
		!strings.Contains(out, "帮助 —— 再看一次") || strings.Count(out, "[时钟] 现在是") != 2 || !strings.Contains(out, "T08:00:00+08:00") {
		t.Fatalf("script: exit %d %s\n%s", code, errOut, out)
	}
	if strings.Contains(out, "Type a message") {
		t.Fatalf("a script's transcript carries the terminal's help:\n%s", out)
	}
	// The same person again: the signing the first run began goes on.
	out, _, code = play("1\n")
	if code != 0 || !strings.Contains(out, "请告诉我您的姓名") {
		t.Fatalf("second run is not the same person: exit %d\n%s", code, out)
	}
	for addr, want := range map[string]string{"": "http://127.0.0.1:8080", ":18080": "http://127.0.0.1:18080",
		"0.0.0.0:9000": "http://127.0.0.1:9000", "[::1]:9000": "http://[::1]:9000"} {
		if got := defaultSimURL(addr); got != want {
			t.Errorf("JIAYI_ADDR %q: %s, want %s", addr, got, want)
		}
	}
	if id := simOpenID("13800000000"); strings.Contains(id, "13800000000") || id != simOpenID("13800000000") || id == simOpenID("13800000001") {
		t.Fatalf("-as openid %q", id)
	}
	if _, errOut, code := play("/clock yesterday\n"); code != 1 || !strings.Contains(errOut, "/clock yesterday") {
		t.Fatalf("a clock move that cannot be: exit %d %s", code, errOut)
	}
	var errOut2 bytes.Buffer
	if code := run([]string{"sim", "-url", web.URL, "-as", "x", "-openid", "o_y"}, func(string) string { return "" },
		strings.NewReader(""), &bytes.Buffer{}, &errOut2); code != 2 {
		t.Fatalf("-as with -openid: exit %d %s", code, errOut2.String())
	}
}
