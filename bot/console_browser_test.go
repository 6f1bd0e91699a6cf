package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// chromium finds Debian's headless Chromium; .ci/run installs it. Outside
// CI a machine without it leaves the browser tests out, and says so.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("JIAYI_TEST_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if storagetest.InCI() {
		t.Fatal("CI=true but no Chromium: install Debian's chromium package")
	}
	t.Skip("no Chromium on this machine (apt-get install chromium); the console's browser tests are left out")
	return ""
}

// browse starts a headless Chromium for one test and returns its context.
func browse(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-first-run", true), chromedp.Flag("disable-quic", true), chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 768))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	// Started on the test's own context, the browser lives as long as the
	// test; started by a step's, it would close when the step ends.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// runner runs a named step in the browser, failing the test with its name.
func runner(t *testing.T, ctx context.Context) func(what string, steps ...chromedp.Action[chromedp.Void]) {
	return func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		step, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(step, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
}

// textReader reads an element's text in the browser, or fails the test.
func textReader(t *testing.T, ctx context.Context) func(sel string) string {
	return func(sel string) string {
		t.Helper()
		// A read just after a navigation can reach Chromium with the old
		// page's script context or nodes, before chromedp has heard of the
		// new page's; reading is harmless to repeat, so it is tried again.
		for try := 0; ; try++ {
			text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
			if err == nil {
				return text
			}
			stale := strings.Contains(err.Error(), "Cannot find context with specified id") ||
				strings.Contains(err.Error(), "No node with given id found")
			if try == 4 || !stale {
				t.Fatalf("read %s: %v", sel, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// signInSteps sign a console account in, from the sign-in page to the first
// page after it.
func signInSteps(base, username, password string) []chromedp.Action[chromedp.Void] {
	return []chromedp.Action[chromedp.Void]{
		chromedp.Navigate(base + "/admin/"),
		chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=username]`), username),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), password),
		chromedp.Click(chromedp.CSS(`form[action="/admin/login"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name=q]`)),
	}
}

// TestConsoleInABrowser does in a real browser what a health centre's admin
// does on their first day: sign in with the sandbox's printed credentials,
// add a community, a doctor and a team, find a resident who signed in chat,
// see their full ID number for a stated reason and find that in the audit
// log, and confirm the resident's sign request for a doctor without WeChat.
func TestConsoleInABrowser(t *testing.T) {
	chromium(t)
	srv, base := live(t, map[string]string{}, Options{})
	var demo struct {
		Admin struct{ Username, Password string }
	}
	json.Unmarshal(get(t, srv.Handler(), "/sandbox/demo", local).Body.Bytes(), &demo)

	resident := "o_console_res"
	for _, s := range []string{"签约", "1", "王秀英", "同意", residentID, residentPhone, "1", "1", "1", "0"} {
		chat(t, srv, resident, s)
	}
	number := regexp.MustCompile(`QY\d{10}`).FindString(chat(t, srv, resident, "同意"))
	if number == "" {
		t.Fatal("the resident's signing made no contract")
	}

	ctx := browse(t)
	run := runner(t, ctx)
	textOf := textReader(t, ctx)
	mainText := func() string { return textOf("main") }

	run("sign in", signInSteps(base, demo.Admin.Username, demo.Admin.Password)...)

	run("add a community",
		chromedp.Navigate(base+"/admin/communities"),
		chromedp.SendKeys(chromedp.CSS(`form[action="/admin/communities"] input[name=name]`), "新桥社区"),
		chromedp.SendKeys(chromedp.CSS(`form[action="/admin/communities"] input[name=town]`), "示范街道"),
		chromedp.SetValue(chromedp.CSS(`form[action="/admin/communities"] input[name=population]`), "3200"),
		chromedp.Click(chromedp.CSS(`form[action="/admin/communities"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`.flash`)))
	if got := mainText(); !strings.Contains(got, "已添加社区：新桥社区") || !strings.Contains(got, "3200") {
		t.Fatalf("after adding a community:\n%s", got)
	}

	run("add a doctor",
		chromedp.Navigate(base+"/admin/doctors"),
		chromedp.SendKeys(chromedp.CSS(`form[action="/admin/doctors"] input[name=name]`), "宋医生"),
		chromedp.SendKeys(chromedp.CSS(`form[action="/admin/doctors"] input[name=title]`), "全科医师"),
		chromedp.Click(chromedp.CSS(`form[action="/admin/doctors"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`.flash`)))
	if got := mainText(); !strings.Contains(got, "已添加医生：宋医生") {
		t.Fatalf("after adding a doctor:\n%s", got)
	}

	run("open the teams page", chromedp.Navigate(base+"/admin/teams"))
	run("add a team",
		chromedp.SendKeys(chromedp.CSS(`form[action="/admin/teams"] input[name=name]`), "宋医生家庭医生团队"),
		chromedp.SetValue(chromedp.CSS(`form[action="/admin/teams"] select[name=doctor]`), doctorOption(t, ctx, "宋医生")),
		chromedp.Click(chromedp.Search(`//label[contains(., "新桥社区")]/input`)),
		chromedp.SendKeys(chromedp.CSS(`form[action="/admin/teams"] input[name="member:护士"]`), "田甜、何静"),
		chromedp.Click(chromedp.CSS(`form[action="/admin/teams"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`.flash`)))
	if got := mainText(); !strings.Contains(got, "已添加团队：宋医生家庭医生团队") || !strings.Contains(got, "护士：田甜") ||
		!strings.Contains(got, "护士：何静") {
		t.Fatalf("after adding a team:\n%s", got)
	}

	run("search a resident",
		chromedp.Navigate(base+"/admin/residents"),
		chromedp.SendKeys(chromedp.CSS(`input[name=q]`), "0210"),
		chromedp.Click(chromedp.CSS(`form[action="/admin/residents"] button`)),
		chromedp.WaitVisible(chromedp.Search(`//a[text()="王秀英"]`)))
	if got := mainText(); !strings.Contains(got, "1101**********0210") || strings.Contains(got, residentID) || !strings.Contains(got, "139****5678") {
		t.Fatalf("the residents listing does not show the masked ID and phone alone:\n%s", got)
	}
	run("open the resident", chromedp.Click(chromedp.Search(`//a[text()="王秀英"]`)), chromedp.WaitVisible(chromedp.CSS(`input[name=reason]`)))
	run("show the full ID for a reason",
		chromedp.SendKeys(chromedp.CSS(`input[name=reason]`), "电话随访核对身份"),
		chromedp.Click(chromedp.CSS(`form[action$="/unmask"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`#full-id`)))
	if text := textOf("#full-id"); text != residentID {
		t.Fatalf("full ID shown: %q", text)
	}
	run("read the audit log", chromedp.Navigate(base+"/admin/audit"), chromedp.WaitVisible(chromedp.CSS(`table`)))
	if got := mainText(); !strings.Contains(got, "查看完整身份信息") || !strings.Contains(got, "电话随访核对身份") || !strings.Contains(got, "admin") {
		t.Fatalf("the audit log lacks the unmasking:\n%s", got)
	}

	// A file of residents signed on paper with one bad row: the check lists
	// it with the reason and nothing is imported.
	paper := filepath.Join(t.TempDir(), "paper.csv")
	os.WriteFile(paper, []byte("姓名,身份证号,手机号,社区,团队,服务包,重点人群,签约日期,到期日期\n"+
		"周玉芬,"+paperID+",13700001111,幸福社区,林静家庭医生团队,,,2026-03-01,\n"+
		"吴明,"+paperID[:17]+"0,13700002222,幸福社区,林静家庭医生团队,,,2026-03-01,\n"), 0o600)
	run("import a file with a bad row",
		chromedp.Navigate(base+"/admin/import"),
		chromedp.SetUploadFiles(chromedp.CSS(`form[action="/admin/import/residents"] input[type=file]`), []string{paper}),
		chromedp.Click(chromedp.CSS(`form[action="/admin/import/residents"] input[name=apply]`)),
		chromedp.Click(chromedp.CSS(`form[action="/admin/import/residents"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`#import-report`)))
	if got := textOf("#import-report"); !strings.Contains(got, "3\t未通过\t身份证号") || !strings.Contains(got, "2\t新增\t周玉芬") {
		t.Fatalf("import report:\n%s", got)
	}
	if got := mainText(); !strings.Contains(got, "没有导入任何数据") {
		t.Fatalf("after a rejected import:\n%s", got)
	}
	if rows, _, _ := srv.DB.ListResidents(context.Background(), storage.Scope{}, storage.ResidentFilter{Query: "周玉芬"}, storage.Page{}); len(rows) != 0 {
		t.Fatalf("a rejected file imported %+v", rows)
	}

	run("confirm the sign request",
		chromedp.Navigate(base+"/admin/requests"),
		chromedp.WaitVisible(chromedp.Search(`//td[text()="`+number+`"]`)),
		chromedp.Click(chromedp.CSS(`form.inline[action="/admin/requests/`+number+`"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`.flash`)))
	if got := mainText(); !strings.Contains(got, "已确认签约 "+number) {
		t.Fatalf("after confirming:\n%s", got)
	}
	if data := waitPush(t, srv, resident, "sign_confirmed", 5*time.Second); !strings.Contains(data, number) {
		t.Fatalf("the resident was not told: %s", data)
	}
	// The confirmed contract is this year's one signing on the indicators page.
	run("open the indicators", chromedp.Navigate(base+"/admin/indicators"), chromedp.WaitVisible(chromedp.CSS(`#activity`)))
	if got := textOf("#activity tbody td"); got != "1" {
		t.Fatalf("signings on the indicators page: %q\n%s", got, mainText())
	}
	if got := textOf("#indicators tbody td"); got != "签约率" {
		t.Fatalf("the first indicator: %q", got)
	}
	screenshot(t, ctx, "console.png")
}

// screenshot saves the whole page as JIAYI_SCREENSHOTS/name when that is
// set (the README's pictures: JIAYI_SCREENSHOTS=$PWD/docs/screenshots go
// test ./bot -run Browser); tests otherwise write nothing.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("JIAYI_SCREENSHOTS")
	if dir == "" {
		return
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), shot, 0o644); err != nil {
		t.Fatal(err)
	}
}

// paperID is a synthetic ID number of a resident signed on paper.
const paperID = "110105195203040324"

// doctorOption is the value of a doctor's option in the team form.
func doctorOption(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	got, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.Search(`//select[@name="doctor"]/option[contains(., "`+name+`")]`), "value"))
	if err != nil || !got.Exists {
		t.Fatalf("no option for %s: %v", name, err)
	}
	return got.Value
}

// A doctor's QR code: made through the WeChat API (the stand-in here) once,
// drawn by the server as a PNG.
func TestDoctorQRCode(t *testing.T) {
	srv, base := live(t, map[string]string{}, Options{})
	var demo struct {
		Admin   struct{ Username, Password string }
		Doctors []struct{ ID int64 }
	}
	json.Unmarshal(get(t, srv.Handler(), "/sandbox/demo", local).Body.Bytes(), &demo)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	page, err := client.Get(base + "/admin/login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(page.Body)
	page.Body.Close()
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(string(body))[1]
	resp, err := client.PostForm(base+"/admin/login", url.Values{"csrf": {csrf}, "username": {demo.Admin.Username}, "password": {demo.Admin.Password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	made := func() int {
		n := 0
		for _, m := range srv.StandIn.Outbox("") {
			if m.Kind == "qrcode" && m.Text == fmt.Sprintf("doctor_%d", demo.Doctors[0].ID) {
				n++
			}
		}
		return n
	}
	for range 2 {
		resp, err := client.Get(fmt.Sprintf("%s/admin/api/doctors/%d/qr.png", base, demo.Doctors[0].ID))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" || img.Bounds().Dx() < 200 {
			t.Fatalf("QR code: %d %s %v", resp.StatusCode, resp.Header.Get("Content-Type"), err)
		}
	}
	if n := made(); n != 1 {
		t.Fatalf("WeChat was asked %d times for the doctor's QR code, want once", n)
	}
	if url, _ := srv.DB.DoctorQR(context.Background(), demo.Doctors[0].ID); url != fmt.Sprintf("http://weixin.qq.com/q/sandbox-doctor_%d", demo.Doctors[0].ID) {
		t.Fatalf("kept QR URL: %q", url)
	}
}
