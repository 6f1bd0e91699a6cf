// Package turn takes one inbound message through everything around a flow:
// the retry dedupe, the per-user lock, the session, the durable changes and
// the reply deadline. It is the same for every channel that feeds flows.
package turn

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

// Disposition says how a message was answered, for metrics.
type Disposition string

const (
	Replied    Disposition = "replied"    // the reply goes back on the request
	Duplicate  Disposition = "duplicate"  // a retry of a message already handled or in hand
	Late       Disposition = "late"       // too slow: answered "success", reply sent afterwards
	Failed     Disposition = "failed"     // an error; the resident is asked to try again
	Unanswered Disposition = "unanswered" // handled, nothing to say (an unfollow)
	Limited    Disposition = "limited"    // over the sender's limit: not run; the first one over is told to slow down
)

// Stores are what a turn persists to besides what the engine commits: the
// outbox for late replies, and Redis for dedupe, locks and chat sessions.
type Stores struct {
	DB interface {
		Apply(context.Context, storage.Changes) error
	}
	Redis *storage.Redis
}

// Deliver sends a reply that missed the passive-reply deadline, as a
// customer-service message.
type Deliver func(ctx context.Context, openID, text string) error

// Runner runs turns. Its zero durations take the defaults below.
type Runner struct {
	Stores  Stores
	Engine  *flows.Engine
	Deliver Deliver
	Log     *slog.Logger
	// Panicked is told when a turn panicked (the turn ended with the busy
	// reply, the process goes on), for metrics.
	Panicked func()

	Deadline   time.Duration // passive reply deadline (WeChat waits 5 s)
	ClaimTTL   time.Duration // in-progress marker; well inside WeChat's 5 s retry gap
	WorkTime   time.Duration // most one turn may take in all
	SessionTTL time.Duration // idle conversation state is dropped after this; zero: flows.KeepAnswersFor, as residents are told
	ReplyTTL   time.Duration // a finished reply is kept for retries this long
	LockTTL    time.Duration // the per-user lock, renewed while a turn works; zero: DefaultLockTTL

	background sync.WaitGroup
}

// DefaultLockTTL is short so that a crashed instance's lock is gone before
// WeChat's first retry, 5 s later; a live holder renews it.
const DefaultLockTTL = 3 * time.Second

func (r *Runner) durations() (deadline, claim, work, session, reply time.Duration) {
	return cmp.Or(r.Deadline, 4*time.Second), cmp.Or(r.ClaimTTL, 3*time.Second), cmp.Or(r.WorkTime, 10*time.Second),
		cmp.Or(r.SessionTTL, flows.KeepAnswersFor), cmp.Or(r.ReplyTTL, 10*time.Minute)
}

// Message is one inbound message and the key WeChat's retries share.
type Message struct {
	In        flows.Inbound
	DedupeKey string
	// Arrived is when the request came; the reply deadline counts from it
	// (a message may have waited for room). Zero: from Handle's start.
	Arrived time.Time
	// Limit, when set, counts the message in its sender's window as its
	// turn begins, in the same Redis call; over the limit it is not run.
	// Zero: not counted here (following and unfollowing never are; a
	// message the webhook counted itself).
	Limit storage.Count
}

// Handle answers one message within the deadline: the reply to send back
// passively ("" for none) and how it went.
func (r *Runner) Handle(ctx context.Context, m Message) (string, Disposition) {
	deadline, claimTTL, _, _, _ := r.durations()
	answerBy, cancel := context.WithDeadline(ctx, cmp.Or(m.Arrived, time.Now()).Add(deadline))
	defer cancel()
	start, reply, claimed, err := r.claim(ctx, answerBy, m, claimTTL)
	switch {
	case err != nil && ctx.Err() != nil: // the request went away: WeChat posts the message again
		r.Log.Info("request gone before its message was claimed", "err", err)
		return r.busy(), Failed
	case err != nil:
		r.Log.Error("dedupe claim failed", "err", err)
		return r.busy(), Failed
	case start.State == storage.MessageLimited:
		return r.slowDown(m, start), Limited
	case !claimed:
		return reply, Duplicate
	}
	return r.runWithin(answerBy, m, start)
}

// slowDown is the answer to a message over its sender's limit: the first
// one over is asked to slow down, the rest get nothing.
func (r *Runner) slowDown(m Message, start storage.TurnStart) string {
	if start.Count != m.Limit.Max+1 {
		return ""
	}
	text, err := templates.Message("slow_down", nil)
	if err != nil {
		r.Log.Error("message template", "name", "slow_down", "err", err)
	}
	return text
}

// claim takes the message for this attempt. While another attempt holds it,
// it waits for that attempt's reply; if the other attempt's marker expires
// unfinished (its instance died), this attempt takes the message over. At
// the answerBy deadline it gives up with no reply, which WeChat reads as
// "success". The Redis calls themselves are not cut short by the deadline: a
// message must not be answered without being claimed by someone. A claim
// made while no turn of the user runs takes their lock and reads their
// session in the same round trip.
func (r *Runner) claim(ctx, answerBy context.Context, m Message, claimTTL time.Duration) (start storage.TurnStart, reply string, claimed bool, err error) {
	for {
		start, err := r.Stores.Redis.BeginTurn(ctx, m.In.OpenID, m.DedupeKey, claimTTL, r.lockTTL(), m.Limit)
		switch {
		case err != nil:
			return start, "", false, err
		case start.State == storage.MessageLimited:
			return start, "", false, nil
		case start.State == storage.MessageNew:
			return start, "", true, nil
		case start.State == storage.MessageDone:
			reply, err := r.openReply(start.Reply)
			return start, reply, false, err
		}
		select {
		case <-answerBy.Done():
			return start, "", false, nil
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (r *Runner) lockTTL() time.Duration { return cmp.Or(r.LockTTL, DefaultLockTTL) }

// runWithin runs a claimed message and answers within ctx's deadline.
func (r *Runner) runWithin(ctx context.Context, m Message, start storage.TurnStart) (string, Disposition) {
	// The work runs detached from the request, so a reply that misses the
	// deadline is still produced, committed and delivered afterwards.
	result := make(chan turnResult, 1)
	var handedOff atomic.Int32 // 0 waiting, 1 taken by the request, 2 abandoned by it
	r.background.Add(1)
	go func() {
		defer r.background.Done()
		defer func() { // a late delivery's panic too ends here, not the process
			if p := recover(); p != nil {
				r.panicked(p, m)
			}
		}()
		res := r.run(context.WithoutCancel(ctx), m, start)
		if handedOff.CompareAndSwap(0, 1) {
			result <- res
			return
		}
		r.deliverLate(context.WithoutCancel(ctx), m, res)
	}()

	select {
	case res := <-result:
		return res.reply, res.outcome
	case <-ctx.Done():
		if handedOff.CompareAndSwap(0, 2) {
			return "", Late
		}
		res := <-result
		return res.reply, res.outcome
	}
}

// HandleLate runs a message that was answered "success" already: its reply
// goes as a customer-service message, as a turn's that missed the deadline
// does. Another attempt at the same message, running or done, answers it.
func (r *Runner) HandleLate(ctx context.Context, m Message) {
	_, claimTTL, _, _, _ := r.durations()
	over, cancel := context.WithCancel(ctx)
	cancel() // no passive reply to wait for: only the claim counts
	start, _, claimed, err := r.claim(ctx, over, m, claimTTL)
	switch {
	case err != nil:
		r.Log.Error("dedupe claim failed for a message answered already; the resident is told to send it again", "err", err)
		r.deliverLate(ctx, m, turnResult{r.busy(), Failed})
		return
	case !claimed: // another attempt at it runs, or ran, and answers it (or it is over its sender's limit: later counts none)
		return
	}
	r.deliverLate(ctx, m, r.run(ctx, m, start))
}

// Go runs fn in the background, as the work of a late turn is: Wait waits
// for it, and a panic in it ends it, not the process.
func (r *Runner) Go(fn func(ctx context.Context)) {
	r.background.Add(1)
	go func() {
		defer r.background.Done()
		defer func() {
			if p := recover(); p != nil {
				r.panicked(p, Message{})
			}
		}()
		fn(context.Background())
	}()
}

// Wait blocks until every turn still running in the background is done, for
// a graceful shutdown.
func (r *Runner) Wait() { r.background.Wait() }

type turnResult struct {
	reply   string
	outcome Disposition
}

func (r *Runner) busy() string {
	text, err := templates.Message("busy", nil)
	if err != nil {
		return ""
	}
	return text
}

// run does the turn under the user's lock. A failure drops the claim so that
// nothing half-done is remembered as done.
func (r *Runner) run(ctx context.Context, m Message, start storage.TurnStart) turnResult {
	_, _, work, _, _ := r.durations()
	ctx, cancel := context.WithTimeout(ctx, work)
	defer cancel()
	reply, err := r.safeStep(ctx, m, start)
	switch {
	case err != nil:
		start.Release()
		r.Log.Error("turn failed", "kind", m.In.Kind, "err", err)
		return turnResult{r.busy(), Failed}
	case reply == "":
		return turnResult{"", Unanswered}
	default:
		return turnResult{reply, Replied}
	}
}

// errPanicked is a turn that panicked; its claim is dropped like any failed
// turn's, so a retry runs it again.
var errPanicked = errors.New("turn: panicked")

// safeStep runs a turn so that a panic in any flow ends that turn only: the
// resident gets the busy reply and every other resident is still served.
// The log names the panic's type and where, never its value, which might
// hold what a resident wrote.
func (r *Runner) safeStep(ctx context.Context, m Message, start storage.TurnStart) (reply string, err error) {
	defer func() {
		if p := recover(); p != nil {
			r.panicked(p, m)
			reply, err = "", errPanicked
		}
	}()
	return r.step(ctx, m, start)
}

// panicked logs and counts a recovered panic: its type, or the runtime's
// own words, and the stack.
func (r *Runner) panicked(p any, m Message) {
	what := fmt.Sprintf("%T", p)
	if re, ok := p.(runtime.Error); ok {
		what = re.Error() // the runtime's own words: no data
	}
	r.Log.Error("turn panicked", "kind", m.In.Kind, "panic", what, "stack", string(debug.Stack()))
	if r.Panicked != nil {
		r.Panicked()
	}
}

func (r *Runner) step(ctx context.Context, m Message, start storage.TurnStart) (string, error) {
	_, _, _, sessionTTL, replyTTL := r.durations()
	lock, sess, waited := start.Lock, start.Session, start.Lock == nil
	if waited { // another turn of the user held the lock when this one was claimed
		var err error
		if lock, err = r.Stores.Redis.WaitUserLock(ctx, m.In.OpenID, r.lockTTL()); err != nil {
			return "", err
		}
	}
	defer lock.Unlock()
	if waited {
		// An earlier attempt may have finished while this one waited for the
		// lock, and the session is read under it.
		if state, reply, err := r.Stores.Redis.MessageState(ctx, m.In.OpenID, m.DedupeKey); err != nil {
			return "", err
		} else if state == storage.MessageDone {
			return r.openReply(reply)
		}
		var err error
		if sess, err = r.Stores.Redis.LoadChatSession(ctx, m.In.OpenID); err != nil {
			return "", err
		}
	}
	var st flows.State
	if len(sess.State) > 0 {
		if err := json.Unmarshal(sess.State, &st); err != nil {
			// A state this version cannot read starts the conversation afresh.
			r.Log.Warn("unreadable session state dropped", "err", err)
			st = flows.State{}
		}
	}
	// The engine commits the turn's changes; only then is the new state
	// saved with the reply.
	in := m.In
	in.NoSession = len(sess.State) == 0
	out, err := r.Engine.Handle(ctx, &st, in)
	if err != nil {
		return "", err
	}
	if sess.State, err = json.Marshal(st); err != nil {
		return "", fmt.Errorf("turn: encode state: %w", err)
	}
	reply := out.Reply()
	sealed, err := r.sealReply(reply)
	if err != nil {
		return "", err
	}
	r.saveTurn(ctx, storage.Turn{Session: sess, SessionTTL: sessionTTL, MessageKey: m.DedupeKey, Reply: sealed, ReplyTTL: replyTTL, Lock: lock})
	return reply, nil
}

// saveTurn keeps the conversation's new state and the reply for retries.
// The turn's effects have committed by now, so its reply is the truth
// whatever happens here: a resident who just signed is never told to try
// again. If Redis fails (twice), the state from before the turn is dropped
// if it can be, so the next message starts from what the database says
// (the conversation left open, see flows' afterLoss) rather than answering
// a question already answered; a retry replays the step, and every step's
// effect is idempotent, so it finds what committed and says so.
func (r *Runner) saveTurn(ctx context.Context, t storage.Turn) {
	var err error
	for try := range 2 {
		if try > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		_, err = r.Stores.Redis.SaveTurn(ctx, t)
		switch {
		case err == nil:
			return
		case errors.Is(err, storage.ErrStaleChatSession) && try > 0:
			return // the first try was applied after all; its answer was lost
		case errors.Is(err, storage.ErrStaleChatSession):
			r.Log.Error("turn: session written outside the user lock", "err", err)
			return
		}
	}
	r.Log.Error("turn committed but its conversation state was not saved", "err", err)
	if err := r.Stores.Redis.DropChatSession(ctx, t.Session.OpenID); err != nil {
		r.Log.Error("stale conversation state not dropped either", "err", err)
	}
}

// A finished reply waits in Redis for WeChat's retries, sealed like every
// conversation state: it may name a resident, their address or why they
// need a referral.
const replyField = "reply"

func (r *Runner) sealReply(reply string) (string, error) {
	if reply == "" {
		return "", nil
	}
	return r.Engine.Sealer.Seal(replyField, reply)
}

func (r *Runner) openReply(sealed string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	return r.Engine.Sealer.Open(replyField, sealed)
}

// deliverLate sends a reply that missed the deadline as a customer-service
// message, and leaves "success" as the answer for any retry.
func (r *Runner) deliverLate(ctx context.Context, m Message, res turnResult) {
	if res.reply == "" {
		return
	}
	_, _, _, _, replyTTL := r.durations()
	if res.outcome != Failed {
		if err := r.Stores.Redis.SetReply(ctx, m.In.OpenID, m.DedupeKey, "", replyTTL); err != nil {
			r.Log.Error("late reply: dedupe update failed", "err", err)
		}
	}
	if r.Deliver != nil {
		err := r.Deliver(ctx, m.In.OpenID, res.reply)
		if err == nil {
			return
		}
		r.Log.Warn("late reply not delivered; queued in the outbox", "err", err)
	}
	// Not sent now: the outbox keeps it and the dispatcher retries (as a
	// customer-service message, the resident having just written).
	push := flows.LateReply{OpenID: m.In.OpenID, MessageKey: m.DedupeKey, Text: res.reply}.Push()
	if err := r.Stores.DB.Apply(ctx, storage.Changes{Pushes: []storage.Push{push}}); err != nil {
		r.Log.Error("late reply lost", "err", err)
	}
}
