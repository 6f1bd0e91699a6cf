package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

const token = "test-admin-token-0123456789"

func call(t *testing.T, h http.Handler, method, path, auth, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out map[string]any
	json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

func codes(out map[string]any) []string {
	var cs []string
	for _, p := range out["items"].([]any) {
		cs = append(cs, p.(map[string]any)["code"].(string))
	}
	return cs
}

// browse shows what a resident reads for package n of the list.
func browse(t *testing.T, db *storage.DB, n string) string {
	t.Helper()
	sealer, err := storage.NewSealer([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	e := &flows.Engine{DB: db, Sealer: sealer}
	var st flows.State
	for _, said := range []string{"服务包", n} {
		out, err := e.Handle(context.Background(), &st, flows.Inbound{OpenID: "o", Kind: flows.Text, Text: said, At: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if said == n {
			return out.Reply()
		}
	}
	return ""
}

// Prices the programme does not give are unknown until an admin sets
// them; residents read "以签约机构公示为准" meanwhile, and the audit log keeps
// who set what.
func TestAdminSetsUnknownPrices(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		if err := profile.Ensure(context.Background(), db, "yaoguan"); err != nil {
			t.Fatal(err)
		}
		gin.SetMode(gin.ReleaseMode)
		r := gin.New()
		(&API{DB: db, Token: token, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).Register(r)

		if code, _ := call(t, r, "GET", "/admin/api/packages", "", ""); code != http.StatusUnauthorized {
			t.Fatalf("no token: %d", code)
		}
		if code, _ := call(t, r, "GET", "/admin/api/packages", token+"x", ""); code != http.StatusUnauthorized {
			t.Fatalf("wrong token: %d", code)
		}
		code, out := call(t, r, "GET", "/admin/api/packages?unknown=true", token, "")
		if code != 200 || strings.Join(codes(out), ",") != "elderly,chronic,sickbed" {
			t.Fatalf("unknown: %d %v", code, out)
		}
		if p := out["items"].([]any)[0].(map[string]any); fmt.Sprint(p["prices_fen"]) != "map[local:map[resident:<nil>]]" || p["assumed"] != true {
			t.Fatalf("an unknown share reads as %v", p)
		}
		if code, out := call(t, r, "GET", "/admin/api/packages", token, ""); len(codes(out)) != 8 || out["profile"] != "yaoguan" {
			t.Fatalf("all: %d %v", code, out)
		}
		if d := browse(t, db, "4"); !strings.Contains(d, "费用：以签约机构公示为准") || strings.Contains(d, "元") {
			t.Fatalf("an unknown price shows an amount:\n%s", d)
		}

		bad := map[string]string{
			`{"local": {"landlord": 100}}`:                   "unknown payer",
			`{"local": {"resident": -100}}`:                  "negative",
			`{"elsewhere": {"resident": 100}}`:               "local split",
			`{"moon": {}, "local": {}}`:                      "unknown insurance place",
			`{"local": {"insurance": 100, "resident": 100}}`: "insured elsewhere",
			`not json`: "body must be",
		}
		for body, want := range bad {
			code, out := call(t, r, "PUT", "/admin/api/packages/elderly/price", token, body)
			if code != http.StatusBadRequest || !strings.Contains(out["error"].(string), want) {
				t.Errorf("PUT %s: %d %v", body, code, out)
			}
		}
		if code, _ := call(t, r, "PUT", "/admin/api/packages/nope/price", token, `{"local": {}}`); code != http.StatusNotFound {
			t.Fatalf("unknown package: %d", code)
		}
		if code, out := call(t, r, "PUT", "/admin/api/packages/elderly/price", token, `{"local": {"public_health": 1000, "resident": 2500}}`); code != 200 {
			t.Fatalf("set price: %d %v", code, out)
		}
		if _, out := call(t, r, "GET", "/admin/api/packages?unknown=true", token, ""); strings.Join(codes(out), ",") != "chronic,sickbed" {
			t.Fatalf("unknown after the admin's work: %v", out)
		}
		detail := browse(t, db, "4")
		if !strings.Contains(detail, "基本公共卫生经费10元，个人支付25元") || strings.Contains(detail, "以签约机构公示为准") {
			t.Fatalf("residents do not see the admin's price:\n%s", detail)
		}
		_, out = call(t, r, "GET", "/admin/api/audit?limit=5", token, "")
		entries := out["items"].([]any)
		if len(entries) != 2 || entries[0].(map[string]any)["action"] != "package.price" || entries[0].(map[string]any)["subject"] != "elderly" {
			t.Fatalf("audit = %v", entries)
		}
	})
}

func TestAdminIssuesBindingCodes(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if err := profile.Ensure(ctx, db, "national"); err != nil {
			t.Fatal(err)
		}
		if _, err := profile.LoadDemo(ctx, db, "national"); err != nil {
			t.Fatal(err)
		}
		sealer, _ := storage.NewSealer([]byte(strings.Repeat("k", 32)))
		gin.SetMode(gin.ReleaseMode)
		r := gin.New()
		(&API{DB: db, Sealer: sealer, Token: token, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).Register(r)
		code, out := call(t, r, "POST", "/admin/api/doctors/1/binding-code", token, "")
		bindingCode, _ := out["binding_code"].(string)
		if code != 200 || len(bindingCode) != 8 {
			t.Fatalf("issue: %d %v", code, out)
		}
		if code, _ := call(t, r, "POST", "/admin/api/doctors/99/binding-code", token, ""); code != http.StatusNotFound {
			t.Fatalf("unknown doctor: %d", code)
		}
		if code, _ := call(t, r, "POST", "/admin/api/doctors/1/binding-code", "", ""); code != http.StatusUnauthorized {
			t.Fatalf("without token: %d", code)
		}
		e := &flows.Engine{DB: db, Sealer: sealer}
		var st flows.State
		reply, err := e.Handle(ctx, &st, flows.Inbound{OpenID: "o_doc", Kind: flows.Text, Text: "绑定 " + bindingCode, At: time.Now()})
		if err != nil || !strings.Contains(reply.Reply(), "绑定成功") {
			t.Fatalf("bind with the issued code: %q %v", reply.Replies, err)
		}
		_, out = call(t, r, "GET", "/admin/api/doctors", token, "")
		first := out["items"].([]any)[0].(map[string]any)
		if first["bound"] != true {
			t.Fatalf("doctors = %v", out)
		}
		if code, _ := call(t, r, "POST", "/admin/api/doctors/1/binding-code", token, ""); code != http.StatusNotFound {
			t.Fatalf("a code for a bound doctor: %d", code)
		}
	})
}

func TestAdminManagesSchedules(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if err := profile.Ensure(ctx, db, "yaoguan"); err != nil {
			t.Fatal(err)
		}
		if _, err := profile.LoadDemo(ctx, db, "yaoguan"); err != nil {
			t.Fatal(err)
		}
		gin.SetMode(gin.ReleaseMode)
		r := gin.New()
		(&API{DB: db, Token: token, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).Register(r)
		bad := map[string]string{
			`{"weekday": 1, "start": "08:00", "end": "11:30", "slot_minutes": 5, "capacity": 1}`:  "at least 8",
			`{"weekday": 9, "start": "08:00", "end": "11:30", "slot_minutes": 10, "capacity": 1}`: "weekday",
			`{"weekday": 1, "start": "11:00", "end": "08:00", "slot_minutes": 10, "capacity": 1}`: "end after start",
			`{"weekday": 1, "start": "8am", "end": "11:30", "slot_minutes": 10, "capacity": 1}`:   "HH:MM",
			`{"weekday": 1, "start": "08:00", "end": "11:30", "slot_minutes": 10, "capacity": 0}`: "capacity",
		}
		for body, want := range bad {
			code, out := call(t, r, "POST", "/admin/api/doctors/1/hours", token, body)
			if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out["error"]), want) {
				t.Errorf("%s: %d %v", body, code, out)
			}
		}
		if code, _ := call(t, r, "POST", "/admin/api/doctors/77/hours", token, `{"weekday": 1, "start": "08:00", "end": "09:00", "slot_minutes": 8, "capacity": 1}`); code != http.StatusNotFound {
			t.Fatalf("unknown doctor: %d", code)
		}
		before, _ := db.WeeklyHours(ctx, 1)
		if code, out := call(t, r, "POST", "/admin/api/doctors/1/hours", token, `{"weekday": 1, "start": "18:00", "end": "19:00", "slot_minutes": 8, "capacity": 2}`); code != http.StatusCreated {
			t.Fatalf("add session: %d %v", code, out)
		}
		if after, _ := db.WeeklyHours(ctx, 1); len(after) != len(before)+1 {
			t.Fatalf("weekly hours %d -> %d", len(before), len(after))
		}
		day := time.Now().In(flows.Shanghai).AddDate(0, 0, 1).Format("2006-01-02")
		if code, out := call(t, r, "POST", "/admin/api/doctors/1/exceptions", token, `{"day": "`+day+`", "kind": "leave", "start": "00:00", "end": "24:00"}`); code != http.StatusCreated {
			t.Fatalf("leave: %d %v", code, out)
		}
		if code, _ := call(t, r, "POST", "/admin/api/doctors/1/exceptions", token, `{"day": "tomorrow", "kind": "leave", "start": "08:00", "end": "09:00"}`); code != http.StatusBadRequest {
			t.Fatalf("bad day: %d", code)
		}
		leave, _ := db.Exceptions(ctx, 1, day, day)
		if len(leave) != 1 || leave[0].EndMinute != 1440 {
			t.Fatalf("exceptions = %+v", leave)
		}
	})
}

func TestAdminMarksVisits(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		profile.Ensure(ctx, db, "national")
		profile.LoadDemo(ctx, db, "national")
		number, id := bookedVisit(t, db)
		gin.SetMode(gin.ReleaseMode)
		r := gin.New()
		(&API{DB: db, Token: token, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).Register(r)
		path := fmt.Sprintf("/admin/api/appointments/%d/visit", id)
		if code, _ := call(t, r, "POST", path, token, `{"status": "gone"}`); code != http.StatusBadRequest {
			t.Fatalf("bad status: %d", code)
		}
		if code, _ := call(t, r, "POST", "/admin/api/appointments/999/visit", token, `{"status": "done"}`); code != http.StatusNotFound {
			t.Fatalf("unknown appointment: %d", code)
		}
		if code, out := call(t, r, "POST", path, token, `{"status": "done"}`); code != 200 {
			t.Fatalf("mark: %d %v", code, out)
		}
		if code, _ := call(t, r, "POST", path, token, `{"status": "no_show"}`); code != http.StatusConflict {
			t.Fatalf("mark twice: %d", code)
		}
		rows, _ := db.OutboxFor(ctx, "o_res")
		if len(rows) != 1 || rows[0].Kind != flows.PushSatisfaction {
			t.Fatalf("survey push = %+v", rows)
		}
		claimed, _ := db.ClaimDue(ctx, 10, time.Minute, time.Now().Add(time.Second), 99)
		for _, r := range claimed {
			db.MarkFailed(ctx, r.ID, "template invalid", time.Time{})
		}
		if code, out := call(t, r, "GET", "/admin/api/outbox?state=dead", token, ""); code != 200 ||
			!strings.Contains(fmt.Sprint(out["items"]), "template invalid") {
			t.Fatalf("dead letters: %d %v", code, out)
		}
		if code, _ := call(t, r, "GET", "/admin/api/outbox?state=lost", token, ""); code != http.StatusBadRequest {
			t.Fatalf("bad state: %d", code)
		}
		// A pending contract has no term yet, so nothing to fulfil.
		if code, out := call(t, r, "GET", "/admin/api/contracts/"+number+"/fulfilment", token, ""); code != 200 || len(out["items"].([]any)) != 0 {
			t.Fatalf("fulfilment: %d %v", code, out)
		}
		if code, _ := call(t, r, "GET", "/admin/api/contracts/QY0000000000/fulfilment", token, ""); code != http.StatusNotFound {
			t.Fatalf("unknown contract: %d", code)
		}
	})
}

func TestAdminSeesCampaignProgress(t *testing.T) {
	db := storagetest.SQLite(t)
	ctx := context.Background()
	db.ClaimCampaign(ctx, "seasonal:flu-vaccine", 2026, time.Now(), time.Hour)
	db.FinishCampaign(ctx, "seasonal:flu-vaccine", 2026, 250, time.Now())
	var pushes []storage.Push
	for i := range 250 {
		p := storage.Push{Key: fmt.Sprintf("s:%d", i), Kind: flows.PushSeasonal, Recipient: "o", Priority: flows.PrioritySeasonal}
		if i >= 40 { // these residents have not written lately
			p = flows.HoldForDigest(p, time.Now())
		}
		pushes = append(pushes, p)
	}
	db.Enqueue(ctx, pushes)
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	(&API{DB: db, Token: token, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).Register(r)
	code, out := call(t, r, "GET", "/admin/api/campaigns", token, "")
	next, _ := out["next_digest"].(string)
	at, err := time.Parse(time.RFC3339, next)
	if code != 200 || out["seasonal_pending"] != float64(40) || out["seasonal_held"] != float64(210) || err != nil ||
		!at.Equal(flows.NextDigest(time.Now())) || !strings.Contains(fmt.Sprint(out["campaigns"]), "seasonal:flu-vaccine") {
		t.Fatalf("campaigns: %d %v", code, out)
	}
}

// bookedVisit signs a resident of the demo organisation's first team and
// books them a follow-up that began an hour ago, so it can be marked.
func bookedVisit(t *testing.T, db *storage.DB) (string, int64) {
	t.Helper()
	ctx := context.Background()
	cs, _ := db.Communities(ctx)
	teams, _ := db.TeamsServing(ctx, cs[0].ID)
	number, _, err := db.CreateContract(ctx, storage.NewContract{RequestKey: "k", Day: "261123",
		Resident: storage.NewResident{ManagerOpenID: "o_res", Relation: "self", Name: "王秀英", IDSealed: "x", IDHash: "h",
			PhoneSealed: "y", PhoneHash: "p", BirthDate: "1955-03-02", Sex: "female", CommunityID: cs[0].ID},
		TeamID: teams[0].ID, DoctorID: teams[0].DoctorID, Insured: storage.InsuredLocal, TermMonths: 12,
		AgreementVersion: "v", AgreedAt: time.Now(), ConsentVersion: "v", ConsentedAt: time.Now(), ConsentBy: "o_res"})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.ChangeStatus(ctx, storage.StatusChange{Number: number, From: storage.ContractPending,
		To: storage.ContractActive, Actor: "doctor", TermEnd: "2099-12-31"}); err != nil {
		t.Fatal(err)
	}
	contract, _ := db.ContractByNumber(ctx, number)
	start := time.Now().Add(-time.Hour).Truncate(time.Minute) // a visit already under way can be marked
	db.EnsureSlots(ctx, []storage.Slot{{DoctorID: teams[0].DoctorID, Day: "d", StartsAt: start, EndsAt: start.Add(10 * time.Minute), Capacity: 1}})
	slots, _ := db.Slots(ctx, teams[0].DoctorID, start, start.Add(time.Minute))
	id, err := db.Book(ctx, storage.NewAppointment{RequestKey: "b", ResidentID: contract.ResidentID, ContractID: contract.ID,
		DoctorID: teams[0].DoctorID, SlotID: slots[0].ID, Kind: "followup", MaxUpcoming: 3, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return number, id
}

// Staff read every push kind, visit kind and contract status in Chinese,
// never as the code the database keeps.
func TestEveryCodeShownHasALabel(t *testing.T) {
	codes := append([]string{"clinic", "home", "checkup", "followup", "referral", "pending", "active", "declined", "cancelled", "expired",
		"booked", "done", "no_show", "late_reply"}, flows.PushKinds...)
	for _, code := range codes {
		if label(code) == code {
			t.Errorf("%s has no label", code)
		}
	}
}

// Waiting is counted on the console's clock (the sandbox's, moved a month
// ahead here), the one the database stamps requests with.
func TestWaitingCountsOnTheConsolesClock(t *testing.T) {
	ahead := time.Now().AddDate(0, 1, 0)
	funcs := pageFuncs(func() time.Time { return ahead })
	made := ahead.Add(-50 * time.Hour)
	if got := funcs["waited"].(func(time.Time) int)(made); got != 2 {
		t.Fatalf("waited %d days, want 2", got)
	}
	if funcs["overdue"].(func(time.Time) bool)(made) || !funcs["overdue"].(func(time.Time) bool)(ahead.Add(-flows.EscalateAfter)) {
		t.Fatal("overdue is not counted from the console's clock")
	}
}

// Every reason storage gives for withdrawing a push is shown to staff in
// Chinese on the 推送 page.
func TestEveryWithdrawalReasonHasALabel(t *testing.T) {
	files, err := filepath.Glob("../../storage/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("storage sources: %v", err)
	}
	reasons := regexp.MustCompile(`state = 'cancelled',[^']*last_error = '([^']+)'`)
	found := 0
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range reasons.FindAllStringSubmatch(string(src), -1) {
			found++
			if label(m[1]) == m[1] {
				t.Errorf("%s: %q has no label", filepath.Base(f), m[1])
			}
		}
	}
	if found < 5 {
		t.Fatalf("found %d reasons; has the SQL changed shape?", found)
	}
}
