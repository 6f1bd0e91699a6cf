package flows

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

// Broadcasts: health tips an admin sends to a segment of signed residents
// as WeChat mass messages. The rules of who may be reached live here; the
// delivery is the dispatcher's.

// SegmentSpec is who a broadcast is for, as an admin or a script names
// them: group and package codes as in the profile, community names,
// contract statuses, team IDs and an age band. An empty field means all
// (for statuses: those whose contract is active).
type SegmentSpec struct {
	Groups      []string `json:"groups,omitempty"`
	Communities []string `json:"communities,omitempty"`
	Packages    []string `json:"packages,omitempty"`
	Status      []string `json:"status,omitempty"`
	Teams       []int64  `json:"teams,omitempty"`
	MinAge      int      `json:"min_age,omitempty"`
	MaxAge      int      `json:"max_age,omitempty"`
}

// BroadcastSpec is a health tip to send.
type BroadcastSpec struct {
	Title   string
	Text    string // for an article, its body
	Segment SegmentSpec
	At      time.Time // zero: now
	Article *ArticleSpec
}

// ArticleSpec makes a tip an article (图文): a cover image and an optional
// link to its source, the title and text its own. ID names an article
// written before (the form sent again): kept when nothing changed, its
// cover taken when no new one is given.
type ArticleSpec struct {
	ID        int64
	Cover     []byte
	CoverName string
	SourceURL string
	// KeepSource takes the named article's source link (a script that
	// names an article and no link).
	KeepSource bool
}

// Limits of a tip: a title a phone shows on one line, a text one screen holds.
const (
	MaxTipTitle = 30
	MaxTipText  = 600
	// MaxArticleText is how long an article's body may be (WeChat takes
	// 20,000 characters with its markup).
	MaxArticleText = 10000
	// MaxCover is the largest cover image taken.
	MaxCover = 2 << 20
	// MaxTipAhead is how far ahead a tip may be scheduled.
	MaxTipAhead = 60 * 24 * time.Hour
)

// broadcastStatuses are the contract statuses a segment may name.
var broadcastStatuses = []string{"active", "pending", "expired", "cancelled", "declined"}

func refusal(format string, args ...any) *Refusal {
	return &Refusal{Reason: fmt.Sprintf(format, args...)}
}

// check refuses a tip that cannot go as written.
func (b BroadcastSpec) check(now time.Time) error {
	title, text := strings.TrimSpace(b.Title), strings.TrimSpace(b.Text)
	most := MaxTipText
	if b.Article != nil {
		most = MaxArticleText
	}
	switch {
	case title == "" || text == "":
		return refusal("标题和正文都要填写。")
	case utf8.RuneCountInString(title) > MaxTipTitle:
		return refusal("标题最多 %d 个字。", MaxTipTitle)
	case utf8.RuneCountInString(text) > most:
		return refusal("正文最多 %d 个字，现在有 %d 个。", most, utf8.RuneCountInString(text))
	case strings.ContainsAny(title, "\r\n"):
		return refusal("标题不能换行。")
	case !b.At.IsZero() && b.At.Before(now.Add(-time.Minute)):
		return refusal("发送时间已经过去了。")
	case b.At.After(now.Add(MaxTipAhead)):
		return refusal("发送时间最多定在 %d 天以后。", int(MaxTipAhead.Hours()/24))
	}
	return nil
}

// segment turns what the admin named into storage's segment, refusing a
// code, name or status that names nothing in scope (a typo must not widen
// the audience to everyone).
func segment(ctx context.Context, db *storage.DB, s *storage.Sealer, scope storage.Scope, spec SegmentSpec, now time.Time) (storage.Segment, error) {
	seg := storage.Segment{TeamIDs: spec.Teams, AnyGroup: len(spec.Groups) > 0}
	for _, st := range spec.Status {
		if !slices.Contains(broadcastStatuses, st) {
			return seg, refusal("没有“%s”这种签约状态。", st)
		}
		seg.Statuses = append(seg.Statuses, st)
	}
	for _, code := range spec.Groups {
		var f storage.ResidentFilter
		if !FilterByGroup(&f, s, code, now) {
			return seg, refusal("本地区没有“%s”这个重点人群。", code)
		}
		if f.GroupTag != "" {
			seg.GroupTags = append(seg.GroupTags, f.GroupTag)
		} else {
			seg.GroupBorn = append(seg.GroupBorn, storage.BirthRange{After: f.BornAfter, Until: f.BornUntil})
		}
	}
	for _, name := range spec.Communities {
		found, err := db.CommunitiesNamed(ctx, scope, strings.TrimSpace(name))
		if err != nil {
			return seg, err
		}
		if len(found) == 0 {
			return seg, refusal("没有叫“%s”的社区（村）。", name)
		}
		for _, c := range found {
			seg.CommunityIDs = append(seg.CommunityIDs, c.ID)
		}
	}
	if len(spec.Packages) > 0 {
		catalog, err := db.Catalog(ctx)
		if err != nil {
			return seg, err
		}
		for _, code := range spec.Packages {
			if !slices.ContainsFunc(catalog.Packages, func(p storage.Package) bool { return p.Code == code }) {
				return seg, refusal("没有编码为“%s”的服务包。", code)
			}
			seg.Packages = append(seg.Packages, code)
		}
	}
	if spec.MinAge < 0 || spec.MaxAge < 0 || spec.MaxAge != 0 && spec.MaxAge < spec.MinAge {
		return seg, refusal("年龄范围不对。")
	}
	today := now.In(Shanghai)
	if spec.MinAge > 0 { // born on or before this day MinAge years ago
		seg.Born.Until = today.AddDate(-spec.MinAge, 0, 0).Format("2006-01-02")
	}
	if spec.MaxAge > 0 { // born after this day MaxAge+1 years ago
		seg.Born.After = today.AddDate(-spec.MaxAge-1, 0, 0).Format("2006-01-02")
	}
	return seg, nil
}

// BroadcastMonth is the month (YYYY-MM, Asia/Shanghai) a mass message sent
// at a moment counts in.
func BroadcastMonth(at time.Time) string { return at.In(Shanghai).Format("2006-01") }

func (b BroadcastSpec) due(now time.Time) time.Time {
	if b.At.IsZero() || b.At.Before(now) {
		return now
	}
	return b.At
}

// BroadcastAudience is who a tip would reach, and how much of the month's
// allowance of mass messages they have used.
func BroadcastAudience(ctx context.Context, db *storage.DB, s *storage.Sealer, scope storage.Scope, b BroadcastSpec, now time.Time) (storage.MassUse, error) {
	seg, err := segment(ctx, db, s, scope, b.Segment, now)
	if err != nil {
		return storage.MassUse{}, err
	}
	return db.BroadcastAudience(ctx, scope, seg, BroadcastMonth(b.due(now)))
}

// SendBroadcast queues a tip for its segment and returns its ID and
// audience. Those who have had this month's mass messages are reported in
// the use, not sent to; if that is everyone, nothing is queued.
func SendBroadcast(ctx context.Context, db *storage.DB, s *storage.Sealer, scope storage.Scope, b BroadcastSpec, actor string, now time.Time) (int64, storage.MassUse, error) {
	if err := b.check(now); err != nil {
		return 0, storage.MassUse{}, err
	}
	seg, err := segment(ctx, db, s, scope, b.Segment, now)
	if err != nil {
		return 0, storage.MassUse{}, err
	}
	articleID, err := SaveArticle(ctx, db, scope, b, actor)
	if err != nil {
		return 0, storage.MassUse{}, err
	}
	shown, err := json.Marshal(b.Segment)
	if err != nil {
		return 0, storage.MassUse{}, err
	}
	due := b.due(now)
	goes, err := afterQuietHours(ctx, db, due)
	if err != nil {
		return 0, storage.MassUse{}, err
	}
	// A segment mirrored into a tag that has been synced goes by the tag.
	var tagID int64
	if key := tagKey(scope, b.Segment, seg); key != "" {
		tags, err := db.Tags(ctx)
		if err != nil {
			return 0, storage.MassUse{}, err
		}
		if i := slices.IndexFunc(tags, func(t storage.Tag) bool { return t.Segment == key && t.SyncedAt.Valid }); i >= 0 {
			tagID = tags[i].TagID
		}
	}
	id, use, err := db.CreateBroadcast(ctx, scope, storage.NewBroadcast{Title: strings.TrimSpace(b.Title), Body: strings.TrimSpace(b.Text),
		Segment: seg, SegmentJSON: string(shown), Month: BroadcastMonth(due), Due: due, Priority: PrioritySeasonal, Actor: actor, TagID: tagID,
		ArticleID: articleID, AloneSeenSince: goes.Add(-(serviceWindow - digestMargin))})
	switch {
	case errors.Is(err, storage.ErrEmptyAudience):
		return 0, use, refusal("这个范围里没有可以收到健康知识提示的居民（已签约、关注了公众号、没有关闭提示）。")
	case errors.Is(err, storage.ErrAloneOutsideWindow):
		return 0, use, refusal("这个范围里只有一位居民能收到。微信群发至少要发给两人；只发一个人，须在他给公众号留言后48小时内发出，而到发送时这位居民已超过48小时没有留言。请扩大范围再发。")
	case errors.Is(err, storage.ErrOverLimit):
		return 0, use, refusal("这个范围里的居民本月都已收到 %d 条群发消息，微信不允许再发，请下月再发。", storage.MassPerMonth)
	}
	return id, use, err
}

// afterQuietHours is when something due at due goes: then, or when the
// programme's quiet hours end.
func afterQuietHours(ctx context.Context, db *storage.DB, due time.Time) (time.Time, error) {
	settings, err := Settings(ctx, db)
	if err != nil {
		return due, err
	}
	quiet := settings.Quiet()
	for i := 0; i < 24 && quiet.Contains(due, Shanghai); i++ {
		due = due.Truncate(time.Hour).Add(time.Hour) // Shanghai's hours begin on UTC's
	}
	return due, nil
}

// PreviewBroadcast sends a tip, as residents would read it, to one bound
// doctor in scope (a preview counts against no one's allowance).
func PreviewBroadcast(ctx context.Context, db *storage.DB, scope storage.Scope, b BroadcastSpec, openID, actor string, now time.Time) error {
	if err := b.check(now); err != nil {
		return err
	}
	if raw, ok := strings.CutPrefix(openID, "doctor:"); ok { // a doctor by ID, as scripts know them
		id, _ := strconv.ParseInt(raw, 10, 64)
		bound, found, err := db.DoctorOpenID(ctx, id)
		if errors.Is(err, storage.ErrNotFound) || err == nil && !found {
			return refusal("预览只能发给本机构已绑定微信的医生。")
		}
		if err != nil {
			return err
		}
		openID = bound
	}
	d, err := db.DoctorByOpenID(ctx, openID)
	if errors.Is(err, storage.ErrNotFound) || err == nil && !scope.Whole() && d.InstitutionID != scope.Institution {
		return refusal("预览只能发给本机构已绑定微信的医生。")
	}
	if err != nil {
		return err
	}
	articleID, err := SaveArticle(ctx, db, scope, b, actor)
	if err != nil {
		return err
	}
	key := fmt.Sprintf("broadcast-preview:%s:%d", openID, now.UnixNano())
	return db.Enqueue(ctx, []storage.Push{{Key: key, Kind: storage.KindBroadcastPreview, Recipient: openID, Priority: PriorityTransactional,
		Fields: map[string]string{"title": strings.TrimSpace(b.Title), "text": strings.TrimSpace(b.Text), "article": strconv.FormatInt(articleID, 10)}}})
}

// SaveArticle stores a tip's article and returns its ID (0 for a text):
// the one named, when its words, link and cover are the same (a preview
// then a send upload it to WeChat once), else a new one.
func SaveArticle(ctx context.Context, db *storage.DB, scope storage.Scope, b BroadcastSpec, actor string) (int64, error) {
	if b.Article == nil {
		return 0, nil
	}
	a := storage.Article{Institution: scope.Institution, Title: strings.TrimSpace(b.Title), Body: strings.TrimSpace(b.Text),
		SourceURL: strings.TrimSpace(b.Article.SourceURL), Cover: b.Article.Cover, CoverName: b.Article.CoverName}
	if b.Article.ID != 0 {
		was, err := db.ArticleByID(ctx, scope, b.Article.ID)
		if errors.Is(err, storage.ErrNotFound) {
			return 0, refusal("找不到刚才的图文，请重新选择封面图片。")
		}
		if err != nil {
			return 0, err
		}
		if len(a.Cover) == 0 {
			a.Cover, a.CoverName = was.Cover, was.CoverName
		}
		if b.Article.KeepSource {
			a.SourceURL = was.SourceURL
		}
		if was.Title == a.Title && was.Body == a.Body && was.SourceURL == a.SourceURL && bytes.Equal(was.Cover, a.Cover) {
			return was.ID, nil
		}
	}
	if err := checkArticle(a); err != nil {
		return 0, err
	}
	return db.CreateArticle(ctx, a, actor)
}

// checkArticle refuses a cover WeChat would not take and a source link
// that is not a web address.
func checkArticle(a storage.Article) error {
	kind := http.DetectContentType(a.Cover)
	switch {
	case len(a.Cover) == 0:
		return refusal("图文需要一张封面图片。")
	case len(a.Cover) > MaxCover:
		return refusal("封面图片最大 %d MB。", MaxCover>>20)
	case kind != "image/jpeg" && kind != "image/png":
		return refusal("封面图片请用 JPG 或 PNG 格式。")
	}
	if a.SourceURL != "" {
		u, err := url.Parse(a.SourceURL)
		if err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" || len(a.SourceURL) > 500 {
			return refusal("原文链接请写以 https:// 开头的网址。")
		}
	}
	return nil
}

// BroadcastText is a tip as residents read it: its title, its words and
// how to stop tips.
func BroadcastText(title, text string) (string, error) {
	return templates.Message("broadcast_tip", map[string]string{"title": title, "text": text})
}

// TagSegment is a segment that recurs, mirrored into a WeChat user tag:
// each priority group, and each community while the account has tags to
// spare.
type TagSegment struct {
	Key     string // group:CODE or community:ID
	Name    string // the tag's name in WeChat (staff see it in WeChat's back office)
	Segment storage.Segment
}

// tagsSpare are tags left for the account's own use in WeChat's back office.
const tagsSpare = 10

// TagSegments lists the segments to mirror into tags, groups first.
func TagSegments(ctx context.Context, db *storage.DB, s *storage.Sealer, now time.Time) ([]TagSegment, error) {
	var out []TagSegment
	for _, g := range profile.Words().PriorityGroups {
		seg, err := segment(ctx, db, s, storage.Scope{}, SegmentSpec{Groups: []string{g.Code}}, now)
		if err != nil {
			return nil, err
		}
		out = append(out, TagSegment{Key: "group:" + g.Code, Name: g.Name, Segment: seg})
	}
	communities, err := db.Communities(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range communities {
		if len(out) >= storage.TagsPerAccount-tagsSpare {
			break
		}
		name := []rune(c.Name)
		out = append(out, TagSegment{Key: fmt.Sprintf("community:%d", c.ID), Name: fmt.Sprintf("社区·%s·%d", string(name[:min(len(name), 16)]), c.ID),
			Segment: storage.Segment{CommunityIDs: []int64{c.ID}}})
	}
	return out, nil
}

// tagKey names the tag a broadcast can go by: one priority group for the
// whole deployment (a group's tag spans every institution), or one
// community, and nothing else narrowing; "" when it must go by openid lists.
func tagKey(scope storage.Scope, spec SegmentSpec, seg storage.Segment) string {
	if len(spec.Packages)+len(spec.Status)+len(spec.Teams)+spec.MinAge+spec.MaxAge > 0 {
		return ""
	}
	switch {
	case len(spec.Groups) == 1 && len(spec.Communities) == 0 && scope.Whole():
		return "group:" + spec.Groups[0]
	case len(spec.Groups) == 0 && len(seg.CommunityIDs) == 1:
		return fmt.Sprintf("community:%d", seg.CommunityIDs[0])
	}
	return ""
}

// ArticleDigest is an article's summary under its title in WeChat: the
// first words of its body, as WeChat itself takes them when none is given.
func ArticleDigest(body string) string {
	plain := strings.Join(strings.Fields(body), " ")
	if r := []rune(plain); len(r) > articleDigest {
		return string(r[:articleDigest-1]) + "…"
	}
	return plain
}

const articleDigest = 54

// ArticleExcerpt is as much of an article's body as a text tip holds, cut
// at MaxTipText and marked so when it is.
func ArticleExcerpt(body string) string {
	r := []rune(strings.TrimSpace(body))
	if len(r) <= MaxTipText {
		return string(r)
	}
	return string(r[:MaxTipText-6]) + "……（节选）"
}

// ArticleHTML is an article's body as WeChat shows it: each paragraph
// (a line of the admin's text) its own, every character escaped, and last
// how to stop tips, as every tip says.
func ArticleHTML(body string) string {
	var b strings.Builder
	lines := append(strings.Split(strings.ReplaceAll(body, "\r\n", "\n"), "\n"), mustMessage("broadcast_how_to_stop", nil))
	for _, line := range lines {
		if line = strings.TrimSpace(line); line != "" {
			b.WriteString("<p>" + html.EscapeString(line) + "</p>")
		}
	}
	return b.String()
}
