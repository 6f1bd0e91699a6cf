package flows

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

// Engine routes each inbound message to the conversation it belongs to.
// The catalog and organisation are read from the database at each step (it
// is the truth once seeded, edited by admins), not cached.
type Engine struct {
	DB        *storage.DB
	Sealer    *storage.Sealer // personal data in the session is sealed too
	IdleAfter time.Duration   // a conversation left this long expires; zero: 30 minutes
	// Pushed is told when a step committed pushes itself (a signing, a
	// doctor's answer), so the dispatcher sends them at once.
	Pushed func()
}

func (e *Engine) pushed() {
	if e.Pushed != nil {
		e.Pushed()
	}
}

// conversation is one flow: it starts on an entry keyword and then takes
// every message until it ends, is cancelled or expires.
type conversation interface {
	title() string
	start(ctx context.Context, e *Engine, st *State, in Inbound) ([]string, error)
	answer(ctx context.Context, e *Engine, st *State, said string, in Inbound) ([]string, error)
	help(st *State) (string, error)
}

var conversations = map[string]conversation{
	"packages":       browse{},
	"signing":        signingFlow,
	"mine":           mine{},
	"cancel":         aftercare{kind: "cancel"},
	"renew":          aftercare{kind: "renew"},
	"change":         aftercare{kind: "change"},
	"booking":        bookingFlow,
	"cancel_booking": cancelBooking{},
	"survey":         survey{},
	"reminders":      reminderSettings{},
}

// entryKeywords start conversations; those not built yet say so.
var entryKeywords = map[string]string{"服务包": "packages", "签约": "signing", "预约": "booking", "我的": "mine",
	"解约": "cancel", "续签": "renew", "改签": "change", "提醒设置": "reminders"}

// Handle runs one turn. State is updated in place; the caller saves it after
// the outcome's changes are durable.
func (e *Engine) Handle(ctx context.Context, st *State, in Inbound) (Outcome, error) {
	var out Outcome
	seen := &storage.UserSeen{OpenID: in.OpenID, Subscribed: true, EventTime: in.At, Scene: in.Scene}
	out.Changes.Seen = seen

	var replies []string
	var err error
	switch in.Kind {
	case Subscribe:
		replies, err = say("welcome", nil)
		if err == nil && strings.HasPrefix(in.Scene, "doctor_") {
			var signing []string
			signing, err = e.signWithDoctor(ctx, st, in)
			replies = append(replies, signing...) // joined into one passive reply
		}
	case Unsubscribe:
		// Nothing can reach someone who just unfollowed; record it only.
		seen.Subscribed = false
	case Activity:
	case Unsupported:
		replies, err = say("unsupported", nil)
	case Scan:
		if strings.HasPrefix(in.Scene, "doctor_") {
			replies, err = e.signWithDoctor(ctx, st, in)
		} else {
			replies, err = say("help", nil)
		}
	case Text:
		replies, err = e.words(ctx, st, Normalize(in.Text), in)
	case Click:
		replies, err = e.words(ctx, st, Normalize(in.Key), in)
	default:
		return out, fmt.Errorf("flows.Handle: unknown inbound kind %q", in.Kind)
	}
	if err != nil {
		return out, fmt.Errorf("flows.Handle: %w", err)
	}
	st.Updated = in.At
	out.Replies = replies
	return out, nil
}

func say(name string, data any) ([]string, error) {
	text, err := templates.Message(name, data)
	if err != nil {
		return nil, err
	}
	return []string{text}, nil
}

// words answers what a resident typed, said or clicked.
func (e *Engine) words(ctx context.Context, st *State, said string, in Inbound) ([]string, error) {
	var prefix []string
	if st.Flow != "" && in.At.Sub(st.Updated) > e.idleAfter() {
		expired, err := templates.Message("flow_expired", map[string]any{
			"Title": conversations[st.Flow].title(), "Minutes": int(e.idleAfter().Minutes())})
		if err != nil {
			return nil, err
		}
		prefix = append(prefix, expired)
		st.Reset()
	}
	replies, err := e.dispatch(ctx, st, said, in)
	if len(prefix) > 0 && len(replies) > 0 {
		// One passive reply: the notice and the answer together.
		replies[0] = prefix[0] + "\n\n" + replies[0]
	}
	return replies, err
}

func (e *Engine) dispatch(ctx context.Context, st *State, said string, in Inbound) ([]string, error) {
	if replies, ok, err := e.doctorCommand(ctx, said, in); ok {
		return replies, err
	}
	if replies, ok, err := e.appointmentCommand(ctx, st, said, in); ok {
		return replies, err
	}
	if replies, ok, err := e.visitCommand(ctx, said, in); ok {
		return replies, err
	}
	if replies, ok, err := e.score(ctx, st, said, in); ok {
		return replies, err
	}
	if name, ok := entryKeywords[said]; ok {
		if name != "" && name == st.Flow { // already there: repeat the question
			return conversations[name].answer(ctx, e, st, "", in)
		}
		conv, built := conversations[name]
		if !built {
			replies, err := say("coming_soon", said)
			return resumeHint(pausable(st), replies), err
		}
		st.switchTo(name)
		replies, err := conv.start(ctx, e, st, in)
		return resumeHint(st.Paused, replies), err
	}
	switch said {
	case "继续":
		return e.resume(ctx, st)
	case "我的签约":
		replies, err := e.myContracts(ctx, in.OpenID)
		return resumeHint(pausable(st), replies), err
	}
	if conv, ok := conversations[st.Flow]; ok {
		switch said {
		case "取消":
			st.Reset()
			return say("flow_cancelled", conv.title())
		case "帮助":
			text, err := conv.help(st)
			return []string{text}, err
		}
		return conv.answer(ctx, e, st, said, in)
	}
	if said == "帮助" {
		return say("help", nil)
	}
	return say("not_understood", nil)
}

func (e *Engine) idleAfter() time.Duration {
	if e.IdleAfter > 0 {
		return e.IdleAfter
	}
	return 30 * time.Minute
}

// keptWhenInterrupted conversations are paused when another interrupts them, to
// come back to with 继续; the others (browsing, menus) simply end.
var keptWhenInterrupted = map[string]bool{"signing": true, "booking": true}

// switchTo leaves the current conversation for another, keeping it paused
// if it is worth coming back to.
func (st *State) switchTo(flow string) {
	if keptWhenInterrupted[st.Flow] {
		paused := *st
		paused.Paused = nil
		st.Reset()
		st.Paused = &paused
	} else {
		st.Reset()
	}
	st.Flow = flow
}

// Reset leaves the current conversation (a paused one stays paused).
func (st *State) Reset() {
	st.Flow, st.Step, st.Data = "", "", nil
}

// signWithDoctor starts signing from a doctor's QR code (scene doctor_ID):
// that doctor's team is offered first and preselected.
func (e *Engine) signWithDoctor(ctx context.Context, st *State, in Inbound) ([]string, error) {
	id, err := strconv.ParseInt(strings.TrimPrefix(in.Scene, "doctor_"), 10, 64)
	if err != nil {
		return say("help", nil)
	}
	st.switchTo("signing")
	replies, err := conversations["signing"].start(ctx, e, st, in)
	st.Data["preferred_doctor"] = strconv.FormatInt(id, 10)
	return replies, err
}

// pausable is the conversation a one-off answer interrupts, if any.
func pausable(st *State) *State {
	if st.Flow == "" {
		return st.Paused
	}
	return st
}

// resumeHint adds, to a reply given while a conversation waits, how to go
// back to it.
func resumeHint(waiting *State, replies []string) []string {
	if waiting == nil || len(replies) == 0 {
		return replies
	}
	conv, ok := conversations[waiting.Flow]
	if !ok || !keptWhenInterrupted[waiting.Flow] {
		return replies
	}
	if hint, err := templates.Message("flow_resume_hint", conv.title()); err == nil {
		replies[len(replies)-1] += "\n" + hint
	}
	return replies
}

// resume goes back to a paused conversation, or repeats the current
// question.
func (e *Engine) resume(ctx context.Context, st *State) ([]string, error) {
	if st.Paused != nil {
		paused := *st.Paused
		*st = paused
	}
	conv, ok := conversations[st.Flow]
	if !ok {
		return say("nothing_to_resume", nil)
	}
	return conv.answer(ctx, e, st, "", Inbound{})
}
