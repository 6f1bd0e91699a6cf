package main

import (
	"bytes"
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
	"testing"

	"github.com/jiayi-health/jiayi/storage"
)

// The SDK's HTTP client is one per process and the sandbox tests point it
// at their stand-ins, so a push runs in a process of its own: this test
// binary again, which runs the command instead of the tests.
func TestMain(m *testing.M) {
	if os.Getenv("JIAYI_MENU_PUSH_PROCESS") == "1" {
		os.Exit(run([]string{"menu", "push"}, os.Getenv, strings.NewReader(""), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestMenuPushSendsTheMenuToWeChat(t *testing.T) {
	var mu sync.Mutex
	var pushed []byte
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/cgi-bin/stable_token":
			fmt.Fprint(w, `{"access_token":"menu-test-token","expires_in":7200}`)
		case "/cgi-bin/menu/create":
			body, _ := io.ReadAll(r.Body)
			mu.Lock()
			pushed = body
			mu.Unlock()
			fmt.Fprint(w, `{"errcode":0,"errmsg":"ok"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer api.Close()
	redis, err := storage.StartEmbeddedRedis()
	if err != nil {
		t.Fatal(err)
	}
	defer redis.Close()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "JIAYI_MENU_PUSH_PROCESS=1", "JIAYI_WECHAT_API="+api.URL,
		"JIAYI_WECHAT_SECRET=menu-test-secret", "JIAYI_WECHAT_APPID=wx0123456789abcdef", "JIAYI_WECHAT_TOKEN=menutest",
		"JIAYI_PII_KEY="+strings.Repeat("ab", 32), "JIAYI_REDIS_URL="+redis.URL(),
		"JIAYI_DATABASE_URL=sqlite:"+filepath.Join(t.TempDir(), "menu.db"))
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("menu pushed")) {
		t.Fatalf("menu push: %v\n%s", err, out)
	}
	var menu struct {
		Button []struct {
			Name      string `json:"name"`
			SubButton []struct {
				Type, Name, Key string
			} `json:"sub_button"`
		} `json:"button"`
	}
	mu.Lock()
	defer mu.Unlock()
	if err := json.Unmarshal(pushed, &menu); err != nil || len(menu.Button) != 3 || menu.Button[0].Name != "签约" {
		t.Fatalf("WeChat received: %s (%v)", pushed, err)
	}
	if b := menu.Button[1].SubButton[0]; b.Type != "click" || b.Key != "预约" {
		t.Fatalf("a button below: %+v", b)
	}
}

// In sandbox mode there is no account to push to, and the command says so;
// show prints the menu.
func TestMenuInSandboxMode(t *testing.T) {
	env := func(k string) string {
		if k == "JIAYI_DATABASE_URL" {
			return "sqlite:" + filepath.Join(t.TempDir(), "m.db")
		}
		return ""
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"menu", "push"}, env, strings.NewReader(""), &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "sandbox mode") {
		t.Fatalf("push in sandbox: %d %s", code, errOut.String())
	}
	if code := run([]string{"menu", "show"}, env, strings.NewReader(""), &out, &errOut); code != 0 || !strings.Contains(out.String(), `"key": "我的预约"`) {
		t.Fatalf("show: %d %s", code, out.String())
	}
}
