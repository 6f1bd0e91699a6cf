package flows

import (
	"context"
	"testing"
	"time"
)

// Every button of the menu is answered: clicked by a new user or by a
// signed resident, from no conversation, none gets "not understood" or an
// error.
func TestEveryMenuButtonIsAnswered(t *testing.T) {
	menu, err := Menu()
	if err != nil {
		t.Fatal(err)
	}
	e, _, _ := signedResident(t, "o_menu_signed")
	notUnderstood := mustMessage("not_understood", nil)
	keys := 0
	for _, top := range menu {
		for _, b := range append([]MenuButton{top}, top.Sub...) {
			if b.Key == "" {
				continue
			}
			keys++
			for _, who := range []string{"o_menu_new", "o_menu_signed"} {
				var st State
				out, err := e.Handle(context.Background(), &st, Inbound{OpenID: who, Kind: Click, Key: b.Key,
					At: time.Date(2026, 11, 24, 9, 0, 0, 0, Shanghai)})
				if err != nil || len(out.Replies) == 0 || out.Replies[0] == notUnderstood {
					t.Errorf("%s clicks %q (%s): %q %v", who, b.Name, b.Key, out.Replies, err)
				}
			}
		}
	}
	if keys == 0 {
		t.Fatal("the menu has no buttons that send a key")
	}
}

// A menu WeChat would refuse is refused here, naming the button.
func TestMenuOutsideWeChatsLimitsIsRefused(t *testing.T) {
	for name, yaml := range map[string]string{
		"four buttons":        "[{name: a, key: a}, {name: b, key: b}, {name: c, key: c}, {name: d, key: d}]",
		"a long name":         "[{name: 家庭医生签约服务, key: 签约}]",
		"neither key nor sub": "[{name: 签约}]",
		"six below":           "[{name: 签约, sub: [{name: a, key: a}, {name: b, key: b}, {name: c, key: c}, {name: d, key: d}, {name: e, key: e}, {name: f, key: f}]}]",
		"a key missing below": "[{name: 签约, sub: [{name: 服务包}]}]",
	} {
		if _, err := parseMenu([]byte(yaml)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
