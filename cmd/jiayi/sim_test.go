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
