package wechat

import (
	"context"
	"testing"

	"github.com/jiayi-health/jiayi/bot/wechat/sandbox"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// Two sandboxes on one shared Redis (or a sandbox restarted) each have a
// stand-in of their own: a token one stand-in issued is never handed to the
// other's client, whose pushes would otherwise fail until it expired.
func TestSandboxesSharingRedisKeepTheirOwnTokens(t *testing.T) {
	storagetest.ForEachRedis(t, func(t *testing.T, r *storage.Redis) {
		UseTransport(sandbox.Transport{})
		ctx := context.Background()
		first := sandbox.New()
		if err := NewClient(Account{AppID: "wxsandbox", Secret: first.Secret()}, r.Client, r.Prefix).SendText(ctx, "o_a", "你好"); err != nil {
			t.Fatal(err)
		}
		first.Close() // the first process is gone; its token is still in Redis
		second := sandbox.New()
		t.Cleanup(second.Close)
		if err := NewClient(Account{AppID: "wxsandbox", Secret: second.Secret()}, r.Client, r.Prefix).SendText(ctx, "o_a", "你好"); err != nil {
			t.Fatalf("the restarted sandbox cannot send: %v", err)
		}
		if got := second.Outbox("o_a"); len(got) != 1 {
			t.Fatalf("second stand-in received %d messages", len(got))
		}
	})
}
