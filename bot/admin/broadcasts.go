package admin

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
)

// Broadcasts (群发): admins compose a health tip, choose who it is for, see
// how many it reaches and how much of their monthly allowance is used,
// preview it on a bound doctor's phone, and send it now or later.

// broadcastRequest is a tip as a script sends it. Unknown fields are
// refused: a misspelt "segment" must not widen a tip to everyone.
type broadcastRequest struct {
	Title     string            `json:"title"`
	Text      string            `json:"text"`
	Segment   flows.SegmentSpec `json:"segment"`
	At        string            `json:"at"` // RFC 3339; empty: now
	PreviewTo string            `json:"preview_to"`
	Article   *struct {
		ID        int64   `json:"id"`    // an article sent or previewed before, reused (its cover too)
		Cover     []byte  `json:"cover"` // base64 in JSON
		CoverName string  `json:"cover_name"`
		SourceURL *string `json:"source_url"` // absent with an id: the article's own
	} `json:"article"` // null: a text
}

func (r broadcastRequest) spec() (flows.BroadcastSpec, error) {
	b := flows.BroadcastSpec{Title: r.Title, Text: r.Text, Segment: r.Segment}
	if r.Article != nil {
		b.Article = &flows.ArticleSpec{ID: r.Article.ID, Cover: r.Article.Cover, CoverName: cmp.Or(r.Article.CoverName, "cover.jpg"),
			KeepSource: r.Article.SourceURL == nil}
		if r.Article.SourceURL != nil {
			b.Article.SourceURL = *r.Article.SourceURL
		}
	}
	if r.At != "" {
		at, err := time.Parse(time.RFC3339, r.At)
		if err != nil {
			return b, &flows.Refusal{Reason: "at must be a time in RFC 3339, e.g. 2026-12-05T09:00:00+08:00"}
		}
		b.At = at
	}
	return b, nil
}

func readBroadcast(c *gin.Context) (broadcastRequest, error) {
	var r broadcastRequest
	dec := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, 4<<20)) // a cover of 2 MB in base64
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, &flows.Refusal{Reason: "the body must be JSON with title, text, segment (groups, communities, packages, status, teams, min_age, max_age), at, preview_to and article (cover in base64, cover_name, source_url): " + err.Error()}
	}
	return r, nil
}

// createBroadcast sends a tip, or with preview_to only a preview.
func (a *API) createBroadcast(c *gin.Context) {
	ctx, p := c.Request.Context(), caller(c)
	r, err := readBroadcast(c)
	var spec flows.BroadcastSpec
	if err == nil {
		spec, err = r.spec()
	}
	if err == nil && spec.Article != nil {
		// Saved first, so its ID can be given back: a send after a preview
		// names it and WeChat gets the article once.
		spec.Article.ID, err = flows.SaveArticle(ctx, a.DB, p.Scope, spec, p.Name)
		spec.Article.Cover = nil
	}
	if err != nil {
		a.fail(c, err)
		return
	}
	answer := gin.H{}
	if spec.Article != nil {
		answer["article"] = spec.Article.ID
	}
	if r.PreviewTo != "" {
		if err := flows.PreviewBroadcast(ctx, a.DB, p.Scope, spec, r.PreviewTo, p.Name, a.now()); err != nil {
			a.fail(c, err)
			return
		}
		answer["preview_to"] = r.PreviewTo
		c.JSON(http.StatusAccepted, answer)
		return
	}
	id, use, err := flows.SendBroadcast(ctx, a.DB, a.Sealer, p.Scope, spec, p.Name, a.now())
	if err != nil {
		a.fail(c, err)
		return
	}
	answer["id"], answer["audience"], answer["over_limit"] = id, use.Total, use.OverLimit()
	c.JSON(http.StatusCreated, answer)
}

// broadcastAudience answers how many a tip would reach, before it is sent.
func (a *API) broadcastAudience(c *gin.Context) {
	r, err := readBroadcast(c)
	var spec flows.BroadcastSpec
	if err == nil {
		spec, err = r.spec()
	}
	var use storage.MassUse
	if err == nil {
		use, err = flows.BroadcastAudience(c.Request.Context(), a.DB, a.Sealer, caller(c).Scope, spec, a.now())
	}
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"audience": use.Total, "over_limit": use.OverLimit(), "used_this_month": use.Used})
}

func (a *API) broadcasts(c *gin.Context) {
	if pg, ok := page(c); ok {
		items, total, err := a.DB.Broadcasts(c.Request.Context(), caller(c).Scope, pg, a.now())
		list(c, items, total, err, a)
	}
}

func (a *API) broadcast(c *gin.Context) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		a.fail(c, storage.ErrNotFound)
		return
	}
	b, err := a.DB.BroadcastByID(c.Request.Context(), caller(c).Scope, id, a.now())
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, b)
}

func (a *API) cancelBroadcast(c *gin.Context) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		a.fail(c, storage.ErrNotFound)
		return
	}
	n, err := a.DB.CancelBroadcast(c.Request.Context(), caller(c).Scope, id, caller(c).Name)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"withdrawn": n})
}

// The console's pages.

// composed is the compose form as the page shows it back.
type composed struct {
	Title, Text, At      string
	Groups, Communities  []string
	Packages, Statuses   []string
	MinAge, MaxAge       string
	PreviewTo            string
	Kind, SourceURL      string // text or article; an article's source link
	ArticleID            int64  // the article saved from this form, its cover kept
	Use                  *storage.MassUse
	UsedShares           []usedShare
	Problem, Flash, From string
}

type usedShare struct {
	Used, People int
	Percent      string
}

func (a *API) broadcastsPage(c *gin.Context) {
	pg := pageOf(c)
	rows, total, err := a.DB.Broadcasts(c.Request.Context(), caller(c).Scope, pg, a.now())
	if err != nil {
		a.pageFail(c, err)
		return
	}
	a.render(c, http.StatusOK, "broadcasts", gin.H{"Rows": rows, "Pager": pager(c, pg, total)})
}

// composePage shows an empty form, or one filled from a calendar entry.
func (a *API) composePage(c *gin.Context) {
	f := composed{Statuses: []string{"active"}}
	if code := c.Query("tip"); code != "" {
		if e, ok := a.tip(c, code); ok {
			f.Title, f.Text, f.Groups, f.From = e.Name, e.Text, e.Groups, e.Name
		}
	}
	a.renderCompose(c, http.StatusOK, f)
}

// tip is a calendar entry of this region, the library tips start from.
func (a *API) tip(c *gin.Context, code string) (flows.SeasonalEntry, bool) {
	entries, err := a.tips(c)
	if err != nil {
		return flows.SeasonalEntry{}, false
	}
	i := slices.IndexFunc(entries, func(e flows.SeasonalEntry) bool { return e.Code == code })
	if i < 0 {
		return flows.SeasonalEntry{}, false
	}
	return entries[i], true
}

// tips are the calendar's entries as the caller's institution has them,
// switched-off ones included: a tip not sent on its day may still be sent
// by hand.
func (a *API) tips(c *gin.Context) ([]flows.SeasonalEntry, error) {
	cal, err := flows.LoadCalendar(c.Request.Context(), a.DB)
	if err != nil {
		return nil, err
	}
	var out []flows.SeasonalEntry
	for _, e := range cal.Entries {
		if _, ok := cal.Entry(e.Code, caller(c).Scope.Institution); ok {
			e, _ = cal.As(e, caller(c).Scope.Institution)
			out = append(out, e)
		}
	}
	return out, nil
}

func (a *API) renderCompose(c *gin.Context, status int, f composed) {
	ctx, p := c.Request.Context(), caller(c)
	communities, _, err := a.DB.ListCommunities(ctx, p.Scope, storage.Page{Limit: 500})
	if err != nil {
		a.pageFail(c, err)
		return
	}
	catalog, err := a.DB.Catalog(ctx)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	doctors, _, err := a.DB.ListDoctors(ctx, p.Scope, storage.Page{Limit: 500})
	if err != nil {
		a.pageFail(c, err)
		return
	}
	tips, err := a.tips(c)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	var bound []storage.DoctorRow
	for _, d := range doctors {
		if d.Bound {
			bound = append(bound, d)
		}
	}
	openIDs, err := a.boundOpenIDs(c, bound)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	names := map[string]bool{}
	var uniq []storage.CommunityRow
	for _, m := range communities {
		if !names[m.Name] {
			names[m.Name] = true
			uniq = append(uniq, m)
		}
	}
	a.render(c, status, "compose", gin.H{"Form": f, "Groups": profile.Words().PriorityGroups, "Communities": uniq,
		"Packages": catalog.Packages, "Statuses": []string{"active", "pending", "expired"}, "Doctors": openIDs, "Tips": tips,
		"Problem": f.Problem, "Flash": f.Flash, "MaxTitle": flows.MaxTipTitle, "MaxText": flows.MaxTipText,
		"MaxArticle": flows.MaxArticleText, "MaxCover": flows.MaxCover >> 20})
}

type boundDoctor struct{ Name, OpenID string }

func (a *API) boundOpenIDs(c *gin.Context, doctors []storage.DoctorRow) ([]boundDoctor, error) {
	var out []boundDoctor
	for _, d := range doctors {
		openID, bound, err := a.DB.DoctorOpenID(c.Request.Context(), d.ID)
		if err != nil {
			return nil, err
		}
		if bound {
			out = append(out, boundDoctor{Name: d.Name, OpenID: openID})
		}
	}
	return out, nil
}

// composeForm reads the compose form.
func (a *API) composeForm(c *gin.Context) (composed, flows.BroadcastSpec, error) {
	f := composed{Title: c.PostForm("title"), Text: c.PostForm("text"), At: c.PostForm("at"),
		Groups: c.PostFormArray("group"), Communities: c.PostFormArray("community"), Packages: c.PostFormArray("package"),
		Statuses: c.PostFormArray("status"), MinAge: c.PostForm("min_age"), MaxAge: c.PostForm("max_age"), PreviewTo: c.PostForm("preview_to")}
	spec := flows.BroadcastSpec{Title: f.Title, Text: f.Text, Segment: flows.SegmentSpec{Groups: f.Groups,
		Communities: f.Communities, Packages: f.Packages, Status: f.Statuses}}
	f.Kind, f.SourceURL, f.ArticleID = c.PostForm("kind"), c.PostForm("source_url"), formID(c.PostForm("article"))
	var err error
	if f.Kind == "article" {
		spec.Article = &flows.ArticleSpec{ID: f.ArticleID, SourceURL: f.SourceURL}
		if file, err := c.FormFile("cover"); err == nil {
			if file.Size > flows.MaxCover {
				return f, spec, &flows.Refusal{Reason: fmt.Sprintf("封面图片最大 %d MB。", flows.MaxCover>>20)}
			}
			opened, err := file.Open()
			if err != nil {
				return f, spec, err
			}
			defer opened.Close()
			if spec.Article.Cover, err = io.ReadAll(io.LimitReader(opened, flows.MaxCover+1)); err != nil {
				return f, spec, err
			}
			spec.Article.CoverName = filepath.Base(file.Filename)
		}
	}
	if spec.Segment.MinAge, err = formInt(f.MinAge); err != nil {
		return f, spec, &flows.Refusal{Reason: "年龄请填写数字。"}
	}
	if spec.Segment.MaxAge, err = formInt(f.MaxAge); err != nil {
		return f, spec, &flows.Refusal{Reason: "年龄请填写数字。"}
	}
	if f.At != "" {
		if spec.At, err = time.ParseInLocation("2006-01-02T15:04", f.At, flows.Shanghai); err != nil {
			return f, spec, &flows.Refusal{Reason: "发送时间格式不对。"}
		}
	}
	return f, spec, nil
}

// composeAction counts the audience, sends a preview, or sends the tip,
// as the button pressed says.
func (a *API) composeAction(c *gin.Context) {
	ctx, p := c.Request.Context(), caller(c)
	f, spec, err := a.composeForm(c)
	if err == nil && spec.Article != nil && (len(spec.Article.Cover) > 0 || spec.Article.ID != 0) && c.PostForm("action") != "send" {
		// Kept, so the cover need not be chosen again after counting or a preview.
		if spec.Article.ID, err = flows.SaveArticle(ctx, a.DB, p.Scope, spec, p.Name); err == nil {
			f.ArticleID, spec.Article.Cover = spec.Article.ID, nil
		}
	}
	if err == nil {
		var use storage.MassUse
		use, err = flows.BroadcastAudience(ctx, a.DB, a.Sealer, p.Scope, spec, a.now())
		f.Use, f.UsedShares = &use, shares(use)
	}
	if err == nil {
		switch c.PostForm("action") {
		case "preview":
			if err = flows.PreviewBroadcast(ctx, a.DB, p.Scope, spec, f.PreviewTo, p.Name, a.now()); err == nil {
				f.Flash = "预览已发出，请在医生的微信上查看。"
			}
		case "send":
			var id int64
			var use storage.MassUse
			if id, use, err = flows.SendBroadcast(ctx, a.DB, a.Sealer, p.Scope, spec, p.Name, a.now()); err == nil {
				message := fmt.Sprintf("已提交群发“%s”，共 %d 人。", strings.TrimSpace(spec.Title), use.Total-use.OverLimit())
				if use.OverLimit() > 0 {
					message += fmt.Sprintf(" 另有 %d 人本月已收满 %d 条群发，没有发给他们。", use.OverLimit(), storage.MassPerMonth)
				}
				done(c, "/admin/broadcasts/"+strconv.FormatInt(id, 10), message)
				return
			}
		}
	}
	var refusal *flows.Refusal
	if errors.As(err, &refusal) {
		f.Problem = refusal.Reason
	} else if err != nil {
		a.pageFail(c, err)
		return
	}
	a.renderCompose(c, http.StatusOK, f)
}

// shares says what part of an audience has used how many of the month's
// mass messages.
func shares(u storage.MassUse) []usedShare {
	var out []usedShare
	for used, n := range u.Used {
		if n > 0 {
			out = append(out, usedShare{Used: used, People: n, Percent: strconv.Itoa(n*100/max(u.Total, 1)) + "%"})
		}
	}
	return out
}

func (a *API) broadcastPage(c *gin.Context) {
	ctx, p := c.Request.Context(), caller(c)
	id := formID(c.Param("id"))
	b, err := a.DB.BroadcastByID(ctx, p.Scope, id, a.now())
	if err != nil {
		a.pageFail(c, err)
		return
	}
	over, _, err := a.DB.BroadcastOverLimit(ctx, p.Scope, id, storage.Page{Limit: 200})
	if err != nil {
		a.pageFail(c, err)
		return
	}
	var seg flows.SegmentSpec
	_ = json.NewDecoder(bytes.NewReader([]byte(b.Segment))).Decode(&seg)
	var digest struct{ Digest string } // the seasonal digest's: tips waiting, not a segment
	_ = json.Unmarshal([]byte(b.Segment), &digest)
	a.render(c, http.StatusOK, "broadcast", gin.H{"B": b, "Segment": seg, "Digest": digest.Digest, "Over": over, "PerMonth": storage.MassPerMonth,
		"Groups": profile.Words().PriorityGroups})
}

func (a *API) cancelBroadcastPage(c *gin.Context) {
	id := formID(c.Param("id"))
	back := "/admin/broadcasts/" + strconv.FormatInt(id, 10)
	n, err := a.DB.CancelBroadcast(c.Request.Context(), caller(c).Scope, id, caller(c).Name)
	if errors.Is(err, storage.ErrNotFound) {
		refused(c, back, "这条群发已撤回，或不在您的权限范围内。")
		return
	}
	if err != nil {
		a.pageFail(c, err)
		return
	}
	done(c, back, fmt.Sprintf("已撤回，%d 人不会收到。", n))
}
