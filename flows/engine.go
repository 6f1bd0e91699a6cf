package flows

import (
	"context"
	"fmt"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

// CatalogSource gives the region's package catalog; the database is the
// truth once seeded, so it is read per conversation step, not cached.
type CatalogSource interface {
	Catalog(ctx context.Context) (storage.Catalog, error)
}

// Engine routes each inbound message to the conversation it belongs to.
type Engine struct {
	Catalog   CatalogSource
	IdleAfter time.Duration // a conversation left this long expires; zero: 30 minutes
}

// conversation is one flow: it starts on an entry keyword and then takes
// every message until it ends, is cancelled or expires.
type conversation interface {
	title() string
	start(ctx context.Context, e *Engine, st *State) ([]string, error)
	answer(ctx context.Context, e *Engine, st *State, said string) ([]string, error)
	help(st *State) (string, error)
}

var conversations = map[string]conversation{
	"packages": browse{},
}

// entryKeywords start conversations; those not built yet say so.
var entryKeywords = map[string]string{"服务包": "packages", "签约": "", "预约": "", "我的": ""}

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
	case Unsubscribe:
		// Nothing can reach someone who just unfollowed; record it only.
		seen.Subscribed = false
	case Activity:
	case Unsupported:
		replies, err = say("unsupported", nil)
	case Scan:
		replies, err = say("help", nil)
	case Text:
		replies, err = e.words(ctx, st, Normalize(in.Text), in.At)
	case Click:
		replies, err = e.words(ctx, st, Normalize(in.Key), in.At)
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
func (e *Engine) words(ctx context.Context, st *State, said string, at time.Time) ([]string, error) {
	var prefix []string
	if st.Flow != "" && at.Sub(st.Updated) > e.idleAfter() {
		expired, err := templates.Message("flow_expired", conversations[st.Flow].title())
		if err != nil {
			return nil, err
		}
		prefix = append(prefix, expired)
		st.Reset()
	}
	replies, err := e.dispatch(ctx, st, said)
	if len(prefix) > 0 && len(replies) > 0 {
		// One passive reply: the notice and the answer together.
		replies[0] = prefix[0] + "\n\n" + replies[0]
	}
	return replies, err
}

func (e *Engine) dispatch(ctx context.Context, st *State, said string) ([]string, error) {
	if name, ok := entryKeywords[said]; ok {
		conv, built := conversations[name]
		if !built {
			return say("coming_soon", said)
		}
		st.Reset()
		st.Flow = name
		return conv.start(ctx, e, st)
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
		return conv.answer(ctx, e, st, said)
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

// Reset leaves any conversation.
func (st *State) Reset() {
	st.Flow, st.Step, st.Data = "", "", nil
}
