package bot

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/bot/wechat/sandbox"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// coverPNG is a small cover image.
func coverPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 90, 50))
	img.Set(1, 1, color.RGBA{R: 200, A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// An admin sends an article (图文) with a cover through the API: a preview
// reaches a bound doctor, then the article goes to one community's
// hypertension patients. The cover and the article are uploaded to WeChat
// once for both (each send a draft of its own), each patient (and no one
// else) has it in the sandbox's outbox with its title and words and how to
// stop tips; a community with one patient gets its text as a customer-
// service message; no draft is left in the draft box; and a cover that is
// no image is refused.
func TestAnArticleReachesOneCommunitysHypertensionPatients(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, stack storagetest.Stack) {
		srv, _ := live(t, map[string]string{"JIAYI_DATABASE_URL": stack.DatabaseURL, "JIAYI_REDIS_URL": stack.RedisURL,
			"JIAYI_ADMIN_TOKEN": adminToken}, Options{RedisPrefix: stack.Redis.Prefix})
		h := srv.Handler()
		demo := morningDemo(t, srv)
		east, west := demo.Communities[0], demo.Communities[1]
		bindDoctor(t, srv, demo, "o_ar_doc")
		patients := []string{"o_ar_east_1", "o_ar_east_2"}
		for i, o := range patients {
			signAtDesk(t, srv, o, east.ID, []string{"hypertension"}, i+1)
		}
		signAtDesk(t, srv, "o_ar_west", west.ID, []string{"hypertension"}, 5)

		article := func(cover []byte, extra string) string {
			return fmt.Sprintf(`{"title": "冬季防跌倒", "text": "天冷路滑，老人出门穿防滑鞋。\n家里通道别堆东西，晚上留一盏小夜灯。", %s
				"article": {"cover": %q, "cover_name": "cover.png", "source_url": "https://www.nhc.gov.cn/"},
				"segment": {"groups": ["hypertension"], "communities": [%q]}}`, extra, base64.StdEncoding.EncodeToString(cover), east.Name)
		}
		if code, out := adminJSON(t, h, "POST", "/admin/api/broadcasts", article([]byte("<svg>not a picture</svg>"), "")); code != http.StatusBadRequest ||
			!strings.Contains(fmt.Sprint(out), "JPG 或 PNG") {
			t.Fatalf("a cover that is no image: %d %v", code, out)
		}
		cover := coverPNG(t)
		// A script names the doctor by the ID GET /admin/api/doctors gives.
		code, out := adminJSON(t, h, "POST", "/admin/api/broadcasts", article(cover, fmt.Sprintf(`"preview_to": "doctor:%d",`, demo.Doctors[0].ID)))
		if code != http.StatusAccepted || out["article"] == nil {
			t.Fatalf("preview: %d %v", code, out)
		}
		articleID := out["article"]
		// The send names the article the preview saved; its cover is kept.
		saved := strings.Replace(article(nil, ""), `"cover": ""`, fmt.Sprintf(`"id": %v`, out["article"]), 1)
		code, out = adminJSON(t, h, "POST", "/admin/api/broadcasts", saved)
		if code != http.StatusCreated || out["audience"] != 2.0 {
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
		if state["state"] != "done" || state["sent"] != 2.0 {
			t.Fatalf("result: %v", state)
		}
		for _, o := range patients {
			got := received(srv, o, "mass")
			if len(got) != 1 || got[0].Title != "冬季防跌倒" || !strings.Contains(got[0].Text, "天冷路滑，老人出门穿防滑鞋。家里通道别堆东西") ||
				!strings.Contains(got[0].Text, "提醒设置") {
				t.Fatalf("%s received %+v", o, got)
			}
		}
		if got := received(srv, "o_ar_west", "mass"); len(got) != 0 {
			t.Fatalf("a patient of another community received %+v", got)
		}
		if got := received(srv, "o_ar_doc", "mass-preview"); len(got) != 1 || got[0].Title != "冬季防跌倒" {
			t.Fatalf("the doctor's preview: %+v", got)
		}
		if got := received(srv, "", "material"); len(got) != 1 {
			t.Fatalf("the cover went up %d times for a preview and a send, want once", len(got))
		}
		// A community with one patient, who wrote today: the article goes to
		// her as a customer-service message, a mass message needing two.
		chat(t, srv, "o_ar_west", "你好")
		// Naming the article without its link keeps the link: the same article.
		one := strings.Replace(saved, fmt.Sprintf("%q", east.Name), fmt.Sprintf("%q", west.Name), 1)
		one = strings.Replace(one, `, "source_url": "https://www.nhc.gov.cn/"`, "", 1)
		code, out = adminJSON(t, h, "POST", "/admin/api/broadcasts", one)
		if code != http.StatusCreated || out["audience"] != 1.0 || out["article"] != articleID {
			t.Fatalf("send to one: %d %v (article %v)", code, out, articleID)
		}
		for deadline := time.Now().Add(20 * time.Second); len(received(srv, "o_ar_west", "customer-service")) == 0 && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
		}
		if got := received(srv, "o_ar_west", "customer-service"); len(got) != 1 || !strings.Contains(got[0].Text, "冬季防跌倒") ||
			!strings.Contains(got[0].Text, "小夜灯") || !strings.Contains(got[0].Text, "提醒设置") {
			t.Fatalf("the one patient received %+v", got)
		}
		if n := srv.StandIn.Drafts(); n != 0 {
			t.Fatalf("%d drafts left in the draft box", n)
		}
		var shown []sandbox.Message
		json.Unmarshal(get(t, h, "/sandbox/outbox?to="+patients[0], local).Body.Bytes(), &shown)
		if len(shown) == 0 || shown[len(shown)-1].Title != "冬季防跌倒" || !strings.Contains(shown[len(shown)-1].Text, "小夜灯") {
			t.Fatalf("/sandbox/outbox: %+v", shown)
		}
	})
}
