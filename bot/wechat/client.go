package wechat

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jiayi-health/jiayi/flows"
	"github.com/redis/go-redis/v9"
	"github.com/silenceper/wechat/v2/credential"
	"github.com/silenceper/wechat/v2/officialaccount"
	"github.com/silenceper/wechat/v2/officialaccount/basic"
	oaconfig "github.com/silenceper/wechat/v2/officialaccount/config"
	"github.com/silenceper/wechat/v2/officialaccount/draft"
	"github.com/silenceper/wechat/v2/officialaccount/material"
	"github.com/silenceper/wechat/v2/officialaccount/menu"
	"github.com/silenceper/wechat/v2/officialaccount/message"
	"github.com/silenceper/wechat/v2/officialaccount/user"
	"github.com/silenceper/wechat/v2/util"
)

var installClient sync.Once

// UseTransport points the SDK's package-global HTTP client at rt, with a
// timeout (the SDK's own has none). The SDK has one client per process, so the
// first call wins; sandbox.Transport routes to many stand-ins at once, which
// is what lets tests run many instances in one process.
func UseTransport(rt http.RoundTripper) {
	installClient.Do(func() {
		util.DefaultHTTPClient = &http.Client{Timeout: 10 * time.Second, Transport: rt}
	})
}

var installBase sync.Once

// UseAPIBase sends the SDK's calls to base instead of api.weixin.qq.com (a
// gateway in front of WeChat). Like the HTTP client, it is process-wide.
func UseAPIBase(base string) {
	installBase.Do(func() {
		util.SetURIModifier(func(uri string) string {
			if rest, ok := strings.CutPrefix(uri, "https://api.weixin.qq.com"); ok {
				return base + rest
			}
			return uri
		})
	})
}

// Account is the Official Account jiayi speaks for.
type Account struct {
	AppID, Secret, Token, AESKey string
}

// Client sends to WeChat through the SDK. Build it once: the SDK's lazy
// getters are not safe to call concurrently, so the managers are taken here.
type Client struct {
	customer *message.Manager
	template *message.Template
	basic    *basic.Basic
	menu     *menu.Menu
	users    *user.User
	material *material.Material
	drafts   *draft.Draft
	tokens   *tokenCache
	tokenKey string // the SDK's cache key of the stable access token
	token    func(context.Context) (string, error)
}

// NewClient builds the SDK client. Access tokens come from the stable-token
// endpoint and are cached in Redis, shared by every instance, so instances do
// not invalidate each other's token. The cache is keyed by the account's
// credentials: a sandbox's stand-in makes up its secret at each start, so
// no process is handed a token another process's stand-in issued.
func NewClient(a Account, rdb redis.UniversalClient, prefix string) *Client {
	sum := sha256.Sum256([]byte(a.AppID + "\x00" + a.Secret))
	tokens := &tokenCache{rdb: rdb, prefix: prefix + ":wechat:" + hex.EncodeToString(sum[:6]) + ":", local: map[string]localToken{}}
	oa := officialaccount.NewOfficialAccount(&oaconfig.Config{
		AppID: a.AppID, AppSecret: a.Secret, Token: a.Token, EncodingAESKey: a.AESKey,
		Cache: tokens, UseStableAK: true,
	})
	return &Client{customer: oa.GetCustomerMessageManager(), template: oa.GetTemplate(), basic: oa.GetBasic(), menu: oa.GetMenu(), tokens: tokens,
		token: oa.GetAccessTokenContext, users: oa.GetUser(), material: oa.GetMaterial(), drafts: oa.GetDraft(),
		tokenKey: fmt.Sprintf("%s_stable_access_token_%s", credential.CacheKeyOfficialAccountPrefix, a.AppID)}
}

// SendText sends a customer-service text message.
func (c *Client) SendText(ctx context.Context, openID, text string) error {
	return c.retryStaleToken(ctx, func() error {
		return c.customer.Send(message.NewCustomerTextMessage(openID, text))
	})
}

// retryStaleToken runs a call and, if WeChat says the access token is
// invalid or expired (40001, 42001), drops the shared cached token and
// tries once more with a fresh one.
func (c *Client) retryStaleToken(ctx context.Context, call func() error) error {
	err := call()
	if code := ErrCode(err); code == 40001 || code == 42001 {
		if derr := c.tokens.Delete(c.tokenKey); derr != nil {
			return err
		}
		return call()
	}
	return err
}

// SceneQRURL asks WeChat for a permanent QR code carrying a scene (a
// resident who scans it follows the account with that scene) and returns
// the URL the code encodes, so the code can be drawn here.
func (c *Client) SceneQRURL(ctx context.Context, scene string) (string, error) {
	var url string
	err := c.retryStaleToken(ctx, func() error {
		t, err := c.basic.GetQRTicket(basic.NewLimitQrRequest(scene))
		if err == nil {
			url = t.URL
		}
		return err
	})
	return url, err
}

// SendTemplate sends a template message with the given fields.
func (c *Client) SendTemplate(ctx context.Context, openID, templateID string, fields map[string]string) error {
	data := make(map[string]*message.TemplateDataItem, len(fields))
	for k, v := range fields {
		data[k] = &message.TemplateDataItem{Value: v}
	}
	return c.retryStaleToken(ctx, func() error {
		_, err := c.template.Send(&message.TemplateMessage{ToUser: openID, TemplateID: templateID, Data: data})
		return err
	})
}

// massReply is WeChat's answer to a mass-send call.
type massReply struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
	MsgID   int64  `json:"msg_id"`
}

// errClientMsgIDUsed: WeChat already has a mass-send job under this
// clientmsgid (sent within 24 hours) and names it instead of sending again.
const errClientMsgIDUsed = 45065

// MassMessage is what a mass message carries: a text, or an article (图文)
// by the news material's media_id.
type MassMessage struct {
	Text        string
	NewsMediaID string
}

// add puts the message into a mass-send call's body.
func (m MassMessage) add(body map[string]any) map[string]any {
	if m.NewsMediaID != "" {
		body["msgtype"], body["mpnews"], body["send_ignore_reprint"] = "mpnews", map[string]string{"media_id": m.NewsMediaID}, 0
	} else {
		body["msgtype"], body["text"] = "text", map[string]string{"content": m.Text}
	}
	return body
}

// MassSend sends a message to 2 to 10,000 openids as one mass message (群发
// by openid list) and returns the job's msg_id, which its MASSSENDJOBFINISH
// event names. clientMsgID makes WeChat refuse a repeat within 24 hours:
// a resend after a crash gets the first job's msg_id back, and counts as
// sent. The SDK's broadcast call cannot carry clientmsgid, so it is made here.
func (c *Client) MassSend(ctx context.Context, openIDs []string, m MassMessage, clientMsgID string) (string, error) {
	return c.massSend(ctx, "https://api.weixin.qq.com/cgi-bin/message/mass/send",
		m.add(map[string]any{"touser": openIDs, "clientmsgid": clientMsgID}))
}

// MassSendToTag sends a message as one mass message to every user carrying
// a tag (群发 by tag), with clientMsgID as MassSend does.
func (c *Client) MassSendToTag(ctx context.Context, tagID int64, m MassMessage, clientMsgID string) (string, error) {
	return c.massSend(ctx, "https://api.weixin.qq.com/cgi-bin/message/mass/sendall",
		m.add(map[string]any{"filter": map[string]any{"is_to_all": false, "tag_id": tagID}, "clientmsgid": clientMsgID}))
}

func (c *Client) massSend(ctx context.Context, uri string, body map[string]any) (string, error) {
	var id string
	err := c.retryStaleToken(ctx, func() error {
		r, err := c.massCall(ctx, uri, body)
		if err == nil || r.ErrCode == errClientMsgIDUsed && r.MsgID != 0 {
			id, err = strconv.FormatInt(r.MsgID, 10), nil
		}
		return err
	})
	return id, err
}

// Article is an article (图文) to put in the account's draft box.
type Article struct {
	Title, Digest, HTML, SourceURL string
	// ThumbMediaID is the cover's permanent image, if it went up before;
	// otherwise Cover goes up first.
	ThumbMediaID string
	Cover        []byte
	CoverName    string // the cover's file name, its extension WeChat's hint of the type
}

// UploadArticle puts an article in the draft box (草稿箱) and returns the
// draft's media_id, which MassSend and MassPreview carry, and
// the cover's permanent image media_id, uploaded first unless given. WeChat
// no longer makes news material (add_news) and removes a draft once it is
// mass-sent, so each send takes a draft of its own.
func (c *Client) UploadArticle(ctx context.Context, a Article) (mediaID, thumbID string, err error) {
	thumbID = a.ThumbMediaID
	err = c.retryStaleToken(ctx, func() error {
		if thumbID == "" {
			id, _, err := c.material.AddMaterialFromReader(material.MediaTypeImage, a.CoverName, bytes.NewReader(a.Cover))
			if err != nil {
				return fmt.Errorf("upload cover: %w", err)
			}
			thumbID = id
		}
		var err error
		mediaID, err = c.drafts.AddDraft([]*draft.Article{{Title: a.Title, ThumbMediaID: thumbID, Digest: a.Digest,
			ShowCoverPic: 1, Content: a.HTML, ContentSourceURL: a.SourceURL}})
		return err
	})
	return mediaID, thumbID, err
}

// DeleteDraft takes a draft out of the draft box (after a preview, or a
// send WeChat may not have taken it out for).
func (c *Client) DeleteDraft(ctx context.Context, mediaID string) error {
	return c.retryStaleToken(ctx, func() error { return c.drafts.DeleteDraft(mediaID) })
}

// CreateTag makes a user tag and returns its ID.
func (c *Client) CreateTag(ctx context.Context, name string) (int64, error) {
	var id int64
	err := c.retryStaleToken(ctx, func() error {
		t, err := c.users.CreateTag(name)
		if err == nil {
			id = int64(t.ID)
		}
		return err
	})
	return id, err
}

// TagUsers tags (on) or untags up to 50 users.
func (c *Client) TagUsers(ctx context.Context, tagID int64, openIDs []string, on bool) error {
	return c.retryStaleToken(ctx, func() error {
		if on {
			return c.users.BatchTag(openIDs, int32(tagID))
		}
		return c.users.BatchUntag(openIDs, int32(tagID))
	})
}

// MassPreview sends a message as a mass-message preview to one WeChat user
// (a member of staff), which counts against no one's monthly allowance.
func (c *Client) MassPreview(ctx context.Context, openID string, m MassMessage) error {
	return c.retryStaleToken(ctx, func() error {
		_, err := c.massCall(ctx, "https://api.weixin.qq.com/cgi-bin/message/mass/preview", m.add(map[string]any{"touser": openID}))
		return err
	})
}

func (c *Client) massCall(ctx context.Context, uri string, body any) (massReply, error) {
	var r massReply
	token, err := c.token(ctx)
	if err != nil {
		return r, err
	}
	raw, err := util.PostJSONContext(ctx, uri+"?access_token="+token, body)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return r, fmt.Errorf("mass send: unreadable answer: %w", err)
	}
	if r.ErrCode != 0 {
		return r, fmt.Errorf("mass send: errcode=%d, errmsg=%s", r.ErrCode, r.ErrMsg)
	}
	return r, nil
}

var errCodePattern = regexp.MustCompile(`errcode\s*=\s*(-?\d+)`)

// ErrCode is the WeChat error code an SDK error carries, 0 if none. The SDK
// reports most of them only inside the error's text.
func ErrCode(err error) int {
	if err == nil {
		return 0
	}
	if m := errCodePattern.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

// tokenCache adapts go-redis v9 to the SDK's cache interface (the SDK's own
// Redis cache speaks go-redis v8, its memory cache races). Every token this
// process fetches is also kept in memory until it expires: while Redis is
// away, pushes go on with it, instead of failing on
// the cache (the stable-token endpoint hands every instance the same token,
// so a token fetched during an outage does not invalidate the others').
type tokenCache struct {
	rdb    redis.UniversalClient
	prefix string

	mu    sync.Mutex
	local map[string]localToken
}

type localToken struct {
	val     any
	expires time.Time
}

// cacheTimeout bounds each Redis call of the cache: a frozen Redis must not
// hold a push longer than this before the memory copy answers.
const cacheTimeout = time.Second

func (t *tokenCache) Get(key string) any {
	ctx, cancel := context.WithTimeout(context.Background(), cacheTimeout)
	defer cancel()
	v, err := t.rdb.Get(ctx, t.prefix+key).Result()
	switch {
	case err == nil:
		return v
	case errors.Is(err, redis.Nil):
		return nil // gone from the shared cache (dropped as stale): fetch anew
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if l, ok := t.local[key]; ok && time.Now().Before(l.expires) {
		return l.val
	}
	return nil
}

// Set keeps the token in memory and, if Redis answers, shares it. A Redis
// failure is not the SDK's: the token it fetched is good and is used.
func (t *tokenCache) Set(key string, val any, timeout time.Duration) error {
	t.mu.Lock()
	t.local[key] = localToken{val: val, expires: time.Now().Add(timeout)}
	t.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), cacheTimeout)
	defer cancel()
	_ = t.rdb.Set(ctx, t.prefix+key, val, timeout).Err()
	return nil
}

func (t *tokenCache) IsExist(key string) bool {
	return t.Get(key) != nil
}

func (t *tokenCache) Delete(key string) error {
	t.mu.Lock()
	delete(t.local, key)
	t.mu.Unlock()
	// Best effort: with Redis away, the shared copy is found stale again
	// (40001) once Redis is back, and dropped then.
	ctx, cancel := context.WithTimeout(context.Background(), cacheTimeout)
	defer cancel()
	_ = t.rdb.Del(ctx, t.prefix+key).Err()
	return nil
}

// SetMenu replaces the account's custom menu; every button sends its key
// as a click, which the bot reads as the word typed.
func (c *Client) SetMenu(ctx context.Context, buttons []flows.MenuButton) error {
	return c.retryStaleToken(ctx, func() error { return c.menu.SetMenu(menuButtons(buttons)) })
}

func menuButtons(in []flows.MenuButton) []*menu.Button {
	out := make([]*menu.Button, 0, len(in))
	for _, b := range in {
		if len(b.Sub) > 0 {
			out = append(out, &menu.Button{Name: b.Name, SubButtons: menuButtons(b.Sub)})
			continue
		}
		out = append(out, &menu.Button{Type: "click", Name: b.Name, Key: b.Key})
	}
	return out
}
