package load

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/bot/wechat"
)

// BenchmarkEcho is the bare echo webhook through the same Phone that
// `jiayi load` sends with, one message at a time: the floor a reply's
// cost is compared with.
func BenchmarkEcho(b *testing.B) {
	for _, key := range []string{"", testAESKey} {
		name := "plaintext"
		if key != "" {
			name = "safe"
		}
		b.Run(name, func(b *testing.B) {
			web := httptest.NewServer(Echo("tok", "wxload", key))
			defer web.Close()
			phone := &wechat.Phone{Base: web.URL, Signer: wechat.Signer{Token: "tok", AppID: "wxload", AESKey: key, MaxSkew: time.Hour}}
			b.ReportAllocs()
			for b.Loop() {
				if reply, err := phone.Send(context.Background(), "o_bench", text("帮助")); err != nil || reply != "帮助" {
					b.Fatalf("%q %v", reply, err)
				}
			}
		})
	}
}
