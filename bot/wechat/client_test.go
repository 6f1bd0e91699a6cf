package wechat

import (
	"bytes"
	"context"
	"fmt"
	"image"
	pngenc "image/png"
	"testing"

	"github.com/jiayi-health/jiayi/bot/wechat/sandbox"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// Two sandboxes on one shared Redis (or a sandbox restarted) each have a
// stand-in of their own: a token one stand-in issued is never handed to the
// other's client, whose pushes would otherwise fail until it expired.
func TestSandboxesSharingRedisKeepTheirOwnTokens(t *testing.T) {
	storagetest.ForEachRedis(t, func(t *testing.T, r *storage.Redis) {
		UseTransport(sandbox.Transport{})
		ctx := context.Background()
		first := sandbox.New()
		if err := NewClient(Account{AppID: "wxsandbox", Secret: first.Secret()}, r.Client, r.Prefix).SendText(ctx, "o_a", "你好"); err != nil {
			t.Fatal(err)
		}
		first.Close() // the first process is gone; its token is still in Redis
		second := sandbox.New()
		t.Cleanup(second.Close)
		if err := NewClient(Account{AppID: "wxsandbox", Secret: second.Secret()}, r.Client, r.Prefix).SendText(ctx, "o_a", "你好"); err != nil {
			t.Fatalf("the restarted sandbox cannot send: %v", err)
		}
		if got := second.Outbox("o_a"); len(got) != 1 {
			t.Fatalf("second stand-in received %d messages", len(got))
		}
	})
}

// A mass message goes to an openid list through the stand-in; sent again
// under the same clientmsgid (a dispatcher that crashed before recording
// it) WeChat names the first job and no one receives it twice. A fifth
// mass message in a month is filtered by WeChat, and the job's results
// come back as MASSSENDJOBFINISH would bring them.
func TestMassSendByOpenIDList(t *testing.T) {
	storagetest.ForEachRedis(t, func(t *testing.T, r *storage.Redis) {
		UseTransport(sandbox.Transport{})
		ctx := context.Background()
		s := sandbox.New()
		t.Cleanup(s.Close)
		jobs := make(chan sandbox.MassJob, 10)
		s.MassFinished = func(j sandbox.MassJob) { jobs <- j }
		c := NewClient(Account{AppID: "wxsandbox", Secret: s.Secret()}, r.Client, r.Prefix)
		first, err := c.MassSend(ctx, []string{"o_a", "o_b"}, MassMessage{Text: "冬季保暖"}, "broadcast:1:1")
		if err != nil || first == "" {
			t.Fatalf("mass send: %q %v", first, err)
		}
		again, err := c.MassSend(ctx, []string{"o_a", "o_b"}, MassMessage{Text: "冬季保暖"}, "broadcast:1:1")
		if err != nil || again != first {
			t.Fatalf("repeat: %q (first %q) %v", again, first, err)
		}
		if got := s.Outbox("o_a"); len(got) != 1 || got[0].Kind != "mass" || got[0].Text != "冬季保暖" {
			t.Fatalf("o_a received %+v", got)
		}
		if j := <-jobs; j.Total != 2 || j.Sent != 2 || j.Filter != 0 {
			t.Fatalf("first job = %+v", j)
		}
		if _, err := c.MassSend(ctx, []string{"o_a"}, MassMessage{Text: "一个人"}, "broadcast:2:1"); ErrCode(err) != 40130 {
			t.Fatalf("a list of one: %v", err)
		}
		for i := 3; i <= 5; i++ { // o_a has had 4 by the end; o_c only 3
			if _, err := c.MassSend(ctx, []string{"o_a", "o_c"}, MassMessage{Text: "提示"}, fmt.Sprintf("broadcast:%d:1", i)); err != nil {
				t.Fatal(err)
			}
			<-jobs
		}
		if _, err := c.MassSend(ctx, []string{"o_a", "o_c"}, MassMessage{Text: "第五条"}, "broadcast:6:1"); err != nil {
			t.Fatal(err)
		}
		if j := <-jobs; j.Total != 2 || j.Sent != 1 || j.Filter != 1 {
			t.Fatalf("o_a's fifth this month was not filtered: %+v", j)
		}
		if err := c.MassPreview(ctx, "o_doctor", MassMessage{Text: "预览"}); err != nil {
			t.Fatal(err)
		}
		if got := s.Outbox("o_doctor"); len(got) != 1 || got[0].Kind != "mass-preview" {
			t.Fatalf("preview: %+v", got)
		}
	})
}

// An article (图文): its cover goes up as a permanent image and the article
// into the draft box, which a preview and a mass message carry by
// media_id. A mass send takes the draft out, as WeChat does, so the next
// send needs a draft of its own, made with the cover already uploaded; a
// draft not sent is deleted. The stand-in refuses a cover that is no image, a
// media_id it never made, and the news-material call WeChat switched off.
func TestMassSendAnArticle(t *testing.T) {
	storagetest.ForEachRedis(t, func(t *testing.T, r *storage.Redis) {
		UseTransport(sandbox.Transport{})
		ctx := context.Background()
		s := sandbox.New()
		t.Cleanup(s.Close)
		c := NewClient(Account{AppID: "wxsandbox", Secret: s.Secret()}, r.Client, r.Prefix)
		var png bytes.Buffer
		if err := pngenc.Encode(&png, image.NewRGBA(image.Rect(0, 0, 90, 50))); err != nil {
			t.Fatal(err)
		}
		a := Article{Title: "冬季防流感", Digest: "打疫苗、勤洗手", HTML: "<p>65岁以上老人请尽早接种流感疫苗。</p><p>勤洗手，常通风。</p>",
			SourceURL: "https://www.nhc.gov.cn/", Cover: png.Bytes(), CoverName: "cover.png"}
		draft, thumb, err := c.UploadArticle(ctx, a)
		if err != nil || draft == "" || thumb == "" {
			t.Fatalf("upload: %q %q %v", draft, thumb, err)
		}
		if err := c.MassPreview(ctx, "o_doctor", MassMessage{NewsMediaID: draft}); err != nil {
			t.Fatal(err)
		}
		if got := s.Outbox("o_doctor"); len(got) != 1 || got[0].Title != "冬季防流感" {
			t.Fatalf("preview: %+v", got)
		}
		if _, err := c.MassSend(ctx, []string{"o_a", "o_b"}, MassMessage{NewsMediaID: draft}, "broadcast:9:1"); err != nil {
			t.Fatal(err)
		}
		got := s.Outbox("o_b")
		if len(got) != 1 || got[0].Kind != "mass" || got[0].Title != "冬季防流感" || got[0].Text != "65岁以上老人请尽早接种流感疫苗。勤洗手，常通风。" {
			t.Fatalf("o_b received %+v", got)
		}
		if _, err := c.MassSend(ctx, []string{"o_a", "o_c"}, MassMessage{NewsMediaID: draft}, "broadcast:9:2"); ErrCode(err) != 40007 {
			t.Fatalf("a draft sent once, sent again: %v", err)
		}
		a.ThumbMediaID, a.Cover = thumb, nil
		again, _, err := c.UploadArticle(ctx, a)
		if err != nil || again == draft {
			t.Fatalf("a second draft: %q %v", again, err)
		}
		if s.Drafts() != 1 {
			t.Fatalf("%d drafts in the box, want the one not sent", s.Drafts())
		}
		if err := c.DeleteDraft(ctx, again); err != nil || s.Drafts() != 0 {
			t.Fatalf("delete the draft: %v, %d left", err, s.Drafts())
		}
		if err := c.DeleteDraft(ctx, again); ErrCode(err) != 40007 {
			t.Fatalf("delete it again: %v", err)
		}
		if up := filterKind(s.Outbox(""), "material"); len(up) != 1 {
			t.Fatalf("the cover went up %d times, want once", len(up))
		}
		a.ThumbMediaID, a.Cover, a.CoverName = "", []byte("not an image at all"), "cover.txt"
		if _, _, err := c.UploadArticle(ctx, a); err == nil {
			t.Fatal("a cover that is no image was taken")
		}
		if _, err := c.MassSend(ctx, []string{"o_a", "o_b"}, MassMessage{NewsMediaID: "made-up"}, "broadcast:10:1"); ErrCode(err) != 40007 {
			t.Fatalf("an unknown media_id: %v", err)
		}
		if _, err := c.material.AddNews(nil); ErrCode(err) != 45106 {
			t.Fatalf("news material: %v", err)
		}
	})
}

func filterKind(ms []sandbox.Message, kind string) []sandbox.Message {
	var out []sandbox.Message
	for _, m := range ms {
		if m.Kind == kind {
			out = append(out, m)
		}
	}
	return out
}
