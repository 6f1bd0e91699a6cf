package bot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// In a browser, an admin switches a calendar entry off and adds one of
// their own on the 健康日历 page, then composes an article (图文) with a cover
// on the 群发 page: the cover is kept while the audience is counted and a
// preview goes to a bound doctor, and the article reaches one community's
// hypertension patients with its title.
func TestCalendarAndArticleInABrowser(t *testing.T) {
	chromium(t)
	srv, base := live(t, map[string]string{}, Options{})
	demo := morningDemo(t, srv)
	east := demo.Communities[0]
	bindDoctor(t, srv, demo, "o_cb_doc")
	signAtDesk(t, srv, "o_cb_east_1", east.ID, []string{"hypertension"}, 1)
	signAtDesk(t, srv, "o_cb_east_2", east.ID, []string{"hypertension"}, 2)
	cover := filepath.Join(t.TempDir(), "cover.png")
	if err := os.WriteFile(cover, coverPNG(t), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx := browse(t)
	run := runner(t, ctx)
	textOf := textReader(t, ctx)
	run("sign in", signInSteps(base, demo.Admin.Username, demo.Admin.Password)...)
	run("switch the first entry off",
		chromedp.Navigate(base+"/admin/calendar"),
		chromedp.WaitVisible(chromedp.CSS(`#calendar`)),
		chromedp.Click(chromedp.CSS(`#calendar tbody tr:first-child a`)),
		chromedp.WaitVisible(chromedp.CSS(`#edit-entry`)),
		chromedp.Click(chromedp.CSS(`#edit-entry input[name=send]`)),
		chromedp.Click(chromedp.CSS(`#edit-entry button`)),
		chromedp.WaitVisible(chromedp.Search(`//*[contains(@class, "flash") and contains(., "已保存")]`)),
		chromedp.WaitVisible(chromedp.CSS(`#calendar`)))
	if got := textOf("#calendar tbody tr:first-child"); !strings.Contains(got, "已停发") {
		t.Fatalf("the first entry after switching it off: %q", got)
	}
	run("add an entry",
		chromedp.Click(chromedp.CSS(`#add summary`)),
		chromedp.SendKeys(chromedp.CSS(`#add-entry input[name=name]`), "社区义诊"),
		chromedp.SetValue(chromedp.CSS(`#add-entry input[name=month]`), "3"),
		chromedp.SetValue(chromedp.CSS(`#add-entry input[name=day]`), "15"),
		chromedp.SendKeys(chromedp.CSS(`#add-entry textarea[name=text]`), "3月15日上午卫生院在村委会门口义诊，免费量血压、测血糖。"),
		chromedp.Click(chromedp.CSS(`#add-entry button`)),
		chromedp.WaitVisible(chromedp.Search(`//*[contains(@class, "flash") and contains(., "已加入健康日历")]`)))
	if got := textOf("#calendar"); !strings.Contains(got, "社区义诊") || !strings.Contains(got, "自定") {
		t.Fatalf("the added entry is not listed:\n%s", got)
	}
	run("compose an article",
		chromedp.Navigate(base+"/admin/broadcasts/new"),
		chromedp.WaitVisible(chromedp.CSS(`#compose`)),
		chromedp.Click(chromedp.CSS(`#compose input[name=kind][value=article]`)),
		chromedp.SendKeys(chromedp.CSS(`#compose input[name=title]`), "冬季防跌倒"),
		chromedp.SendKeys(chromedp.CSS(`#compose textarea[name=text]`), "天冷路滑，老人出门穿防滑鞋。"),
		chromedp.SetUploadFiles(chromedp.CSS(`#compose input[name=cover]`), []string{cover}),
		chromedp.Click(chromedp.Search(`//form[@id="compose"]//label[contains(., "高血压患者")]/input`)),
		chromedp.Click(chromedp.Search(`//form[@id="compose"]//label[contains(., "`+east.Name+`")]/input`)),
		chromedp.Click(chromedp.CSS(`#compose button[value=audience]`)),
		chromedp.WaitVisible(chromedp.CSS(`#audience`)))
	if got := textOf("#compose"); !strings.Contains(got, "已上传") {
		t.Fatalf("the cover was not kept after counting:\n%s", got)
	}
	run("preview", chromedp.Click(chromedp.CSS(`#compose button[value=preview]`)),
		chromedp.WaitVisible(chromedp.Search(`//*[contains(@class, "flash") and contains(., "预览已发出")]`)))
	run("send", chromedp.Click(chromedp.CSS(`#compose button[value=send]`)), chromedp.WaitVisible(chromedp.CSS(`#result`)))
	for deadline := time.Now().Add(15 * time.Second); textOf("#state") != "已完成"; time.Sleep(300 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the result never came: %q", textOf("main"))
		}
		run("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#result`)))
	}
	for deadline := time.Now().Add(10 * time.Second); len(received(srv, "o_cb_doc", "mass-preview")) == 0 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if got := received(srv, "o_cb_doc", "mass-preview"); len(got) != 1 || got[0].Title != "冬季防跌倒" {
		t.Fatalf("the doctor's preview: %+v", got)
	}
	for _, o := range []string{"o_cb_east_1", "o_cb_east_2"} {
		if got := received(srv, o, "mass"); len(got) != 1 || got[0].Title != "冬季防跌倒" || !strings.Contains(got[0].Text, "防滑鞋") {
			t.Fatalf("%s received %+v", o, got)
		}
	}
	if got := received(srv, "", "material"); len(got) != 1 {
		t.Fatalf("the cover went up %d times, want once", len(got))
	}
	screenshot(t, ctx, "calendar-article.png")
}
