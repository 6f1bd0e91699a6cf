// Package wechat is jiayi's edge to WeChat: the webhook that receives
// residents' messages, and the client that sends to them.
package wechat

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jiayi-health/jiayi/bot/turn"
	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
	"github.com/silenceper/wechat/v2/officialaccount/message"
)

// MaxBody is the largest push accepted; WeChat's are a few KiB.
const MaxBody = 64 << 10

// Webhook answers WeChat at /wechat.
type Webhook struct {
	Signer  Signer
	Turns   *turn.Runner
	Metrics *Metrics
	Log     *slog.Logger
	// Requests remembers each signed request for as long as its signature
	// is accepted, so a captured one cannot carry another body. Required.
	Requests interface {
		RememberRequest(ctx context.Context, timestamp, nonce, digest string, window time.Duration) (storage.RequestSeen, error)
	}
	// Senders count each sender's messages across instances; a sender over
	// MaxPerMinute is told once to slow down and the rest of the minute's
	// messages are not run. Zero MaxPerMinute: no limit.
	Senders interface {
		CountMessage(ctx context.Context, openID, msgKey string, window time.Duration) (int, error)
	}
	MaxPerMinute int
	// Ahead, when set, moves each message's time (WeChat's CreateTime) by
	// the sandbox clock's lead, so a sandbox whose clock was moved forward
	// talks in its own time; a retry keeps the time its first try had.
	Ahead func() time.Duration
	// MassFinished records a mass-send job's results (MASSSENDJOBFINISH).
	// An error answers WeChat 500, so it posts the event again.
	MassFinished func(ctx context.Context, r storage.MassResult) error
	// AcceptPlaintext lets plaintext messages in although an AES key is set,
	// while an account moves to safe mode; otherwise only encrypted ones
	// are (in safe or compatible mode).
	AcceptPlaintext bool
	// Slots, when set, bounds the requests whose turns run at once (its
	// capacity; a turn past its reply deadline finishes outside them). A
	// message that finds none free within QueueWait is answered "success"
	// at once and run when one frees, its reply sent as a customer-service
	// message: under a burst every request is answered in time, and the
	// turns at work do not slow each other.
	Slots     chan struct{}
	QueueWait time.Duration // zero: DefaultQueueWait
	// MaxQueued bounds the messages waiting for a slot (zero:
	// DefaultMaxQueued). One more is answered with the busy words, not
	// run: a flood that outlasts the burst must not grow the queue until
	// the instance runs out of memory and loses all of it.
	MaxQueued int
	queued    atomic.Int64
}

// DefaultQueueWait is how long a message waits for a slot before it is
// answered "success" and worked on later: well inside WeChat's 5 s, with
// the turn's own reply deadline still to come.
const DefaultQueueWait = time.Second

// DefaultMaxQueued is how many messages may wait for a slot: some fifteen
// seconds of the most one instance was measured to serve (3,300 a
// second), each a parked goroutine holding its message, a few KB.
const DefaultMaxQueued = 50_000

// Verify answers WeChat's URL check: echostr back only for a valid signature.
func (w *Webhook) Verify(c *gin.Context) {
	q := c.Request.URL.Query()
	if err := w.Signer.CheckSignature(q.Get("signature"), q.Get("timestamp"), q.Get("nonce")); err != nil {
		w.Log.Warn("wechat verify refused", "err", err)
		c.String(http.StatusForbidden, "forbidden")
		return
	}
	c.String(http.StatusOK, q.Get("echostr"))
}

// Receive handles one pushed message or event.
func (w *Webhook) Receive(c *gin.Context) {
	start := time.Now()
	typeName, outcome := "unknown", "bad_request"
	defer func() {
		w.Metrics.requests.WithLabelValues(typeName, outcome).Inc()
		w.Metrics.latency.Observe(time.Since(start).Seconds())
	}()

	msg, safe, plain, refused := w.decode(c)
	if refused == nil {
		refused = w.remember(c.Request.Context(), c.Request.URL.Query(), plain)
	}
	switch {
	case refused == unremembered: // nothing runs; the resident is told as for any Redis fault
		outcome = refused.outcome
		w.writeReply(c, msg, w.words("busy"), safe, c.Query("nonce"))
		return
	case refused != nil:
		outcome = refused.outcome
		c.String(refused.status, refused.text)
		return
	}
	in := normalize(msg)
	typeName = in.typeName
	if in.typeName == "event_masssendjobfinish" && w.MassFinished != nil {
		outcome = w.massFinished(c, msg)
		return
	}
	if !in.act {
		outcome = "ignored"
		c.String(http.StatusOK, "success")
		return
	}
	if w.Ahead != nil {
		in.in.At = in.in.At.Add(w.Ahead())
	}
	m := turn.Message{In: in.in, DedupeKey: in.dedupe, Arrived: start}
	if w.Slots == nil || w.tryEnter() {
		m.Limit = w.limit(in) // counted in the call that begins its turn
	} else {
		// No room at once: the sender is counted before the wait, so a
		// flood from one sender never waits for room or in the queue.
		if over, first := w.overLimit(c.Request.Context(), in); over {
			outcome = "limited"
			if first {
				w.writeReply(c, msg, w.words("slow_down"), safe, c.Query("nonce"))
				return
			}
			c.String(http.StatusOK, "success")
			return
		}
		if !w.enter(c.Request.Context()) {
			if !w.later(m) {
				outcome = "busy"
				w.writeReply(c, msg, w.words("busy"), safe, c.Query("nonce"))
				return
			}
			outcome = "queued"
			c.String(http.StatusOK, "success")
			return
		}
	}
	if w.Slots != nil {
		defer func() { <-w.Slots }()
	}
	reply, how := w.Turns.Handle(c.Request.Context(), m)
	outcome = string(how)
	if how == turn.Duplicate {
		w.Metrics.dedupeHits.Inc()
	}
	if reply == "" {
		c.String(http.StatusOK, "success")
		return
	}
	w.writeReply(c, msg, reply, safe, c.Query("nonce"))
}

// tryEnter takes a slot if one is free now.
func (w *Webhook) tryEnter() bool {
	select {
	case w.Slots <- struct{}{}:
		return true
	default:
		return false
	}
}

// enter takes a slot, waiting up to QueueWait for one.
func (w *Webhook) enter(ctx context.Context) bool {
	if w.tryEnter() {
		return true
	}
	wait := time.NewTimer(cmp.Or(w.QueueWait, DefaultQueueWait))
	defer wait.Stop()
	select {
	case w.Slots <- struct{}{}:
		return true
	case <-wait.C:
	case <-ctx.Done():
	}
	return false
}

// later queues a message, to be answered "success", and runs it once a
// slot frees, its reply (or, if it fails, the busy words) sent as a
// customer-service message; false when MaxQueued already wait. Its replay
// check and the sender's count were made before. It is held in memory
// only: a crash before its slot frees loses it, as WeChat will not post
// it again.
func (w *Webhook) later(m turn.Message) bool {
	if w.queued.Add(1) > int64(cmp.Or(w.MaxQueued, DefaultMaxQueued)) {
		w.queued.Add(-1)
		return false
	}
	w.Turns.Go(func(ctx context.Context) {
		w.Slots <- struct{}{}
		w.queued.Add(-1)
		defer func() { <-w.Slots }()
		w.Turns.HandleLate(ctx, m)
	})
	return true
}

// massFinished records the results WeChat reports for a mass-send job.
func (w *Webhook) massFinished(c *gin.Context, m *message.MixMessage) string {
	r := massResult(m)
	if err := w.MassFinished(c.Request.Context(), r); err != nil {
		w.Log.Error("mass-send results not recorded; WeChat will post them again", "msg_id", r.MsgID, "err", err)
		c.String(http.StatusInternalServerError, "retry")
		return "failed"
	}
	c.String(http.StatusOK, "success")
	return "recorded"
}

func massResult(m *message.MixMessage) storage.MassResult {
	return storage.MassResult{MsgID: strconv.FormatInt(m.TemplateMsgID, 10), Status: m.Status, Total: int(m.TotalCount),
		Filtered: int(m.FilterCount), Sent: int(m.SentCount), Failed: int(m.ErrorCount)}
}

// overLimit counts a message from its sender and says whether the sender is
// over the limit, and whether this is the first message over it. WeChat's
// retries of a message count once; following and unfollowing are never
// held back (an unfollow withdraws what waits to be sent). A flood from one
// sender costs a Redis call a message, not a turn, so nobody else waits
// for it. If Redis cannot count, the message goes on.
func (w *Webhook) overLimit(ctx context.Context, in inbound) (over, first bool) {
	limit := w.limit(in)
	if limit.Max == 0 {
		return false, false
	}
	n, err := w.Senders.CountMessage(ctx, in.in.OpenID, in.dedupe, limit.Window)
	if err != nil && ctx.Err() == nil {
		w.Log.Warn("wechat sender not counted", "err", err)
	}
	if err != nil {
		return false, false
	}
	return n > limit.Max, n == limit.Max+1
}

// limit is the count a message is held to: MaxPerMinute a minute, none for
// following and unfollowing (an unfollow withdraws what waits to be sent).
func (w *Webhook) limit(in inbound) storage.Count {
	if w.MaxPerMinute <= 0 || in.in.Kind == flows.Subscribe || in.in.Kind == flows.Unsubscribe {
		return storage.Count{}
	}
	return storage.Count{Max: w.MaxPerMinute, Window: time.Minute}
}

// words is a message residents read, from templates/.
func (w *Webhook) words(name string) string {
	text, err := templates.Message(name, nil)
	if err != nil {
		w.Log.Error("message template", "name", name, "err", err)
	}
	return text
}

// refusal is a push answered with an error status, before any work.
type refusal struct {
	status        int
	outcome, text string
}

var (
	forbidden = &refusal{http.StatusForbidden, "forbidden", "forbidden"}
	tooLarge  = &refusal{http.StatusRequestEntityTooLarge, "too_large", "too large"}
	// unremembered: the request could not be checked against replays; it
	// is answered busy and not run.
	unremembered = &refusal{http.StatusOK, "failed", ""}
	badRequest   = func(text string) *refusal { return &refusal{http.StatusBadRequest, "bad_request", text} }
)

// decode checks the signatures, limits and decrypts the body, and parses
// the message; safe says it came in safe or compatible mode; the body is
// returned as decrypted.
func (w *Webhook) decode(c *gin.Context) (*message.MixMessage, bool, []byte, *refusal) {
	q := c.Request.URL.Query()
	timestamp, nonce := q.Get("timestamp"), q.Get("nonce")
	if err := w.Signer.CheckSignature(q.Get("signature"), timestamp, nonce); err != nil {
		return nil, false, nil, forbidden
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, MaxBody))
	var big *http.MaxBytesError
	switch {
	case errors.As(err, &big):
		return nil, false, nil, tooLarge
	case err != nil:
		return nil, false, nil, badRequest("unreadable body")
	}
	safe := false
	switch q.Get("encrypt_type") {
	case "", "raw":
		if w.Signer.AESKey != "" && !w.AcceptPlaintext {
			return nil, false, nil, forbidden // a forger without the AES key writes plaintext
		}
	case "aes":
		safe = true
		var env message.EncryptedXMLMsg
		if err := xml.Unmarshal(body, &env); err != nil || env.EncryptedMsg == "" {
			return nil, false, nil, badRequest("malformed envelope")
		}
		body, err = w.Signer.Decrypt(q.Get("msg_signature"), timestamp, nonce, env.EncryptedMsg)
		switch {
		case errors.Is(err, errBadSignature), errors.Is(err, errStale):
			return nil, false, nil, forbidden
		case err != nil:
			w.Log.Warn("wechat decrypt failed", "err", err)
			return nil, false, nil, badRequest("cannot decrypt")
		}
	default:
		return nil, false, nil, badRequest("unknown encrypt_type")
	}
	var msg message.MixMessage
	if err := xml.Unmarshal(body, &msg); err != nil || msg.FromUserName == "" || msg.MsgType == "" {
		return nil, false, nil, badRequest("malformed message")
	}
	// WeChat names the sender in the query too (not under the signature,
	// but a forger must then forge both alike).
	if q.Get("openid") != string(msg.FromUserName) {
		return nil, false, nil, forbidden
	}
	return &msg, safe, body, nil
}

// remember refuses a signature already used with another message. The
// digest is of the message as decrypted, so WeChat's retry of a message is
// the same whatever encryption it carries, and goes on to the retry
// dedupe. If Redis cannot remember, nothing is run (the request might be a
// replay, and a turn cannot run without Redis anyway): unremembered.
func (w *Webhook) remember(ctx context.Context, q url.Values, plain []byte) *refusal {
	digest := sha256.Sum256(plain)
	seen, err := w.Requests.RememberRequest(ctx, q.Get("timestamp"), q.Get("nonce"),
		hex.EncodeToString(digest[:]), 2*w.Signer.window())
	switch {
	case err != nil && ctx.Err() != nil: // the sender hung up: WeChat posts it again
		w.Log.Info("request gone before its replay check", "err", err)
		return unremembered
	case err != nil:
		w.Log.Warn("wechat request not remembered; not run", "err", err)
		return unremembered
	case seen == storage.RequestForged:
		w.Log.Warn("wechat request refused: signature reused with another body")
		return forbidden
	}
	return nil
}

// writeReply sends the passive text reply, sealed in safe mode.
func (w *Webhook) writeReply(c *gin.Context, to *message.MixMessage, text string, safe bool, nonce string) {
	out := message.NewText(text)
	out.SetToUserName(to.FromUserName)
	out.SetFromUserName(to.ToUserName)
	out.SetCreateTime(w.Signer.now().Unix())
	out.SetMsgType(message.MsgTypeText)
	plain, err := xml.Marshal(out)
	if err != nil {
		w.Log.Error("wechat reply encode failed", "err", err)
		c.String(http.StatusOK, "success")
		return
	}
	if !safe {
		c.Data(http.StatusOK, "application/xml; charset=utf-8", plain)
		return
	}
	enc, sig, ts, err := w.Signer.Encrypt(plain, nonce)
	if err != nil {
		w.Log.Error("wechat reply encrypt failed", "err", err)
		c.String(http.StatusOK, "success")
		return
	}
	sealed, _ := xml.Marshal(message.ResponseEncryptedXMLMsg{EncryptedMsg: enc, MsgSignature: sig, Timestamp: ts, Nonce: nonce})
	c.Data(http.StatusOK, "application/xml; charset=utf-8", sealed)
}
