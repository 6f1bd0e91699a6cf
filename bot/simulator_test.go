package bot

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

func simSay(t *testing.T, h http.Handler, remote, body string) (int, map[string]any) {
	t.Helper()
	rec := postJSON(t, h, "/sim/say", remote, body)
	var out map[string]any
	json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

// The page's messages go to /wechat as WeChat sends them: with an AES key
// set (where /wechat takes only encrypted messages) they are encrypted and
// answered; the page and its API are for this machine only.
func TestSimulatorSpeaksThroughTheWebhook(t *testing.T) {
	srv, _ := newServer(t, map[string]string{"JIAYI_WECHAT_AES_KEY": "jiayiTestKeyJiayiTestKeyJiayiTestKey0123456"}, Options{})
	h := srv.Handler()
	code, out := simSay(t, h, local, `{"openid": "o_web_safe", "kind": "follow"}`)
	if code != 200 || !strings.Contains(fmt.Sprint(out["reply"]), "欢迎关注") {
		t.Fatalf("follow: %d %v", code, out)
	}
	if _, err := time.Parse(time.RFC3339, fmt.Sprint(out["at"])); err != nil {
		t.Fatalf("no sandbox time with the reply: %v", out)
	}
	code, out = simSay(t, h, local, `{"openid": "o_web_safe", "kind": "voice", "text": "帮助"}`)
	if code != 200 || !strings.Contains(fmt.Sprint(out["reply"]), "帮助 —— 再看一次") {
		t.Fatalf("a voice message heard as 帮助: %d %v", code, out)
	}
	code, out = simSay(t, h, local, `{"openid": "o_web_safe", "kind": "click", "text": "服务包"}`)
	first := fmt.Sprint(out["reply"])
	if code != 200 || !strings.Contains(first, "回复数字查看服务内容") {
		t.Fatalf("the menu's 服务包: %d %v", code, out)
	}
	// A second tap within the same second is a new event, answered for
	// itself, not taken as WeChat retrying the first.
	code, out = simSay(t, h, local, `{"openid": "o_web_safe", "kind": "click", "text": "帮助"}`)
	if second := fmt.Sprint(out["reply"]); code != 200 || second == first || !strings.Contains(second, "服务包") {
		t.Fatalf("the menu's 能办什么 right after 服务包: %d %v", code, out)
	}
	for body, want := range map[string]int{
		`{"openid": "o_web<x>", "kind": "text", "text": "帮助"}`: http.StatusBadRequest, // not an openid
		`{"openid": "o_web_safe", "kind": "image"}`:            http.StatusBadRequest,
		`not json`: http.StatusBadRequest,
	} {
		if code, out := simSay(t, h, local, body); code != want {
			t.Errorf("%s: %d %v, want %d", body, code, out, want)
		}
	}
	if code, _ := simSay(t, h, "10.0.0.8:4000", `{"openid": "o_web_safe", "kind": "text", "text": "帮助"}`); code != http.StatusNotFound {
		t.Fatalf("/sim/say from another host: %d", code)
	}
	for _, route := range []string{"/sim", "/sim/setup", "/sim/assets/sim.js"} {
		if rec := get(t, h, route, "10.0.0.8:4000"); rec.Code != http.StatusNotFound {
			t.Fatalf("%s from another host: %d", route, rec.Code)
		}
		if rec := get(t, h, route, local); rec.Code != http.StatusOK {
			t.Fatalf("%s: %d", route, rec.Code)
		}
	}
	var setup, again, other struct {
		Menu     []flows.MenuButton
		Instance string
	}
	json.Unmarshal(get(t, h, "/sim/setup", local).Body.Bytes(), &setup)
	json.Unmarshal(get(t, h, "/sim/setup", local).Body.Bytes(), &again)
	fresh, _ := newServer(t, nil, Options{}) // another database: the page's people are not its
	json.Unmarshal(get(t, fresh.Handler(), "/sim/setup", local).Body.Bytes(), &other)
	if setup.Instance == "" || setup.Instance != again.Instance || other.Instance == setup.Instance {
		t.Fatalf("instances: %q %q, a fresh database %q", setup.Instance, again.Instance, other.Instance)
	}
	if menu, _ := flows.Menu(); len(setup.Menu) != len(menu) || setup.Menu[0].Name != menu[0].Name {
		t.Fatalf("the page's menu %+v is not templates/menu.yaml's", setup.Menu)
	}
}

// The clock jumps to the next solar term and the next seasonal reminder day,
// and says which.
func TestClockJumpsToTheNextSolarTermAndReminder(t *testing.T) {
	srv, _ := newServer(t, nil, Options{})
	h := srv.Handler()
	moveTo := func(body string) (time.Time, string) {
		t.Helper()
		rec := postJSON(t, h, "/sandbox/clock", local, body)
		var v struct{ Now, Next string }
		json.Unmarshal(rec.Body.Bytes(), &v)
		at, err := time.Parse(time.RFC3339, v.Now)
		if rec.Code != 200 || err != nil {
			t.Fatalf("%s: %d %s", body, rec.Code, rec.Body)
		}
		return at, v.Next
	}
	before := srv.clock.Now()
	at, term := moveTo(`{"next": "solar_term"}`)
	day, err := flows.SolarTerm(at.In(flows.Shanghai).Year(), term)
	if err != nil || !at.Equal(day.Add(8*time.Hour)) || !at.After(before) || at.Sub(before) > 16*24*time.Hour {
		t.Fatalf("next solar term: %s %q (%v), from %s", at, term, err, before)
	}
	at, names := moveTo(`{"next": "seasonal"}`)
	entries, _ := flows.SeasonalCalendar()
	for _, name := range strings.Split(names, "、") {
		found := false
		for _, e := range flows.ForRegion(entries, "national") {
			if d, _ := e.Day(at.In(flows.Shanghai).Year()); e.Name == name && d.Add(8*time.Hour).Equal(at) {
				found = true
			}
		}
		if !found {
			t.Fatalf("next seasonal: %s names %q, which is not due then", at, names)
		}
	}
	rec := postJSON(t, h, "/sandbox/clock", local, `{"next": "新年"}`)
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("next 新年: %d", rec.Code)
	}
}

// TestSimulatorInABrowser is the newcomer's tour in a real browser: a new
// resident and a demo doctor side by side; the resident signs, and the
// doctor's card arrives without the doctor writing; the doctor confirms,
// the resident books, the clock jumps to the day before the visit and the
// reminder arrives. With JIAYI_SCREENSHOTS=DIR it also saves sim.png
// there (the README's picture: JIAYI_SCREENSHOTS=docs/screenshots).
func TestSimulatorInABrowser(t *testing.T) {
	chromium(t)
	srv, base := live(t, map[string]string{}, Options{})
	var demo struct {
		Doctors []struct {
			ID   int64
			Name string
		}
	}
	json.Unmarshal(get(t, srv.Handler(), "/sandbox/demo", local).Body.Bytes(), &demo)

	ctx := browse(t)
	run := runner(t, ctx)
	js := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	textIn := func(phone string) string {
		t.Helper()
		text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector(`+js(phone)+`).innerText`))
		if err != nil {
			t.Fatalf("read %s: %v", phone, err)
		}
		return text
	}
	// waitFor waits until the phone shows want in an element matching sel.
	waitFor := func(phone, sel, want string) {
		t.Helper()
		step, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		cond := `[...document.querySelectorAll(` + js(phone+" "+sel) + `)].some(e => e.innerText.includes(` + js(want) + `))`
		if _, err := chromedp.Run(step, chromedp.Poll[bool](cond)); err != nil {
			t.Fatalf("%s never showed %q in %s: %v\n%s", phone, want, sel, err, textIn(phone))
		}
	}
	mine := func(phone string) int {
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+js(phone+" .row.me")+`).length`))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// say types into a phone and waits for the bot's answer to it: the first
	// reply after the message, whether it came back at once or later as a
	// customer-service message (a slow machine's late reply).
	say := func(phone, text string) string {
		t.Helper()
		n := mine(phone)
		run("say "+text+" in "+phone,
			chromedp.SendKeys(chromedp.CSS(phone+" .input input"), text),
			chromedp.Click(chromedp.CSS(phone+" .input .send")))
		step, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		last, err := chromedp.Run(step, chromedp.Poll[string](`(() => {
			const rows = [...document.querySelectorAll(`+js(phone+" .row")+`)];
			const sent = rows.filter(r => r.classList.contains("me"))[`+fmt.Sprint(n)+`];
			if (!sent) return null;
			const reply = rows.slice(rows.indexOf(sent) + 1).find(r => r.classList.contains("bot"));
			return reply ? reply.innerText : null; })()`))
		if err != nil {
			t.Fatalf("no answer to %q in %s: %v\n%s", text, phone, err, textIn(phone))
		}
		return last
	}

	run("open the simulator", chromedp.Navigate(base+"/sim"))
	resident := ""
	waitFor("main", ".phone .row.bot", "欢迎关注") // a new resident follows at once
	openID, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("section.phone").dataset.openid`))
	if err != nil || !strings.HasPrefix(openID, "o_web_") {
		t.Fatalf("the first phone: %q %v", openID, err)
	}
	resident = `section.phone[data-openid="` + openID + `"]`

	doctor := `section.phone[data-openid="o_web_doctor_` + fmt.Sprint(demo.Doctors[0].ID) + `"]`
	run("add the demo doctor",
		chromedp.Evaluate[chromedp.Void](`(() => { const add = document.getElementById("add");
			add.value = "doctor:`+fmt.Sprint(demo.Doctors[0].ID)+`"; add.dispatchEvent(new Event("change")); })()`))
	waitFor(doctor, ".row.bot", "绑定成功") // the page sent the doctor's binding code for them

	// The menu: 签约 opens its sub-buttons; 服务包 answers with the packages.
	run("tap the menu",
		chromedp.Click(chromedp.CSS(resident+" .to-menu")),
		chromedp.Click(chromedp.Search(`//section[@data-openid="`+openID+`"]//button[@class="top" and starts-with(., "签约")]`)),
		chromedp.Click(chromedp.Search(`//section[@data-openid="`+openID+`"]//div[@class="sub"]/button[text()="服务包"]`)))
	waitFor(resident, ".sys", "点了菜单“服务包”")
	waitFor(resident, ".row.bot", "服务包")
	run("back to the keyboard", chromedp.Click(chromedp.CSS(resident+" .to-keyboard")))

	for _, s := range []string{"签约", "1", "王秀英", "同意", residentID, residentPhone, "1", "0", "1", "0"} {
		say(resident, s)
	}
	number := regexp.MustCompile(`QY\d{10}`).FindString(say(resident, "同意"))
	if number == "" {
		t.Fatalf("no contract number:\n%s", textIn(resident))
	}
	// The doctor wrote nothing since binding: the card comes by itself.
	waitFor(doctor, ".card.template", number)
	waitFor(doctor, ".card.template .card-title", "签约申请通知")
	if reply := say(doctor, "确认 "+number); !strings.Contains(reply, number) {
		t.Fatalf("the doctor's confirmation: %s", reply)
	}
	waitFor(resident, ".card.template .card-title", "签约成功通知")

	// Speaking works as typing does: 预约 said aloud.
	run("switch to voice", chromedp.Click(chromedp.CSS(resident+" .input .voice")))
	if reply := say(resident, "预约"); !strings.Contains(reply, "1") {
		t.Fatalf("预约 by voice: %s", reply)
	}
	waitFor(resident, ".row.me .heard", "预约")
	run("switch to typing", chromedp.Click(chromedp.CSS(resident+" .input .voice")))
	for _, s := range []string{"1", "1", "2", "上午", "1"} {
		say(resident, s)
	}
	if reply := say(resident, "确认"); !strings.Contains(reply, "预约成功") {
		t.Fatalf("book: %s\n%s", reply, textIn(resident))
	}
	waitFor(doctor, ".card.template .card-title", "新预约通知")

	// The day before the visit: the reminder arrives on the resident's phone.
	var due time.Time
	raw := storagetest.SQLAt(t, srv.Config.DatabaseURL)
	if err := raw.Get(&due, raw.Rebind(`SELECT due_at FROM outbox WHERE kind = 'appointment_reminder' AND recipient = ? ORDER BY due_at LIMIT 1`), openID); err != nil {
		t.Fatalf("no reminder waits: %v", err)
	}
	to := due.Add(time.Minute).In(flows.Shanghai)
	run("set the clock to the reminder's minute",
		chromedp.Evaluate[chromedp.Void](`document.getElementById("clock-to").value = `+js(to.Format("2006-01-02T15:04"))),
		chromedp.Click(chromedp.CSS(`button[data-to]`)))
	waitFor(resident, ".card.template .card-title", "就诊提醒")
	waitFor("header", "#now", fmt.Sprintf("%d月%d日", to.Month(), to.Day()))
	waitFor("header", "#now", to.Format("15:04")) // the page shows the moved clock

	screenshot(t, ctx, "sim.png")

	// A reload keeps both phones and their chats, and shows no push twice.
	run("reload", chromedp.Reload())
	waitFor(resident, ".row.bot", "预约成功")
	waitFor(doctor, ".card.template .card-title", "新预约通知")
	time.Sleep(1500 * time.Millisecond) // a poll or two after the reload
	cards, err := chromedp.Run(ctx, chromedp.Evaluate[int](`[...document.querySelectorAll(`+js(resident+" .card-title")+`)].filter(e => e.innerText === "就诊提醒").length`))
	if err != nil || cards != 1 {
		t.Fatalf("after a reload the reminder shows %d times (%v)\n%s", cards, err, textIn(resident))
	}
}

// The simulator's signed resident is signed already: 我的签约 shows the
// contract, and booking starts at once.
func TestSimulatorSignedResident(t *testing.T) {
	srv, _ := newServer(t, nil, Options{})
	h := srv.Handler()
	post := func(remote string) (int, map[string]string) {
		rec := postJSON(t, h, "/sim/signed", remote, `{}`)
		var out map[string]string
		json.Unmarshal(rec.Body.Bytes(), &out)
		return rec.Code, out
	}
	if code, _ := post("10.0.0.8:4000"); code != http.StatusNotFound {
		t.Fatalf("from another host: %d", code)
	}
	code, made := post(local)
	if code != 200 || made["number"] == "" || !validOpenID(made["openid"]) {
		t.Fatalf("signed resident: %d %v", code, made)
	}
	say := func(kind, text string) string {
		t.Helper()
		b, _ := json.Marshal(map[string]string{"openid": made["openid"], "kind": kind, "text": text})
		code, out := simSay(t, h, local, string(b))
		if code != 200 {
			t.Fatalf("%s: %d %v", text, code, out)
		}
		return fmt.Sprint(out["reply"])
	}
	say("follow", "")
	if reply := say("text", "我的签约"); !strings.Contains(reply, made["number"]) || !strings.Contains(reply, made["name"]) {
		t.Fatalf("我的签约: %s", reply)
	}
	if reply := say("text", "预约"); !strings.Contains(reply, made["name"]) {
		t.Fatalf("预约: %s", reply)
	}
	if _, again := post(local); again["openid"] == made["openid"] {
		t.Fatal("a second signed resident is the first again")
	}
}

// The sandbox's routes are for a person on this machine: a page on another
// site (cross-site, a non-JSON post, a rebound DNS name) and anything
// relayed by a proxy are refused, and nothing runs.
func TestSandboxRoutesRefuseWhatComesFromElsewhere(t *testing.T) {
	srv, _ := newServer(t, nil, Options{})
	h := srv.Handler()
	raw := storagetest.SQLAt(t, srv.Config.DatabaseURL)
	for name, tc := range map[string]struct {
		host, contentType, header, value string
		want                             int
	}{
		"rebound DNS name":      {"evil.example:8080", "application/json", "", "", http.StatusNotFound},
		"through a proxy":       {"127.0.0.1:8080", "application/json", "X-Forwarded-For", "203.0.113.9", http.StatusNotFound},
		"Forwarded":             {"localhost:8080", "application/json", "Forwarded", "for=203.0.113.9", http.StatusNotFound},
		"nginx's X-Real-IP":     {"127.0.0.1:8080", "application/json", "X-Real-IP", "203.0.113.9", http.StatusNotFound},
		"Via":                   {"127.0.0.1:8080", "application/json", "Via", "1.1 proxy", http.StatusNotFound},
		"a form from a page":    {"localhost:8080", "text/plain", "", "", http.StatusUnsupportedMediaType},
		"another site's script": {"localhost:8080", "application/json", "Sec-Fetch-Site", "cross-site", http.StatusForbidden},
		"this page":             {"localhost:8080", "application/json", "Sec-Fetch-Site", "same-origin", http.StatusOK},
		"IPv6 loopback":         {"[::1]:8080", "application/json", "", "", http.StatusOK},
	} {
		openID := fmt.Sprintf("o_web_from_%x", sha256.Sum256([]byte(name)))[:40]
		req := httptest.NewRequest(http.MethodPost, "/sim/say", strings.NewReader(`{"openid": "`+openID+`", "kind": "text", "text": "帮助"}`))
		req.RemoteAddr, req.Host = local, tc.host
		req.Header.Set("Content-Type", tc.contentType)
		if tc.header != "" {
			req.Header.Set(tc.header, tc.value)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("%s: %d, want %d", name, rec.Code, tc.want)
		}
		var seen int
		raw.Get(&seen, `SELECT COUNT(*) FROM wechat_users WHERE openid = ?`, openID)
		if (seen == 1) != (tc.want == http.StatusOK) {
			t.Errorf("%s: the bot saw the message %d times", name, seen)
		}
	}
	if rec := get(t, h, "/sandbox/demo", local); rec.Code != http.StatusOK {
		t.Fatalf("/sandbox/demo from this machine: %d", rec.Code)
	}
}

func TestBrowserAddr(t *testing.T) {
	for in, want := range map[string]string{"[::]:8080": "localhost:8080", "0.0.0.0:80": "localhost:80",
		"127.0.0.1:18080": "127.0.0.1:18080", "[::1]:9000": "[::1]:9000", "192.168.1.20:8080": ""} {
		addr, _ := net.ResolveTCPAddr("tcp", in)
		if got, ok := browserAddr(addr); got != want || ok != (want != "") {
			t.Errorf("%s: %q %v, want %q", in, got, ok, want)
		}
	}
}

// /sandbox/outbox names the start whose record it lists, so a page that
// counted what it showed starts again after a restart.
func TestOutboxNamesTheStart(t *testing.T) {
	first, _ := newServer(t, nil, Options{})
	second, _ := newServer(t, nil, Options{})
	a := get(t, first.Handler(), "/sandbox/outbox?to=o_x", local).Header().Get("X-Sandbox-Boot")
	b := get(t, first.Handler(), "/sandbox/outbox?to=o_x", local).Header().Get("X-Sandbox-Boot")
	c := get(t, second.Handler(), "/sandbox/outbox?to=o_x", local).Header().Get("X-Sandbox-Boot")
	if a == "" || a != b || a == c {
		t.Fatalf("boots: %q %q, another start %q", a, b, c)
	}
}
