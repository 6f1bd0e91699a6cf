package flows

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

// A conversation declares itself once, in its own file: its name, the words
// that start it, whether an interruption pauses it, its typed state and its
// steps. Every conversation runs on the one step engine below, so 返回,
// 取消, 帮助, 继续 and expiry behave the same everywhere.
//
// Adding one (say, a 家庭病床 application) is a file with a
// conversation[D] passed to declare, its words in templates/ and its tests.
type conversation[D any] struct {
	about
	steps []step[D]
	// begin, if set, runs before the first question: it may fill in what is
	// already known (a single contract) or end at once with stopWith.
	begin func(t *turn[D]) error
	// ahead, if set, holds answers given before their question was asked
	// ("我想预约明天上午看病"), by step name: each is taken, once, when its
	// step comes.
	ahead func(d *D) map[string]string
}

// about is what the engine knows of a conversation whatever its state.
type about struct {
	name     string   // in the session; renaming one ends its live sessions politely
	title    string   // what residents call it
	keywords []string // typed or clicked, they start it
	pauses   bool     // interrupted, it waits for 继续; otherwise it just ends
	help     string   // message shown for 帮助, given the Step's name and the Title
	version  int      // of D's shape: a session holding another version starts afresh
	// cancelIsYes: 取消 answers its question (要取消这个预约吗？) rather than
	// leaving it.
	cancelIsYes bool
	// menu: it only shows things and takes numbers (服务包, 我的, 提醒设置),
	// so a sentence that asks for something else leaves it and is answered.
	menu bool
}

// step is one question of a conversation.
type step[D any] struct {
	name    string
	applies func(t *turn[D]) (bool, error) // nil: always
	ask     func(t *turn[D]) (string, error)
	// take reads an answer into the state and may acknowledge it; it
	// returns reask to stay on the step, stop to end the conversation, or
	// switchTo to hand over to another conversation.
	take func(t *turn[D], said string) (ack string, err error)
}

// turn is one message inside a conversation, with its typed state.
type turn[D any] struct {
	context.Context
	e   *Engine
	in  Inbound
	st  *State
	d   *D
	cat *storage.Catalog
}

// running is what the engine needs of any conversation, whatever its state.
type running interface {
	describe() about
	check(e *Engine, st *State, openID string) error
	start(ctx context.Context, e *Engine, st *State, in Inbound, seed any) ([]string, error)
	answer(ctx context.Context, e *Engine, st *State, said string, in Inbound) ([]string, error)
	helpText(st *State) (string, error)
}

// conversations holds every declared conversation by name; keywords maps
// each entry word to its conversation.
var (
	conversations = map[string]running{}
	keywords      = map[string]string{}
)

// declare registers a conversation; each file declares its own in a
// package-level variable.
func declare[D any](c *conversation[D]) *conversation[D] {
	if _, dup := conversations[c.name]; dup {
		panic("flows: conversation " + c.name + " declared twice")
	}
	conversations[c.name] = c
	for _, k := range c.keywords {
		keywords[k] = c.name
	}
	return c
}

func (c *conversation[D]) describe() about { return c.about }

// check says whether this build can carry on a session's conversation.
func (c *conversation[D]) check(e *Engine, st *State, openID string) error {
	_, err := c.load(context.Background(), e, st, Inbound{OpenID: openID})
	return err
}

func (c *conversation[D]) knows(name string) bool {
	return slices.ContainsFunc(c.steps, func(s step[D]) bool { return s.name == name })
}

func (c *conversation[D]) stepNamed(name string) (int, step[D]) {
	for i, s := range c.steps {
		if s.name == name {
			return i, s
		}
	}
	return 0, c.steps[0]
}

func (c *conversation[D]) helpText(st *State) (string, error) {
	return templates.Message(c.help, map[string]string{"Step": st.Step, "Title": c.title})
}

// errState is a session this build cannot read: a conversation, step or
// state version it does not know, or state that does not decode.
var errState = errors.New("conversation state from another build")

// load decodes the typed state of a turn.
func (c *conversation[D]) load(ctx context.Context, e *Engine, st *State, in Inbound) (*turn[D], error) {
	t := &turn[D]{Context: ctx, e: e, in: in, st: st, d: new(D)}
	if st.Version != c.version || !c.knows(st.Step) {
		return nil, fmt.Errorf("%w: %s/%s v%d", errState, st.Flow, st.Step, st.Version)
	}
	if len(st.Data) == 0 {
		return t, nil
	}
	var sealed string
	if err := json.Unmarshal(st.Data, &sealed); err != nil {
		return nil, fmt.Errorf("%w: %s: data is not sealed: %v", errState, st.Flow, err)
	}
	plain, err := e.Sealer.Open(sessionField(in.OpenID), sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errState, st.Flow, err)
	}
	dec := json.NewDecoder(strings.NewReader(plain))
	dec.DisallowUnknownFields()
	if err := dec.Decode(t.d); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errState, st.Flow, err)
	}
	return t, nil
}

// sessionField is what a user's conversation state is sealed as: bound to
// the user, a state copied into another user's session does not open.
func sessionField(openID string) string { return "session/" + openID }

// save encodes the typed state back into the session.
// The whole state is sealed: besides the ID number and phone (sealed in it
// too) it holds names, priority groups (health status) and referral
// reasons, none of which may sit in Redis in clear.
func (t *turn[D]) save() error {
	plain, err := json.Marshal(t.d)
	if err != nil {
		return fmt.Errorf("flows: encode %s state: %w", t.st.Flow, err)
	}
	sealed, err := t.e.Sealer.Seal(sessionField(t.in.OpenID), string(plain))
	if err != nil {
		return fmt.Errorf("flows: seal %s state: %w", t.st.Flow, err)
	}
	t.st.Data, err = json.Marshal(sealed)
	return err
}

// start begins a run. seed, if not nil, is a *D with answers already known
// (改约 knows the visit, 取消 N the appointment).
func (c *conversation[D]) start(ctx context.Context, e *Engine, st *State, in Inbound, seed any) ([]string, error) {
	st.Flow, st.Step, st.History, st.Version = c.name, c.steps[0].name, nil, c.version
	// The key names this run: a replay of its last step finds the same
	// effect, another run (even in the same second) makes its own.
	st.RunKey = c.name + ":" + in.OpenID + ":" + randomKey()
	t := &turn[D]{Context: ctx, e: e, in: in, st: st, d: new(D)}
	if d, ok := seed.(*D); ok && d != nil {
		*t.d = *d
	}
	if c.begin != nil {
		if replies, done, err := t.settle(c.begin(t)); done {
			return replies, err
		}
	}
	first, err := c.firstApplying(t, -1)
	if err != nil {
		return nil, err
	}
	return c.moveTo(t, first, "")
}

func (c *conversation[D]) answer(ctx context.Context, e *Engine, st *State, said string, in Inbound) ([]string, error) {
	t, err := c.load(ctx, e, st, in)
	if err != nil {
		return nil, err
	}
	i, cur := c.stepNamed(st.Step)
	switch said {
	case "": // 继续, or the conversation's own keyword again: ask again
		return t.ask(cur, "")
	case "返回":
		if len(st.History) == 0 {
			return t.ask(cur, mustMessage("sign_first_step", nil))
		}
		prev := st.History[len(st.History)-1]
		st.History = st.History[:len(st.History)-1]
		_, s := c.stepNamed(prev)
		st.Step = s.name
		return t.ask(s, mustMessage("sign_back", nil))
	}
	ack, err := cur.take(t, said)
	var r reask
	if errors.As(err, &r) {
		err = reask{joinNonEmpty(r.msg, elsewhere(said, st.Flow), stuckHint(st, said), questionHint(said))}
	}
	if replies, done, err := t.settle(err); done {
		return replies, err
	}
	next, err := c.firstApplying(t, i)
	if err != nil {
		return nil, err
	}
	if next.name != cur.name {
		st.History = append(st.History, cur.name)
	}
	return c.moveTo(t, next, ack)
}

// moveTo makes s the current step and asks it, unless an answer given
// ahead answers it: then the conversation moves on. An answer given ahead
// that does not fit is dropped, and the question says why.
func (c *conversation[D]) moveTo(t *turn[D], s step[D], ack string) ([]string, error) {
	for {
		t.st.Step = s.name
		said, ok := c.takeAhead(t, s.name)
		if !ok {
			return t.ask(s, ack)
		}
		i, _ := c.stepNamed(s.name)
		took, err := s.take(t, said)
		var r reask
		if errors.As(err, &r) {
			if q, qerr := s.ask(t); qerr == nil && q != "" && strings.Contains(r.msg, q) {
				return []string{joinNonEmpty(ack, r.msg)}, t.save() // the reask shows the question already
			}
			return t.ask(s, joinNonEmpty(ack, r.msg))
		}
		if replies, done, err := t.settle(err); done {
			return replies, err
		}
		next, err := c.firstApplying(t, i)
		if err != nil {
			return nil, err
		}
		if next.name == s.name {
			return t.ask(s, joinNonEmpty(ack, took))
		}
		t.st.History = append(t.st.History, s.name)
		s, ack = next, joinNonEmpty(ack, took)
	}
}

// takeAhead removes and returns the answer given ahead for a step.
func (c *conversation[D]) takeAhead(t *turn[D], name string) (string, bool) {
	if c.ahead == nil {
		return "", false
	}
	m := c.ahead(t.d)
	said, ok := m[name]
	delete(m, name)
	return said, ok
}

// firstApplying is the first step after index i that applies; the last
// step if none does.
func (c *conversation[D]) firstApplying(t *turn[D], i int) (step[D], error) {
	for _, s := range c.steps[i+1:] {
		if s.applies == nil {
			return s, nil
		}
		ok, err := s.applies(t)
		if err != nil {
			return s, err
		}
		if ok {
			return s, nil
		}
	}
	return c.steps[len(c.steps)-1], nil
}

// ask puts a step's question, after an acknowledgement, in one reply.
func (t *turn[D]) ask(s step[D], ack string) ([]string, error) {
	q, err := s.ask(t)
	if replies, done, err := t.settle(err); done {
		if len(replies) > 0 {
			replies[0] = joinNonEmpty(ack, replies[0])
		}
		return replies, err
	}
	if err := t.save(); err != nil {
		return nil, err
	}
	return []string{joinNonEmpty(ack, q)}, nil
}

// settle turns what a step function returned into the turn's reply: done is
// false when the conversation goes on normally.
func (t *turn[D]) settle(err error) (replies []string, done bool, _ error) {
	var r reask
	var end stop
	var to switchTo
	switch {
	case err == nil:
		return nil, false, nil
	case errors.As(err, &r):
		return []string{r.msg}, true, t.save()
	case errors.As(err, &end):
		t.st.leave()
		return resumeHint(t.st.Paused, []string{end.msg}), true, nil
	case errors.As(err, &to):
		replies, err := t.e.enter(t, t.st, to.name, t.in, to.seed)
		return replies, true, err
	}
	return nil, true, err
}

// elsewhere is, for an answer a question could not take, the word that
// does what the sentence seems to ask ("我想先预约一下" in the middle of 签约),
// so nobody is left re-answering a question they did not mean to.
func elsewhere(said, flow string) string {
	m := Understand(said)
	if m.Says == "" || m.Whole || keywords[m.Says] == flow {
		return ""
	}
	return mustMessage("maybe_elsewhere", m.Says)
}

// questionHint tells someone who asked a question instead of answering
// whom to ask (不同意的话还能看病吗).
func questionHint(said string) string {
	if !isQuestion(said) {
		return ""
	}
	return mustMessage("question_hint", nil)
}

// stuckWords say the answer is not at hand (身份证回头再找找).
var stuckWords = []string{"不知道", "不清楚", "不记得", "忘了", "找不到", "回头", "没带", "不在身边", "手头没有", "晚点", "等会", "一会儿"}

// stuckHint is, for an answer a question could not take that says the
// answer is not at hand, the question's hint (不知道 gets it alone).
func stuckHint(st *State, said string) string {
	c := compact(said)
	if !slices.ContainsFunc(stuckWords, func(w string) bool { return strings.Contains(c, w) }) {
		return ""
	}
	hint, err := templates.Message("dont_know_"+st.Flow+"_"+st.Step, nil)
	if err != nil {
		return ""
	}
	return hint
}

// reask is an answer that is not valid: say why and what is expected.
type reask struct{ msg string }

func (r reask) Error() string { return r.msg }

// stop ends the conversation with a message.
type stop struct{ msg string }

func (s stop) Error() string { return s.msg }

// switchTo hands the resident over to another conversation (我的 → 提醒设置).
type switchTo struct {
	name string
	seed any
}

func (s switchTo) Error() string { return "switch to " + s.name }

func reaskWith(name string, data any) error {
	text, err := templates.Message(name, data)
	if err != nil {
		return err
	}
	return reask{text}
}

func stopWith(name string, data any) error {
	text, err := templates.Message(name, data)
	if err != nil {
		return err
	}
	return stop{text}
}

func randomKey() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func joinNonEmpty(parts ...string) string { return joinNonEmptyWith("\n", parts...) }

func mustMessage(name string, data any) string {
	text, err := templates.Message(name, data)
	if err != nil {
		return name
	}
	return text
}

// catalog is the catalog, read once a turn.
func (t *turn[D]) catalog() (storage.Catalog, error) {
	if t.cat == nil {
		c, err := t.e.DB.Catalog(t)
		if err != nil {
			return c, err
		}
		t.cat = &c
	}
	return *t.cat, nil
}

// settings are the programme's rules, read with the catalog.
func (t *turn[D]) settings() (profile.Settings, error) {
	c, err := t.catalog()
	if err != nil {
		return profile.Settings{}, err
	}
	return profile.SettingsOf(c)
}

// missing is the error for state a step needs and does not find.
func missing(flow, what string) error {
	return fmt.Errorf("%w: %s state has no %s", errState, flow, what)
}

// joinNonEmptyWith joins the parts that are not empty with sep.
func joinNonEmptyWith(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}

// Free text is kept short enough to store, show and push: a longer answer
// is asked again with the limit.
const (
	maxReasonRunes  = 100 // 解约 and referral reasons
	maxAddressRunes = 60  // a home visit's address
	maxCommentRunes = 200 // a survey comment
	maxDeclineRunes = 50  // a doctor's reason for declining, pushed to the resident
)

// tooLong re-asks an answer longer than max characters.
func tooLong(said string, max int) error {
	if utf8.RuneCountInString(said) <= max {
		return nil
	}
	return reaskWith("text_too_long", max)
}
