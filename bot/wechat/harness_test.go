package wechat

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jiayi-health/jiayi/bot/turn"
	"github.com/jiayi-health/jiayi/bot/wechat/sandbox"
	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/silenceper/wechat/v2/officialaccount/message"
)

// testAESKey is a synthetic EncodingAESKey for the tests' own account.
const testAESKey = "jiayiTestKeyJiayiTestKeyJiayiTestKey0123456"

type harness struct {
	t       testing.TB
	stack   storagetest.Stack
	redis   *storage.Redis
	signer  Signer
	turns   *turn.Runner
	standIn *sandbox.StandIn
	router  *gin.Engine
	log     *bytes.Buffer
	hook    *Webhook
}

// newHarness builds the webhook on a stack; keyspace separates harnesses that
// share one Redis.
func newHarness(t testing.TB, stack storagetest.Stack, keyspace string) *harness {
	t.Helper()
	h := &harness{t: t, stack: stack, log: &bytes.Buffer{}}
	h.redis = storage.NewRedis(stack.Redis.Client, stack.Redis.Prefix+":"+keyspace)
	h.signer = Signer{Token: "jiayi", AppID: "wxsandbox", AESKey: testAESKey}
	h.standIn = sandbox.New()
	t.Cleanup(h.standIn.Close)
	UseTransport(sandbox.Transport{})
	client := NewClient(Account{AppID: "wxsandbox", Secret: h.standIn.Secret()}, stack.Redis.Client, h.redis.Prefix)
	if err := profile.Ensure(context.Background(), stack.DB, "national"); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(h.log, nil))
	h.turns = &turn.Runner{
		Stores:  turn.Stores{DB: stack.DB, Redis: h.redis},
		Engine:  &flows.Engine{DB: stack.DB, Sealer: testSealer(t)},
		Deliver: client.SendText,
		Log:     logger,
	}
	// Plaintext is still taken with the key set, so both modes can be tried
	// on one harness; TestWithAnAESKeyOnlyEncryptedMessagesAreTaken turns it off.
	hook := &Webhook{Signer: h.signer, Turns: h.turns, Metrics: NewMetrics(prometheus.NewRegistry()), Log: logger,
		Requests: h.redis, AcceptPlaintext: true}
	h.hook = hook
	gin.SetMode(gin.ReleaseMode)
	h.router = gin.New() // no recovery: a panic fails the test
	h.router.GET("/wechat", hook.Verify)
	h.router.POST("/wechat", hook.Receive)
	t.Cleanup(h.turns.Wait)
	return h
}

type mode string

const (
	plain  mode = "plaintext"
	compat mode = "compatible"
	safe   mode = "safe"
)

// nonces makes every signed request's nonce new, as WeChat's are.
var nonces atomic.Int64

// anySender stands in a signed URL for the openid WeChat puts in the query;
// do replaces it with the sender the body names.
const anySender = "openid=o&"

// signedURL is the query WeChat would send for this body.
func (h *harness) signedURL(m mode, encrypted string) string {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	nonce := "n" + strconv.FormatInt(nonces.Add(1), 10)
	u := "/wechat?" + anySender + "signature=" + sign(h.signer.Token, ts, nonce) + "&timestamp=" + ts + "&nonce=" + nonce
	if m != plain {
		u += "&encrypt_type=aes&msg_signature=" + sign(h.signer.Token, ts, nonce, encrypted)
	}
	return u
}

// from names the sender of a plaintext message, as WeChat's query does.
func from(target string, raw []byte) string {
	var msg struct{ FromUserName string }
	if xml.Unmarshal(raw, &msg) != nil || msg.FromUserName == "" {
		return target
	}
	return strings.Replace(target, anySender, "openid="+url.QueryEscape(msg.FromUserName)+"&", 1)
}

// post sends a push as WeChat would in the given mode.
func (h *harness) post(raw []byte, m mode) *httptest.ResponseRecorder {
	h.t.Helper()
	body, target := raw, ""
	switch m {
	case plain:
		target = from(h.signedURL(plain, ""), raw)
	default:
		enc, err := encryptFor(h.signer, raw)
		if err != nil {
			h.t.Fatal(err)
		}
		target = from(h.signedURL(m, enc), raw)
		envelope := "<Encrypt><![CDATA[" + enc + "]]></Encrypt>"
		if m == safe {
			body = []byte("<xml><ToUserName><![CDATA[gh_jiayi]]></ToUserName>" + envelope + "</xml>")
		} else {
			i := bytes.LastIndex(raw, []byte("</xml>"))
			body = append(append(append([]byte{}, raw[:i]...), envelope...), raw[i:]...)
		}
	}
	return h.do(http.MethodPost, target, body)
}

func (h *harness) do(method, target string, body []byte) *httptest.ResponseRecorder {
	target = from(target, body)
	rec := httptest.NewRecorder()
	h.router.ServeHTTP(rec, httptest.NewRequest(method, target, bytes.NewReader(body)))
	return rec
}

func encryptFor(s Signer, raw []byte) (string, error) {
	enc, _, _, err := s.Encrypt(raw, "x")
	return enc, err
}

type textReply struct {
	ToUserName, FromUserName, MsgType, Content string
}

// reply reads a response the way WeChat would: "success" is no reply; in
// safe mode the reply must be sealed, signed and for this account.
func (h *harness) reply(rec *httptest.ResponseRecorder, m mode) (textReply, bool) {
	h.t.Helper()
	if rec.Code != http.StatusOK {
		h.t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	body, _ := io.ReadAll(rec.Body)
	if string(body) == "success" {
		return textReply{}, false
	}
	if m != plain {
		var env message.ResponseEncryptedXMLMsg
		if err := xml.Unmarshal(body, &env); err != nil || env.EncryptedMsg == "" {
			h.t.Fatalf("safe-mode reply not sealed: %s", body)
		}
		var err error
		body, err = h.signer.Decrypt(env.MsgSignature, strconv.FormatInt(env.Timestamp, 10), env.Nonce, env.EncryptedMsg)
		if err != nil {
			h.t.Fatalf("safe-mode reply does not verify: %v", err)
		}
	}
	var r textReply
	if err := xml.Unmarshal(body, &r); err != nil {
		h.t.Fatalf("reply is not XML: %s", body)
	}
	if r.MsgType != "text" || len(r.Content) > 2048 {
		h.t.Fatalf("reply type %q, %d bytes", r.MsgType, len(r.Content))
	}
	return r, true
}

// text builds a text push.
func text(from, content string, msgID int64) []byte {
	return []byte("<xml><ToUserName><![CDATA[gh_jiayi]]></ToUserName><FromUserName><![CDATA[" + from +
		"]]></FromUserName><CreateTime>" + strconv.FormatInt(time.Now().Unix(), 10) +
		"</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[" + content +
		"]]></Content><MsgId>" + strconv.FormatInt(msgID, 10) + "</MsgId></xml>")
}

func event(from, ev, key string) []byte {
	return []byte("<xml><ToUserName>gh_jiayi</ToUserName><FromUserName>" + from + "</FromUserName><CreateTime>" +
		strconv.FormatInt(time.Now().Unix(), 10) + "</CreateTime><MsgType>event</MsgType><Event>" + ev +
		"</Event><EventKey>" + key + "</EventKey></xml>")
}

func testSealer(t testing.TB) *storage.Sealer {
	s, err := storage.NewSealer(bytes.Repeat([]byte{42}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
