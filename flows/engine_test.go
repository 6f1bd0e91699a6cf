package flows

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/templates"
)

func msg(t *testing.T, name string, data any) string {
	t.Helper()
	s, err := templates.Message(name, data)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTurns(t *testing.T) {
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	turns := []struct {
		name       string
		in         Inbound
		want       string
		subscribed bool
	}{
		{"follow gets the welcome", Inbound{Kind: Subscribe}, msg(t, "welcome", nil), true},
		{"follow through a QR code keeps the scene", Inbound{Kind: Subscribe, Scene: "team-7"}, msg(t, "welcome", nil), true},
		{"help", Inbound{Kind: Text, Text: "帮助"}, msg(t, "help", nil), true},
		{"spoken help with recognition punctuation", Inbound{Kind: Text, Text: "帮助。"}, msg(t, "help", nil), true},
		{"full-width spaces around a keyword", Inbound{Kind: Text, Text: "　帮助　"}, msg(t, "help", nil), true},
		{"unknown text gets the help text", Inbound{Kind: Text, Text: "你好呀"}, msg(t, "not_understood", nil), true},
		{"menu click counts as its key", Inbound{Kind: Click, Key: "帮助"}, msg(t, "help", nil), true},
		{"booking before signing", Inbound{Kind: Text, Text: "预约"}, msg(t, "book_not_signed", nil), true},
		{"a scan is answered", Inbound{Kind: Scan, Scene: "x"}, msg(t, "help", nil), true},
		{"picture", Inbound{Kind: Unsupported}, msg(t, "unsupported", nil), true},
		{"unfollow is recorded, not answered", Inbound{Kind: Unsubscribe}, "", false},
		{"activity marks subscribed, not answered", Inbound{Kind: Activity}, "", true},
	}
	e := engineFor(t, "national")
	for _, tc := range turns {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.OpenID, tc.in.At = "o1", at
			var st State
			out, err := e.Handle(context.Background(), &st, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := out.Reply(); got != tc.want {
				t.Fatalf("reply = %q, want %q", got, tc.want)
			}
			s := out.Changes.Seen
			if s == nil || s.OpenID != "o1" || s.Subscribed != tc.subscribed || !s.EventTime.Equal(at) || s.Scene != tc.in.Scene {
				t.Fatalf("changes = %+v", s)
			}
		})
	}
}

func TestNotUnderstoodNamesTheKeywords(t *testing.T) {
	e := engineFor(t, "national")
	out, _ := e.Handle(context.Background(), &State{}, Inbound{OpenID: "o", Kind: Text, Text: "？？"})
	for _, kw := range []string{"签约", "服务包", "预约", "我的"} {
		if !strings.Contains(out.Reply(), kw) {
			t.Errorf("reply lacks %s", kw)
		}
	}
}

func TestUnknownKindIsAnError(t *testing.T) {
	e := engineFor(t, "national")
	if _, err := e.Handle(context.Background(), &State{}, Inbound{Kind: "telepathy"}); err == nil {
		t.Fatal("unknown kind accepted")
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{"１ ３": "1 3", " 签约！": "签约", "预约。": "预约", "abc": "abc", "": ""} {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}
