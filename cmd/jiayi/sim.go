package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"encoding/xml"
	"flag"
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

	"github.com/jiayi-health/jiayi/bot/wechat"
	"github.com/silenceper/wechat/v2/util"
)

const simHelp = `jiayi sim: chat with a running jiayi as a resident would.
Type a message and press Enter. Also:
  /follow          follow the account (sent at start for a new user, or with -follow)
  /unfollow        unfollow it
  /click KEY       press a menu button
  /voice WORDS     speak (WeChat's speech recognition gives WORDS)
  /quit            leave
Pushes the bot sends you afterwards (sandbox mode) are shown as [推送].
`

// simulator posts signed messages to /wechat the way WeChat does and shows
// the replies, and in sandbox mode the pushes recorded for this user.
type simulator struct {
	base, openID string
	signer       wechat.Signer // with JIAYI_WECHAT_AES_KEY set, messages go encrypted, as in safe mode
	http         *http.Client
	out          io.Writer
	msgID        atomic.Int64
	mu           sync.Mutex // shown pushes: the chat and the watcher both look
	seenPushes   int
}

func sim(args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	stdout = &lockedWriter{w: stdout} // the chat and the pushes arriving write to it
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "http://127.0.0.1:8080", "address of the running jiayi")
	openID := fs.String("openid", "", "who you are to the bot (default: a new user, who follows first)")
	follow := fs.Bool("follow", false, "follow the account at start (a new user always does)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *openID == "" { // someone new: they find the account and follow it
		*openID, *follow = fmt.Sprintf("o_sim_%d", time.Now().Unix()), true
	}
	signer := wechat.Signer{Token: cmp.Or(getenv("JIAYI_WECHAT_TOKEN"), "jiayi"),
		AppID: cmp.Or(getenv("JIAYI_WECHAT_APPID"), "wxsandbox"), AESKey: getenv("JIAYI_WECHAT_AES_KEY")}
	if signer.AESKey != "" && !wechat.ValidAESKey(signer.AESKey) {
		fmt.Fprintln(stderr, "jiayi sim: JIAYI_WECHAT_AES_KEY must be the 43-character EncodingAESKey the server has")
		return 2
	}
	s := &simulator{base: strings.TrimRight(*base, "/"), signer: signer, openID: *openID,
		http: &http.Client{Timeout: 10 * time.Second}, out: stdout}
	s.msgID.Store(time.Now().UnixNano())
	fmt.Fprint(stdout, simHelp)
	ctx, stop := context.WithCancel(context.Background())
	s.showPushes(ctx, false) // coming back: what came before is not news
	var watching sync.WaitGroup
	watching.Add(1)
	go func() { defer watching.Done(); s.watchPushes(ctx) }()
	defer func() { stop(); watching.Wait() }()
	if *follow {
		if err := s.say(s.event("subscribe", "")); err != nil {
			fmt.Fprintln(stderr, "jiayi sim:", err)
			return 1
		}
	}
	lines := bufio.NewScanner(stdin)
	for fmt.Fprint(stdout, "\n我> "); lines.Scan(); fmt.Fprint(stdout, "\n我> ") {
		line := strings.TrimSpace(lines.Text())
		var body string
		switch cmd, rest, _ := strings.Cut(line, " "); cmd {
		case "":
			continue
		case "/quit":
			return 0
		case "/follow":
			body = s.event("subscribe", "")
		case "/unfollow":
			body = s.event("unsubscribe", "")
		case "/click":
			body = s.event("CLICK", rest)
		case "/voice":
			body = s.message("voice", "<MediaId>sim</MediaId><Format>amr</Format><Recognition><![CDATA["+rest+"]]></Recognition>")
		default:
			body = s.message("text", "<Content><![CDATA["+line+"]]></Content>")
		}
		if err := s.say(body); err != nil {
			fmt.Fprintln(stderr, "jiayi sim:", err)
			return 1
		}
	}
	return 0
}

func (s *simulator) message(msgType, fields string) string {
	return fmt.Sprintf("<xml><ToUserName>gh_sim</ToUserName><FromUserName>%s</FromUserName><CreateTime>%d</CreateTime>"+
		"<MsgType>%s</MsgType>%s<MsgId>%d</MsgId></xml>", s.openID, time.Now().Unix(), msgType, fields, s.msgID.Add(1))
}

func (s *simulator) event(name, key string) string {
	return fmt.Sprintf("<xml><ToUserName>gh_sim</ToUserName><FromUserName>%s</FromUserName><CreateTime>%d</CreateTime>"+
		"<MsgType>event</MsgType><Event>%s</Event><EventKey><![CDATA[%s]]></EventKey></xml>", s.openID, time.Now().Unix(), name, key)
}

// say posts one message and prints the passive reply and any new pushes.
func (s *simulator) say(body string) error {
	ts, nonce := strconv.FormatInt(time.Now().Unix(), 10), strconv.FormatInt(rand.Int64(), 36)
	q := url.Values{"nonce": {nonce}, "openid": {s.openID}}
	if s.signer.AESKey != "" {
		enc, msgSignature, at, err := s.signer.Encrypt([]byte(body), nonce)
		if err != nil {
			return err
		}
		ts = strconv.FormatInt(at, 10)
		q.Set("encrypt_type", "aes")
		q.Set("msg_signature", msgSignature)
		body = "<xml><ToUserName><![CDATA[gh_sim]]></ToUserName><Encrypt><![CDATA[" + enc + "]]></Encrypt></xml>"
	}
	q.Set("timestamp", ts)
	q.Set("signature", util.Signature(s.signer.Token, ts, nonce))
	resp, err := s.http.Post(s.base+"/wechat?"+q.Encode(), "text/xml", strings.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s: %s (%s)", s.base, resp.Status, raw, s.hint(resp.StatusCode))
	}
	if s.signer.AESKey != "" && string(raw) != "success" {
		if raw, err = s.open(raw); err != nil {
			return err
		}
	}
	var reply struct{ Content string }
	if string(raw) != "success" && xml.Unmarshal(raw, &reply) == nil && reply.Content != "" {
		fmt.Fprintf(s.out, "\n家医> %s\n", strings.ReplaceAll(reply.Content, "\n", "\n      "))
	}
	s.showPushes(context.Background(), true)
	return nil
}

// watchPushes shows pushes as they arrive, not only after the next message:
// a doctor's confirmation, a reminder when the sandbox clock is moved.
func (s *simulator) watchPushes(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
			s.showPushes(ctx, true)
		}
	}
}

// showPushes prints what the sandbox recorded for this user since last
// time (or, with print false, only notes how much there is).
func (s *simulator) showPushes(ctx context.Context, print bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/sandbox/outbox?to="+url.QueryEscape(s.openID), nil)
	resp, err := s.http.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	var pushes []struct {
		Kind, Text string
		Data       json.RawMessage
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&pushes) != nil {
		return // not a sandbox server
	}
	for _, p := range pushes[min(s.seenPushes, len(pushes)):] {
		if !print {
			break
		}
		text := p.Text
		if text == "" {
			text = string(p.Data)
		}
		fmt.Fprintf(s.out, "\n[推送·%s] %s\n", p.Kind, strings.ReplaceAll(text, "\n", "\n      "))
	}
	s.seenPushes = len(pushes)
}

// hint names the settings a refusal points at.
func (s *simulator) hint(status int) string {
	switch {
	case status == http.StatusBadRequest && s.signer.AESKey != "":
		return "are JIAYI_WECHAT_AES_KEY and JIAYI_WECHAT_APPID the same as the server's?"
	case status == http.StatusForbidden && s.signer.AESKey == "":
		return "is JIAYI_WECHAT_TOKEN the same as the server's? If the server has JIAYI_WECHAT_AES_KEY set, give the simulator the same key and JIAYI_WECHAT_APPID"
	default:
		return "are JIAYI_WECHAT_TOKEN, JIAYI_WECHAT_AES_KEY and JIAYI_WECHAT_APPID the same as the server's?"
	}
}

// open decrypts a safe-mode reply.
func (s *simulator) open(raw []byte) ([]byte, error) {
	var env struct{ Encrypt, MsgSignature, TimeStamp, Nonce string }
	if err := xml.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("reply is not a safe-mode envelope: %w", err)
	}
	return s.signer.Decrypt(env.MsgSignature, env.TimeStamp, env.Nonce, env.Encrypt)
}

// lockedWriter lets the chat and the pushes arriving print without
// interleaving mid-line.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
