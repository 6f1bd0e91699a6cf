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

	"github.com/chromedp/chromedp"
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
	Admin       struct{ Username, Password string }
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

// morningDemo moves the sandbox clock to 10:00 tomorrow (tips wait out the
// night's quiet hours) and reads the demo.
func morningDemo(t *testing.T, srv *Server) demoWorld {
	t.Helper()
	morning := flows.StartOfDay(srv.clock.Now()).AddDate(0, 0, 1).Add(10 * time.Hour)
	if code, _ := moveClock(t, srv.Handler(), `{"to": "`+morning.Format(time.RFC3339)+`"}`); code != http.StatusOK {
		t.Fatalf("clock: %d", code)
	}
	return sandboxDemo(t, srv)
}

// bindDoctor binds a WeChat user as the demo's first doctor.
func bindDoctor(t *testing.T, srv *Server, demo demoWorld, openID string) {
	t.Helper()
	if reply := chat(t, srv, openID, "绑定 "+demo.Doctors[0].BindingCode); !strings.Contains(reply, "绑定成功") {
		t.Fatalf("bind: %s", reply)
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
// account, in a community with declared priority groups, and returns the
// contract's number.
func signAtDesk(t *testing.T, srv *Server, openID string, community int64, groups []string, n int) string {
	t.Helper()
	ctx := context.Background()
	teams, err := srv.DB.TeamsServing(ctx, community)
	if err != nil || len(teams) == 0 {
		t.Fatalf("teams serving %d: %v", community, err)
	}
	now := srv.clock.Now()
	number, err := flows.SignAtDesk(ctx, srv.DB, srv.Sealer, flows.DeskSigning{Name: "居民" + string(rune('甲'+n)),
		IDNumber: flows.SyntheticID(now.AddDate(-50, 0, -n), n), Phone: fmt.Sprintf("139%08d", n), CommunityID: community,
		TeamID: teams[0].ID, Groups: groups, Request: "test-request-" + openID, OpenID: openID},
		flows.ResidentImport{Institution: teams[0].InstitutionID, Actor: "test", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.DB.Apply(ctx, storage.Changes{Seen: &storage.UserSeen{OpenID: openID, Subscribed: true, EventTime: now}}); err != nil {
		t.Fatal(err)
	}
	return number
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
		demo := morningDemo(t, srv)
		east, west := demo.Communities[0], demo.Communities[1]
		bindDoctor(t, srv, demo, "o_bc_doc")
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
		if _, report := adminJSON(t, h, "GET", "/admin/api/indicators", ""); report["activity"].(map[string]any)["broadcasts"] != 1.0 {
			t.Fatalf("indicators' activity: %v", report["activity"])
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

// TestBroadcastInABrowser is the admin's whole task in a real browser:
// compose a tip for one community's hypertension patients, count who it
// reaches, preview it on a doctor's phone, send it, and read the result
// WeChat reports; each of those patients, and no one else, has the tip.
func TestBroadcastInABrowser(t *testing.T) {
	chromium(t)
	srv, base := live(t, map[string]string{}, Options{})
	demo := morningDemo(t, srv)
	east, west := demo.Communities[0], demo.Communities[1]
	bindDoctor(t, srv, demo, "o_br_doc")
	signAtDesk(t, srv, "o_br_east_1", east.ID, []string{"hypertension"}, 1)
	signAtDesk(t, srv, "o_br_east_2", east.ID, []string{"hypertension", "diabetes"}, 2)
	signAtDesk(t, srv, "o_br_east_healthy", east.ID, nil, 3)
	signAtDesk(t, srv, "o_br_west", west.ID, []string{"hypertension"}, 4)

	ctx := browse(t)
	run := runner(t, ctx)
	textOf := textReader(t, ctx)
	run("sign in", signInSteps(base, demo.Admin.Username, demo.Admin.Password)...)
	run("compose",
		chromedp.Navigate(base+"/admin/broadcasts"),
		chromedp.Click(chromedp.Search(`//a[text()="新建群发"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#compose`)),
		chromedp.SendKeys(chromedp.CSS(`#compose input[name=title]`), "冬季控血压"),
		chromedp.SendKeys(chromedp.CSS(`#compose textarea[name=text]`), "天冷血压容易升高，每天早晚各量一次。"),
		chromedp.Click(chromedp.Search(`//form[@id="compose"]//label[contains(., "高血压患者")]/input`)),
		chromedp.Click(chromedp.Search(`//form[@id="compose"]//label[contains(., "`+east.Name+`")]/input`)),
		chromedp.Click(chromedp.CSS(`#compose button[value=audience]`)),
		chromedp.WaitVisible(chromedp.CSS(`#audience`)))
	if got := textOf("#audience"); !strings.Contains(got, "共 2 位居民") || !strings.Contains(got, "本月已收到 0 条：2 人（100%）") {
		t.Fatalf("audience:\n%s", got)
	}
	run("preview", chromedp.Click(chromedp.CSS(`#compose button[value=preview]`)), chromedp.WaitVisible(chromedp.CSS(`.flash`)))
	if got := received(srv, "o_br_doc", "mass-preview"); len(got) != 1 || !strings.Contains(got[0].Text, "每天早晚各量一次") {
		t.Fatalf("the doctor's preview: %+v", got)
	}
	run("send", chromedp.Click(chromedp.CSS(`#compose button[value=send]`)), chromedp.WaitVisible(chromedp.CSS(`#result`)))
	if got := textOf(".flash"); !strings.Contains(got, "已提交群发“冬季控血压”，共 2 人") {
		t.Fatalf("after sending: %q", got)
	}
	for deadline := time.Now().Add(15 * time.Second); textOf("#state") != "已完成"; time.Sleep(300 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the result never came: %q", textOf("main"))
		}
		run("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#result`)))
	}
	if sent, audience := textOf("#sent"), textOf("#audience"); sent != "2" || audience != "2" {
		t.Fatalf("sent %q of %q", sent, audience)
	}
	for _, o := range []string{"o_br_east_1", "o_br_east_2"} {
		if got := received(srv, o, "mass"); len(got) != 1 || !strings.Contains(got[0].Text, "冬季控血压") {
			t.Fatalf("%s received %+v", o, got)
		}
	}
	for _, o := range []string{"o_br_east_healthy", "o_br_west"} {
		if got := received(srv, o, "mass"); len(got) != 0 {
			t.Fatalf("%s received %+v", o, got)
		}
	}
	screenshot(t, ctx, "broadcast.png")
}

// Priority groups and communities are mirrored into WeChat user tags and
// kept in sync as residents move, leave and turn tips off; a city-wide tip
// to one group goes by its tag, and a tag's members have their monthly
// limit as everyone does.
func TestTagsFollowResidentsAndCarryBroadcasts(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, stack storagetest.Stack) {
		srv, _ := live(t, map[string]string{"JIAYI_DATABASE_URL": stack.DatabaseURL, "JIAYI_REDIS_URL": stack.RedisURL,
			"JIAYI_ADMIN_TOKEN": adminToken}, Options{RedisPrefix: stack.Redis.Prefix})
		ctx, h := context.Background(), srv.Handler()
		demo := morningDemo(t, srv)
		east, west := demo.Communities[0], demo.Communities[1]
		numbers := map[string]string{}
		for i, o := range []string{"o_tag_mover", "o_tag_leaver", "o_tag_quiet", "o_tag_stays"} {
			numbers[o] = signAtDesk(t, srv, o, east.ID, []string{"hypertension"}, i+1)
		}
		signAtDesk(t, srv, "o_tag_west", west.ID, []string{"hypertension"}, 9)
		if _, err := srv.Tags.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		tagOf := func(segment string) int64 {
			tags, _ := srv.DB.Tags(ctx)
			for _, tag := range tags {
				if tag.Segment == segment {
					return tag.TagID
				}
			}
			t.Fatalf("no tag for %s in %+v", segment, tags)
			return 0
		}
		group, eastTag := tagOf("group:hypertension"), tagOf(fmt.Sprintf("community:%d", east.ID))
		if got := srv.StandIn.Tagged(eastTag); fmt.Sprint(got) != "[o_tag_leaver o_tag_mover o_tag_quiet o_tag_stays]" {
			t.Fatalf("east's tag carries %v", got)
		}
		if got := srv.StandIn.Tagged(group); len(got) != 5 {
			t.Fatalf("hypertension's tag carries %v", got)
		}

		// One moves west, one's contract ends, one turns tips off.
		mover, _ := srv.DB.ContractByNumber(ctx, numbers["o_tag_mover"])
		westTeams, _ := srv.DB.TeamsServing(ctx, west.ID)
		if _, err := flows.UpdateResident(ctx, srv.DB, srv.Sealer, storage.Scope{}, flows.ResidentChange{ResidentID: mover.ResidentID,
			CommunityID: west.ID, TeamID: westTeams[0].ID, Actor: "test", Now: srv.clock.Now()}); err != nil {
			t.Fatal(err)
		}
		if err := srv.DB.ChangeStatus(ctx, storage.StatusChange{Number: numbers["o_tag_leaver"], From: storage.ContractActive,
			To: storage.ContractCancelled, Actor: "test", Reason: "搬走了"}); err != nil {
			t.Fatal(err)
		}
		chat(t, srv, "o_tag_quiet", "提醒设置")
		chat(t, srv, "o_tag_quiet", "1")
		r, err := srv.Tags.Sync(ctx)
		if err != nil || r.Created != 0 {
			t.Fatalf("second sync: %+v %v", r, err)
		}
		if got := srv.StandIn.Tagged(eastTag); fmt.Sprint(got) != "[o_tag_stays]" {
			t.Fatalf("after the changes east's tag carries %v", got)
		}
		if got := srv.StandIn.Tagged(tagOf(fmt.Sprintf("community:%d", west.ID))); fmt.Sprint(got) != "[o_tag_mover o_tag_west]" {
			t.Fatalf("after the move west's tag carries %v", got)
		}

		// A city-wide tip to hypertension patients goes by the group's tag.
		tip := `{"title": "冬季控血压", "text": "每天早晚各量一次血压。", "segment": {"groups": ["hypertension"]}}`
		for i := range storage.MassPerMonth {
			code, out := adminJSON(t, h, "POST", "/admin/api/broadcasts", tip)
			if code != http.StatusCreated || out["audience"] != 3.0 {
				t.Fatalf("tip %d: %d %v", i+1, code, out)
			}
			id := int64(out["id"].(float64))
			if b, err := srv.DB.BroadcastBatch(ctx, id, 1); err != nil || b.TagID != group {
				t.Fatalf("tip %d went by tag %d, want %d (%v)", i+1, b.TagID, group, err)
			}
		}
		if code, out := adminJSON(t, h, "POST", "/admin/api/broadcasts", tip); code != http.StatusBadRequest {
			t.Fatalf("a fifth tip this month: %d %v", code, out)
		}
		for deadline := time.Now().Add(20 * time.Second); len(received(srv, "o_tag_west", "mass")) < storage.MassPerMonth; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("o_tag_west received %d tips", len(received(srv, "o_tag_west", "mass")))
			}
		}
		for _, o := range []string{"o_tag_leaver", "o_tag_quiet"} {
			if got := received(srv, o, "mass"); len(got) != 0 {
				t.Fatalf("%s received %+v", o, got)
			}
		}
	})
}
