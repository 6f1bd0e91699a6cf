package flows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

// Engine routes each inbound message to the command or conversation it
// belongs to. The catalog and organisation are read from the database at
// each step (it is the truth once seeded, edited by admins), not cached.
type Engine struct {
	DB        *storage.DB
	Sealer    *storage.Sealer // personal data in the session is sealed too
	IdleAfter time.Duration   // a conversation left this long expires; zero: DefaultIdleAfter
	Log       *slog.Logger    // nil: slog.Default()
	// Seen, when set, takes the "last seen" write of a turn that is not a
	// user's first in their session nor a follow, unfollow or scan, to write
	// it with others; nil: every turn writes its own.
	Seen *storage.SeenBuffer
}

// DefaultIdleAfter is how long a conversation waits for an answer by default.
const DefaultIdleAfter = 30 * time.Minute

// KeepAnswersFor is how long a signing or booking left unanswered keeps
// its answers, waiting for 继续 (the chat session lives as long).
const KeepAnswersFor = 24 * time.Hour

// State is a user's conversation state, kept in the chat session between
// turns. Data is the running conversation's own typed state, as JSON.
type State struct {
	Flow    string   `json:"flow,omitempty"`
	Step    string   `json:"step,omitempty"`
	Version int      `json:"version,omitempty"` // of the conversation's state shape
	RunKey  string   `json:"run,omitempty"`     // names this run, for idempotent effects
	History []string `json:"history,omitempty"` // steps answered, for 返回
	// Data is the conversation's state, sealed whole (a JSON string).
	Data    json.RawMessage `json:"data,omitempty"`
	Updated time.Time       `json:"updated,omitzero"`
	Paused  *State          `json:"paused,omitempty"` // conversations waiting, newest first, each linking the next
	// Listed holds the contract numbers a doctor's 确认 last listed, so
	// 确认 N answers the line the doctor saw, whatever was answered since.
	Listed []string `json:"listed,omitempty"`
}

// leave ends the current conversation; the waiting ones keep waiting.
func (st *State) leave() {
	*st = State{Paused: st.Paused, Updated: st.Updated}
}

// Handle runs one turn: every change it makes, the user's own record
// included, commits in one transaction before it returns. State is updated
// in place; the caller saves it once Handle has returned without error.
func (e *Engine) Handle(ctx context.Context, st *State, in Inbound) (Outcome, error) {
	var out Outcome
	before := *st
	err := e.DB.InTx(ctx, func(db *storage.DB) error {
		scoped := *e
		scoped.DB = db
		var err error
		if out, err = scoped.handle(ctx, st, in); err != nil {
			return err
		}
		changes := out.Changes
		if e.holdsBack(in, changes.Seen) {
			changes.Seen = nil
		}
		if changes.Seen == nil && len(changes.Pushes) == 0 {
			return nil
		}
		return db.Apply(ctx, changes)
	})
	if errors.Is(err, errState) {
		// Found mid-turn, a value the state should hold is missing: nothing
		// of the turn is kept, the conversation starts afresh and says so.
		e.log().Warn("conversation state unreadable; conversation reset", "flow", before.Flow, "step", before.Step, "err", err)
		*st = State{Paused: before.Paused, Updated: in.At}
		out = Outcome{Replies: []string{mustMessage("flow_reset", nil) + "\n\n" + mustMessage("help", nil)},
			Changes: storage.Changes{Seen: &storage.UserSeen{OpenID: in.OpenID, Subscribed: true, EventTime: in.At, Scene: in.Scene}}}
		err = e.DB.Apply(ctx, out.Changes)
	}
	if err != nil {
		return Outcome{}, fmt.Errorf("flows.Handle: %w", err)
	}
	if e.holdsBack(in, out.Changes.Seen) {
		e.Seen.Add(*out.Changes.Seen)
	}
	return out, nil
}

// holdsBack says whether a turn's "last seen" goes to the Seen buffer. A
// user's first turn in a session writes its own, so their row exists for
// any later turn that updates it; a follow, an unfollow (which withdraws
// pushes) and a scan's scene are written at once.
func (e *Engine) holdsBack(in Inbound, seen *storage.UserSeen) bool {
	if e.Seen == nil || seen == nil || in.NoSession || !seen.Subscribed || seen.Scene != "" {
		return false
	}
	switch in.Kind {
	case Subscribe, Unsubscribe, Scan:
		return false
	}
	return true
}

func (e *Engine) handle(ctx context.Context, st *State, in Inbound) (Outcome, error) {
	var out Outcome
	seen := &storage.UserSeen{OpenID: in.OpenID, Subscribed: true, EventTime: in.At, Scene: in.Scene}
	out.Changes.Seen = seen
	notice := e.dropUnreadable(st, in.OpenID)
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
	case Unheard:
		replies, err = say("unheard", nil)
	case Scan:
		if strings.HasPrefix(in.Scene, "doctor_") {
			replies, err = e.signWithDoctor(ctx, st, in)
		} else {
			replies, err = say("help", nil)
		}
	case Text, Click:
		said := in.Text
		if in.Kind == Click {
			said = in.Key
		}
		replies, err = e.words(ctx, st, Normalize(said), in)
		if err == nil && in.NoSession {
			replies, err = e.afterLoss(ctx, in, replies)
		}
	default:
		return out, fmt.Errorf("unknown inbound kind %q", in.Kind)
	}
	if err != nil {
		return out, err
	}
	seen.Conversation = st.Flow
	st.Updated = in.At
	out.Replies, err = e.fillClinicPhone(ctx, in.OpenID, prefixed(notice, replies))
	return out, err
}

// fillClinicPhone puts the clinic's phone where a refusal asks for it.
func (e *Engine) fillClinicPhone(ctx context.Context, openID string, replies []string) ([]string, error) {
	for i, r := range replies {
		if !strings.Contains(r, templates.ClinicPhone) {
			continue
		}
		c, err := e.careContact(ctx, openID)
		if err != nil {
			return nil, err
		}
		replies[i] = strings.ReplaceAll(r, templates.ClinicPhone, mustMessage("clinic_phone", c))
	}
	return replies, nil
}

// dropUnreadable ends a conversation this build cannot carry on (renamed,
// changed shape) and says so; it returns "" when there is none.
func (e *Engine) dropUnreadable(st *State, openID string) string {
	notice := ""
	readable := func(s *State) bool {
		conv, ok := conversations[s.Flow]
		err := errState
		if ok {
			err = conv.check(e, s, openID)
		}
		if err != nil {
			e.log().Warn("conversation state from another build; conversation reset", "flow", s.Flow, "step", s.Step, "err", err)
			notice = mustMessage("flow_reset", nil)
		}
		return err == nil
	}
	if st.Flow != "" && !readable(st) {
		st.leave()
	}
	// The waiting ones, newest first: an unreadable one leaves the list.
	for link := &st.Paused; *link != nil; {
		if readable(*link) {
			link = &(*link).Paused
		} else {
			*link = (*link).Paused
		}
	}
	return notice
}

func (e *Engine) log() *slog.Logger {
	if e.Log != nil {
		return e.Log
	}
	return slog.Default()
}

// prefixed puts a notice before the turn's first reply: one passive reply.
func prefixed(notice string, replies []string) []string {
	if notice == "" {
		return replies
	}
	if len(replies) == 0 {
		return []string{notice}
	}
	replies[0] = notice + "\n\n" + replies[0]
	return replies
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
	notice := ""
	if idle := in.At.Sub(st.Updated); st.Flow != "" && idle > e.idleAfter() {
		// One that pauses keeps its answers a day: it waits for 继续.
		about := conversations[st.Flow].describe()
		kept := about.pauses && idle <= KeepAnswersFor
		var err error
		keyword := ""
		if len(about.keywords) > 0 {
			keyword = about.keywords[0]
		}
		notice, err = templates.Message("flow_expired", map[string]any{
			"Title": about.title, "Minutes": int(e.idleAfter().Minutes()), "Kept": kept, "Keyword": keyword})
		if err != nil {
			return nil, err
		}
		if kept {
			*st = State{Paused: waitingWith(st), Updated: st.Updated}
		} else {
			st.leave()
		}
	}
	replies, err := e.dispatch(ctx, st, said, in)
	notUnderstood := err == nil && len(replies) == 1 && replies[0] == mustMessage("not_understood", nil)
	// An answer to the question that expired means nothing alone: the
	// notice says what to do, and "not understood" would contradict it.
	if notice != "" && notUnderstood {
		return []string{notice}, err
	}
	if notUnderstood { // a doctor is pointed at the doctors' words, not the residents'
		if name, ok, derr := e.DB.BoundDoctorName(ctx, in.OpenID); derr != nil {
			return nil, derr
		} else if ok {
			replies, err = say("doctor_not_understood", name)
		}
	}
	return prefixed(notice, replies), err
}

// command answers a one-off request whatever conversation is open; ok is
// false when the words are not its.
type command func(e *Engine, ctx context.Context, st *State, said string, in Inbound) (replies []string, ok bool, err error)

// commands are tried in order before conversations.
var commands = []command{(*Engine).doctorChat, (*Engine).doctorCommand, (*Engine).memberCommand, (*Engine).appointmentCommand, (*Engine).visitCommand, (*Engine).score}

func (e *Engine) dispatch(ctx context.Context, st *State, said string, in Inbound) ([]string, error) {
	if in.Kind != Text || st.Flow == "" {
		return e.route(ctx, st, said, in)
	}
	m := Understand(said).Intent
	if m != intentUrgent && m != intentCrisis {
		return e.route(ctx, st, said, in)
	}
	// Whatever the conversation asks, a possible emergency is answered
	// first, then its question again. Only a question that asks for words
	// (a referral's reason, an address) takes the message as its answer:
	// 喘不上气 is nobody's name.
	var replies []string
	var err error
	if freeText[st.Step] {
		replies, err = e.route(ctx, st, said, in)
	} else {
		replies, err = conversations[st.Flow].answer(ctx, e, st, "", in)
	}
	if err != nil {
		return nil, err
	}
	c, err := e.careContact(ctx, in.OpenID)
	if err != nil {
		return nil, err
	}
	notice := "urgent_notice"
	if m == intentCrisis {
		notice = "crisis_answer"
	}
	return e.beforeQuestion(ctx, in.OpenID, mustMessage(notice, c), replies)
}

// maxReplyBytes is the longest text reply WeChat delivers.
const maxReplyBytes = 2048

// beforeQuestion puts a notice before the question asked again, in one
// reply. When the two do not fit in one (the consent is long, longer with
// three institutions named), the notice goes alone, whole: the question is
// just above it in the chat, and the next message still answers it.
func (e *Engine) beforeQuestion(ctx context.Context, openID, notice string, question []string) ([]string, error) {
	replies := prefixed(notice, question)
	filled, err := e.fillClinicPhone(ctx, openID, slices.Clone(replies)) // as it will be sent
	if err != nil {
		return nil, err
	}
	if len(strings.Join(filled, "\n\n")) > maxReplyBytes {
		return []string{notice}, nil
	}
	return replies, nil
}

// freeText are the steps whose answer is the resident's own words.
var freeText = map[string]bool{"reason": true, "address": true, "comment": true}

// route answers a message: a command, a word that starts a conversation or
// steers the open one (said as people say them: "嗯，预约。", "算了"), the
// answer to the open conversation's question, or else what Understand
// reads in the sentence.
func (e *Engine) route(ctx context.Context, st *State, said string, in Inbound) ([]string, error) {
	word := said
	if w := control(said); w != "" {
		word = w
	} else if w := says(said); w != "" {
		word = w
	}
	for _, cmd := range commands {
		if replies, ok, err := cmd(e, ctx, st, word, in); ok {
			return replies, err
		}
	}
	if name, ok := keywords[word]; ok {
		if name == st.Flow { // already there: repeat the question
			return conversations[name].answer(ctx, e, st, "", in)
		}
		return e.enter(ctx, st, name, in, nil)
	}
	switch word {
	case "继续":
		return e.resume(ctx, st, in)
	case "我的签约":
		replies, err := e.myContracts(ctx, in.OpenID)
		return resumeHint(pausable(st), replies), err
	case "我的数据":
		replies, err := e.myData(ctx, in)
		return resumeHint(pausable(st), replies), err
	}
	if conv, ok := conversations[st.Flow]; ok {
		switch word {
		case "取消":
			if conv.describe().cancelIsYes {
				return conv.answer(ctx, e, st, said, in)
			}
			st.leave()
			replies, err := say("flow_cancelled", conv.describe().title)
			return resumeHint(st.Paused, replies), err
		case "帮助":
			text, err := conv.helpText(st)
			return []string{text}, err
		case "返回":
			return conv.answer(ctx, e, st, "返回", in)
		case "不知道":
			return e.dontKnow(ctx, st, conv, in)
		}
		if leaves(conv, said) {
			st.leave()
			return e.understood(ctx, st, said, in)
		}
		return conv.answer(ctx, e, st, said, in)
	}
	switch word {
	case "帮助":
		return say("help", nil)
	case "取消", "返回":
		return say("nothing_to_cancel", nil)
	}
	if in.Kind != Text {
		return say("not_understood", nil)
	}
	return e.understood(ctx, st, said, in)
}

// leaves says a message leaves a menu conversation: not a number, and a
// sentence that asks for something (签约要带什么 while browsing packages).
func leaves(conv running, said string) bool {
	about := conv.describe()
	if _, number := listNumber(said); !about.menu || number {
		return false
	}
	m := Understand(said)
	return m.Intent != "" && m.Intent != intentThanks && m.Intent != intentAck && !slices.Contains(about.keywords, m.Says)
}

// dontKnow answers 不知道 at a question: where to find the answer (the
// step's own hint, if it has one) and how to ask the clinic, then the
// question again.
func (e *Engine) dontKnow(ctx context.Context, st *State, conv running, in Inbound) ([]string, error) {
	hint, err := templates.Message("dont_know_"+st.Flow+"_"+st.Step, nil)
	if err == nil {
		hint += templates.ClinicPhone // and whom to ask, as every hint says
	} else {
		c, cerr := e.careContact(ctx, in.OpenID)
		if cerr != nil {
			return nil, cerr
		}
		if hint, err = templates.Message("dont_know", c); err != nil {
			return nil, err
		}
	}
	replies, err := conv.answer(ctx, e, st, "", in)
	if err != nil {
		return nil, err
	}
	return e.beforeQuestion(ctx, in.OpenID, hint, replies)
}

func (e *Engine) idleAfter() time.Duration {
	if e.IdleAfter > 0 {
		return e.IdleAfter
	}
	return DefaultIdleAfter
}

// enter is the one way into a conversation: the one open waits (if it
// pauses on interruption) or ends, and the new one starts (seed, if not nil,
// holds what is already known of its state). Typed by its keyword, a
// conversation already waiting carries on instead of starting again.
func (e *Engine) enter(ctx context.Context, st *State, name string, in Inbound, seed any) ([]string, error) {
	conv, ok := conversations[name]
	if !ok {
		return nil, fmt.Errorf("flows: no conversation %q", name)
	}
	if seed == nil {
		if waiting, rest := takeWaiting(st.Paused, name); waiting != nil {
			return e.carryOn(ctx, st, conv, waiting, rest, in)
		}
	}
	*st = State{Paused: waitingWith(st), Updated: st.Updated}
	replies, err := conv.start(ctx, e, st, in, seed)
	if st.Flow == name {
		return resumeHint(st.Paused, replies), err
	}
	return replies, err
}

// carryOn brings a waiting conversation back where it stopped; the one open
// now waits in its place, if it pauses.
func (e *Engine) carryOn(ctx context.Context, st *State, conv running, waiting, rest *State, in Inbound) ([]string, error) {
	open := *st
	open.Paused = rest
	*st = *waiting
	st.Paused = waitingWith(&open)
	replies, err := conv.answer(ctx, e, st, "", in)
	return resumeHint(st.Paused, replies), err
}

// maxWaiting is how many interrupted conversations wait at most; the
// oldest is dropped beyond it.
const maxWaiting = 3

// waitingWith is the waiting list once st's open conversation joins it (if
// it pauses on interruption), newest first.
func waitingWith(st *State) *State {
	list := st.Paused
	if cur, ok := conversations[st.Flow]; ok && cur.describe().pauses {
		open := *st
		open.Paused = list
		list = &open
	}
	// Keep the newest maxWaiting.
	n := 0
	for w := list; w != nil; w = w.Paused {
		if n++; n == maxWaiting {
			w.Paused = nil
		}
	}
	return list
}

// takeWaiting finds the newest waiting conversation named name and returns
// it and the list without it.
func takeWaiting(list *State, name string) (*State, *State) {
	if list == nil {
		return nil, nil
	}
	if list.Flow == name {
		return list, list.Paused
	}
	found, rest := takeWaiting(list.Paused, name)
	if found == nil {
		return nil, list
	}
	copied := *list
	copied.Paused = rest
	return found, &copied
}

// signWithDoctor starts signing from a doctor's QR code (scene doctor_ID):
// that doctor's team is offered first and preselected.
func (e *Engine) signWithDoctor(ctx context.Context, st *State, in Inbound) ([]string, error) {
	id, err := strconv.ParseInt(strings.TrimPrefix(in.Scene, "doctor_"), 10, 64)
	if err != nil {
		return say("help", nil)
	}
	return e.enter(ctx, st, signing.name, in, &signingData{PreferredDoctor: id})
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
	if !ok || !conv.describe().pauses {
		return replies
	}
	if hint, err := templates.Message("flow_resume_hint", conv.describe().title); err == nil {
		replies[len(replies)-1] += "\n" + hint
	}
	return replies
}

// resume goes back to a paused conversation, or repeats the current
// question.
func (e *Engine) resume(ctx context.Context, st *State, in Inbound) ([]string, error) {
	if w := st.Paused; w != nil { // the newest waiting; the one open now waits in its place
		conv, ok := conversations[w.Flow]
		if !ok {
			return nil, fmt.Errorf("%w: waiting %s", errState, w.Flow)
		}
		return e.carryOn(ctx, st, conv, w, w.Paused, in)
	}
	conv, ok := conversations[st.Flow]
	if !ok {
		return say("nothing_to_resume", nil)
	}
	return conv.answer(ctx, e, st, "", in)
}

// afterLoss tells a user whose conversation state is gone, though their last
// message left one open within the day it is kept, that it was lost (Redis
// restarted empty, say), and how to start it again. A message that means
// something of its own is answered too; one that only made sense as an
// answer (a name, a number) gets the notice instead of "not understood".
func (e *Engine) afterLoss(ctx context.Context, in Inbound, replies []string) ([]string, error) {
	u, err := e.DB.WeChatUser(ctx, in.OpenID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return replies, nil
	case err != nil:
		return nil, err
	}
	if e.Seen != nil { // a turn whose record waits to be written is the later
		if held, ok := e.Seen.Pending(in.OpenID); ok && held.At.After(u.LastSeenAt) {
			u.Conversation, u.LastSeenAt = held.Conversation, held.At
		}
	}
	conv, ok := conversations[u.Conversation]
	if !ok || in.At.Sub(u.LastSeenAt) > KeepAnswersFor {
		return replies, nil
	}
	about := conv.describe()
	keyword := ""
	if len(about.keywords) > 0 {
		keyword = about.keywords[0]
	}
	notice, err := templates.Message("conversation_lost", map[string]string{"Title": about.title, "Keyword": keyword})
	if err != nil {
		return nil, err
	}
	if len(replies) == 1 && replies[0] == mustMessage("not_understood", nil) {
		return []string{notice}, nil
	}
	return prefixed(notice, replies), nil
}
