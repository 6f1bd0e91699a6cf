package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/bot/wechat/sandbox"
	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

const adminToken = "a-long-enough-admin-token"

// adminJSON calls the console's API with the operator's token.
func adminJSON(t *testing.T, h http.Handler, method, target, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out map[string]any
	json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

type demoWorld struct {
	Communities []struct {
		ID   int64
		Name string
	}
	Doctors []struct {
		ID          int64
		Name        string
		BindingCode string `json:"binding_code"`
	}
}

func sandboxDemo(t *testing.T, srv *Server) demoWorld {
	t.Helper()
	var demo demoWorld
	if err := json.Unmarshal(get(t, srv.Handler(), "/sandbox/demo", local).Body.Bytes(), &demo); err != nil || len(demo.Communities) < 2 {
		t.Fatalf("sandbox demo: %+v %v", demo, err)
	}
	return demo
}

// signAtDesk signs a made-up resident managed by openID, who follows the
// account, in a community with declared priority groups.
func signAtDesk(t *testing.T, srv *Server, openID string, community int64, groups []string, n int) {
	t.Helper()
	ctx := context.Background()
	teams, err := srv.DB.TeamsServing(ctx, community)
	if err != nil || len(teams) == 0 {
		t.Fatalf("teams serving %d: %v", community, err)
	}
	now := srv.clock.Now()
	if _, err := flows.SignAtDesk(ctx, srv.DB, srv.Sealer, flows.DeskSigning{Name: "居民" + string(rune('甲'+n)),
		IDNumber: flows.SyntheticID(now.AddDate(-50, 0, -n), n), Phone: fmt.Sprintf("139%08d", n), CommunityID: community,
		TeamID: teams[0].ID, Groups: groups, Request: "test-request-" + openID, OpenID: openID},
		flows.ResidentImport{Institution: teams[0].InstitutionID, Actor: "test", Now: now}); err != nil {
		t.Fatal(err)
	}
	if err := srv.DB.Apply(ctx, storage.Changes{Seen: &storage.UserSeen{OpenID: openID, Subscribed: true, EventTime: now}}); err != nil {
		t.Fatal(err)
	}
}

func received(srv *Server, openID, kind string) []sandbox.Message {
	var out []sandbox.Message
	for _, m := range srv.StandIn.Outbox(openID) {
		if m.Kind == kind {
			out = append(out, m)
		}
	}
	return out
}

// An admin sends a tip to one community's hypertension patients through
// the API: the audience is counted first, a preview reaches a bound doctor
// only, each patient (and no one else) receives the tip with how to stop
// tips, and WeChat's report of the job comes back to /wechat and shows as
// the broadcast's result. A fifth tip in the month is refused.
func TestBroadcastReachesOneCommunitysHypertensionPatients(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, stack storagetest.Stack) {
		srv, _ := live(t, map[string]string{"JIAYI_DATABASE_URL": stack.DatabaseURL, "JIAYI_REDIS_URL": stack.RedisURL,
			"JIAYI_ADMIN_TOKEN": adminToken}, Options{RedisPrefix: stack.Redis.Prefix})
		h := srv.Handler()
		// Tips wait out the night's quiet hours: the test runs at 10:00.
		morning := flows.StartOfDay(srv.clock.Now()).AddDate(0, 0, 1).Add(10 * time.Hour)
		if code, _ := moveClock(t, h, `{"to": "`+morning.Format(time.RFC3339)+`"}`); code != http.StatusOK {
			t.Fatalf("clock: %d", code)
		}
		demo := sandboxDemo(t, srv)
		east, west := demo.Communities[0], demo.Communities[1]
		if reply := chat(t, srv, "o_bc_doc", "绑定 "+demo.Doctors[0].BindingCode); !strings.Contains(reply, "绑定成功") {
			t.Fatalf("bind: %s", reply)
		}
		patients := []string{"o_bc_east_1", "o_bc_east_2", "o_bc_east_3"}
		for i, o := range patients {
			signAtDesk(t, srv, o, east.ID, []string{"hypertension"}, i+1)
		}
		signAtDesk(t, srv, "o_bc_east_healthy", east.ID, nil, 10)
		signAtDesk(t, srv, "o_bc_west_patient", west.ID, []string{"hypertension"}, 11)
		signAtDesk(t, srv, "o_bc_east_quiet", east.ID, []string{"hypertension"}, 12)
		if reply := chat(t, srv, "o_bc_east_quiet", "提醒设置"); !strings.Contains(reply, "健康知识提示") {
			t.Fatalf("settings: %s", reply)
		}
		chat(t, srv, "o_bc_east_quiet", "1") // tips off

		tip := fmt.Sprintf(`{"title": "冬季控血压", "text": "天冷血压容易升高，每天早晚各量一次。", "segment": {"groups": ["hypertension"], "communities": [%q]}}`, east.Name)
		code, out := adminJSON(t, h, "POST", "/admin/api/broadcasts/audience", tip)
		if code != http.StatusOK || out["audience"] != 3.0 {
			t.Fatalf("audience: %d %v", code, out)
		}
		withTypo := strings.Replace(tip, `"segment"`, `"segmetn"`, 1)
		if code, out := adminJSON(t, h, "POST", "/admin/api/broadcasts", withTypo); code != http.StatusBadRequest {
			t.Fatalf("a misspelt segment was taken: %d %v", code, out)
		}
		if code, out := adminJSON(t, h, "POST", "/admin/api/broadcasts", strings.Replace(tip, "hypertension", "hypertensoin", 1)); code != http.StatusBadRequest {
			t.Fatalf("an unknown group was taken: %d %v", code, out)
		}
		preview := strings.Replace(tip, `"segment"`, `"preview_to": "o_bc_doc", "segment"`, 1)
		if code, out := adminJSON(t, h, "POST", "/admin/api/broadcasts", preview); code != http.StatusAccepted {
			t.Fatalf("preview: %d %v", code, out)
		}
		if code, _ := adminJSON(t, h, "POST", "/admin/api/broadcasts", strings.Replace(preview, "o_bc_doc", patients[0], 1)); code != http.StatusBadRequest {
			t.Fatalf("a preview to a resident was taken: %d", code)
		}
		code, out = adminJSON(t, h, "POST", "/admin/api/broadcasts", tip)
		if code != http.StatusCreated || out["audience"] != 3.0 {
			t.Fatalf("send: %d %v", code, out)
		}
		id := int64(out["id"].(float64))

		var state map[string]any
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			_, state = adminJSON(t, h, "GET", fmt.Sprintf("/admin/api/broadcasts/%d", id), "")
			if state["state"] == "done" || time.Now().After(deadline) {
				break
			}
		}
		if state["state"] != "done" || state["audience"] != 3.0 || state["sent"] != 3.0 || state["failed"] != 0.0 {
			t.Fatalf("result: %v", state)
		}
		for _, o := range patients {
			got := received(srv, o, "mass")
			if len(got) != 1 || !strings.Contains(got[0].Text, "每天早晚各量一次") || !strings.Contains(got[0].Text, "提醒设置") {
				t.Fatalf("%s received %+v", o, got)
			}
		}
		for _, o := range []string{"o_bc_east_healthy", "o_bc_west_patient", "o_bc_east_quiet"} {
			if got := received(srv, o, "mass"); len(got) != 0 {
				t.Fatalf("%s is not in the segment but received %+v", o, got)
			}
		}
		if got := received(srv, "o_bc_doc", "mass-preview"); len(got) != 1 || !strings.Contains(got[0].Text, "冬季控血压") {
			t.Fatalf("the doctor's preview: %+v", got)
		}
		// The sandbox's outbox shows the tip a resident received, with its words.
		var shown []sandbox.Message
		json.Unmarshal(get(t, h, "/sandbox/outbox?to="+patients[0], local).Body.Bytes(), &shown)
		if len(shown) == 0 || !strings.Contains(shown[len(shown)-1].Text, "冬季控血压") {
			t.Fatalf("/sandbox/outbox: %+v", shown)
		}

		for i := range 3 { // four this month in all
			if code, out := adminJSON(t, h, "POST", "/admin/api/broadcasts", tip); code != http.StatusCreated {
				t.Fatalf("tip %d: %d %v", i+2, code, out)
			}
		}
		code, out = adminJSON(t, h, "POST", "/admin/api/broadcasts", tip)
		if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out["error"]), "本月都已收到 4 条") {
			t.Fatalf("a fifth this month: %d %v", code, out)
		}
	})
}
