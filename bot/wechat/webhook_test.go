package wechat

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
	"github.com/jiayi-health/jiayi/templates"
	"github.com/prometheus/client_golang/prometheus"
)

// expectedReply names the message each real push is answered with; files
// not listed are answered "success" with no message.
var expectedReply = map[string]string{
	"text.xml":                          "not_understood",
	"voice-recognition.xml":             "not_understood", // counts as the words said
	"voice.xml":                         "unheard",        // no recognition: asked to say it again
	"image.xml":                         "unsupported",
	"video.xml":                         "unsupported",
	"shortvideo.xml":                    "unsupported",
	"location.xml":                      "unsupported",
	"link.xml":                          "unsupported",
	"event-subscribe.xml":               "welcome",
	"event-subscribe-qrscene.xml":       "welcome",
	"event-subscribe-last-trade-no.xml": "welcome",
	"event-subscribe-scanbarcode.xml":   "welcome",
	"event-subscribe-scanimage.xml":     "welcome",
	"event-scan.xml":                    "help",
	"event-click.xml":                   "not_understood", // EVENTKEY is no keyword
}

func words(t *testing.T, name string) string {
	t.Helper()
	s, err := templates.Message(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	// These tests' centre records no phone: a refusal names the counter.
	call, err := templates.Message("clinic_phone", map[string]any{"Phone": ""})
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(s, templates.ClinicPhone, call)
}

func TestEveryRealPushIsAnswered(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(sharedTestdata(t, "wechat-inbound"), "*.xml"))
	if err != nil || len(files) != 47 {
		t.Fatalf("found %d test pushes, want 47 (%v)", len(files), err)
	}
	storagetest.ForEachStack(t, func(t *testing.T, stack storagetest.Stack) {
		for _, m := range []mode{plain, compat, safe} {
			for _, f := range files {
				name := filepath.Base(f)
				t.Run(string(m)+"/"+name, func(t *testing.T) {
					raw, err := os.ReadFile(f)
					if err != nil {
						t.Fatal(err)
					}
					h := newHarness(t, stack, string(m)+name)
					r, replied := h.reply(h.post(raw, m), m)
					want, ok := expectedReply[name]
					switch {
					case !ok && replied:
						t.Fatalf("answered %q, want success", r.Content)
					case ok && !replied:
						t.Fatalf("answered success, want %s", want)
					case ok && r.Content != words(t, want):
						t.Fatalf("answered %q, want %s", r.Content, want)
					case ok && (r.ToUserName == "" || !bytes.Contains(raw, []byte(r.ToUserName))):
						t.Fatalf("reply addressed to %q", r.ToUserName)
					}
				})
			}
		}
	})
}

func TestVerifyEchoesOnlyForAValidSignature(t *testing.T) {
	h := newHarness(t, storagetest.Stack{DB: storagetest.SQLite(t), Redis: storagetest.Embedded(t)}, "v")
	good := h.signedURL(plain, "") + "&echostr=hello123"
	if rec := h.do(http.MethodGet, good, nil); rec.Code != 200 || rec.Body.String() != "hello123" {
		t.Fatalf("valid check: %d %q", rec.Code, rec.Body)
	}
	forged := strings.Replace(good, "signature=", "signature=0", 1)
	if rec := h.do(http.MethodGet, forged, nil); rec.Code != http.StatusForbidden || strings.Contains(rec.Body.String(), "hello123") {
		t.Fatalf("forged check: %d %q", rec.Code, rec.Body)
	}
	if rec := h.do(http.MethodGet, "/wechat?echostr=hello123", nil); rec.Code != http.StatusForbidden {
		t.Fatalf("unsigned check: %d", rec.Code)
	}
}

func TestBadInputIsRefusedWithoutWork(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, stack storagetest.Stack) {
		h := newHarness(t, stack, "bad")
		msg := text("o_bad", "帮助", 1)
		enc, _ := encryptFor(h.signer, msg)
		safeBody := []byte("<xml><ToUserName>gh</ToUserName><Encrypt><![CDATA[" + enc + "]]></Encrypt></xml>")
		ok := h.signedURL // each case's signature is new: a used one is refused with another body
		cases := []struct {
			name   string
			target string
			body   []byte
			want   int
		}{
			{"forged signature", strings.Replace(ok(plain, ""), "signature=", "signature=f", 1), msg, http.StatusForbidden},
			{"no signature", "/wechat", msg, http.StatusForbidden},
			{"stale timestamp", staleURL(h), msg, http.StatusForbidden},
			{"forged msg_signature", h.signedURL(safe, enc+"x"), safeBody, http.StatusForbidden},
			{"body over 64 KiB", ok(plain, ""), append(bytes.Repeat([]byte(" "), MaxBody), msg...), http.StatusRequestEntityTooLarge},
			{"malformed XML", ok(plain, ""), []byte("<xml><FromUserName>o_bad</FromUser"), http.StatusBadRequest},
			{"not XML", ok(plain, ""), []byte("{\"hello\":1}"), http.StatusBadRequest},
			{"no sender", ok(plain, ""), []byte("<xml><MsgType>text</MsgType></xml>"), http.StatusBadRequest},
			{"empty body", ok(plain, ""), nil, http.StatusBadRequest},
			{"unknown encrypt_type", ok(plain, "") + "&encrypt_type=rot13", msg, http.StatusBadRequest},
			{"safe mode without Encrypt", h.signedURL(safe, ""), msg, http.StatusBadRequest},
			{"undecryptable Encrypt", h.signedURL(safe, "bm90IGEgY2lwaGVydGV4dA=="),
				[]byte("<xml><Encrypt>bm90IGEgY2lwaGVydGV4dA==</Encrypt></xml>"), http.StatusBadRequest},
		}
		for _, c := range cases {
			if rec := h.do(http.MethodPost, c.target, c.body); rec.Code != c.want {
				t.Errorf("%s: status %d, want %d", c.name, rec.Code, c.want)
			}
		}
		if _, err := stack.DB.WeChatUser(context.Background(), "o_bad"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("a refused request left a trace: %v", err)
		}
		if s, _ := h.redis.LoadChatSession(context.Background(), "o_bad"); s.Version != 0 {
			t.Fatalf("a refused request touched the session: %+v", s)
		}
		// The same message, signed properly, is accepted.
		if r, ok := h.reply(h.post(msg, plain), plain); !ok || r.Content != words(t, "help") {
			t.Fatalf("genuine message: %+v", r)
		}
	})
}

func staleURL(h *harness) string {
	ts := "1409735669"
	return "/wechat?signature=" + sign(h.signer.Token, ts, "n") + "&timestamp=" + ts + "&nonce=n"
}

func TestSafeModeMessageWithoutAKeyIsRefused(t *testing.T) {
	h := newHarness(t, storagetest.Stack{DB: storagetest.SQLite(t), Redis: storagetest.Embedded(t)}, "nokey")
	msg := text("o_nokey", "帮助", 1)
	enc, _ := encryptFor(h.signer, msg)
	h.signer.AESKey = ""
	hook := &Webhook{Signer: h.signer, Turns: h.turns, Metrics: NewMetrics(prometheus.NewRegistry()), Log: h.turns.Log, Requests: h.redis}
	h.router.POST("/nokey", hook.Receive)
	target := strings.Replace(h.signedURL(safe, enc), "/wechat", "/nokey", 1)
	rec := h.do(http.MethodPost, target, []byte("<xml><Encrypt>"+enc+"</Encrypt></xml>"))
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("status %d", rec.Code)
	}
}

func TestRetriedMessageRunsOnce(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, stack storagetest.Stack) {
		h := newHarness(t, stack, "retry")
		msg := text("o_retry", "帮助", 42)
		first, _ := h.reply(h.post(msg, plain), plain)
		// WeChat's retries, one of them arriving in safe mode.
		for _, m := range []mode{plain, safe} {
			again, ok := h.reply(h.post(msg, m), m)
			if !ok || again.Content != first.Content {
				t.Fatalf("retry answered %q, want the first reply", again.Content)
			}
		}
		// Retries arriving together with each other.
		var wg sync.WaitGroup
		for range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if rec := h.post(msg, plain); rec.Code != 200 {
					t.Errorf("concurrent retry: %d", rec.Code)
				}
			}()
		}
		wg.Wait()
		s, err := h.redis.LoadChatSession(context.Background(), "o_retry")
		if err != nil || s.Version != 1 {
			t.Fatalf("session version %d after one message and 7 retries, want 1 (%v)", s.Version, err)
		}
	})
}

func TestFirstDeliveryRacingItsRetryRunsOnce(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, stack storagetest.Stack) {
		h := newHarness(t, stack, "race")
		msg := text("o_race", "帮助", 7)
		var wg sync.WaitGroup
		replies := make([]string, 6)
		for i := range replies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, _ := h.reply(h.post(msg, plain), plain)
				replies[i] = r.Content
			}()
		}
		wg.Wait()
		for i, r := range replies {
			if r != words(t, "help") {
				t.Errorf("delivery %d answered %q", i, r)
			}
		}
		if s, _ := h.redis.LoadChatSession(context.Background(), "o_race"); s.Version != 1 {
			t.Fatalf("session version %d, want 1", s.Version)
		}
	})
}

func TestOneUsersMessagesRunOneAfterTheOther(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, stack storagetest.Stack) {
		h := newHarness(t, stack, "serial")
		const n = 10
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, ok := h.reply(h.post(text("o_serial", "帮助", int64(100+i)), plain), plain)
				if !ok || r.Content != words(t, "help") {
					t.Errorf("message %d answered %q", i, r.Content)
				}
			}()
		}
		wg.Wait()
		// An interleaved pair would have hit the session's version check and
		// failed; every message ran, each on the state the last one left.
		if s, _ := h.redis.LoadChatSession(context.Background(), "o_serial"); s.Version != n {
			t.Fatalf("session version %d, want %d", s.Version, n)
		}
		if strings.Contains(h.log.String(), "turn failed") {
			t.Fatalf("a turn failed: %s", h.log)
		}
	})
}

func TestSlowReplyGoesOutAsCustomerServiceMessage(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, stack storagetest.Stack) {
		h := newHarness(t, stack, "late")
		h.turns.Deadline = 150 * time.Millisecond
		// Someone else holds the user's lock, so this turn cannot finish in time.
		unlock, err := h.redis.LockUser(context.Background(), "o_late", 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		msg := text("o_late", "帮助", 9)
		if _, replied := h.reply(h.post(msg, plain), plain); replied {
			t.Fatal("a turn past its deadline answered passively; want success")
		}
		if got := h.standIn.Outbox("o_late"); len(got) != 0 {
			t.Fatalf("sent before the turn ran: %+v", got)
		}
		unlock()
		var sent []string
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if out := h.standIn.Outbox("o_late"); len(out) > 0 {
				for _, m := range out {
					sent = append(sent, m.Kind+":"+m.Text)
				}
				break
			}
		}
		if len(sent) != 1 || sent[0] != "customer-service:"+words(t, "help") {
			t.Fatalf("sent %q, want the help text once as a customer-service message", sent)
		}
		// A retry now gets "success", not the reply a second time.
		h.turns.Wait()
		if r, replied := h.reply(h.post(msg, plain), plain); replied {
			t.Fatalf("retry after late delivery answered %q", r.Content)
		}
	})
}

// With every slot taken, a message is answered "success" once it has
// waited QueueWait, and worked on when a slot frees: its reply arrives as a
// customer-service message, once, and a retry of it gets "success".
func TestABusyInstanceAnswersAtOnceAndRepliesLater(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, stack storagetest.Stack) {
		h := newHarness(t, stack, "slots")
		h.hook.Slots, h.hook.QueueWait = make(chan struct{}, 1), 50*time.Millisecond
		h.turns.Deadline = 2 * time.Second
		// The one slot: a turn waiting on its user's lock.
		unlock, err := h.redis.LockUser(context.Background(), "o_holder", 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		holder := make(chan struct{})
		go func() { defer close(holder); h.post(text("o_holder", "帮助", 1), plain) }()
		time.Sleep(100 * time.Millisecond) // the holder is in
		began := time.Now()
		msg := text("o_queued", "帮助", 2)
		if r, replied := h.reply(h.post(msg, plain), plain); replied {
			t.Fatalf("a message with no slot answered %q; want success", r.Content)
		}
		if waited := time.Since(began); waited > time.Second {
			t.Fatalf("answered after %v", waited)
		}
		time.Sleep(200 * time.Millisecond) // time for it to run, were it not waiting
		if got := h.standIn.Outbox("o_queued"); len(got) != 0 {
			t.Fatalf("worked on before a slot freed: %+v", got)
		}
		unlock()
		<-holder
		var sent []string
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && len(sent) == 0; time.Sleep(20 * time.Millisecond) {
			for _, m := range h.standIn.Outbox("o_queued") {
				sent = append(sent, m.Kind+":"+m.Text)
			}
		}
		if len(sent) != 1 || sent[0] != "customer-service:"+words(t, "help") {
			t.Fatalf("sent %q, want the help text once as a customer-service message", sent)
		}
		h.turns.Wait()
		if n := len(h.hook.Slots); n != 0 {
			t.Fatalf("%d slots still taken after every turn ended", n)
		}
		if r, replied := h.reply(h.post(msg, plain), plain); replied || len(h.standIn.Outbox("o_queued")) != 1 {
			t.Fatalf("a retry after the late reply: %q", r.Content)
		}
	})
}

func TestSubscriptionFollowsEvents(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, stack storagetest.Stack) {
		h := newHarness(t, stack, "sub")
		ctx := context.Background()
		r, _ := h.reply(h.post(event("o_sub", "subscribe", "qrscene_team7"), plain), plain)
		if r.Content != words(t, "welcome") {
			t.Fatalf("follow answered %q", r.Content)
		}
		u, err := stack.DB.WeChatUser(ctx, "o_sub")
		if err != nil || !u.Subscribed || u.Scene != "team7" {
			t.Fatalf("after follow: %+v %v", u, err)
		}
		time.Sleep(1100 * time.Millisecond) // CreateTime has one-second steps
		if _, replied := h.reply(h.post(event("o_sub", "unsubscribe", ""), plain), plain); replied {
			t.Fatal("unfollow answered")
		}
		if u, _ := stack.DB.WeChatUser(ctx, "o_sub"); u.Subscribed || !u.UnsubscribedAt.Valid {
			t.Fatalf("after unfollow: %+v", u)
		}
		time.Sleep(1100 * time.Millisecond)
		h.post(event("o_sub", "VIEW", "https://example.org/"), plain)
		if u, _ := stack.DB.WeChatUser(ctx, "o_sub"); !u.Subscribed {
			t.Fatalf("a menu view did not mark subscribed: %+v", u)
		}
		// A notice about a template delivery is not the resident acting.
		h.post(event("o_notice", "TEMPLATESENDJOBFINISH", ""), plain)
		if _, err := stack.DB.WeChatUser(ctx, "o_notice"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("a system notice created a user: %v", err)
		}
	})
}

func TestVoiceAndMenuCountAsWords(t *testing.T) {
	h := newHarness(t, storagetest.Stack{DB: storagetest.SQLite(t), Redis: storagetest.Embedded(t)}, "voice")
	voice := []byte("<xml><ToUserName>gh</ToUserName><FromUserName>o_voice</FromUserName><CreateTime>1</CreateTime>" +
		"<MsgType>voice</MsgType><MediaId>m</MediaId><Format>amr</Format><Recognition>帮助。</Recognition><MsgId>5</MsgId></xml>")
	if r, _ := h.reply(h.post(voice, plain), plain); r.Content != words(t, "help") {
		t.Fatalf("spoken 帮助 answered %q", r.Content)
	}
	if r, _ := h.reply(h.post(event("o_menu", "CLICK", "帮助"), plain), plain); r.Content != words(t, "help") {
		t.Fatalf("menu 帮助 answered %q", r.Content)
	}
}

func TestRetryTakesOverFromACrashedAttempt(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, stack storagetest.Stack) {
		h := newHarness(t, stack, "crash")
		h.turns.ClaimTTL = 300 * time.Millisecond
		msg := text("o_crash", "帮助", 11)
		// An attempt claims the message and its instance dies: no release.
		if state, _, _, err := h.redis.Claim(context.Background(), "o_crash", "m11", h.turns.ClaimTTL); err != nil || state != storage.MessageNew {
			t.Fatalf("simulated attempt: %v %v", state, err)
		}
		// WeChat's retry arrives while the marker still stands, and answers
		// properly once it has expired, within the same request.
		r, ok := h.reply(h.post(msg, plain), plain)
		if !ok || r.Content != words(t, "help") {
			t.Fatalf("retry after a crash answered %q, want the help text", r.Content)
		}
		if s, _ := h.redis.LoadChatSession(context.Background(), "o_crash"); s.Version != 1 {
			t.Fatalf("session version %d, want 1", s.Version)
		}
	})
}

// A late reply that cannot be sent at once waits in the outbox.
func TestLateReplyThatFailsIsQueued(t *testing.T) {
	stack := storagetest.Stack{DB: storagetest.SQLite(t), Redis: storagetest.Embedded(t)}
	h := newHarness(t, stack, "latefail")
	h.turns.Deadline = 100 * time.Millisecond
	h.turns.Deliver = func(context.Context, string, string) error { return errors.New("WeChat unreachable") }
	unlock, _ := h.redis.LockUser(context.Background(), "o_latefail", 10*time.Second)
	if _, replied := h.reply(h.post(text("o_latefail", "帮助", 31), plain), plain); replied {
		t.Fatal("answered passively past the deadline")
	}
	unlock()
	h.turns.Wait()
	rows, err := stack.DB.OutboxFor(context.Background(), "o_latefail")
	if err != nil || len(rows) != 1 || rows[0].Kind != "late_reply" || rows[0].State != "pending" {
		t.Fatalf("outbox = %+v %v", rows, err)
	}
}

// WeChat's report of a mass-send job reaches MassFinished with its msg_id
// and counts; while it cannot be recorded WeChat is asked to post it again.
func TestMassSendResultsAreRecorded(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(sharedTestdata(t, "wechat-inbound"), "event-masssendjobfinish.xml"))
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, storagetest.Stack{DB: storagetest.SQLite(t), Redis: storagetest.Embedded(t)}, "mass")
	var got []storage.MassResult
	var refuse error
	h.hook.MassFinished = func(_ context.Context, r storage.MassResult) error {
		got = append(got, r)
		return refuse
	}
	refuse = errors.New("database away")
	if rec := h.post(raw, safe); rec.Code != http.StatusInternalServerError {
		t.Fatalf("unrecorded result answered %d %q", rec.Code, rec.Body)
	}
	refuse = nil
	if rec := h.post(raw, safe); rec.Code != http.StatusOK || rec.Body.String() != "success" {
		t.Fatalf("recorded result answered %d %q", rec.Code, rec.Body)
	}
	want := storage.MassResult{MsgID: "1000001625", Status: "err(30003)"}
	if len(got) != 2 || got[1] != want {
		t.Fatalf("results = %+v, want %+v", got, want)
	}
}

// Past MaxQueued waiting, a message with no slot is answered with the busy
// words and not run; the one queued before it still is, once.
func TestAFullQueueAnswersBusy(t *testing.T) {
	h := newHarness(t, storagetest.Stack{DB: storagetest.SQLite(t), Redis: storagetest.Embedded(t)}, "full")
	h.hook.Slots, h.hook.QueueWait, h.hook.MaxQueued = make(chan struct{}, 1), 50*time.Millisecond, 1
	unlock, err := h.redis.LockUser(context.Background(), "o_holder", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	holder := make(chan struct{})
	go func() { defer close(holder); h.post(text("o_holder", "帮助", 1), plain) }()
	time.Sleep(100 * time.Millisecond) // the holder has the one slot
	if r, replied := h.reply(h.post(text("o_first", "帮助", 2), plain), plain); replied {
		t.Fatalf("the first message with no slot answered %q; want success", r.Content)
	}
	if r, _ := h.reply(h.post(text("o_second", "帮助", 3), plain), plain); r.Content != words(t, "busy") {
		t.Fatalf("a message past the queue's bound answered %q; want the busy words", r.Content)
	}
	unlock()
	<-holder
	h.turns.Wait()
	if got := h.standIn.Outbox("o_first"); len(got) != 1 || got[0].Text != words(t, "help") {
		t.Fatalf("the queued message sent %+v, want the help text once", got)
	}
	if got := h.standIn.Outbox("o_second"); len(got) != 0 {
		t.Fatalf("the message answered busy was run: %+v", got)
	}
	if r, replied := h.reply(h.post(text("o_third", "帮助", 4), plain), plain); !replied || r.Content != words(t, "help") {
		t.Fatalf("once the queue emptied: %q", r.Content)
	}
}
