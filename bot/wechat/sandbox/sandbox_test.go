package sandbox

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/silenceper/wechat/v2/officialaccount"
	"github.com/silenceper/wechat/v2/officialaccount/config"
	"github.com/silenceper/wechat/v2/officialaccount/message"
	"github.com/silenceper/wechat/v2/util"
)

// The SDK, pointed at Transport, reaches the stand-in whose secret it holds;
// two accounts in one process do not see each other's messages.
func TestTwoStandInsThroughTheSDK(t *testing.T) {
	util.DefaultHTTPClient = &http.Client{Transport: Transport{}}
	a, b := New(), New()
	defer a.Close()
	defer b.Close()
	send := func(s *StandIn, to, text string) {
		oa := officialaccount.NewOfficialAccount(&config.Config{AppID: "wxsandbox", AppSecret: s.Secret(), Cache: mapCache{}, UseStableAK: true})
		if err := oa.GetCustomerMessageManager().Send(message.NewCustomerTextMessage(to, text)); err != nil {
			t.Fatal(err)
		}
		tpl := &message.TemplateMessage{ToUser: to, TemplateID: "tpl1", Data: map[string]*message.TemplateDataItem{"thing1": {Value: "随访提醒"}}}
		if _, err := oa.GetTemplate().Send(tpl); err != nil {
			t.Fatal(err)
		}
	}
	send(a, "o1", "你好")
	send(b, "o2", "再见")
	got := a.Outbox("o1")
	if len(got) != 2 || got[0].Kind != "customer-service" || got[0].Text != "你好" || got[1].Kind != "template" {
		t.Fatalf("a's outbox to o1 = %+v", got)
	}
	var data struct {
		TemplateID string `json:"template_id"`
	}
	if err := json.Unmarshal(got[1].Data, &data); err != nil || data.TemplateID != "tpl1" {
		t.Fatalf("template data = %s", got[1].Data)
	}
	if len(a.Outbox("o2")) != 0 || len(b.Outbox("o2")) != 2 {
		t.Fatal("stand-ins share messages")
	}
	if len(a.Outbox("")) != 3 { // two messages and one token
		t.Fatalf("a recorded %d calls, want 3", len(a.Outbox("")))
	}
}

func TestUnknownCallersGetNothing(t *testing.T) {
	c := &http.Client{Transport: Transport{}}
	_, err := c.Get("https://api.weixin.qq.com/cgi-bin/token?grant_type=client_credential&appid=x&secret=nobody")
	if err == nil || !strings.Contains(err.Error(), "not reachable") {
		t.Fatalf("unknown secret: %v", err)
	}
	s := New()
	s.Close()
	_, err = c.Get("https://api.weixin.qq.com/cgi-bin/token?grant_type=client_credential&appid=x&secret=" + s.Secret())
	if err == nil {
		t.Fatal("a closed stand-in still answers")
	}
}

// mapCache is enough cache for one goroutine's SDK client.
type mapCache map[string]any

func (m mapCache) Get(k string) any                           { return m[k] }
func (m mapCache) Set(k string, v any, _ time.Duration) error { m[k] = v; return nil }
func (m mapCache) IsExist(k string) bool                      { _, ok := m[k]; return ok }
func (m mapCache) Delete(k string) error                      { delete(m, k); return nil }
