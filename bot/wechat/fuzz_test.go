package wechat

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage/storagetest"
	"github.com/silenceper/wechat/v2/officialaccount/message"
	"github.com/silenceper/wechat/v2/util"
)

// How FuzzReceive sends its input; the fuzzer picks one by the input's
// second value (modulo fuzzModes).
const (
	fuzzPlain  = iota // the body as a plaintext push
	fuzzSafe          // the body sealed in a safe-mode envelope, validly encrypted and signed
	fuzzCompat        // the body with its valid encryption added, as compatible mode sends it
	fuzzCipher        // the body as the safe-mode envelope itself: whatever ciphertext it holds, signed
	fuzzText          // the body as the words of a well-formed text message from a new sender, in safe mode
	fuzzModes
)

// fuzzSentAt is when every fuzzText message says it was sent.
var fuzzSentAt = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

// fuzzSenders makes each fuzzText message's sender new, so every input
// meets a resident with no history on the shared database.
var fuzzSenders atomic.Int64

// Whatever arrives with a valid signature, in plaintext, safe or compatible
// mode, the webhook answers with a status and never panics: 413 exactly
// for a body over MaxBody, never 403 for a correctly signed request, and a
// 200 carries "success" or a text reply of at most 2048 bytes to the
// sender, sealed and signed in safe mode. A well-formed text message is
// always answered 200. `go test` runs the seeds (every real push in every
// mode, valid and broken ciphertexts, odd words); `go test -run '^$' -fuzz
// '^FuzzReceive$' ./bot/wechat` searches further. One webhook, database
// and Redis serve every input.
func FuzzReceive(f *testing.F) {
	h := newHarness(f, storagetest.Stack{DB: storagetest.SQLite(f), Redis: storagetest.Embedded(f)}, "fuzz")
	files, _ := filepath.Glob(filepath.Join(sharedTestdata(f, "wechat-inbound"), "*.xml"))
	if len(files) == 0 {
		f.Fatal("no real pushes to seed with")
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, m := range []uint8{fuzzPlain, fuzzSafe, fuzzCompat} {
			f.Add(b, m)
		}
		if name := filepath.Base(file); name == "text.xml" || name == "event-subscribe.xml" || name == "voice-recognition.xml" {
			enc, err := encryptFor(h.signer, b)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(envelope(enc), uint8(fuzzCipher))
			f.Add(envelope(enc[:len(enc)-8]), uint8(fuzzCipher))
			f.Add(envelope(strings.ToUpper(enc)), uint8(fuzzCipher))
		}
	}
	f.Add([]byte("<xml><MsgType>event</MsgType><FromUserName>o</FromUserName><Event></Event></xml>"), uint8(fuzzPlain))
	f.Add([]byte("<xml><MsgType>text</MsgType><FromUserName>o</FromUserName><Content>"+strings.Repeat("很", 30000)+"</Content></xml>"), uint8(fuzzPlain))
	f.Add([]byte(strings.Repeat("<xml>", 20000)), uint8(fuzzSafe))
	f.Add([]byte("no xml at all"), uint8(fuzzCompat))
	f.Add([]byte("<xml><Encrypt>AAAA</Encrypt></xml>"), uint8(fuzzCipher))
	f.Add([]byte("<xml><Encrypt>!!not base64!!</Encrypt></xml>"), uint8(fuzzCipher))
	f.Add(envelope(base64.StdEncoding.EncodeToString(make([]byte, 32))), uint8(fuzzCipher))
	f.Add(envelope(base64.StdEncoding.EncodeToString(make([]byte, 33))), uint8(fuzzCipher))
	f.Add([]byte("<xml><Encrypt></Encrypt></xml>"), uint8(fuzzCipher))
	for _, words := range []string{"帮助", "签约", "预约", "", "   ", strings.Repeat("很", 10000), "\x00\x01\x1b[31m", "\xff\xfe",
		"]]></Content><FromUserName>o_other</FromUserName>", "<b>&amp;</b>", "１２３", "😀👍🏻", "胸口疼", "确认 QY0000000000"} {
		f.Add([]byte(words), uint8(fuzzText))
	}
	f.Fuzz(func(t *testing.T, body []byte, how uint8) {
		h.t = t
		m := how % fuzzModes
		var rec *httptest.ResponseRecorder
		var sent []byte      // what went over the wire
		var plaintext []byte // the message inside it, if the test knows it
		replyMode := safe    // how a reply must come back
		var allow403 bool    // a request the test could not sign as WeChat would
		switch m {
		case fuzzPlain:
			sent, plaintext, replyMode = body, body, plain
			rec = h.do(http.MethodPost, h.signedURL(plain, ""), body)
		case fuzzSafe, fuzzCompat:
			enc, err := encryptFor(h.signer, body)
			if err != nil {
				t.Fatal(err)
			}
			plaintext, sent = body, envelope(enc)
			if m == fuzzCompat {
				replyMode, sent = compat, withEnvelope(body, enc)
				// Its own <Encrypt> may be the one the webhook reads.
				allow403 = bytes.Contains(body, []byte("Encrypt"))
			}
			rec = h.do(http.MethodPost, from(h.signedURL(replyMode, enc), body), sent)
		case fuzzCipher:
			var env message.EncryptedXMLMsg
			_ = xml.Unmarshal(body, &env) // the signature covers whatever the webhook will read
			sent = body
			target := h.signedURL(safe, env.EncryptedMsg)
			// A ciphertext that opens names its sender, as WeChat's query would.
			if _, p, err := util.DecryptMsg(h.signer.AppID, env.EncryptedMsg, h.signer.AESKey); err == nil {
				plaintext, target = p, from(target, p)
			}
			rec = h.do(http.MethodPost, target, body)
		case fuzzText:
			n := strconv.FormatInt(fuzzSenders.Add(1), 10)
			sender := "o_fuzz" + n
			var words bytes.Buffer
			if err := xml.EscapeText(&words, body); err != nil {
				t.Fatal(err)
			}
			plaintext = []byte("<xml><ToUserName>gh_jiayi</ToUserName><FromUserName>" + sender + "</FromUserName><CreateTime>" +
				strconv.FormatInt(fuzzSentAt.Unix(), 10) + "</CreateTime><MsgType>text</MsgType><Content>" + words.String() +
				"</Content><MsgId>" + n + "</MsgId></xml>")
			enc, err := encryptFor(h.signer, plaintext)
			if err != nil {
				t.Fatal(err)
			}
			sent = envelope(enc)
			rec = h.do(http.MethodPost, from(h.signedURL(safe, enc), plaintext), sent)
		}
		code := rec.Code
		switch {
		case (code == http.StatusRequestEntityTooLarge) != (len(sent) > MaxBody):
			t.Fatalf("status %d for a body of %d bytes (MaxBody %d)", code, len(sent), MaxBody)
		case code == http.StatusForbidden && allow403:
			return
		case code != http.StatusOK && code != http.StatusBadRequest && code != http.StatusRequestEntityTooLarge:
			t.Fatalf("status %d: %s", code, rec.Body)
		case m == fuzzText && len(sent) <= MaxBody && code != http.StatusOK:
			t.Fatalf("a well-formed text message: status %d: %s", code, rec.Body)
		case code != http.StatusOK:
			return
		}
		r, replied := h.reply(rec, replyMode) // checks the seal, the type and the 2048 bytes
		if !replied || plaintext == nil {
			return
		}
		var in message.MixMessage
		if err := xml.Unmarshal(plaintext, &in); err != nil {
			t.Fatalf("answered a message that does not parse (%v): %+v", err, r)
		}
		if r.ToUserName != string(in.FromUserName) || r.Content == "" {
			t.Fatalf("reply %+v to a message from %q", r, in.FromUserName)
		}
	})
}

// envelope is a safe-mode body around a ciphertext.
func envelope(enc string) []byte {
	return []byte("<xml><ToUserName><![CDATA[gh_jiayi]]></ToUserName><Encrypt><![CDATA[" + enc + "]]></Encrypt></xml>")
}

// withEnvelope is a compatible-mode body: the plaintext with its
// encryption added before the closing tag (or at the end, if it has none).
func withEnvelope(raw []byte, enc string) []byte {
	add := []byte("<Encrypt><![CDATA[" + enc + "]]></Encrypt>")
	i := bytes.LastIndex(raw, []byte("</xml>"))
	if i < 0 {
		return append(append([]byte{}, raw...), add...)
	}
	return append(append(append([]byte{}, raw[:i]...), add...), raw[i:]...)
}
