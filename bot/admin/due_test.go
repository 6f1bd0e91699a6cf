package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// Staff record a pregnant resident's expected due date on her page (or by
// the API): it is sealed at rest, the audit log says it changed but never
// the date, a date no pregnancy could have is refused, and another
// institution's admin cannot reach her.
func TestStaffRecordAPregnantResidentsDueDate(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, s storagetest.Stack) {
		o := newOrg(t, s)
		ctx := context.Background()
		today := time.Date(2026, 12, 3, 10, 0, 0, 0, flows.Shanghai)
		o.api.Now = func() time.Time { return today }
		communities, _, _ := o.db.ListCommunities(ctx, storage.Scope{Institution: o.home}, storage.Page{})
		teams, _, _ := o.db.ListTeams(ctx, storage.Scope{Institution: o.home}, storage.Page{})
		number, err := flows.SignAtDesk(ctx, o.db, o.api.Sealer, flows.DeskSigning{Name: "陈晓燕", IDNumber: "110105199806100320",
			Phone: "13700002222", CommunityID: communities[0].ID, TeamID: teams[0].ID, Request: strings.Repeat("d", 20)},
			flows.ResidentImport{Institution: o.home, Actor: "admin", Now: today})
		if err != nil {
			t.Fatal(err)
		}
		contract, _ := o.db.ContractByNumber(ctx, number)
		page := fmt.Sprintf("/admin/residents/%d", contract.ResidentID)
		b := o.browser(t)
		b.signIn("admin", testPassword)
		if b.get(page); !strings.Contains(b.last, "预产期（孕产妇）") {
			t.Fatalf("no due date form on a woman's page:\n%s", b.last)
		}
		form := url.Values{"csrf": {b.csrf()}, "due": {"2028-06-01"}}
		if code, _ := b.post(page+"/due", form); code != http.StatusBadRequest || !strings.Contains(b.last, "今后9个月内") {
			t.Fatalf("a due date 18 months ahead: %d", code)
		}
		form.Set("due", "2027-05-20")
		if code, _ := b.post(page+"/due", form); code != http.StatusSeeOther {
			t.Fatalf("save: %d %s", code, b.last)
		}
		if b.get(page); !strings.Contains(b.last, "预产期：2027-05-20") || !strings.Contains(b.last, `value="2027-05-20"`) {
			t.Fatalf("the saved due date is not shown:\n%s", b.last)
		}
		var stored string
		storagetest.SQL(t, o.db).GetContext(ctx, &stored, storagetest.SQL(t, o.db).Rebind(`SELECT due_date_sealed FROM residents WHERE id = ?`), contract.ResidentID)
		if k, _ := o.db.ContractByNumber(ctx, number); strings.Contains(stored, "2027") || k.DueDate != stored || stored == "" {
			t.Fatalf("due date at rest: %q", stored)
		}
		audit, _, _ := o.db.AuditLog(ctx, storage.Scope{Institution: o.home}, storage.Page{Limit: 1})
		if audit[0].Action != "resident.due_date" || strings.Contains(fmt.Sprint(audit[0]), "2027") || audit[0].Detail != "更新了预产期" {
			t.Fatalf("audit: %+v", audit[0])
		}
		away := o.browser(t)
		away.signIn("awayadmin", testPassword)
		if code, _ := away.apiJSON("POST", "/admin/api/residents/"+fmt.Sprint(contract.ResidentID)+"/due", `{"due": ""}`); code != http.StatusNotFound {
			t.Fatalf("another institution's admin: %d", code)
		}
		if code, out := b.apiJSON("POST", "/admin/api/residents/"+fmt.Sprint(contract.ResidentID)+"/due", `{"due": "5月20日"}`); code != http.StatusBadRequest {
			t.Fatalf("a date without its year by the API: %d %v", code, out)
		}
		if code, out := b.api("GET", "/admin/api/residents/"+fmt.Sprint(contract.ResidentID), ""); code != 200 || out["due_date"] != "2027-05-20" {
			t.Fatalf("GET the resident: %d %v", code, out["due_date"])
		}
		if code, out := b.apiJSON("POST", "/admin/api/residents/"+fmt.Sprint(contract.ResidentID)+"/due", `{"due": ""}`); code != 200 || !strings.Contains(fmt.Sprint(out), "已清除") {
			t.Fatalf("clear by the API: %d %v", code, out)
		}
		if k, _ := o.db.ContractByNumber(ctx, number); k.DueDate != "" {
			t.Fatalf("still held after clearing: %q", k.DueDate)
		}
	})
}
