package admin

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// An admin changes the health calendar from the console: switches an entry
// off and rewrites another, adds one of their own (a bad date is refused
// with the form kept), and puts one back; a viewer reads the calendar but
// changes nothing; the other institution's admin sees the calendar as the
// region has it, and scripts read and change it through the API.
func TestAdminsEditTheCalendarInTheConsole(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, s storagetest.Stack) {
		o := newOrg(t, s)
		o.api.Now = func() time.Time { return time.Date(2026, 12, 3, 10, 0, 0, 0, flows.Shanghai) }
		b := o.browser(t)
		b.signIn("admin", testPassword)
		if b.get("/admin/calendar"); !strings.Contains(b.last, "冬至") || !strings.Contains(b.last, "加一条自己的提示") {
			t.Fatalf("the calendar page:\n%s", b.last)
		}
		csrf := b.csrf() // the session's
		cal, _ := flows.LoadCalendar(context.Background(), o.db)
		code := cal.Entries[0].Code
		if code2 := cal.Entries[1].Code; b.get("/admin/calendar/"+code2) != http.StatusOK || !strings.Contains(b.last, "发送这条提示") {
			t.Fatalf("the entry page: %s", b.last)
		}
		if code, _ := b.post("/admin/calendar/"+cal.Entries[1].Code, url.Values{"csrf": {csrf}, "send": {"on"}, "text": {"太短"}}); code != http.StatusBadRequest ||
			!strings.Contains(b.last, "10 到 200 个字") {
			t.Fatalf("a text too short: %d", code)
		}
		if code, _ := b.post("/admin/calendar/"+code, url.Values{"csrf": {csrf}, "text": {cal.Entries[0].Text}}); code != http.StatusSeeOther {
			t.Fatalf("switch off: %d %s", code, b.last)
		}
		rewritten := "冬天到了，天气冷，出门注意保暖，按时吃药，有不舒服及时找家庭医生。"
		if code, _ := b.post("/admin/calendar/"+cal.Entries[1].Code, url.Values{"csrf": {csrf}, "send": {"on"}, "text": {rewritten}}); code != http.StatusSeeOther {
			t.Fatalf("rewrite: %d %s", code, b.last)
		}
		b.get("/admin/calendar")
		add := url.Values{"csrf": {csrf}, "name": {"社区义诊"}, "kind": {"date"}, "month": {"2"}, "day": {"30"}, "group": {"elderly"},
			"text": {"本月最后一个周六上午，卫生院在村委会门口义诊，免费量血压、测血糖。"}}
		if code, _ := b.post("/admin/calendar", add); code != http.StatusBadRequest || !strings.Contains(b.last, "日期不对") || !strings.Contains(b.last, `value="社区义诊"`) {
			t.Fatalf("a day that does not exist: %d\n%s", code, b.last)
		}
		add.Set("month", "3")
		if code, _ := b.post("/admin/calendar", add); code != http.StatusSeeOther {
			t.Fatalf("add: %d %s", code, b.last)
		}
		b.get("/admin/calendar")
		for _, want := range []string{"已停发", rewritten, "已改写", "社区义诊", "自定"} {
			if !strings.Contains(b.last, want) {
				t.Fatalf("the calendar lacks %q:\n%s", want, b.last)
			}
		}
		// The other institution's admin sees none of it.
		away := o.browser(t)
		away.signIn("awayadmin", testPassword)
		if away.get("/admin/calendar"); strings.Contains(away.last, "已停发") || strings.Contains(away.last, "社区义诊") || strings.Contains(away.last, rewritten) {
			t.Fatalf("another institution's changes show here:\n%s", away.last)
		}
		// Scripts: read, put back, and the viewer may not write.
		code2, out := b.api("GET", "/admin/api/calendar", "")
		entries, _ := out["entries"].([]any)
		if code2 != 200 || len(entries) < 50 {
			t.Fatalf("GET /admin/api/calendar: %d, %d entries", code2, len(entries))
		}
		off := 0
		for _, e := range entries {
			if e.(map[string]any)["off"] == true {
				off++
			}
		}
		if off != 1 {
			t.Fatalf("%d entries off by the API, want 1", off)
		}
		if status, _ := b.api("DELETE", "/admin/api/calendar/"+code, csrf); status != http.StatusNoContent {
			t.Fatalf("DELETE: %d", status)
		}
		if status, _ := b.api("DELETE", "/admin/api/calendar/"+code, csrf); status != http.StatusNotFound {
			t.Fatalf("DELETE again: %d", status)
		}
		viewer := o.browser(t)
		viewer.signIn("viewer", testPassword)
		if status, _ := viewer.apiJSON("POST", "/admin/api/calendar/"+code, `{"off": true}`); status != http.StatusForbidden {
			t.Fatalf("a viewer switching an entry off: %d", status)
		}
		if status, out := b.apiJSON("POST", "/admin/api/calendar", `{"name": "春季义诊", "term": "惊蛰", "text": "惊蛰前后卫生院在村里义诊，欢迎老人来量血压。", "oops": 1}`); status != http.StatusBadRequest {
			t.Fatalf("an unknown field: %d %v", status, out)
		}
		if status, out := b.apiJSON("POST", "/admin/api/calendar", `{"name": "春季义诊", "term": "惊蛰", "text": "惊蛰前后卫生院在村里义诊，欢迎老人来量血压。"}`); status != http.StatusCreated ||
			!strings.HasPrefix(out["code"].(string), "own-") {
			t.Fatalf("add by the API: %d %v", status, out)
		}
		log, _, _ := o.db.AuditLog(context.Background(), storage.Scope{Institution: o.home}, storage.Page{Limit: 10})
		n := 0
		for _, l := range log {
			if l.Action == "calendar.edit" && l.Actor == "admin" {
				n++
			}
		}
		if n != 5 {
			t.Fatalf("%d calendar changes audited, want 5: %+v", n, log)
		}
	})
}
