package flows

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

// A stepped conversation asks its steps in order, one question a reply:
// each answer is taken or re-asked, 返回 goes back one step, a stop ends the
// conversation with a message. Signing and booking are stepped.
type stepped struct {
	name        string // key in conversations
	titleText   string // what residents call it
	helpMessage string
	keyPrefix   string // of the key that names one run, for idempotent effects
	steps       func() []step
}

// step is one question.
type step struct {
	name    string
	applies func(t *turnCtx) (bool, error) // nil: always
	ask     func(t *turnCtx) (string, error)
	take    func(t *turnCtx, said string) (ack string, err error)
}

// turnCtx is one turn of a stepped conversation.
type turnCtx struct {
	context.Context
	e   *Engine
	st  *State
	in  Inbound
	cat *storage.Catalog
}

// reask is an answer that is not valid: say why and what is expected.
type reask struct{ msg string }

func (r reask) Error() string { return r.msg }

// stop ends the conversation with a message.
type stop struct{ msg string }

func (s stop) Error() string { return s.msg }

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

func (c stepped) title() string { return c.titleText }

func (c stepped) help(*State) (string, error) { return templates.Message(c.helpMessage, nil) }

func (c stepped) stepNamed(name string) (int, step) {
	steps := c.steps()
	for i, s := range steps {
		if s.name == name {
			return i, s
		}
	}
	return 0, steps[0]
}

func (c stepped) start(ctx context.Context, e *Engine, st *State, in Inbound) ([]string, error) {
	return c.startAt(ctx, e, st, in, c.steps()[0].name, nil)
}

// startAt begins at a given step with some answers already known (改约
// starts at the date).
func (c stepped) startAt(ctx context.Context, e *Engine, st *State, in Inbound, at string, known map[string]string) ([]string, error) {
	st.Flow, st.Step = c.name, at
	// The key names this run: a replay of its last step finds the same
	// effect, another run (even in the same second) makes its own.
	st.Data = map[string]string{"key": c.keyPrefix + ":" + in.OpenID + ":" + randomKey(), "openid": in.OpenID}
	for k, v := range known {
		st.Data[k] = v
	}
	t := &turnCtx{Context: ctx, e: e, st: st, in: in}
	_, first := c.stepNamed(at)
	return t.ask(first, "")
}

func (c stepped) answer(ctx context.Context, e *Engine, st *State, said string, in Inbound) ([]string, error) {
	if in.OpenID == "" { // 继续 after an interruption: ask again
		in.OpenID = st.Data["openid"]
	}
	t := &turnCtx{Context: ctx, e: e, st: st, in: in}
	_, cur := c.stepNamed(st.Step)
	switch said {
	case "":
		return t.ask(cur, "")
	case "返回":
		history := t.history()
		if len(history) == 0 {
			return t.ask(cur, mustMessage("sign_first_step", nil))
		}
		st.Step = history[len(history)-1]
		st.Data["history"] = strings.Join(history[:len(history)-1], ",")
		_, prev := c.stepNamed(st.Step)
		return t.ask(prev, mustMessage("sign_back", nil))
	}
	ack, err := cur.take(t, said)
	var r reask
	var end stop
	switch {
	case errors.As(err, &r):
		return []string{r.msg}, nil
	case errors.As(err, &end):
		st.Reset()
		return []string{end.msg}, nil
	case err != nil:
		return nil, err
	}
	next, err := c.nextStep(t, cur.name)
	if err != nil {
		return nil, err
	}
	st.Data["history"] = strings.Join(append(t.history(), cur.name), ",")
	st.Step = next.name
	return t.ask(next, ack)
}

func (c stepped) nextStep(t *turnCtx, after string) (step, error) {
	steps := c.steps()
	i, _ := c.stepNamed(after)
	for _, s := range steps[i+1:] {
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
	return steps[len(steps)-1], nil
}

// ask puts a step's question, after an acknowledgement, in one reply. A step
// that cannot be asked (no team serves the community) ends the conversation.
func (t *turnCtx) ask(s step, ack string) ([]string, error) {
	q, err := s.ask(t)
	var end stop
	if errors.As(err, &end) {
		t.st.Reset()
		return []string{joinNonEmpty(ack, end.msg)}, nil
	}
	if err != nil {
		return nil, err
	}
	return []string{joinNonEmpty(ack, q)}, nil
}

func joinNonEmpty(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "\n")
}

func mustMessage(name string, data any) string {
	text, err := templates.Message(name, data)
	if err != nil {
		return name
	}
	return text
}

func (t *turnCtx) history() []string {
	if h := t.st.Data["history"]; h != "" {
		return strings.Split(h, ",")
	}
	return nil
}
