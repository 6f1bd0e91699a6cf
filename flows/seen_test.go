package flows

import (
	"context"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
)

// With a Seen buffer, a user's first turn in a session writes their record
// at once, so it exists for any later turn that updates it; later turns
// leave their "last seen" to the buffer; an unfollow is written at once.
func TestEngineHoldsBackLaterTurnsLastSeen(t *testing.T) {
	e := engineFor(t, "national")
	e.Seen = &storage.SeenBuffer{DB: e.DB}
	ctx := context.Background()
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	var st State
	turn := func(in Inbound) {
		t.Helper()
		in.OpenID, in.At = "o_held", at
		if _, err := e.Handle(ctx, &st, in); err != nil {
			t.Fatal(err)
		}
	}
	user := func() storage.WeChatUser {
		t.Helper()
		u, err := e.DB.WeChatUser(ctx, "o_held")
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	turn(Inbound{Kind: Text, Text: "签约", NoSession: true})
	if u := user(); u.Conversation != "signing" {
		t.Fatalf("first turn not written at once: %+v", u)
	}
	at = at.Add(time.Minute)
	turn(Inbound{Kind: Text, Text: "取消"})
	if u := user(); u.Conversation != "signing" {
		t.Fatalf("a later turn written at once: %+v", u)
	}
	if held, ok := e.Seen.Pending("o_held"); !ok || held.Conversation != "" {
		t.Fatalf("a later turn not held back: %+v %v", held, ok)
	}
	if err := e.Seen.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if u := user(); u.Conversation != "" {
		t.Fatalf("after the flush: %+v", u)
	}
	at = at.Add(time.Minute)
	turn(Inbound{Kind: Unsubscribe})
	if u := user(); u.Subscribed {
		t.Fatalf("an unfollow held back: %+v", u)
	}
	if _, ok := e.Seen.Pending("o_held"); ok {
		t.Fatal("an unfollow went to the buffer")
	}
	// Without a buffer every turn writes its own.
	e.Seen = nil
	at = at.Add(time.Minute)
	turn(Inbound{Kind: Text, Text: "签约"})
	if u := user(); u.Conversation != "signing" || !u.Subscribed {
		t.Fatalf("without a buffer: %+v", u)
	}
}
