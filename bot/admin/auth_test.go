package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// org is two institutions, each with a community, a doctor and a team, and
// an account of every role.
type org struct {
	api      *API
	srv      *httptest.Server
	db       *storage.DB
	home     int64 // the demo institution
	away     int64 // another institution
	doctors  []storage.DoctorRow
	password string
}

const testPassword = "correct horse battery"

func newOrg(t *testing.T, s storagetest.Stack) *org {
	t.Helper()
	ctx := context.Background()
	if err := profile.Ensure(ctx, s.DB, "national"); err != nil {
		t.Fatal(err)
	}
	if _, err := profile.LoadDemo(ctx, s.DB, "national"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB.CreateInstitution(ctx, storage.Institution{Code: "away", Name: "别处卫生院", Kind: "township_centre"},
		[]storage.Community{{Town: "别镇", Name: "别村"}},
		[]storage.NewTeam{{Name: "别处团队", Doctor: storage.Doctor{Name: "别医生"}, Communities: []int{0}}}); err != nil {
		t.Fatal(err)
	}
	home, _ := s.DB.InstitutionByCode(ctx, "demo")
	away, _ := s.DB.InstitutionByCode(ctx, "away")
	doctors, _, _ := s.DB.ListDoctors(ctx, storage.Scope{}, storage.Page{})
	o := &org{db: s.DB, home: home.ID, away: away.ID, doctors: doctors, password: testPassword}
	sealer, _ := storage.NewSealer([]byte(strings.Repeat("k", 32)))
	o.api = &API{DB: s.DB, Redis: s.Redis, Sealer: sealer, Token: token, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	o.api.Register(r)
	o.srv = httptest.NewServer(r)
	t.Cleanup(o.srv.Close)
	for _, a := range []NewStaff{
		{Username: "admin", Role: storage.RoleAdmin, Institution: home.ID},
		{Username: "doctor", Role: storage.RoleDoctor, Institution: home.ID, Doctor: doctors[0].ID},
		{Username: "viewer", Role: storage.RoleViewer, Institution: home.ID},
		{Username: "city", Role: storage.RoleCity},
		{Username: "awayadmin", Role: storage.RoleAdmin, Institution: away.ID},
	} {
		a.Password = testPassword
		if _, err := CreateStaff(ctx, s.DB, storage.Scope{}, a, "test"); err != nil {
			t.Fatalf("create %s: %v", a.Username, err)
		}
	}
	return o
}

// browser is one person's browser: its own cookies.
type browser struct {
	t    *testing.T
	o    *org
	http *http.Client
	last string // the last page's body
}

func (o *org) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, o: o, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

var requestField = regexp.MustCompile(`name="request" value="([^"]+)"`)

// get fetches a page or API path and returns its status.
func (b *browser) get(path string) int {
	b.t.Helper()
	resp, err := b.http.Get(b.o.srv.URL + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	b.last = string(body)
	return resp.StatusCode
}

// csrf is the CSRF token of the last page.
func (b *browser) csrf() string {
	m := csrfField.FindStringSubmatch(b.last)
	if m == nil {
		b.t.Fatalf("no CSRF field on the page:\n%s", b.last)
	}
	return m[1]
}

// post submits a form and returns the status and where it redirects.
func (b *browser) post(path string, form url.Values) (int, string) {
	b.t.Helper()
	resp, err := b.http.PostForm(b.o.srv.URL+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	b.last = string(body)
	return resp.StatusCode, resp.Header.Get("Location")
}

// signIn signs in through the form, as a person does.
func (b *browser) signIn(name, password string) int {
	b.t.Helper()
	b.get("/admin/login")
	code, _ := b.post("/admin/login", url.Values{"csrf": {b.csrf()}, "username": {name}, "password": {password}})
	return code
}

// api calls the JSON API with the session and, for writes, its CSRF token.
func (b *browser) api(method, path, csrf string) (int, map[string]any) {
	b.t.Helper()
	req, _ := http.NewRequest(method, b.o.srv.URL+path, nil)
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	resp, err := b.http.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// apiJSON calls the JSON API with the session, its CSRF token and a body.
func (b *browser) apiJSON(method, path, body string) (int, map[string]any) {
	b.t.Helper()
	b.get("/admin/password")
	req, _ := http.NewRequest(method, b.o.srv.URL+path, strings.NewReader(body))
	req.Header.Set("X-CSRF-Token", b.csrf())
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.http.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestStaffSignInAndSessions(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, s storagetest.Stack) {
		o := newOrg(t, s)
		b := o.browser(t)
		if code := b.get("/admin/residents"); code != http.StatusSeeOther {
			t.Fatalf("a page without signing in: %d", code)
		}
		if code, _ := b.api("GET", "/admin/api/residents", ""); code != http.StatusUnauthorized {
			t.Fatalf("the API without signing in: %d", code)
		}
		if code := b.get("/admin/login"); code != 200 || !strings.Contains(b.last, `name="password"`) {
			t.Fatalf("sign-in page: %d %s", code, b.last)
		}
		// The form's CSRF field must match the browser's cookie.
		if code, _ := b.post("/admin/login", url.Values{"csrf": {"forged"}, "username": {"admin"}, "password": {testPassword}}); code != http.StatusForbidden {
			t.Fatalf("sign-in with a forged CSRF field: %d", code)
		}
		if code := b.signIn("admin", "wrong password"); code != http.StatusUnauthorized || !strings.Contains(b.last, "用户名或密码不对") {
			t.Fatalf("wrong password: %d", code)
		}
		if code := b.signIn("nobody", testPassword); code != http.StatusUnauthorized || !strings.Contains(b.last, "用户名或密码不对") {
			t.Fatalf("unknown user: %d", code)
		}
		if code := b.signIn("Admin", testPassword); code != http.StatusSeeOther {
			t.Fatalf("sign in: %d %s", code, b.last)
		}
		if code := b.get("/admin/residents"); code != 200 || !strings.Contains(b.last, "admin（管理员 · 示范社区卫生服务中心（演示））") {
			t.Fatalf("residents page after signing in: %d\n%s", code, b.last)
		}
		csrf := b.csrf()
		if code, out := b.api("GET", "/admin/api/residents", ""); code != 200 || out["total"] != float64(0) {
			t.Fatalf("the API with the session: %d %v", code, out)
		}
		// Writes through the API need the session's CSRF token.
		if code, _ := b.api("POST", "/admin/api/doctors/1/binding-code", ""); code != http.StatusForbidden {
			t.Fatalf("a write without the CSRF token: %d", code)
		}
		if code, out := b.api("POST", fmt.Sprintf("/admin/api/doctors/%d/binding-code", o.doctors[0].ID), csrf); code != 200 {
			t.Fatalf("a write with the CSRF token: %d %v", code, out)
		}

		// A password reset by another admin ends every session of the account.
		other := o.browser(t)
		if code := other.signIn("admin", testPassword); code != http.StatusSeeOther {
			t.Fatal("second sign-in failed")
		}
		admin, _ := o.db.StaffByUsername(context.Background(), "admin")
		if err := o.db.SetStaffPassword(context.Background(), storage.Scope{}, admin.ID, HashPassword("a brand new password"), "city"); err != nil {
			t.Fatal(err)
		}
		if code := b.get("/admin/residents"); code != http.StatusSeeOther {
			t.Fatalf("a session after a password change: %d", code)
		}
		if code, _ := other.api("GET", "/admin/api/residents", ""); code != http.StatusUnauthorized {
			t.Fatalf("the other session after a password change: %d", code)
		}
		if code := b.signIn("admin", "a brand new password"); code != http.StatusSeeOther {
			t.Fatalf("sign in with the new password: %d", code)
		}
		// Signing out ends the session.
		b.get("/admin/residents")
		if code, to := b.post("/admin/logout", url.Values{"csrf": {b.csrf()}}); code != http.StatusSeeOther || to != "/admin/login" {
			t.Fatalf("sign out: %d %s", code, to)
		}
		if code := b.get("/admin/residents"); code != http.StatusSeeOther {
			t.Fatalf("after signing out: %d", code)
		}
		// A disabled account cannot sign in, and its sessions end.
		v := o.browser(t)
		v.signIn("viewer", testPassword)
		viewer, _ := o.db.StaffByUsername(context.Background(), "viewer")
		o.db.SetStaffDisabled(context.Background(), storage.Scope{}, viewer.ID, true, "admin")
		if code := v.get("/admin/residents"); code != http.StatusSeeOther {
			t.Fatalf("a disabled account's session: %d", code)
		}
		if code := v.signIn("viewer", testPassword); code != http.StatusUnauthorized {
			t.Fatalf("a disabled account signs in: %d", code)
		}
	})
}

func TestSignInThrottleNeverLocksTheOwnerOut(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, s storagetest.Stack) {
		o := newOrg(t, s)
		owner := o.browser(t)
		if code := owner.signIn("admin", testPassword); code != http.StatusSeeOther {
			t.Fatal("owner's first sign-in failed")
		}
		owner.get("/admin/residents")
		owner.post("/admin/logout", url.Values{"csrf": {owner.csrf()}})

		// A stranger guesses until the account's limit holds them off.
		stranger := o.browser(t)
		for i := range accountLimit {
			if code := stranger.signIn("admin", fmt.Sprintf("guess %d!", i)); code != http.StatusUnauthorized {
				t.Fatalf("guess %d: %d", i, code)
			}
		}
		if code := stranger.signIn("admin", testPassword); code != http.StatusTooManyRequests {
			t.Fatalf("the right password after too many guesses from a new browser: %d", code)
		}
		// Guesses at other names from the same address fill its limit too.
		for i := range ipLimit {
			stranger.signIn(fmt.Sprintf("nobody%d", i), "guess")
		}
		if code := o.browser(t).signIn("viewer", testPassword); code != http.StatusTooManyRequests {
			t.Fatalf("a new browser at an address over its limit: %d", code)
		}
		// The owner's browser, known from an earlier sign-in, still gets in.
		if code := owner.signIn("admin", testPassword); code != http.StatusSeeOther {
			t.Fatalf("the owner is locked out by a stranger's guesses: %d %s", code, owner.last)
		}
		// Guesses sent all at once are counted before the password is
		// checked, so no more than the limit are ever checked.
		guessers := make([]*browser, 3*accountLimit)
		forms := make([]url.Values, len(guessers))
		for i := range guessers {
			guessers[i] = o.browser(t)
			guessers[i].get("/admin/login")
			forms[i] = url.Values{"csrf": {guessers[i].csrf()}, "username": {"city"}, "password": {fmt.Sprintf("guess %d!", i)}}
		}
		statuses := make(chan int, len(guessers))
		var wg sync.WaitGroup
		for i, g := range guessers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := g.http.PostForm(o.srv.URL+"/admin/login", forms[i])
				if err == nil {
					resp.Body.Close()
					statuses <- resp.StatusCode
				}
			}()
		}
		wg.Wait()
		close(statuses)
		checked := 0
		for code := range statuses {
			if code == http.StatusUnauthorized {
				checked++
			}
		}
		if checked > accountLimit {
			t.Fatalf("%d parallel guesses were checked, the limit is %d", checked, accountLimit)
		}
	})
}

// TestEveryRouteChecksRoleAndScope calls every API route as every role,
// with IDs of the caller's institution and of another.
func TestEveryRouteChecksRoleAndScope(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, s storagetest.Stack) {
		o := newOrg(t, s)
		sessions := map[string]*browser{}
		csrf := map[string]string{}
		for _, name := range []string{"admin", "doctor", "viewer", "city", "awayadmin"} {
			b := o.browser(t)
			if code := b.signIn(name, testPassword); code != http.StatusSeeOther {
				t.Fatalf("sign in %s: %d", name, code)
			}
			b.get("/admin/password")
			sessions[name], csrf[name] = b, b.csrf()
		}
		roles := map[string]storage.Role{"admin": storage.RoleAdmin, "doctor": storage.RoleDoctor, "viewer": storage.RoleViewer,
			"city": storage.RoleCity, "awayadmin": storage.RoleAdmin}
		for _, rt := range o.api.routes() {
			path := strings.NewReplacer(":id", "0", ":code", "nope", ":number", "QY0").Replace("/admin/api" + rt.path)
			for name, b := range sessions {
				code, _ := b.api(rt.method, path, csrf[name])
				if !may(roles[name], rt.need) && code != http.StatusForbidden {
					t.Errorf("%s %s as %s: %d, want 403", rt.method, path, name, code)
				}
				if may(roles[name], rt.need) && code == http.StatusForbidden && !strings.Contains(rt.path, "packages") {
					t.Errorf("%s %s as %s: refused", rt.method, path, name)
				}
			}
			anon := o.browser(t)
			if code, _ := anon.api(rt.method, path, ""); code != http.StatusUnauthorized {
				t.Errorf("%s %s signed out: %d, want 401", rt.method, path, code)
			}
		}

		// IDs of another institution answer 404, as if they did not exist.
		var homeDoctor, awayDoctor int64
		for _, d := range o.doctors {
			if d.InstitutionID == o.home && homeDoctor == 0 {
				homeDoctor = d.ID
			}
			if d.InstitutionID == o.away {
				awayDoctor = d.ID
			}
		}
		hours := `/admin/api/doctors/%d/binding-code`
		if code, _ := sessions["admin"].api("POST", fmt.Sprintf(hours, awayDoctor), csrf["admin"]); code != http.StatusNotFound {
			t.Fatalf("admin on another institution's doctor: %d", code)
		}
		if code, _ := sessions["awayadmin"].api("POST", fmt.Sprintf(hours, homeDoctor), csrf["awayadmin"]); code != http.StatusNotFound {
			t.Fatalf("the other institution's admin on this one's doctor: %d", code)
		}
		if code, _ := sessions["city"].api("POST", fmt.Sprintf(hours, awayDoctor), csrf["city"]); code != 200 {
			t.Fatalf("city staff on any institution's doctor: %d", code)
		}
		// A doctor works on their own schedule only.
		other := o.doctors[1].ID
		if code, _ := sessions["doctor"].api("POST", fmt.Sprintf("/admin/api/doctors/%d/exceptions", other), csrf["doctor"]); code != http.StatusNotFound {
			t.Fatalf("a doctor on a colleague's schedule: %d", code)
		}
		// Listings hold only the caller's scope.
		for name, want := range map[string]int{"admin": 2, "awayadmin": 1, "city": 3, "doctor": 1, "viewer": 2} {
			_, out := sessions[name].api("GET", "/admin/api/doctors", "")
			if out["total"] != float64(want) || len(out["items"].([]any)) != want {
				t.Errorf("%s lists %v doctors, want %d", name, out["total"], want)
			}
		}
		_, out := sessions["awayadmin"].api("GET", "/admin/api/communities", "")
		if out["total"] != float64(1) || !strings.Contains(fmt.Sprint(out["items"]), "别村") {
			t.Fatalf("the other institution's communities: %v", out)
		}
		// An institution's admin may not set the catalog's prices while it
		// serves several institutions.
		if code, _ := sessions["admin"].apiJSON("PUT", "/admin/api/packages/basic/price", `{"local": {}}`); code != http.StatusForbidden {
			t.Fatalf("an institution admin sets a city-wide price: %d", code)
		}
	})
}

// TestEveryPageChecksRole tries every console page as every role: a page
// outside the role answers 403 with a page that says so, and signed out
// every page goes to the sign-in form.
func TestEveryPageChecksRole(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, s storagetest.Stack) {
		o := newOrg(t, s)
		roles := map[string]storage.Role{"admin": storage.RoleAdmin, "doctor": storage.RoleDoctor, "viewer": storage.RoleViewer,
			"city": storage.RoleCity}
		sessions := map[string]*browser{}
		for name := range roles {
			sessions[name] = o.browser(t)
			sessions[name].signIn(name, testPassword)
		}
		for _, rt := range o.api.consoleRoutes() {
			path := strings.NewReplacer(":id", "0", ":number", "QY0", ":what", "residents").Replace("/admin" + rt.path)
			if rt.path == "/logout" {
				continue // ends the session the rest of the loop uses
			}
			for name, b := range sessions {
				code := b.get(path)
				if rt.method == "POST" {
					b.get("/admin/password")
					code, _ = b.post(path, url.Values{"csrf": {b.csrf()}})
				}
				switch {
				case !may(roles[name], rt.need) && (code != http.StatusForbidden || !strings.Contains(b.last, "没有这项权限")):
					t.Errorf("%s %s as %s: %d, want 403", rt.method, path, name, code)
				case may(roles[name], rt.need) && code == http.StatusForbidden:
					t.Errorf("%s %s as %s: refused", rt.method, path, name)
				}
			}
			anon := o.browser(t)
			code, to := anon.get(path), ""
			if rt.method == "POST" {
				code, to = anon.post(path, url.Values{})
			}
			if code != http.StatusSeeOther || (rt.method == "POST" && !strings.HasPrefix(to, "/admin/login")) {
				t.Errorf("%s %s signed out: %d %s, want the sign-in form", rt.method, path, code, to)
			}
		}
		// The audit log names residents and the reasons staff gave for
		// reading their details: only the institution's admins read it.
		for _, name := range []string{"doctor", "viewer"} {
			if code := sessions[name].get("/admin/audit"); code != http.StatusForbidden || strings.Contains(sessions[name].last, `href="/admin/audit"`) {
				t.Errorf("%s reads the audit log: %d", name, code)
			}
			if code, _ := sessions[name].api("GET", "/admin/api/audit", ""); code != http.StatusForbidden {
				t.Errorf("%s reads the audit log through the API: %d", name, code)
			}
		}
	})
}

func TestImportAndExportThroughTheAPI(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, s storagetest.Stack) {
		o := newOrg(t, s)
		b := o.browser(t)
		b.signIn("admin", testPassword)
		b.get("/admin/import")
		csrf := b.csrf()
		file := "姓名,身份证号,手机号,社区,团队,服务包,重点人群,签约日期,到期日期\n" +
			"周玉芬,110105195203040324,13700001111,幸福社区,林静家庭医生团队,,,2026-03-01,\n"
		post := func(b *browser, path, csrf string) (int, map[string]any) {
			req, _ := http.NewRequest("POST", o.srv.URL+path, strings.NewReader(file))
			req.Header.Set("X-CSRF-Token", csrf)
			resp, err := b.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out map[string]any
			json.NewDecoder(resp.Body).Decode(&out)
			return resp.StatusCode, out
		}
		if code, out := post(b, "/admin/api/import/residents", csrf); code != 200 || out["written"] != false {
			t.Fatalf("a dry run: %d %v", code, out)
		}
		if code, out := post(b, "/admin/api/import/residents?dry_run=false", csrf); code != 200 || out["written"] != true ||
			!strings.Contains(fmt.Sprint(out["lines"]), "周玉芬") {
			t.Fatalf("an import: %d %v", code, out)
		}
		good := file
		file = strings.Replace(file, "周玉芬", `"周玉芬`, 1)
		if code, out := post(b, "/admin/api/import/residents", csrf); code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out["error"]), "第 2 行引号没有配对") {
			t.Fatalf("a file with a stray quote: %d %v", code, out)
		}
		file = good
		if code, out := post(b, "/admin/api/import/nothing", csrf); code != http.StatusNotFound {
			t.Fatalf("an unknown import: %d %v", code, out)
		}
		if code := b.get("/admin/api/export/residents.csv"); code != 200 || !strings.Contains(b.last, "周玉芬,1101**********0324,137****1111") ||
			strings.Contains(b.last, "110105195203040324") {
			t.Fatalf("export: %d\n%s", code, b.last)
		}
		away := o.browser(t)
		away.signIn("awayadmin", testPassword)
		if code := away.get("/admin/api/export/residents.csv"); code != 200 || strings.Contains(away.last, "周玉芬") {
			t.Fatalf("another institution's export: %d\n%s", code, away.last)
		}
		// The other institution's admin cannot import into this one's communities.
		away.get("/admin/import")
		if code, out := post(away, "/admin/api/import/residents?dry_run=false", away.csrf()); code != http.StatusUnprocessableEntity ||
			!strings.Contains(fmt.Sprint(out["lines"]), "本机构没有社区") {
			t.Fatalf("an import into another institution's community: %d %v", code, out)
		}
	})
}

func TestSignAtTheDesk(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, s storagetest.Stack) {
		o := newOrg(t, s)
		ctx := context.Background()
		communities, _, _ := o.db.ListCommunities(ctx, storage.Scope{Institution: o.home}, storage.Page{})
		teams, _, _ := o.db.ListTeams(ctx, storage.Scope{Institution: o.home}, storage.Page{})
		b := o.browser(t)
		b.signIn("admin", testPassword)
		if code := b.get("/admin/sign"); code != 200 || !strings.Contains(b.last, "林静家庭医生团队") {
			t.Fatalf("the desk page: %d", code)
		}
		form := url.Values{"csrf": {b.csrf()}, "request": {requestField.FindStringSubmatch(b.last)[1]}, "name": {"吴秀珍"}, "id_number": {"110105195203040324"}, "phone": {"13700001111"},
			"community": {fmt.Sprint(communities[0].ID)}, "team": {fmt.Sprint(teams[0].ID)}}
		if code, _ := b.post("/admin/sign", form); code != http.StatusBadRequest || !strings.Contains(b.last, "纸质知情同意书") {
			t.Fatalf("without the paper consent: %d", code)
		}
		form.Set("consent", "yes")
		form.Set("id_number", "110105195203040320")
		if code, _ := b.post("/admin/sign", form); code != http.StatusBadRequest || !strings.Contains(b.last, "身份证号不是有效") ||
			!strings.Contains(b.last, `value="吴秀珍"`) {
			t.Fatalf("a wrong ID number: %d %s", code, b.last)
		}
		form.Set("id_number", "110105195203040324")
		code, to := b.post("/admin/sign", form)
		if code != http.StatusSeeOther || !strings.HasPrefix(to, "/admin/residents/") {
			t.Fatalf("sign: %d %s %s", code, to, b.last)
		}
		if b.get(to); !strings.Contains(b.last, "已为 吴秀珍 签约") || !strings.Contains(b.last, "生效中") {
			t.Fatalf("the resident's page after signing:\n%s", b.last)
		}
		// Beside the masked ID number (1101**********0324) the birth date
		// would give away all but the county code: the year is shown.
		if !strings.Contains(b.last, "1101**********0324") || !strings.Contains(b.last, "1952") || strings.Contains(b.last, "03-04") {
			t.Fatalf("the resident's page shows more of the ID number than its mask:\n%s", b.last)
		}
		if _, out := b.api("GET", "/admin/api"+strings.TrimPrefix(to, "/admin"), ""); fmt.Sprint(out["resident"]) == "" ||
			strings.Contains(fmt.Sprint(out), "03-04") || !strings.Contains(fmt.Sprint(out), "birth_year:1952") {
			t.Fatalf("the resident through the API: %v", out)
		}
		// The same form posted again (a double click) finds the same contract.
		if code, again := b.post("/admin/sign", form); code != http.StatusSeeOther || again != to {
			t.Fatalf("the same form twice: %d %s", code, again)
		}
		rows, _, _ := o.db.ListContracts(ctx, storage.Scope{}, storage.ContractActive, storage.Page{})
		if len(rows) != 1 {
			t.Fatalf("active contracts: %+v", rows)
		}
		var consentBy string
		storagetest.SQL(t, o.db).Get(&consentBy, `SELECT consent_by FROM contracts WHERE number = $1`, rows[0].Number)
		if consentBy != "staff:admin" {
			t.Fatalf("consent recorded by %q", consentBy)
		}
		if log, _, _ := o.db.AuditLog(ctx, storage.Scope{Institution: o.home}, storage.Page{Limit: 1}); log[0].Action != "contract.desk_sign" ||
			log[0].Subject != rows[0].Number || log[0].Actor != "admin" {
			t.Fatalf("the desk signing is not in the audit log: %+v", log)
		}
		// A clerk holding the ID card or the phone types it whole; the
		// number travels in a body, never in a URL a browser or proxy keeps.
		for _, q := range []string{"110105195203040324", "137 0000 1111"} {
			if code, out := b.apiJSON("POST", "/admin/api/residents/search", `{"q": "`+q+`"}`); code != 200 || out["total"] != float64(1) {
				t.Fatalf("search by %s: %d %v", q, code, out)
			}
			if code, out := b.api("GET", "/admin/api/residents?q="+url.QueryEscape(q), ""); code != http.StatusBadRequest {
				t.Fatalf("a whole number in the URL: %d %v", code, out)
			}
			if code := b.get("/admin/residents?q=" + url.QueryEscape(q)); code != http.StatusBadRequest || strings.Contains(b.last, "吴秀珍") ||
				!strings.Contains(b.last, "请在搜索框里输入") {
				t.Fatalf("a whole number in the page's URL: %d", code)
			}
			b.get("/admin/residents")
			if code, to := b.post("/admin/residents", url.Values{"csrf": {b.csrf()}, "q": {q}}); code != 200 || to != "" ||
				!strings.Contains(b.last, "吴秀珍") || !strings.Contains(b.last, "共 1 条") {
				t.Fatalf("the search form with a whole number: %d %s", code, to)
			}
		}
		// Names and the last four digits go to the listing's URL, where the
		// list can be paged.
		if code, to := b.post("/admin/residents", url.Values{"csrf": {b.csrf()}, "q": {"吴秀珍"}, "status": {"active"}}); code != http.StatusSeeOther ||
			to != "/admin/residents?"+(url.Values{"q": {"吴秀珍"}, "status": {"active"}}).Encode() {
			t.Fatalf("the search form with a name: %d %s", code, to)
		}
		if b.get("/admin/residents?q=0324"); !strings.Contains(b.last, "吴秀珍") {
			t.Fatalf("a search by the last four digits:\n%s", b.last)
		}
		// Signing the same person twice is refused, as in chat.
		b.get("/admin/sign")
		form.Set("csrf", b.csrf())
		form.Set("request", requestField.FindStringSubmatch(b.last)[1])
		if code, _ := b.post("/admin/sign", form); code != http.StatusBadRequest || !strings.Contains(b.last, "已有生效中或待确认的签约") {
			t.Fatalf("the same person twice: %d", code)
		}
		// A doctor signs for their own team only.
		d := o.browser(t)
		d.signIn("doctor", testPassword)
		d.get("/admin/sign")
		form.Set("csrf", d.csrf())
		form.Set("id_number", "110105195503020210")
		form.Set("team", fmt.Sprint(teams[1].ID))
		if code, _ := d.post("/admin/sign", form); code != http.StatusBadRequest || !strings.Contains(d.last, "请选择本机构的社区") {
			t.Fatalf("a doctor signing for another team: %d", code)
		}
	})
}

func TestAppointmentsAndSchedulePages(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, s storagetest.Stack) {
		o := newOrg(t, s)
		ctx := context.Background()
		_, id := bookedVisit(t, o.db)
		visit, _ := o.db.Appointment(ctx, id)
		day := visit.StartsAt.In(flows.Shanghai).Format("2006-01-02")
		b := o.browser(t)
		b.signIn("admin", testPassword)
		if code := b.get("/admin/appointments?day=" + day); code != 200 || !strings.Contains(b.last, "王秀英") || !strings.Contains(b.last, "已预约") {
			t.Fatalf("the day's appointments: %d\n%s", code, b.last)
		}
		form := url.Values{"csrf": {b.csrf()}, "day": {day}, "status": {"done"}, "readings": {"血糖 60"}}
		if code, _ := b.post(fmt.Sprintf("/admin/appointments/%d/visit", id), form); code != http.StatusSeeOther {
			t.Fatalf("mark done with a glucose no one has: %d", code)
		}
		if b.get("/admin/appointments?day=" + day); !strings.Contains(b.last, "没有登记：血糖读数不在合理范围") || !strings.Contains(b.last, "已预约") {
			t.Fatalf("a glucose no one has:\n%s", b.last)
		}
		form.Set("readings", "血压 135/85")
		if code, _ := b.post(fmt.Sprintf("/admin/appointments/%d/visit", id), form); code != http.StatusSeeOther {
			t.Fatalf("mark done: %d", code)
		}
		if b.get("/admin/appointments?day=" + day); !strings.Contains(b.last, "已登记 王秀英") || !strings.Contains(b.last, "已完成") ||
			!strings.Contains(b.last, "完成，已记下读数") || strings.Contains(b.last, "135/85") {
			t.Fatalf("after marking:\n%s", b.last)
		}
		if code, _ := b.post(fmt.Sprintf("/admin/appointments/%d/visit", id), form); code != http.StatusSeeOther {
			t.Fatalf("mark twice: %d", code)
		}
		if b.get("/admin/appointments?day=" + day); !strings.Contains(b.last, "已取消或已登记过") {
			t.Fatalf("marking twice is not said:\n%s", b.last)
		}

		doctor := visit.DoctorID
		schedule := fmt.Sprintf("/admin/doctors/%d/schedule", doctor)
		b.get(schedule)
		weekly := url.Values{"csrf": {b.csrf()}, "kind": {"weekly"}, "weekday": {"3"}, "start": {"18:00"}, "end": {"19:30"},
			"slot_minutes": {"2"}, "capacity": {"1"}}
		if code, _ := b.post(schedule, weekly); code != http.StatusBadRequest || !strings.Contains(b.last, "没有保存：每号至少") {
			t.Fatalf("slots shorter than the profile allows: %d", code)
		}
		weekly.Set("slot_minutes", "15")
		if code, _ := b.post(schedule, weekly); code != http.StatusSeeOther {
			t.Fatalf("add weekly hours: %d %s", code, b.last)
		}
		if b.get(schedule); !strings.Contains(b.last, "周三</td><td>18:00–19:30") {
			t.Fatalf("the schedule after adding hours:\n%s", b.last)
		}
		// Hours added by mistake come off again, with the empty slots they made.
		slotsBefore, _ := o.db.Slots(ctx, doctor, time.Now(), time.Now().AddDate(0, 0, 15))
		if code, _ := b.post(schedule, url.Values{"csrf": {b.csrf()}, "kind": {"remove"}, "weekday": {"3"}, "start": {"18:00"}}); code != http.StatusSeeOther {
			t.Fatalf("remove hours: %d", code)
		}
		slotsAfter, _ := o.db.Slots(ctx, doctor, time.Now(), time.Now().AddDate(0, 0, 15))
		if b.get(schedule); strings.Contains(b.last, "18:00–19:30") || !strings.Contains(b.last, "已删除这段门诊时间") ||
			len(slotsAfter) >= len(slotsBefore) {
			t.Fatalf("after removing the hours (slots %d -> %d):\n%s", len(slotsBefore), len(slotsAfter), b.last)
		}
		leave := url.Values{"csrf": {b.csrf()}, "kind": {"leave"}, "day": {time.Now().In(flows.Shanghai).AddDate(0, 0, 3).Format("2006-01-02")},
			"start": {"00:00"}, "end": {"24:00"}}
		if code, _ := b.post(schedule, leave); code != http.StatusSeeOther {
			t.Fatalf("leave: %d %s", code, b.last)
		}
		if b.get(schedule); !strings.Contains(b.last, "已登记请假") || !strings.Contains(b.last, "请假") {
			t.Fatalf("after leave:\n%s", b.last)
		}
		// Another institution's doctor's schedule does not exist for this admin.
		for _, d := range o.doctors {
			if d.InstitutionID == o.away {
				if code := b.get(fmt.Sprintf("/admin/doctors/%d/schedule", d.ID)); code != http.StatusNotFound {
					t.Fatalf("another institution's schedule: %d", code)
				}
			}
		}
		// City staff's changes land in the audit log of the doctor's
		// institution, where its admins read them.
		city := o.browser(t)
		city.signIn("city", testPassword)
		city.get(schedule)
		weekly.Set("csrf", city.csrf())
		weekly.Set("start", "19:00")
		weekly.Set("end", "20:00")
		if code, _ := city.post(schedule, weekly); code != http.StatusSeeOther {
			t.Fatalf("city staff add hours: %d %s", code, city.last)
		}
		if log, _, _ := o.db.AuditLog(ctx, storage.Scope{Institution: o.home}, storage.Page{Limit: 1}); len(log) != 1 ||
			log[0].Actor != "city" || log[0].Action != "schedule.weekly" || !strings.HasSuffix(log[0].Subject, "医生") || !strings.HasPrefix(log[0].Detail, "周") {
			t.Fatalf("the institution's audit log after city staff changed a schedule: %+v", log)
		}
	})
}

func TestResidentMovesWithTheNewTeamsAgreement(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, s storagetest.Stack) {
		o := newOrg(t, s)
		ctx := context.Background()
		communities, _, _ := o.db.ListCommunities(ctx, storage.Scope{Institution: o.home}, storage.Page{})
		teams, _, _ := o.db.ListTeams(ctx, storage.Scope{Institution: o.home}, storage.Page{})
		number, err := flows.SignAtDesk(ctx, o.db, o.api.Sealer, flows.DeskSigning{Name: "吴秀珍", IDNumber: "110105195203040324",
			Phone: "13700001111", CommunityID: communities[0].ID, TeamID: teams[0].ID, Request: strings.Repeat("r", 20)},
			flows.ResidentImport{Institution: o.home, Actor: "admin", Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		contract, _ := o.db.ContractByNumber(ctx, number)
		page := fmt.Sprintf("/admin/residents/%d", contract.ResidentID)
		b := o.browser(t)
		b.signIn("admin", testPassword)
		b.get(page)
		far := communities[2] // served by the second team only
		form := url.Values{"csrf": {b.csrf()}, "community": {fmt.Sprint(far.ID)}, "phone": {""}}
		if code, _ := b.post(page, form); code != http.StatusBadRequest || !strings.Contains(b.last, "原团队不服务新社区") {
			t.Fatalf("a move out of the team's communities without a new team: %d", code)
		}
		form.Set("team", fmt.Sprint(teams[1].ID))
		form.Set("phone", "139 0000 2222")
		if code, _ := b.post(page, form); code != http.StatusSeeOther {
			t.Fatalf("move: %d %s", code, b.last)
		}
		if b.get(page); !strings.Contains(b.last, "待该团队医生确认") || !strings.Contains(b.last, "139****2222") {
			t.Fatalf("after the move:\n%s", b.last)
		}
		moved, _ := o.db.ContractByNumber(ctx, number)
		if !moved.ChangeTeamID.Valid || moved.ChangeTeamID.Int64 != teams[1].ID || moved.TeamID != teams[0].ID {
			t.Fatalf("the contract should wait for the new team's doctor: %+v", moved)
		}
		rows, _ := o.db.OutboxFor(ctx, flows.DoctorRecipient(teams[1].DoctorID))
		if len(rows) != 1 || rows[0].Kind != flows.PushSignRequest {
			t.Fatalf("the new team's doctor was not asked: %+v", rows)
		}
		audit, _, _ := o.db.AuditLog(ctx, storage.Scope{Institution: o.home}, storage.Page{Limit: 1})
		if audit[0].Action != "resident.update" || strings.Contains(fmt.Sprint(audit[0]), "2222") || !strings.HasPrefix(audit[0].Subject, "吴秀珍") ||
			audit[0].Detail != "社区："+far.Name+"；更换了电话" {
			t.Fatalf("audit: %+v", audit[0])
		}
		// The new team's doctor has no WeChat: staff answer in their name.
		if b.get("/admin/requests"); !strings.Contains(b.last, "待接手的改签") || !strings.Contains(b.last, number) {
			t.Fatalf("the waiting 改签 is not listed:\n%s", b.last)
		}
		if code, _ := b.post("/admin/requests/"+number, url.Values{"csrf": {b.csrf()}, "change": {"yes"}, "answer": {"decline"}}); code != http.StatusSeeOther {
			t.Fatalf("decline without a reason: %d", code)
		}
		if b.get("/admin/requests"); !strings.Contains(b.last, `class="problem"`) || !strings.Contains(b.last, "拒绝改签须填写原因") {
			t.Fatalf("a refused decline is not shown as a problem:\n%s", b.last)
		}
		if code, _ := b.post("/admin/requests/"+number, url.Values{"csrf": {b.csrf()}, "change": {"yes"}, "answer": {"confirm"}}); code != http.StatusSeeOther {
			t.Fatalf("confirm the 改签: %d", code)
		}
		if now, _ := o.db.ContractByNumber(ctx, number); now.TeamID != teams[1].ID || now.ChangeTeamID.Valid {
			t.Fatalf("after confirming the 改签: %+v", now)
		}
		// Answered here, the request still unsent to that doctor is withdrawn.
		if rows, _ := o.db.OutboxFor(ctx, flows.DoctorRecipient(teams[1].DoctorID)); rows[0].Kind != flows.PushSignRequest || rows[0].State != "cancelled" {
			t.Fatalf("the answered 改签 is still to be sent: %+v", rows[0])
		}
		if b.get("/admin/outbox?state=cancelled"); !strings.Contains(b.last, "<strong>已撤回</strong>") || !strings.Contains(b.last, "改签已答复") {
			t.Fatalf("the withdrawn request on the outbox page:\n%s", b.last)
		}
		// A resident with only a landline keeps it, found by its last four.
		b.get(page)
		form = url.Values{"csrf": {b.csrf()}, "phone": {"0531-8888 6666"}}
		if code, _ := b.post(page, form); code != http.StatusSeeOther {
			t.Fatalf("a landline: %d %s", code, b.last)
		}
		if b.get("/admin/residents?q=6666"); !strings.Contains(b.last, "053*****6666") || !strings.Contains(b.last, "吴秀珍") {
			t.Fatalf("by a landline's last four:\n%s", b.last)
		}
		form.Set("phone", "8888 6666")
		if code, _ := b.post(page, form); code != http.StatusBadRequest || !strings.Contains(b.last, "固定电话须带区号") {
			t.Fatalf("a landline without its area code: %d", code)
		}
	})
}

func TestFeesOnTheResidentsPage(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, s storagetest.Stack) {
		o := newOrg(t, s)
		ctx := context.Background()
		place, _ := o.db.FindCommunityTeam(ctx, o.home, "幸福社区", "林静家庭医生团队")
		number, err := flows.SignAtDesk(ctx, o.db, o.api.Sealer, flows.DeskSigning{Name: "吴秀珍", IDNumber: "110105195203040324",
			Phone: "13700001111", CommunityID: place.CommunityID, TeamID: place.TeamID, Packages: []string{"elderly"}, Request: strings.Repeat("p", 20)},
			flows.ResidentImport{Institution: o.home, Actor: "admin", Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		contract, _ := o.db.ContractByNumber(ctx, number)
		page := fmt.Sprintf("/admin/residents/%d", contract.ResidentID)
		b := o.browser(t)
		b.signIn("admin", testPassword)
		// Signed before the package had a price: the share is the
		// institution's published one, not 0.
		if b.get(page); !strings.Contains(b.last, "应付 以签约机构公示价格为准 · 已收 0 元") || !strings.Contains(b.last, "登记收费") {
			t.Fatalf("the account of an unknown share, and its payment form:\n%s", b.last)
		}
		city := o.browser(t)
		city.signIn("city", testPassword)
		city.get("/admin/packages")
		if !strings.Contains(city.last, "价格待设定") || !strings.Contains(city.last, "方案未列出（假定）") ||
			!strings.Contains(city.last, "团队组成") {
			t.Fatalf("the packages page hides what is unknown or assumed:\n%s", city.last)
		}
		// A share the price has may not be left empty (the elderly package's
		// resident share is unknown).
		if code, _ := city.post("/admin/packages/elderly/price", url.Values{"csrf": {city.csrf()}, "local_insurance": {"10"}}); code != http.StatusSeeOther {
			t.Fatalf("a form without the resident's share: %d", code)
		}
		if cat, _ := o.db.Catalog(ctx); func() bool { p, _ := cat.Package("elderly"); return !p.PriceUnknown() }() {
			t.Fatal("an empty field dropped a share still to set")
		}
		if city.get("/admin/packages"); !strings.Contains(city.last, "个人的金额请填写") {
			t.Fatalf("the refused form says nothing:\n%s", city.last)
		}
		price := url.Values{"csrf": {city.csrf()}, "local_resident": {"30"}}
		if code, to := city.post("/admin/packages/elderly/price", price); code != http.StatusSeeOther || to != "/admin/packages" {
			t.Fatalf("the city sets a price: %d %s", code, to)
		}
		b.get("/admin/packages")
		if code, _ := b.post("/admin/packages/chronic/price", url.Values{"csrf": {b.csrf()}, "local_resident": {"10"}}); code != http.StatusSeeOther {
			t.Fatalf("an institution admin's price form: %d", code)
		}
		if cat, _ := o.db.Catalog(ctx); func() bool { p, _ := cat.Package("chronic"); return !p.PriceUnknown() }() {
			t.Fatal("an institution admin set the price of a catalog several institutions share")
		}
		// Signed after it: 30 yuan, frozen into the contract.
		number, err = flows.SignAtDesk(ctx, o.db, o.api.Sealer, flows.DeskSigning{Name: "钱丽华", IDNumber: "110105195007080329",
			Phone: "13700003333", CommunityID: place.CommunityID, TeamID: place.TeamID, Packages: []string{"elderly"}, Request: strings.Repeat("r", 20)},
			flows.ResidentImport{Institution: o.home, Actor: "admin", Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		contract, _ = o.db.ContractByNumber(ctx, number)
		page = fmt.Sprintf("/admin/residents/%d", contract.ResidentID)
		if b.get(page); !strings.Contains(b.last, "应付 30 元 · 已收 0 元") {
			t.Fatalf("the account before paying:\n%s", b.last)
		}
		form := url.Values{"csrf": {b.csrf()}, "number": {number}, "kind": {"payment"}, "yuan": {"三十"}, "method": {"cash"}, "receipt": {"NO.1"}}
		if code, _ := b.post(page+"/fees", form); code != http.StatusBadRequest || !strings.Contains(b.last, "金额请写成") {
			t.Fatalf("an amount in words: %d", code)
		}
		form.Set("yuan", "30")
		// Another resident's page cannot take this contract's fee.
		otherNumber, err := flows.SignAtDesk(ctx, o.db, o.api.Sealer, flows.DeskSigning{Name: "郑桂兰", IDNumber: "110105194806070325",
			Phone: "13700002222", CommunityID: place.CommunityID, TeamID: place.TeamID, Request: strings.Repeat("q", 20)},
			flows.ResidentImport{Institution: o.home, Actor: "admin", Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		other, _ := o.db.ContractByNumber(ctx, otherNumber)
		if code, _ := b.post(fmt.Sprintf("/admin/residents/%d/fees", other.ResidentID), form); code != http.StatusNotFound {
			t.Fatalf("a fee for another resident's contract: %d", code)
		}
		if acc, _ := o.db.ContractAccount(ctx, contract.ID); acc.Paid != 0 {
			t.Fatalf("recorded through another resident's page: %+v", acc)
		}
		if code, _ := b.post(page+"/fees", form); code != http.StatusSeeOther {
			t.Fatalf("pay: %d %s", code, b.last)
		}
		if b.get(page); !strings.Contains(b.last, "已收 30 元") || !strings.Contains(b.last, "收据 NO.1") {
			t.Fatalf("the account after paying:\n%s", b.last)
		}
		v := o.browser(t)
		v.signIn("viewer", testPassword)
		v.get(page)
		if code, _ := v.post(page+"/fees", url.Values{"csrf": {v.csrf()}, "number": {number}, "kind": {"payment"}, "yuan": {"1"},
			"method": {"cash"}, "receipt": {"NO.2"}}); code != http.StatusForbidden {
			t.Fatalf("a viewer records a fee: %d", code)
		}
	})
}

func TestHandOverATeamFromTheConsole(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, s storagetest.Stack) {
		o := newOrg(t, s)
		ctx := context.Background()
		number, visit := bookedVisit(t, o.db)
		contract, _ := o.db.ContractByNumber(ctx, number)
		teams, _, _ := o.db.ListTeams(ctx, storage.Scope{Institution: o.home}, storage.Page{})
		// The visit lies ahead for the handover to move it.
		future := time.Now().Add(48 * time.Hour).Truncate(time.Minute)
		o.db.EnsureSlots(ctx, []storage.Slot{{DoctorID: contract.DoctorID, Day: "d2", StartsAt: future, EndsAt: future.Add(10 * time.Minute), Capacity: 1}})
		slots, _ := o.db.Slots(ctx, contract.DoctorID, future, future.Add(time.Minute))
		if err := o.db.Reschedule(ctx, visit, slots[0].ID, 3, time.Now(), func(storage.Slot) []storage.Push { return nil }); err != nil {
			t.Fatal(err)
		}
		b := o.browser(t)
		b.signIn("admin", testPassword)
		b.get("/admin/teams")
		form := url.Values{"csrf": {b.csrf()}, "from": {fmt.Sprint(teams[0].ID)}, "to": {fmt.Sprint(teams[1].ID)}, "retire": {"yes"}, "confirm": {"yes"}}
		if code, _ := b.post("/admin/teams/handover", form); code != http.StatusSeeOther {
			t.Fatalf("handover: %d %s", code, b.last)
		}
		if b.get("/admin/teams"); !strings.Contains(b.last, "已移交 1 份签约（含待确认的申请）和 1 次已预约的就诊") {
			t.Fatalf("after the handover:\n%s", b.last)
		}
		moved, _ := o.db.ContractByNumber(ctx, number)
		after, _ := o.db.Appointment(ctx, visit)
		if moved.TeamID != teams[1].ID || after.DoctorID != teams[1].DoctorID || !after.StartsAt.Equal(future) {
			t.Fatalf("contract %+v, visit %+v", moved, after)
		}
		// The retired team takes no one: it is marked, left out of the
		// lists that pick a team, and refused as a handover's target.
		retired := fmt.Sprintf(`<option value="%d">`, teams[0].ID)
		to := regexp.MustCompile(`name="to">(.*?)</select>`).FindStringSubmatch(b.last)
		if !strings.Contains(b.last, "已停用") || to == nil || strings.Contains(to[1], retired) {
			t.Fatalf("the retired team on the teams page:\n%s", b.last)
		}
		b.get("/admin/sign")
		if desk := regexp.MustCompile(`name="team" required>(.*?)</select>`).FindStringSubmatch(b.last); desk == nil ||
			strings.Contains(desk[1], fmt.Sprintf(`<option value="%d"`, teams[0].ID)) {
			t.Fatalf("the retired team is offered at the desk:\n%s", b.last)
		}
		if code, out := b.apiJSON("POST", fmt.Sprintf("/admin/api/teams/%d/handover", teams[1].ID), fmt.Sprintf(`{"to": %d}`, teams[0].ID)); code != http.StatusBadRequest ||
			!strings.Contains(fmt.Sprint(out), "接手团队已停用") {
			t.Fatalf("a handover to the retired team: %d %v", code, out)
		}
		b.get("/admin/teams")
		// Another institution's team cannot take them.
		var awayTeam int64
		all, _, _ := o.db.ListTeams(ctx, storage.Scope{}, storage.Page{})
		for _, tm := range all {
			if tm.InstitutionID == o.away {
				awayTeam = tm.ID
			}
		}
		form.Set("from", fmt.Sprint(teams[1].ID))
		form.Set("to", fmt.Sprint(awayTeam))
		b.post("/admin/teams/handover", form)
		if b.get("/admin/teams"); !strings.Contains(b.last, "请选择本机构的两个不同团队") {
			t.Fatalf("a handover to another institution's team:\n%s", b.last)
		}
	})
}

func TestCommunityPopulation(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, s storagetest.Stack) {
		o := newOrg(t, s)
		ctx := context.Background()
		communities, _, _ := o.db.ListCommunities(ctx, storage.Scope{Institution: o.home}, storage.Page{})
		b := o.browser(t)
		b.signIn("admin", testPassword)
		b.get("/admin/communities")
		path := fmt.Sprintf("/admin/communities/%d/population", communities[0].ID)
		form := url.Values{"csrf": {b.csrf()}, "population": {"3000"}, "group_elderly": {"3100"}, "counted_on": {"2026-10-31"}}
		b.post(path, form)
		if b.get("/admin/communities"); !strings.Contains(b.last, "没有保存：65岁以上老年人人数须在0到常住人口之间") {
			t.Fatalf("more elderly than residents:\n%s", b.last)
		}
		form.Set("group_elderly", "520")
		form.Set("group_hypertension", "310")
		b.post(path, form)
		if b.get("/admin/communities"); !strings.Contains(b.last, "65岁以上老年人 520") || !strings.Contains(b.last, "2026-10-31 统计") {
			t.Fatalf("after saving the counts:\n%s", b.last)
		}
		_, out := b.api("GET", "/admin/api/communities", "")
		if !strings.Contains(fmt.Sprint(out["items"]), "priority_population:map[elderly:520 hypertension:310]") {
			t.Fatalf("the API's communities: %v", out)
		}
		away := o.browser(t)
		away.signIn("awayadmin", testPassword)
		away.get("/admin/communities")
		if code, _ := away.post(path, url.Values{"csrf": {away.csrf()}, "population": {"1"}, "counted_on": {"2026-10-31"}}); code != http.StatusNotFound {
			t.Fatalf("another institution's community: %d", code)
		}
	})
}

// A doctor sees the residents they serve now: once a resident has left for
// another doctor, their page, full ID and details are out of reach.
func TestADoctorLosesAResidentWhoLeft(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, s storagetest.Stack) {
		o := newOrg(t, s)
		ctx := context.Background()
		teams, _, _ := o.db.ListTeams(ctx, storage.Scope{Institution: o.home}, storage.Page{})
		communities, _, _ := o.db.ListCommunities(ctx, storage.Scope{Institution: o.home}, storage.Page{})
		sign := func(team storage.TeamRow, request string) string {
			number, err := flows.SignAtDesk(ctx, o.db, o.api.Sealer, flows.DeskSigning{Name: "吴秀珍", IDNumber: "110105195203040324",
				Phone: "13700001111", CommunityID: communities[1].ID, TeamID: team.ID, Request: strings.Repeat(request, 20)},
				flows.ResidentImport{Institution: o.home, Actor: "admin", Now: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			return number
		}
		first := sign(teams[0], "a") // the doctor account's own team
		contract, _ := o.db.ContractByNumber(ctx, first)
		page := fmt.Sprintf("/admin/residents/%d", contract.ResidentID)
		d := o.browser(t)
		d.signIn("doctor", testPassword)
		if code := d.get(page); code != 200 {
			t.Fatalf("the doctor's own resident: %d", code)
		}
		o.db.ChangeStatus(ctx, storage.StatusChange{Number: first, From: storage.ContractActive, To: storage.ContractCancelled, Actor: "o"})
		sign(teams[1], "b")
		if code := d.get(page); code != http.StatusNotFound {
			t.Fatalf("a resident who left, by page: %d", code)
		}
		d.get("/admin/password")
		req, _ := http.NewRequest("POST", o.srv.URL+"/admin/api"+page[len("/admin"):]+"/unmask", strings.NewReader(`{"reason": "核对身份信息"}`))
		req.Header.Set("X-CSRF-Token", d.csrf())
		if resp, err := d.http.Do(req); err != nil || resp.StatusCode != http.StatusNotFound {
			t.Fatalf("a resident who left, unmasked: %v %v", resp.StatusCode, err)
		}
		if _, out := d.api("GET", "/admin/api/residents", ""); out["total"] != float64(0) {
			t.Fatalf("a resident who left is listed: %v", out)
		}
		// Team names are unique in an institution, so files and forms name one team.
		if _, err := o.db.CreateTeam(ctx, o.home, storage.NewTeam{Name: teams[0].Name}, o.doctors[1].ID, []int64{communities[0].ID}, "t"); !errors.Is(err, storage.ErrExists) {
			t.Fatalf("a second team of the same name: %v", err)
		}
	})
}

// Teams are listed with their members and communities, and a member's role
// is one of the profile's team model.
func TestTeamsFollowTheTeamModel(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, s storagetest.Stack) {
		o := newOrg(t, s)
		b := o.browser(t)
		b.signIn("admin", testPassword)
		_, out := b.api("GET", "/admin/api/teams", "")
		first := fmt.Sprint(out["items"].([]any)[0])
		if !strings.Contains(first, "map[name:许成 role:公共卫生人员]") || !strings.Contains(first, "communities:[幸福社区") {
			t.Fatalf("the first team: %s", first)
		}
		communities, _, _ := o.db.ListCommunities(context.Background(), storage.Scope{Institution: o.home}, storage.Page{})
		body := fmt.Sprintf(`{"name": "新团队", "doctor": %d, "communities": [%d], "members": [{"role": "营养师", "name": "甲"}]}`,
			o.doctors[0].ID, communities[0].ID)
		if code, out := b.apiJSON("POST", "/admin/api/teams", body); code != http.StatusBadRequest ||
			!strings.Contains(fmt.Sprint(out["error"]), "不在本地区的团队组成（家庭医生、公共卫生人员、护士）") {
			t.Fatalf("a role outside the team model: %d %v", code, out)
		}
		if code, out := b.apiJSON("POST", "/admin/api/teams", strings.Replace(body, "营养师", "护士", 1)); code != http.StatusCreated {
			t.Fatalf("a role of the team model: %d %v", code, out)
		}
		// The organisation file is held to the same model.
		file := flows.OrgHeader + "\n团队,demo,另一团队,,,,,,,,林静,幸福社区,营养师:乙\n"
		lines, err := flows.ImportOrganisation(context.Background(), o.db, strings.NewReader(file), true, "test", "")
		if !errors.Is(err, storage.ErrImportRejected) || len(lines) != 1 || !strings.Contains(lines[0].What, "营养师") {
			t.Fatalf("an imported team with a role outside the model: %v %+v", err, lines)
		}
	})
}

// Staff list a priority group's residents: a declared group by its blind
// index, the elderly by their birth date; the groups stay sealed.
func TestResidentsByPriorityGroup(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, s storagetest.Stack) {
		o := newOrg(t, s)
		ctx := context.Background()
		communities, _, _ := o.db.ListCommunities(ctx, storage.Scope{Institution: o.home}, storage.Page{})
		teams, _, _ := o.db.ListTeams(ctx, storage.Scope{Institution: o.home}, storage.Page{})
		sign := func(name, id string, groups ...string) {
			_, err := flows.SignAtDesk(ctx, o.db, o.api.Sealer, flows.DeskSigning{Name: name, IDNumber: id, Phone: "13700001111",
				CommunityID: communities[0].ID, TeamID: teams[0].ID, Groups: groups, Request: strings.Repeat(name, 10)},
				flows.ResidentImport{Institution: o.home, Actor: "admin", Now: time.Now()})
			if err != nil {
				t.Fatalf("sign %s: %v", name, err)
			}
		}
		sign("吴秀珍", "110105195203040324", "hypertension")
		sign("李明", "110105199001010010")
		b := o.browser(t)
		b.signIn("admin", testPassword)
		names := func(group string) string {
			_, out := b.api("GET", "/admin/api/residents?group="+group, "")
			var got []string
			for _, r := range out["items"].([]any) {
				got = append(got, r.(map[string]any)["name"].(string))
			}
			return strings.Join(got, ",")
		}
		for group, want := range map[string]string{"hypertension": "吴秀珍", "elderly": "吴秀珍", "diabetes": "", "nonsense": ""} {
			if got := names(group); got != want {
				t.Errorf("group %s: %q, want %q", group, got, want)
			}
		}
		var sealed string
		storagetest.SQL(t, o.db).Get(&sealed, `SELECT priority_groups FROM residents WHERE name = '吴秀珍'`)
		if strings.Contains(sealed, "hypertension") {
			t.Fatalf("the declared groups are stored in clear: %s", sealed)
		}
		// Residents signed before the index existed are indexed at start.
		storagetest.SQL(t, o.db).MustExec(`DELETE FROM resident_groups`)
		storagetest.SQL(t, o.db).MustExec(`UPDATE residents SET groups_indexed = 0`)
		if got := names("hypertension"); got != "" {
			t.Fatalf("without the index: %q", got)
		}
		if n, err := flows.IndexLegacyGroups(ctx, o.db, o.api.Sealer); err != nil || n != 2 {
			t.Fatalf("index: %d %v", n, err)
		}
		if got := names("hypertension"); got != "吴秀珍" {
			t.Fatalf("after indexing: %q", got)
		}
		if b.get("/admin/residents?group=hypertension"); !strings.Contains(b.last, "吴秀珍") || strings.Contains(b.last, "李明") ||
			!strings.Contains(b.last, `<option value="hypertension" selected>`) {
			t.Fatalf("the residents page by group:\n%s", b.last)
		}
	})
}

// A resident's page lists the pushes to the WeChat user who manages them,
// by kind and time, without their words.
func TestResidentPageListsPushes(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, s storagetest.Stack) {
		o := newOrg(t, s)
		ctx := context.Background()
		number, _ := bookedVisit(t, o.db)
		contract, _ := o.db.ContractByNumber(ctx, number)
		if err := o.db.Enqueue(ctx, []storage.Push{
			{Key: "t1", Kind: flows.PushAppointmentReminder, Recipient: "o_res", Fields: map[string]string{"doctor": "林静"}},
			{Key: "t2", Kind: flows.PushSeasonal, Recipient: "o_someone_else", Fields: map[string]string{"tip": "x"}},
		}); err != nil {
			t.Fatal(err)
		}
		b := o.browser(t)
		b.signIn("admin", testPassword)
		b.get(fmt.Sprintf("/admin/residents/%d", contract.ResidentID))
		section := b.last[strings.Index(b.last, "提醒与通知"):]
		if !strings.Contains(section, "就诊提醒") || !strings.Contains(section, "待发送") || strings.Contains(section, "季节提醒") ||
			strings.Contains(section, "林静") {
			t.Fatalf("the resident's pushes:\n%s", section)
		}
		_, out := b.api("GET", fmt.Sprintf("/admin/api/residents/%d", contract.ResidentID), "")
		if pushes := out["pushes"].([]any); len(pushes) != 1 || pushes[0].(map[string]any)["kind"] != flows.PushAppointmentReminder {
			t.Fatalf("the resident's pushes through the API: %v", out["pushes"])
		}
	})
}

// A referral's reason, sealed at rest, is read on the resident's page (the
// doctor's notice leaves it out).
func TestReferralsOnTheResidentsPage(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, s storagetest.Stack) {
		o := newOrg(t, s)
		ctx := context.Background()
		place, _ := o.db.FindCommunityTeam(ctx, o.home, "幸福社区", "林静家庭医生团队")
		number, err := flows.SignAtDesk(ctx, o.db, o.api.Sealer, flows.DeskSigning{Name: "吴秀珍", IDNumber: "110105195203040324",
			Phone: "13700001111", CommunityID: place.CommunityID, TeamID: place.TeamID, Request: strings.Repeat("z", 20)},
			flows.ResidentImport{Institution: o.home, Actor: "admin", Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		contract, _ := o.db.ContractByNumber(ctx, number)
		sealed, _ := o.api.Sealer.Seal("referral_reason", "胸闷想看心内科")
		if _, err := o.db.RequestReferral(ctx, storage.NewReferral{RequestKey: "r1", ResidentID: contract.ResidentID, ContractID: contract.ID,
			DoctorID: contract.DoctorID, Hospital: "市一院", GreenChannel: true, ReasonSealed: sealed, At: time.Now()}); err != nil {
			t.Fatal(err)
		}
		b := o.browser(t)
		b.signIn("admin", testPassword)
		if b.get(fmt.Sprintf("/admin/residents/%d", contract.ResidentID)); !strings.Contains(b.last, "转诊申请") ||
			!strings.Contains(b.last, "市一院（绿色通道）") || !strings.Contains(b.last, "胸闷想看心内科") {
			t.Fatalf("the resident's page:\n%s", b.last)
		}
	})
}

// A resident's deletion request reaches their institution's admins, who
// record the answer; another institution's admin cannot see or answer it.
func TestDeletionRequestsInTheConsole(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, s storagetest.Stack) {
		o := newOrg(t, s)
		ctx := context.Background()
		place, _ := o.db.FindCommunityTeam(ctx, o.home, "幸福社区", "林静家庭医生团队")
		number, err := flows.SignAtDesk(ctx, o.db, o.api.Sealer, flows.DeskSigning{Name: "吴秀珍", IDNumber: "110105195203040324",
			Phone: "13700001111", CommunityID: place.CommunityID, TeamID: place.TeamID, Request: strings.Repeat("d", 20)},
			flows.ResidentImport{Institution: o.home, Actor: "admin", Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		contract, _ := o.db.ContractByNumber(ctx, number)
		if _, err := o.db.RequestDeletion(ctx, contract.ResidentID, "o_wu", time.Now()); err != nil {
			t.Fatal(err)
		}
		reqs, _, _ := o.db.DataRequests(ctx, storage.Scope{}, storage.Page{Limit: 5})
		away := o.browser(t)
		away.signIn("awayadmin", testPassword)
		if away.get("/admin/data-requests"); strings.Contains(away.last, "吴秀珍") {
			t.Fatal("another institution's admin sees the request")
		}
		form := url.Values{"csrf": {away.csrf()}, "answer": {"已删除"}}
		if code, _ := away.post(fmt.Sprintf("/admin/data-requests/%d", reqs[0].ID), form); code != http.StatusNotFound {
			t.Fatalf("another institution's admin answers: %d", code)
		}
		b := o.browser(t)
		b.signIn("admin", testPassword)
		if b.get("/admin/data-requests"); !strings.Contains(b.last, "吴秀珍") || !strings.Contains(b.last, "记录并答复") {
			t.Fatalf("the requests page:\n%s", b.last)
		}
		form = url.Values{"csrf": {b.csrf()}, "answer": {"已删除手机号，病历依法保存"}}
		if code, _ := b.post(fmt.Sprintf("/admin/data-requests/%d", reqs[0].ID), form); code != http.StatusSeeOther {
			t.Fatalf("answer: %d %s", code, b.last)
		}
		if b.get("/admin/data-requests"); !strings.Contains(b.last, "已删除手机号，病历依法保存") {
			t.Fatalf("the answer is not shown:\n%s", b.last)
		}
	})
}

// A signing for a family member that waits for them shows as such; staff
// record that the member confirmed in person, and only then is the doctor
// asked.
func TestMemberConfirmsAtTheDesk(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, s storagetest.Stack) {
		o := newOrg(t, s)
		ctx := context.Background()
		place, _ := o.db.FindCommunityTeam(ctx, o.home, "幸福社区", "林静家庭医生团队")
		team, _ := o.db.TeamByID(ctx, place.TeamID)
		number, _, err := o.db.CreateContract(ctx, storage.NewContract{RequestKey: "family-run", Day: "261202",
			Resident: storage.NewResident{ManagerOpenID: "o_son", Relation: "family", FamilyRelation: "子女", Name: "王小花",
				IDSealed: "v1:x", IDHash: "member-id", PhoneSealed: "v1:y", PhoneHash: "p", BirthDate: "1958-01-01", Sex: "female",
				CommunityID: place.CommunityID, GroupsSealed: "[]"},
			TeamID: place.TeamID, DoctorID: team.DoctorID, Insured: storage.InsuredLocal, TermMonths: 12,
			AgreementVersion: "2026-12", AgreedAt: time.Now(), ConsentVersion: "2026-12", ConsentedAt: time.Now(), ConsentBy: "o_son",
			Packages:   []storage.ContractPackage{{Code: "basic", Name: "基本公共卫生服务包", Kind: "basic", Split: storage.Split{}}},
			MemberCode: "code-hash", MemberCodeExpires: time.Now().Add(7 * 24 * time.Hour),
			Notify: func(n string) storage.Push {
				return storage.Push{Key: "never", Kind: "sign_request", Recipient: "doctor:1"}
			}})
		if err != nil {
			t.Fatal(err)
		}
		b := o.browser(t)
		b.signIn("admin", testPassword)
		if b.get("/admin/requests"); !strings.Contains(b.last, "待本人确认") || !strings.Contains(b.last, "本人已到窗口确认") {
			t.Fatalf("the requests page:\n%s", b.last)
		}
		form := url.Values{"csrf": {b.csrf()}, "answer": {"confirm"}}
		if code, _ := b.post("/admin/requests/"+number, form); code != http.StatusSeeOther {
			t.Fatalf("confirm in the doctor's name: %d", code)
		}
		if c, _ := o.db.ContractByNumber(ctx, number); c.Status != storage.ContractPending {
			t.Fatal("the doctor's confirmation went through before the member's")
		}
		form.Set("answer", "member")
		if code, to := b.post("/admin/requests/"+number, form); code != http.StatusSeeOther || to != "/admin/requests" {
			t.Fatalf("the member at the desk: %d", code)
		}
		c, _ := o.db.ContractByNumber(ctx, number)
		if c.AwaitingMember {
			t.Fatal("still waiting for the member")
		}
		if got, _ := o.db.OutboxFor(ctx, flows.DoctorRecipient(team.DoctorID)); !strings.Contains(fmt.Sprint(got), "sign_request") {
			t.Fatalf("the doctor is not asked: %+v", got)
		}
		form.Set("answer", "confirm")
		b.post("/admin/requests/"+number, form)
		if c, _ := o.db.ContractByNumber(ctx, number); c.Status != storage.ContractActive {
			t.Fatalf("after both: %s", c.Status)
		}
	})
}

// The health calendar shows the coming year's reminders for this region
// with their dates, and none of another region's.
func TestHealthCalendarPage(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, s storagetest.Stack) {
		o := newOrg(t, s)
		b := o.browser(t)
		b.signIn("viewer", testPassword)
		if code := b.get("/admin/calendar"); code != http.StatusOK {
			t.Fatalf("calendar: %d", code)
		}
		for _, want := range []string{"健康日历", "流感疫苗接种季", "9月1日–10月31日", "全国高血压日", "高血压患者", "全体签约居民"} {
			if !strings.Contains(b.last, want) {
				t.Errorf("the calendar lacks %q", want)
			}
		}
		if strings.Contains(b.last, "野生菌") || strings.Contains(b.last, "供暖季") {
			t.Error("another region's reminders on this region's calendar")
		}
	})
}
