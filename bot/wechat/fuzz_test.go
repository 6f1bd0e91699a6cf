package wechat

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// Whatever arrives with a valid signature, the webhook answers with a status
// and never panics. `go test` runs the seeds (every real push); run
// `go test -fuzz FuzzReceive ./bot/wechat` to search further.
func FuzzReceive(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(sharedTestdata(f, "wechat-inbound"), "*.xml"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b, true)
	}
	f.Add([]byte("<xml><MsgType>event</MsgType><FromUserName>o</FromUserName><Event></Event></xml>"), false)
	f.Add([]byte("<xml><Encrypt>AAAA</Encrypt></xml>"), true)
	f.Fuzz(func(t *testing.T, body []byte, encrypted bool) {
		h := newHarness(t, storagetest.Stack{DB: storagetest.SQLite(t), Redis: storagetest.Embedded(t)}, "fuzz")
		m := plain
		if encrypted {
			m = safe
		}
		var rec interface{ Result() *http.Response }
		if m == plain {
			rec = h.do(http.MethodPost, h.signedURL(plain, ""), body)
		} else {
			rec = h.post(body, safe)
		}
		switch code := rec.Result().StatusCode; code {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d", code)
		}
	})
}
