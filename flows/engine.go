package flows

import (
	"context"
	"fmt"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

// Engine routes each inbound message to the conversation it belongs to.
type Engine struct{}

// entryKeywords are the words that start a conversation; the flows behind
// them arrive with their own issues, until then they say so.
var entryKeywords = map[string]bool{"签约": true, "服务包": true, "预约": true, "我的": true}

// Handle runs one turn. State is updated in place; the caller saves it after
// the outcome's changes are durable.
func (e *Engine) Handle(ctx context.Context, st *State, in Inbound) (Outcome, error) {
	var out Outcome
	seen := &storage.UserSeen{OpenID: in.OpenID, Subscribed: true, EventTime: in.At, Scene: in.Scene}
	out.Changes.Seen = seen
	st.Updated = in.At

	var msg string
	var data any
	switch in.Kind {
	case Subscribe:
		msg = "welcome"
	case Unsubscribe:
		// Nothing can reach someone who just unfollowed; record it only.
		seen.Subscribed = false
		return out, nil
	case Activity:
		return out, nil
	case Unsupported:
		msg = "unsupported"
	case Click, Text, Scan:
		msg, data = e.words(in)
	default:
		return out, fmt.Errorf("flows.Handle: unknown inbound kind %q", in.Kind)
	}
	text, err := templates.Message(msg, data)
	if err != nil {
		return out, fmt.Errorf("flows.Handle: %w", err)
	}
	out.Replies = append(out.Replies, text)
	return out, nil
}

// words answers what a resident typed, said or clicked.
func (e *Engine) words(in Inbound) (string, any) {
	said := in.Text
	switch in.Kind {
	case Click:
		said = in.Key
	case Scan:
		return "help", nil
	}
	said = Normalize(said)
	switch {
	case said == "帮助":
		return "help", nil
	case entryKeywords[said]:
		return "coming_soon", said
	default:
		return "not_understood", nil
	}
}
