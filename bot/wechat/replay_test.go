package wechat

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
	"github.com/prometheus/client_golang/prometheus"
)

// WeChat's signature covers the token, timestamp and nonce, not the body: a
// captured query string must not carry another body while it is fresh. The
// same request again is WeChat's retry and gets the same answer.
func TestCapturedRequestCannotCarryAnotherBody(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, stack storagetest.Stack) {
		h := newHarness(t, stack, "replay")
		captured := h.signedURL(plain, "")
		genuine := text("o_victim", "帮助", 501)
		first := h.do(http.MethodPost, captured, genuine)
		if r, ok := h.reply(first, plain); !ok || r.Content != words(t, "help") {
			t.Fatalf("the genuine request: %+v", r)
		}
		if r, ok := h.reply(h.do(http.MethodPost, captured, genuine), plain); !ok || r.Content != words(t, "help") {
			t.Fatalf("WeChat's retry of it: %+v", r)
		}
		forged := text("o_victim", "签约", 502)
		if rec := h.do(http.MethodPost, captured, forged); rec.Code != http.StatusForbidden {
			t.Fatalf("another body under a used signature: status %d %s", rec.Code, rec.Body)
		}
		other := text("o_other", "帮助", 503)
		if rec := h.do(http.MethodPost, captured, other); rec.Code != http.StatusForbidden {
			t.Fatalf("another sender under a used signature: status %d", rec.Code)
		}
		if s, _ := h.redis.LoadChatSession(context.Background(), "o_other"); s.Version != 0 {
			t.Fatal("the forged request was run")
		}
	})
}

// The query's openid is WeChat's word for who sent the message; a body
// naming someone else is refused.
func TestOpenIDMustNameTheSender(t *testing.T) {
	h := newHarness(t, storagetest.Stack{DB: storagetest.SQLite(t), Redis: storagetest.Embedded(t)}, "openid")
	msg := text("o_real", "帮助", 601)
	for name, target := range map[string]string{
		"someone else": strings.Replace(h.signedURL(plain, ""), anySender, "openid=o_someone&", 1),
		"none":         strings.Replace(h.signedURL(plain, ""), anySender, "", 1),
	} {
		if rec := h.do(http.MethodPost, target, msg); rec.Code != http.StatusForbidden {
			t.Errorf("openid %s: status %d", name, rec.Code)
		}
	}
	if _, err := h.stack.DB.WeChatUser(context.Background(), "o_real"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a refused request was run: %v", err)
	}
}

// With an AES key set only encrypted messages are taken, in safe or
// compatible mode: whoever lacks the key cannot write a message at all.
// AcceptPlaintext lets plaintext in while an account moves to safe mode.
func TestWithAnAESKeyOnlyEncryptedMessagesAreTaken(t *testing.T) {
	h := newHarness(t, storagetest.Stack{DB: storagetest.SQLite(t), Redis: storagetest.Embedded(t)}, "aesonly")
	strict := &Webhook{Signer: h.signer, Turns: h.turns, Metrics: NewMetrics(prometheus.NewRegistry()), Log: h.turns.Log, Requests: h.redis}
	h.router.POST("/strict", strict.Receive)
	at := func(rec string) string { return strings.Replace(rec, "/wechat", "/strict", 1) }
	msg := text("o_aes", "帮助", 701)
	if rec := h.do(http.MethodPost, at(h.signedURL(plain, "")), msg); rec.Code != http.StatusForbidden {
		t.Fatalf("plaintext with a key set: status %d", rec.Code)
	}
	for _, m := range []mode{safe, compat} {
		enc, err := encryptFor(h.signer, msg)
		if err != nil {
			t.Fatal(err)
		}
		target := at(from(h.signedURL(m, enc), msg))
		body := "<xml><ToUserName><![CDATA[gh_jiayi]]></ToUserName><Encrypt><![CDATA[" + enc + "]]></Encrypt></xml>"
		if rec := h.do(http.MethodPost, target, []byte(body)); rec.Code != http.StatusOK {
			t.Fatalf("%s mode: status %d", m, rec.Code)
		}
	}
	// The harness's own webhook accepts plaintext, as the setting allows.
	if r, ok := h.reply(h.post(text("o_aes", "帮助", 702), plain), plain); !ok || r.Content != words(t, "help") {
		t.Fatalf("plaintext accepted by setting: %+v", r)
	}
}

// WeChat may encrypt its retry of a message afresh: under the same signature
// it is the same message, and is answered, not refused.
func TestSafeModeRetryEncryptedAfreshIsTheSameRequest(t *testing.T) {
	h := newHarness(t, storagetest.Stack{DB: storagetest.SQLite(t), Redis: storagetest.Embedded(t)}, "reenc")
	msg := text("o_reenc", "帮助", 801)
	target := from(h.signedURL(plain, ""), msg) // timestamp, nonce and openid; msg_signature per body below
	q := target[strings.Index(target, "?")+1:]
	ts := between(q, "timestamp=", "&")
	nonce := between(q, "nonce=", "&")
	for i := range 2 {
		enc, err := encryptFor(h.signer, msg) // a new random prefix each time
		if err != nil {
			t.Fatal(err)
		}
		u := target + "&encrypt_type=aes&msg_signature=" + sign(h.signer.Token, ts, nonce, enc)
		body := "<xml><ToUserName><![CDATA[gh_jiayi]]></ToUserName><Encrypt><![CDATA[" + enc + "]]></Encrypt></xml>"
		if r, ok := h.reply(h.do(http.MethodPost, u, []byte(body)), safe); !ok || r.Content != words(t, "help") {
			t.Fatalf("delivery %d: %+v", i+1, r)
		}
	}
}

func between(s, after, before string) string {
	_, rest, _ := strings.Cut(s, after)
	v, _, _ := strings.Cut(rest, before)
	return v
}

// The per-sender limit counts a retried message once and never holds back
// an unfollow, which withdraws what waits to be sent.
func TestSenderLimitCountsMessagesNotDeliveries(t *testing.T) {
	h := newHarness(t, storagetest.Stack{DB: storagetest.SQLite(t), Redis: storagetest.Embedded(t)}, "limit")
	limited := &Webhook{Signer: h.signer, Turns: h.turns, Metrics: NewMetrics(prometheus.NewRegistry()), Log: h.turns.Log,
		Requests: h.redis, Senders: h.redis, MaxPerMinute: 2, AcceptPlaintext: true}
	h.router.POST("/limited", limited.Receive)
	post := func(body []byte) string {
		rec := h.do(http.MethodPost, strings.Replace(h.signedURL(plain, ""), "/wechat", "/limited", 1), body)
		return rec.Body.String()
	}
	first := text("o_lim", "帮助", 901)
	for range 3 { // WeChat's delivery and two retries: one message
		if got := post(first); !strings.Contains(got, "签约") {
			t.Fatalf("a retried message was limited: %s", got)
		}
	}
	post(text("o_lim", "帮助", 902))
	if got := post(text("o_lim", "帮助", 903)); !strings.Contains(got, words(t, "slow_down")) {
		t.Fatalf("the third message in the minute: %s", got)
	}
	if got := post(text("o_lim", "帮助", 904)); got != "success" {
		t.Fatalf("the fourth message in the minute: %s", got)
	}
	post(event("o_lim", "unsubscribe", ""))
	if u, err := h.stack.DB.WeChatUser(context.Background(), "o_lim"); err != nil || u.Subscribed {
		t.Fatalf("an unfollow past the limit was not run: %+v %v", u, err)
	}

	// With no room to run a turn, a sender is counted before waiting for
	// it: the messages within the limit wait and are answered "success",
	// and one over it is told to slow down at once, not queued.
	limited.Slots, limited.QueueWait = make(chan struct{}, 1), 20*time.Millisecond
	limited.Slots <- struct{}{}
	for n := range 2 {
		if got := post(text("o_full", "帮助", 911+int64(n))); got != "success" {
			t.Fatalf("message %d with no room: %s", n+1, got)
		}
	}
	if got := post(text("o_full", "帮助", 913)); !strings.Contains(got, words(t, "slow_down")) {
		t.Fatalf("the third message with no room: %s", got)
	}
	<-limited.Slots
	h.turns.Wait()
	if got := len(h.standIn.Outbox("o_full")); got != 2 {
		t.Fatalf("%d late replies to o_full, want the 2 queued messages' only", got)
	}
}
