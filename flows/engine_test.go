package flows

import (
	"context"
	"encoding/json"
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
		{"unknown text gets the help text", Inbound{Kind: Text, Text: "今天天气不错"},
			strings.ReplaceAll(msg(t, "not_understood", nil), templates.ClinicPhone, "需要帮忙请打电话0000-0000000。"), true},
		{"a greeting is greeted", Inbound{Kind: Text, Text: "你好呀"}, msg(t, "greeting", nil), true},
		{"an unrecognised voice message is asked again", Inbound{Kind: Unheard}, "没听清，请再说一次或打字。", true},
		{"menu click counts as its key", Inbound{Kind: Click, Key: "帮助"}, msg(t, "help", nil), true},
		{"booking before signing", Inbound{Kind: Text, Text: "预约"},
			strings.ReplaceAll(msg(t, "book_not_signed", nil), templates.ClinicPhone, "需要帮忙请打电话0000-0000000。"), true},
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

// A session naming a conversation, step or state shape this build does not
// know (a deploy renamed it while sessions live for hours) is reset with a
// word of explanation, whatever the resident says next.
func TestSessionFromAnotherBuildIsResetPolitely(t *testing.T) {
	e := engineFor(t, "national")
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, Shanghai)
	sessions := map[string]State{
		"renamed conversation":          {Flow: "family_bed", Step: "address", Version: 1, Updated: at.Add(-time.Minute)},
		"renamed and expired":           {Flow: "family_bed", Step: "address", Version: 1, Updated: at.Add(-2 * time.Hour)},
		"renamed step":                  {Flow: "signing", Step: "identity", Version: 1, Updated: at.Add(-time.Minute)},
		"old state shape":               {Flow: "signing", Step: "phone", Data: []byte(`{"who":"self","age":"71"}`), Updated: at.Add(-time.Minute)},
		"state that is not sealed":      {Flow: "booking", Step: "time", Version: 1, Data: []byte(`{"slots":"1,2"}`), Updated: at.Add(-time.Minute)},
		"state sealed with another key": {Flow: "booking", Step: "time", Version: 1, Data: []byte(`"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"`), Updated: at.Add(-time.Minute)},
		"paused one renamed":            {Paused: &State{Flow: "family_bed", Step: "x", Version: 1}, Updated: at.Add(-time.Minute)},
	}
	for name, st := range sessions {
		t.Run(name, func(t *testing.T) {
			for _, said := range []string{"1", "继续", "签约"} {
				st := st
				out, err := e.Handle(context.Background(), &st, Inbound{OpenID: "o_old", Kind: Text, Text: said, At: at})
				if err != nil {
					t.Fatalf("%q: %v", said, err)
				}
				if !strings.HasPrefix(out.Reply(), msg(t, "flow_reset", nil)) {
					t.Fatalf("%q: reply %q does not say the conversation was reset", said, out.Reply())
				}
				if st.Paused != nil && st.Paused.Flow == "family_bed" || st.Flow == "family_bed" || st.Step == "identity" {
					t.Fatalf("%q: the unreadable state is kept: %+v", said, st)
				}
				if said == "签约" && !strings.Contains(out.Reply(), "请问为谁签约") {
					t.Fatalf("the message after the reset is not answered: %q", out.Reply())
				}
			}
		})
	}
}

// A session saved by the build before typed state (its data a map of
// strings) still decodes, and is reset politely instead of silently.
func TestSessionSavedBeforeTypedStateIsResetPolitely(t *testing.T) {
	e := engineFor(t, "national")
	old := `{"flow":"signing","step":"phone","data":{"key":"sign:o:1","openid":"o","who":"self","name":"王秀英"},"updated":"2026-11-23T08:59:00Z"}`
	var st State
	if err := json.Unmarshal([]byte(old), &st); err != nil {
		t.Fatalf("an old session does not decode: %v", err)
	}
	out, err := e.Handle(context.Background(), &st, Inbound{OpenID: "o", Kind: Text, Text: "13812345678",
		At: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)})
	if err != nil || !strings.HasPrefix(out.Reply(), msg(t, "flow_reset", nil)) || st.Flow != "" {
		t.Fatalf("reply %q, state %+v, %v", out.Reply(), st, err)
	}
}

// A value the state should hold, found missing only mid-turn, ends the turn
// with nothing of it kept: the conversation starts afresh and says so.
func TestStateMissingAValueMidTurnKeepsNothing(t *testing.T) {
	e := engineFor(t, "national")
	ctx := context.Background()
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, Shanghai)
	slots, _ := e.DB.Slots(ctx, 1, at, at.AddDate(0, 0, 2))
	st := State{Flow: "booking", Step: "confirm", Version: 1, RunKey: "k", Updated: at}
	tt := &turn[bookingData]{e: e, st: &st, in: Inbound{OpenID: "o_gap"},
		d: &bookingData{DoctorID: 1, Day: slots[len(slots)-1].Day, Slot: slots[len(slots)-1].ID, Kind: "clinic"}}
	if err := tt.save(); err != nil {
		t.Fatal(err)
	}
	out, err := e.Handle(ctx, &st, Inbound{OpenID: "o_gap", Kind: Text, Text: "确认", At: at.Add(time.Minute)})
	if err != nil || out.Reply() != msg(t, "flow_reset", nil)+"\n\n"+msg(t, "help", nil) || st.Flow != "" {
		t.Fatalf("reply %q, state %+v, %v", out.Reply(), st, err)
	}
	if after, _ := e.DB.Slots(ctx, 1, at, at.AddDate(0, 0, 2)); after[len(after)-1].Booked != 0 {
		t.Fatal("the broken turn booked a place")
	}
	if _, err := e.DB.WeChatUser(ctx, "o_gap"); err != nil {
		t.Fatalf("the user's own record was not kept: %v", err)
	}
}

// A conversation's sealed state is bound to its user: copied into another
// user's session, it does not open.
func TestSealedStateOpensOnlyForItsUser(t *testing.T) {
	e := engineFor(t, "national")
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, Shanghai)
	var st State
	if _, err := e.Handle(context.Background(), &st, Inbound{OpenID: "o_a", Kind: Text, Text: "签约", At: at}); err != nil {
		t.Fatal(err)
	}
	copied := st
	out, err := e.Handle(context.Background(), &copied, Inbound{OpenID: "o_b", Kind: Text, Text: "1", At: at.Add(time.Minute)})
	if err != nil || !strings.HasPrefix(out.Reply(), msg(t, "flow_reset", nil)) || copied.Flow != "" {
		t.Fatalf("another user's state: %q %+v %v", out.Reply(), copied, err)
	}
	out, err = e.Handle(context.Background(), &st, Inbound{OpenID: "o_a", Kind: Text, Text: "1", At: at.Add(time.Minute)})
	if err != nil || !strings.Contains(out.Reply(), "姓名") {
		t.Fatalf("its own user: %q %v", out.Reply(), err)
	}
}
