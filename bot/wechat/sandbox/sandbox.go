// Package sandbox is the in-process stand-in for the WeChat API. In sandbox
// mode, and in every test, the SDK's HTTP client is pointed at Transport,
// which serves token, customer-service, template, mass-send, tag and menu
// calls from the StandIn that owns the app secret or access token, and
// records each message at once. Nothing leaves the process, no port is
// taken, so any number of instances run side by side.
package sandbox

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Message is one recorded outbound call.
type Message struct {
	To   string `json:"to"`
	Kind string `json:"kind"` // customer-service, template, subscribe, mass, tags, menu, token
	// Title is a template message's title; the server fills it and Text.
	Title string          `json:"title,omitempty"`
	Text  string          `json:"text,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
	At    time.Time       `json:"at"`
}

// MassJob is what WeChat reports when a mass-send job ends
// (MASSSENDJOBFINISH).
type MassJob struct {
	MsgID                       int64
	Status                      string // "send success", or "send fail"
	Total, Filter, Sent, Errors int
}

// StandIn is one Official Account's WeChat API.
type StandIn struct {
	// Now stamps what it records; nil is the real time. Set before use.
	Now func() time.Time
	// MassFinished, when set, is called (in its own goroutine) with each
	// mass-send job's results, as WeChat posts MASSSENDJOBFINISH to the
	// account's server. Set before use.
	MassFinished func(MassJob)

	id     string
	secret string

	mu      sync.Mutex
	sent    []Message
	tokens  int
	nextTag int
	refuse  map[string]int            // openid -> errcode WeChat answers for messages to them
	failN   map[string][2]int         // openid -> {errcode, times left}
	tags    map[int64]map[string]bool // tag -> the users carrying it
	jobs    map[string]int64          // clientmsgid -> msg_id of its job
	media   map[string]string         // permanent image media_id -> file name
	drafts  map[string]newsArticle    // draft media_id -> its article, until mass-sent
	nDrafts int
	mass    map[string]int // openid + month -> mass messages received
	nextJob int64
}

var registry sync.Map // secret or id -> *StandIn

// New registers a stand-in whose app secret is generated; use Secret.
func New() *StandIn {
	return NewWithSecret("sandbox-" + randomID())
}

// NewWithSecret registers a stand-in that answers token requests carrying
// this app secret (tests of production mode use their configured secret).
func NewWithSecret(secret string) *StandIn {
	s := &StandIn{id: randomID(), secret: secret, nextTag: 100}
	registry.Store("secret:"+secret, s)
	registry.Store("id:"+s.id, s)
	return s
}

// Close unregisters the stand-in.
func (s *StandIn) Close() {
	registry.Delete("secret:" + s.secret)
	registry.Delete("id:" + s.id)
}

// Secret is the app secret that reaches this stand-in.
func (s *StandIn) Secret() string { return s.secret }

// Refuse makes WeChat answer every message to openID with errcode (43004:
// the user unfollowed, 45009: daily quota reached, -1: system busy); 0
// lifts it. Tests use it to see failures handled.
func (s *StandIn) Refuse(openID string, errcode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuse == nil {
		s.refuse = map[string]int{}
	}
	if errcode == 0 {
		delete(s.refuse, openID)
	} else {
		s.refuse[openID] = errcode
	}
}

// FailNext makes WeChat answer the next n messages to openID with errcode,
// then accept them again (40001: the access token went stale).
func (s *StandIn) FailNext(openID string, errcode, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failN == nil {
		s.failN = map[string][2]int{}
	}
	s.failN[openID] = [2]int{errcode, n}
}

// Outbox returns the recorded messages to one openid, oldest first; all of
// them when to is empty.
func (s *StandIn) Outbox(to string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Message{}
	for _, m := range s.sent {
		if to == "" || m.To == to {
			out = append(out, m)
		}
	}
	return out
}

func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newsArticle is an article in the draft box.
type newsArticle struct {
	Title   string `json:"title"`
	Thumb   string `json:"thumb_media_id"`
	Digest  string `json:"digest"`
	Content string `json:"content"`
	Source  string `json:"content_source_url"`
}

// maxImage is the largest permanent image WeChat keeps (10 MB).
const maxImage = 10 << 20

// Transport routes the SDK's calls to the right stand-in.
type Transport struct{}

// RoundTrip implements http.RoundTripper.
func (Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(io.LimitReader(req.Body, maxImage+1<<20))
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	s, err := find(req.URL, body)
	if err != nil {
		return nil, err
	}
	if req.URL.Path == "/cgi-bin/material/add_material" {
		return respond(req, s.addImage(req, body)), nil
	}
	return respond(req, s.serve(req.URL.Path, body)), nil
}

// addImage keeps an image uploaded as permanent material (the form's file
// field "media"), as WeChat does for bmp, png, jpeg and gif of at most 10 MB.
func (s *StandIn) addImage(req *http.Request, body []byte) any {
	if req.URL.Query().Get("type") != "image" {
		return obj{"errcode": 40004, "errmsg": "sandbox: only images are kept as permanent material here"}
	}
	r := &http.Request{Header: req.Header, Body: io.NopCloser(bytes.NewReader(body)), Method: http.MethodPost}
	if err := r.ParseMultipartForm(maxImage + 1<<20); err != nil {
		return obj{"errcode": 41005, "errmsg": "media data missing: " + err.Error()}
	}
	f, h, err := r.FormFile("media")
	if err != nil {
		return obj{"errcode": 41005, "errmsg": "media data missing"}
	}
	defer f.Close()
	data, _ := io.ReadAll(f)
	switch kind := http.DetectContentType(data); {
	case len(data) > maxImage:
		return obj{"errcode": 40009, "errmsg": "invalid image size"}
	case kind != "image/jpeg" && kind != "image/png" && kind != "image/gif" && kind != "image/bmp":
		return obj{"errcode": 40113, "errmsg": "unsupported file type " + kind}
	}
	s.mu.Lock()
	if s.media == nil {
		s.media = map[string]string{}
	}
	id := fmt.Sprintf("sbx-image-%d", len(s.media)+1)
	s.media[id] = h.Filename
	s.mu.Unlock()
	s.record(Message{Kind: "material", Text: h.Filename})
	return obj{"media_id": id, "url": "http://mmbiz.qpic.cn/sandbox/" + id}
}

// addDraft keeps an article in the draft box; its cover must be permanent
// image material.
func (s *StandIn) addDraft(body []byte) any {
	var req struct {
		Articles []newsArticle `json:"articles"`
	}
	if err := json.Unmarshal(body, &req); err != nil || len(req.Articles) != 1 {
		return obj{"errcode": 40114, "errmsg": "sandbox: one article a draft"}
	}
	a := req.Articles[0]
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.media[a.Thumb]; !ok {
		return obj{"errcode": 40007, "errmsg": "invalid media_id"}
	}
	if a.Title == "" || a.Content == "" || len([]rune(a.Content)) > 20000 {
		return obj{"errcode": 45009, "errmsg": "sandbox: an article needs a title and at most 20,000 characters of content"}
	}
	if s.drafts == nil {
		s.drafts = map[string]newsArticle{}
	}
	s.nDrafts++
	id := fmt.Sprintf("sbx-draft-%d", s.nDrafts)
	s.drafts[id] = a
	return obj{"media_id": id}
}

// Drafts is how many drafts the draft box holds.
func (s *StandIn) Drafts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.drafts)
}

// massContent is what a mass-send call carries: a text, or the article
// its mpnews media_id names in the draft box (its title, and its words
// without markup); consume takes the draft out, as a mass send does.
func (s *StandIn) massContent(body []byte, consume bool) (title, text string, refused any) {
	var req struct {
		MsgType string `json:"msgtype"`
		Text    struct {
			Content string `json:"content"`
		} `json:"text"`
		MPNews struct {
			MediaID string `json:"media_id"`
		} `json:"mpnews"`
	}
	_ = json.Unmarshal(body, &req)
	switch req.MsgType {
	case "text":
		return "", req.Text.Content, nil
	case "mpnews":
		s.mu.Lock()
		a, ok := s.drafts[req.MPNews.MediaID]
		if ok && consume {
			delete(s.drafts, req.MPNews.MediaID)
		}
		s.mu.Unlock()
		if !ok {
			return "", "", obj{"errcode": 40007, "errmsg": "invalid media_id"}
		}
		return a.Title, markup.ReplaceAllString(a.Content, ""), nil
	}
	return "", "", obj{"errcode": 40008, "errmsg": "sandbox: invalid message type " + req.MsgType}
}

var markup = regexp.MustCompile(`<[^>]*>`)

// find names the stand-in from the access token, or for token requests from
// the app secret.
func find(u *url.URL, body []byte) (*StandIn, error) {
	key := ""
	if tok := u.Query().Get("access_token"); tok != "" {
		if id, _, ok := strings.Cut(strings.TrimPrefix(tok, "sbx."), "."); ok {
			key = "id:" + id
		}
	} else if secret := u.Query().Get("secret"); secret != "" {
		key = "secret:" + secret
	} else {
		var req struct {
			Secret string `json:"secret"`
		}
		_ = json.Unmarshal(body, &req)
		key = "secret:" + req.Secret
	}
	if v, ok := registry.Load(key); ok {
		return v.(*StandIn), nil
	}
	return nil, fmt.Errorf("sandbox: no stand-in answers %s (the WeChat API is not reachable from here)", u.Path)
}

func respond(req *http.Request, body any) *http.Response {
	b, _ := json.Marshal(body)
	return &http.Response{
		StatusCode: http.StatusOK, Status: "200 OK", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json; charset=utf-8"}},
		Body:          io.NopCloser(bytes.NewReader(b)),
		ContentLength: int64(len(b)),
		Request:       req,
	}
}

type obj = map[string]any

var ok = obj{"errcode": 0, "errmsg": "ok"}

func (s *StandIn) record(m Message) {
	m.At = s.now().In(shanghai) // as people at the health centre read times
	s.mu.Lock()
	s.sent = append(s.sent, m)
	s.mu.Unlock()
}

// serve answers one API call the way WeChat would for a healthy account.
func (s *StandIn) serve(path string, body []byte) any {
	var req struct {
		ToUser  json.RawMessage `json:"touser"`
		MsgType string          `json:"msgtype"`
		Text    struct {
			Content string `json:"content"`
		} `json:"text"`
		Filter struct {
			TagID int `json:"tag_id"`
		} `json:"filter"`
		ClientMsgID string `json:"clientmsgid"`
	}
	_ = json.Unmarshal(body, &req)
	var to string
	_ = json.Unmarshal(req.ToUser, &to)
	s.mu.Lock()
	code := s.refuse[to]
	if f, ok := s.failN[to]; ok && f[1] > 0 && code == 0 {
		code = f[0]
		s.failN[to] = [2]int{f[0], f[1] - 1}
	}
	s.mu.Unlock()
	if code != 0 && to != "" {
		return obj{"errcode": code, "errmsg": "sandbox: refused as asked"}
	}

	switch path {
	case "/cgi-bin/token", "/cgi-bin/stable_token":
		s.mu.Lock()
		s.tokens++
		tok := fmt.Sprintf("sbx.%s.%d", s.id, s.tokens)
		s.mu.Unlock()
		s.record(Message{Kind: "token"})
		return obj{"access_token": tok, "expires_in": 7200}
	case "/cgi-bin/message/custom/send":
		if req.MsgType != "text" {
			// An article goes to one person as mpnewsarticle, by a published
			// article's ID; jiayi does not publish, so nothing else is served.
			return obj{"errcode": 40008, "errmsg": "sandbox: only text customer-service messages are served"}
		}
		s.record(Message{To: to, Kind: "customer-service", Text: req.Text.Content})
		return ok
	case "/cgi-bin/message/template/send":
		s.record(Message{To: to, Kind: "template", Data: body})
		return obj{"errcode": 0, "errmsg": "ok", "msgid": time.Now().UnixNano()}
	case "/cgi-bin/message/subscribe/bizsend":
		s.record(Message{To: to, Kind: "subscribe", Data: body})
		return ok
	case "/cgi-bin/material/add_news":
		return obj{"errcode": 45106, "errmsg": "This API has been unsupported"} // since 2022: drafts instead
	case "/cgi-bin/draft/add":
		return s.addDraft(body)
	case "/cgi-bin/draft/delete":
		var d struct {
			MediaID string `json:"media_id"`
		}
		_ = json.Unmarshal(body, &d)
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.drafts[d.MediaID]; !ok {
			return obj{"errcode": 40007, "errmsg": "invalid media_id"}
		}
		delete(s.drafts, d.MediaID)
		return ok
	case "/cgi-bin/message/mass/send":
		var list []string
		_ = json.Unmarshal(req.ToUser, &list)
		if len(list) < 2 || len(list) > 10000 { // refused before the draft is touched
			return obj{"errcode": 40130, "errmsg": "invalid openid list size, at least two openid"}
		}
		title, text, refused := s.massContent(body, true)
		if refused != nil {
			return refused
		}
		return s.massSend(list, title, text, req.ClientMsgID, 2)
	case "/cgi-bin/message/mass/preview":
		title, text, refused := s.massContent(body, false)
		if refused != nil {
			return refused
		}
		s.record(Message{To: to, Kind: "mass-preview", Title: title, Text: text})
		return obj{"errcode": 0, "errmsg": "preview success", "msg_id": time.Now().UnixNano()}
	case "/cgi-bin/message/mass/sendall":
		members := s.Tagged(int64(req.Filter.TagID))
		if len(members) == 0 {
			return obj{"errcode": 45159, "errmsg": "sandbox: no such tag, or no one carries it"}
		}
		title, text, refused := s.massContent(body, true)
		if refused != nil {
			return refused
		}
		return s.massSend(members, title, text, req.ClientMsgID, 1)
	case "/cgi-bin/tags/create":
		s.record(Message{Kind: "tags", Data: body})
		var t struct {
			Tag struct{ Name string } `json:"tag"`
		}
		_ = json.Unmarshal(body, &t)
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.tags) >= TagsPerAccount {
			return obj{"errcode": 45056, "errmsg": "too many tags"}
		}
		s.nextTag++
		if s.tags == nil {
			s.tags = map[int64]map[string]bool{}
		}
		s.tags[int64(s.nextTag)] = map[string]bool{}
		return obj{"tag": obj{"id": s.nextTag, "name": t.Tag.Name}}
	case "/cgi-bin/tags/members/batchtagging", "/cgi-bin/tags/members/batchuntagging":
		s.record(Message{Kind: "tags", Data: body})
		var t struct {
			OpenIDs []string `json:"openid_list"`
			TagID   int64    `json:"tagid"`
		}
		_ = json.Unmarshal(body, &t)
		return s.tag(t.TagID, t.OpenIDs, path == "/cgi-bin/tags/members/batchtagging")
	case "/cgi-bin/qrcode/create":
		var q struct {
			ActionInfo struct {
				Scene struct {
					SceneStr string `json:"scene_str"`
				} `json:"scene"`
			} `json:"action_info"`
		}
		_ = json.Unmarshal(body, &q)
		scene := q.ActionInfo.Scene.SceneStr
		s.record(Message{Kind: "qrcode", Text: scene})
		return obj{"ticket": "sandbox-" + scene, "expire_seconds": 0, "url": "http://weixin.qq.com/q/sandbox-" + scene}
	case "/cgi-bin/menu/create", "/cgi-bin/menu/delete":
		s.record(Message{Kind: "menu", Data: body})
		return ok
	}
	if strings.HasPrefix(path, "/cgi-bin/tags/") {
		s.record(Message{Kind: "tags", Data: body})
		return ok
	}
	return obj{"errcode": 48001, "errmsg": "sandbox: api not served: " + path}
}

// massSend delivers a mass message to an openid list as WeChat does: 2 to
// 10,000 openids; a clientmsgid used before is refused (45065) with the
// job it named; a user who has had MassPerMonth mass messages this month
// is filtered out; a user it was told to refuse counts as an error. The
// job's results go to MassFinished.
func (s *StandIn) massSend(list []string, title, text, clientMsgID string, least int) any {
	if len(list) < least || len(list) > 10000 {
		return obj{"errcode": 40130, "errmsg": "invalid openid list size, at least two openid"}
	}
	s.mu.Lock()
	if id, ok := s.jobs[clientMsgID]; ok && clientMsgID != "" {
		s.mu.Unlock()
		return obj{"errcode": 45065, "errmsg": "clientmsgid exist", "msg_id": id}
	}
	if s.jobs == nil {
		s.jobs, s.mass = map[string]int64{}, map[string]int{}
	}
	s.nextJob++
	job := MassJob{MsgID: 1000000000 + s.nextJob, Status: "send success", Total: len(list)}
	if clientMsgID != "" {
		s.jobs[clientMsgID] = job.MsgID
	}
	month := s.now().In(shanghai).Format("2006-01")
	var deliver []string
	for _, openID := range list {
		switch {
		case s.refuse[openID] != 0:
			job.Errors++
		case s.mass[openID+month] >= MassPerMonth:
			job.Filter++
		default:
			s.mass[openID+month]++
			deliver = append(deliver, openID)
		}
	}
	s.mu.Unlock()
	for _, openID := range deliver {
		s.record(Message{To: openID, Kind: "mass", Title: title, Text: text})
	}
	job.Sent = len(deliver)
	if job.Sent == 0 {
		job.Status = "send fail"
	}
	if s.MassFinished != nil {
		go s.MassFinished(job)
	}
	return obj{"errcode": 0, "errmsg": "send job submission success", "msg_id": job.MsgID, "msg_data_id": job.MsgID}
}

// MassPerMonth is how many mass messages WeChat lets a service account's
// user receive in a month.
const MassPerMonth = 4

var shanghai = time.FixedZone("CST", 8*3600)

func (s *StandIn) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// WeChat's limits on tags: per account, per user, per tagging call.
const (
	TagsPerAccount = 100
	TagsPerUser    = 20
	TagBatch       = 50
)

// tag puts users on a tag or takes them off, as WeChat does: at most
// TagBatch a call, onto a tag that exists, no user past TagsPerUser.
func (s *StandIn) tag(id int64, openIDs []string, on bool) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	members, exists := s.tags[id]
	switch {
	case len(openIDs) == 0 || len(openIDs) > TagBatch:
		return obj{"errcode": 40032, "errmsg": "invalid openid_list size"}
	case !exists:
		return obj{"errcode": 45159, "errmsg": "invalid tag id"}
	}
	for _, o := range openIDs {
		if on && !members[o] && s.tagsOf(o) >= TagsPerUser {
			return obj{"errcode": 45059, "errmsg": "user has too many tags"}
		}
	}
	for _, o := range openIDs {
		if on {
			members[o] = true
		} else {
			delete(members, o)
		}
	}
	return ok
}

func (s *StandIn) tagsOf(openID string) int {
	n := 0
	for _, members := range s.tags {
		if members[openID] {
			n++
		}
	}
	return n
}

// Tagged lists the users carrying a tag, sorted.
func (s *StandIn) Tagged(id int64) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []string{}
	for o := range s.tags[id] {
		out = append(out, o)
	}
	slices.Sort(out)
	return out
}
