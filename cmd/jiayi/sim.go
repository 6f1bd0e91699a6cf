package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jiayi-health/jiayi/bot/wechat"
)

const simHelp = `jiayi sim: chat with a running jiayi as a resident would.
Type a message and press Enter. Also:
  /follow          follow the account (sent at start for a new user, or with -follow)
  /unfollow        unfollow it
  /click KEY       press a menu button
  /voice WORDS     speak (WeChat's speech recognition gives WORDS)
  /clock 26h       move the sandbox clock forward (or to a time: /clock 2026-12-24T08:00:00+08:00,
                   or /clock next solar_term, /clock next seasonal)
  /wait 3s         wait, showing the pushes that arrive meanwhile (for scripts)
  /quit            leave
Pushes the bot sends you afterwards (sandbox mode) are shown as [推送].
`

// simulator posts signed messages to /wechat the way WeChat does and shows
// the replies, and in sandbox mode the pushes recorded for this user.
type simulator struct {
	base, openID string
	phone        *wechat.Phone // with JIAYI_WECHAT_AES_KEY set, messages go encrypted, as in safe mode
	http         *http.Client
	out          io.Writer
	mu           sync.Mutex // shown pushes: the chat and the watcher both look
	seenPushes   int
}

func sim(args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	stdout = &lockedWriter{w: stdout} // the chat and the pushes arriving write to it
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", defaultSimURL(getenv("JIAYI_ADDR")), "address of the running jiayi (default: from JIAYI_ADDR)")
	openID := fs.String("openid", "", "who you are to the bot (default: a new user, who follows first)")
	as := fs.String("as", "", "be the same person every run, named by anything (a phone number, a name): for scripts; follows only with -follow or /follow")
	follow := fs.Bool("follow", false, "follow the account at start (a new user always does)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch {
	case *as != "" && *openID != "":
		fmt.Fprintln(stderr, "jiayi sim: give -as or -openid, not both")
		return 2
	case *as != "":
		*openID = simOpenID(*as)
	case *openID == "": // someone new: they find the account and follow it
		*openID, *follow = fmt.Sprintf("o_sim_%d", time.Now().Unix()), true
	}
	signer := wechat.Signer{Token: cmp.Or(getenv("JIAYI_WECHAT_TOKEN"), "jiayi"),
		AppID: cmp.Or(getenv("JIAYI_WECHAT_APPID"), "wxsandbox"), AESKey: getenv("JIAYI_WECHAT_AES_KEY")}
	if signer.AESKey != "" && !wechat.ValidAESKey(signer.AESKey) {
		fmt.Fprintln(stderr, "jiayi sim: JIAYI_WECHAT_AES_KEY must be the 43-character EncodingAESKey the server has")
		return 2
	}
	client := &http.Client{Timeout: 10 * time.Second}
	s := &simulator{base: strings.TrimRight(*base, "/"), openID: *openID, http: client, out: stdout,
		phone: &wechat.Phone{Base: *base, Signer: signer, HTTP: client}}
	script := !isTerminal(stdin)
	if !script {
		fmt.Fprint(stdout, simHelp)
	}
	ctx, stop := context.WithCancel(context.Background())
	s.showPushes(ctx, false) // coming back: what came before is not news
	var watching sync.WaitGroup
	watching.Add(1)
	go func() { defer watching.Done(); s.watchPushes(ctx) }()
	defer func() { stop(); watching.Wait() }()
	if *follow {
		if err := s.say(wechat.Action{Kind: "follow"}); err != nil {
			fmt.Fprintln(stderr, "jiayi sim:", err)
			return 1
		}
	}
	lines := bufio.NewScanner(stdin)
	for fmt.Fprint(stdout, "\n我> "); lines.Scan(); fmt.Fprint(stdout, "\n我> ") {
		line := strings.TrimSpace(lines.Text())
		if script { // the transcript shows what was said, as a terminal would
			fmt.Fprintln(stdout, line)
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if line == "/quit" {
			return 0
		}
		if err := s.do(line); err != nil {
			fmt.Fprintln(stderr, "jiayi sim:", err)
			return 1
		}
	}
	time.Sleep(time.Second) // a script's last message may have set off a push
	s.showPushes(context.Background(), true)
	fmt.Fprintln(stdout)
	return 0
}

// do carries out one line typed or read from a script.
func (s *simulator) do(line string) error {
	cmd, rest, _ := strings.Cut(line, " ")
	rest = strings.TrimSpace(rest)
	switch cmd {
	case "/follow":
		return s.say(wechat.Action{Kind: "follow"})
	case "/unfollow":
		return s.say(wechat.Action{Kind: "unfollow"})
	case "/click":
		return s.say(wechat.Action{Kind: "click", Text: rest})
	case "/voice":
		return s.say(wechat.Action{Kind: "voice", Text: rest})
	case "/clock":
		return s.moveClock(rest)
	case "/wait":
		d, err := time.ParseDuration(rest)
		if err != nil || d < 0 || d > 10*time.Minute {
			return fmt.Errorf("/wait takes a duration up to 10m, such as 3s")
		}
		time.Sleep(d)
		s.showPushes(context.Background(), true)
		return nil
	}
	return s.say(wechat.Action{Kind: "text", Text: line})
}

// defaultSimURL is where a server started with the same JIAYI_ADDR listens,
// as seen from this machine.
func defaultSimURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return "http://127.0.0.1:8080"
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// simOpenID is the openid -as NAME stands for: the same every run, and not
// NAME itself, which may be a phone number.
func simOpenID(name string) string {
	sum := sha256.Sum256([]byte("jiayi sim -as " + name))
	return "o_sim_" + hex.EncodeToString(sum[:8])
}

// isTerminal says whether r is a person typing rather than a script.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// say sends one action and prints the passive reply and any new pushes.
func (s *simulator) say(a wechat.Action) error {
	reply, err := s.phone.Send(context.Background(), s.openID, a)
	if refused := (*wechat.ErrRefused)(nil); errors.As(err, &refused) {
		return fmt.Errorf("%s answered %d: %s (%s)", s.base, refused.Status, refused.Body, s.hint(refused.Status))
	}
	if err != nil {
		return err
	}
	if reply != "" {
		fmt.Fprintf(s.out, "\n家医> %s\n", strings.ReplaceAll(reply, "\n", "\n      "))
	}
	s.showPushes(context.Background(), true)
	return nil
}

// moveClock moves the sandbox clock: a duration forward, or to a time.
func (s *simulator) moveClock(arg string) error {
	body := map[string]string{"advance": arg}
	if _, err := time.Parse(time.RFC3339, arg); err == nil {
		body = map[string]string{"to": arg}
	} else if next, ok := strings.CutPrefix(arg, "next "); ok {
		body = map[string]string{"next": strings.TrimSpace(next)}
	}
	raw, _ := json.Marshal(body)
	resp, err := s.http.Post(s.base+"/sandbox/clock", "application/json", bytes.NewReader(raw))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var view struct{ Now, Error string }
	if err := json.NewDecoder(resp.Body).Decode(&view); err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/clock %s: %s answered %s %s (the clock moves only in sandbox mode, on this machine)", arg, s.base, resp.Status, view.Error)
	}
	fmt.Fprintf(s.out, "\n[时钟] 现在是 %s\n", view.Now)
	time.Sleep(time.Second) // the jobs look again at once; give them a moment
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
		Kind, Title, Text string
		Data              json.RawMessage
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
		fmt.Fprintf(s.out, "\n[推送·%s] %s\n", cmp.Or(p.Title, p.Kind), strings.ReplaceAll(text, "\n", "\n      "))
	}
	s.seenPushes = len(pushes)
}

// hint names the settings a refusal points at.
func (s *simulator) hint(status int) string {
	switch {
	case status == http.StatusBadRequest && s.phone.Signer.AESKey != "":
		return "are JIAYI_WECHAT_AES_KEY and JIAYI_WECHAT_APPID the same as the server's?"
	case status == http.StatusForbidden && s.phone.Signer.AESKey == "":
		return "is JIAYI_WECHAT_TOKEN the same as the server's? If the server has JIAYI_WECHAT_AES_KEY set, give the simulator the same key and JIAYI_WECHAT_APPID"
	default:
		return "are JIAYI_WECHAT_TOKEN, JIAYI_WECHAT_AES_KEY and JIAYI_WECHAT_APPID the same as the server's?"
	}
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
