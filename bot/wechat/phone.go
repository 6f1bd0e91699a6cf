package wechat

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/silenceper/wechat/v2/util"
)

// Phone sends what a person does in WeChat to a jiayi's /wechat the way
// WeChat pushes it: signed XML with a unique MsgId, encrypted when the
// Signer has an AES key, and reads the passive reply. `jiayi sim` and the
// browser simulator both send through it, so what works there works with
// WeChat.
type Phone struct {
	Base   string // e.g. http://127.0.0.1:8080
	Signer Signer
	HTTP   *http.Client
	msgID  atomic.Int64

	mu       sync.Mutex
	lastTime map[string]int64 // per openid: the last CreateTime sent
}

// Action is one thing a person does in the chat.
type Action struct {
	Kind string // "text", "voice" (Text is what speech recognition heard), "click" (Text is the menu key), "follow", "unfollow"
	Text string
}

// ErrRefused is /wechat answering other than 200: Status says how, Body
// what it said.
type ErrRefused struct {
	Status int
	Body   string
}

func (e *ErrRefused) Error() string { return fmt.Sprintf("/wechat answered %d: %s", e.Status, e.Body) }

// Send does a as openID and returns the bot's passive reply: empty when it
// answered "success" (nothing now; what it sends later is a push).
func (p *Phone) Send(ctx context.Context, openID string, a Action) (string, error) {
	body, err := p.xml(openID, a)
	if err != nil {
		return "", err
	}
	return p.post(ctx, openID, body)
}

// MassJobFinished posts a mass-send job's results as WeChat does
// (MASSSENDJOBFINISH), from the account's own name.
func (p *Phone) MassJobFinished(ctx context.Context, msgID int64, status string, total, filtered, sent, failed int) error {
	const from = "sandbox-wechat"
	body := fmt.Sprintf("<xml><ToUserName><![CDATA[gh_sim]]></ToUserName><FromUserName><![CDATA[%s]]></FromUserName><CreateTime>%d</CreateTime>"+
		"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[MASSSENDJOBFINISH]]></Event><MsgID>%d</MsgID><Status>%s</Status>"+
		"<TotalCount>%d</TotalCount><FilterCount>%d</FilterCount><SentCount>%d</SentCount><ErrorCount>%d</ErrorCount></xml>",
		from, p.createTime(from), msgID, cdata(status), total, filtered, sent, failed)
	_, err := p.post(ctx, from, body)
	return err
}

func (p *Phone) xml(openID string, a Action) (string, error) {
	if strings.ContainsAny(openID, "<>&]") {
		return "", fmt.Errorf("wechat.Phone: openid %q is not one WeChat would send", openID)
	}
	head := fmt.Sprintf("<xml><ToUserName><![CDATA[gh_sim]]></ToUserName><FromUserName><![CDATA[%s]]></FromUserName><CreateTime>%d</CreateTime>",
		openID, p.createTime(openID))
	event := func(name, key string) string {
		return head + "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[" + name + "]]></Event><EventKey>" + cdata(key) + "</EventKey></xml>"
	}
	message := func(msgType, fields string) string {
		if p.msgID.Load() == 0 {
			p.msgID.CompareAndSwap(0, time.Now().UnixNano())
		}
		return fmt.Sprintf("%s<MsgType><![CDATA[%s]]></MsgType>%s<MsgId>%d</MsgId></xml>", head, msgType, fields, p.msgID.Add(1))
	}
	switch a.Kind {
	case "text":
		return message("text", "<Content>"+cdata(a.Text)+"</Content>"), nil
	case "voice":
		return message("voice", "<MediaId><![CDATA[sim]]></MediaId><Format><![CDATA[amr]]></Format><Recognition>"+cdata(a.Text)+"</Recognition>"), nil
	case "click":
		return event("CLICK", a.Text), nil
	case "follow":
		return event("subscribe", ""), nil
	case "unfollow":
		return event("unsubscribe", ""), nil
	}
	return "", fmt.Errorf("wechat.Phone: no action %q", a.Kind)
}

// createTime is now in seconds, but never a second one person already
// used: an event has no MsgId, and WeChat (like jiayi) tells an event's
// retry by sender and CreateTime, so two taps within a second must differ.
func (p *Phone) createTime(openID string) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lastTime == nil {
		p.lastTime = map[string]int64{}
	}
	t := max(time.Now().Unix(), p.lastTime[openID]+1)
	p.lastTime[openID] = t
	return t
}

// cdata wraps s as XML character data; a "]]>" inside is split across two
// sections, as any XML writer does.
func cdata(s string) string {
	return "<![CDATA[" + strings.ReplaceAll(s, "]]>", "]]]]><![CDATA[>") + "]]>"
}

func (p *Phone) post(ctx context.Context, openID, body string) (string, error) {
	ts, nonce := strconv.FormatInt(time.Now().Unix(), 10), strconv.FormatInt(rand.Int64(), 36)
	q := url.Values{"nonce": {nonce}, "openid": {openID}}
	if p.Signer.AESKey != "" {
		enc, msgSignature, at, err := p.Signer.Encrypt([]byte(body), nonce)
		if err != nil {
			return "", err
		}
		ts = strconv.FormatInt(at, 10)
		q.Set("encrypt_type", "aes")
		q.Set("msg_signature", msgSignature)
		body = "<xml><ToUserName><![CDATA[gh_sim]]></ToUserName><Encrypt><![CDATA[" + enc + "]]></Encrypt></xml>"
	}
	q.Set("timestamp", ts)
	q.Set("signature", util.Signature(p.Signer.Token, ts, nonce))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(p.Base, "/")+"/wechat?"+q.Encode(), strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "text/xml")
	client := p.HTTP
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", &ErrRefused{Status: resp.StatusCode, Body: string(raw)}
	}
	if string(raw) == "success" || len(raw) == 0 {
		return "", nil
	}
	if p.Signer.AESKey != "" {
		if raw, err = p.open(raw); err != nil {
			return "", err
		}
	}
	var reply struct{ Content string }
	if err := xml.Unmarshal(raw, &reply); err != nil {
		return "", fmt.Errorf("wechat.Phone: the reply is not WeChat XML: %w", err)
	}
	return reply.Content, nil
}

// open decrypts a safe-mode reply.
func (p *Phone) open(raw []byte) ([]byte, error) {
	var env struct{ Encrypt, MsgSignature, TimeStamp, Nonce string }
	if err := xml.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("wechat.Phone: the reply is not a safe-mode envelope: %w", err)
	}
	return p.Signer.Decrypt(env.MsgSignature, env.TimeStamp, env.Nonce, env.Encrypt)
}
