package bot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jiayi-health/jiayi/bot/wechat"
	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

// simulator serves /sim, a WeChat-like chat in the browser for sandbox
// mode: several people side by side, the account's menu, template cards
// and pushes arriving live. What a person does there goes to /wechat as
// WeChat would send it (signed, and encrypted with an AES key), through
// the same handler WeChat's requests reach; nothing is taken as typed.
type simulator struct {
	phone  *wechat.Phone
	clock  *Clock
	name   string // the account's name shown above the chat
	db     *storage.DB
	sealer *storage.Sealer
}

// registerSimulator adds /sim and its assets; sandbox mode only, from
// this machine only, like /sandbox/.
func (s *Server) registerSimulator(r gin.IRouter, account wechat.Account) {
	// The page's messages reach the server's own /wechat in process:
	// the full handler, so signatures, decryption, replay and per-sender
	// limits apply as to WeChat's requests.
	sim := &simulator{clock: s.clock, name: "家庭医生签约服务", db: s.DB, sealer: s.Sealer,
		phone: &wechat.Phone{Base: "http://jiayi.sim", Signer: wechat.Signer{Token: account.Token, AppID: account.AppID, AESKey: account.AESKey},
			HTTP: &http.Client{Transport: handlerTransport{s.Handler}, Timeout: 10 * time.Second}}}
	assets, err := fs.Sub(templates.Sim, "sim")
	if err != nil {
		panic("templates/sim missing from the build: " + err.Error())
	}
	page, err := fs.ReadFile(assets, "index.html")
	if err != nil {
		panic("templates/sim/index.html missing from the build: " + err.Error())
	}
	g := r.Group("/sim", loopbackOnly)
	g.GET("", func(c *gin.Context) { c.Data(http.StatusOK, "text/html; charset=utf-8", page) })
	g.GET("/assets/*file", func(c *gin.Context) {
		c.Header("Cache-Control", "no-cache")
		c.FileFromFS(strings.TrimPrefix(c.Param("file"), "/"), http.FS(assets))
	})
	g.GET("/setup", sim.setup)
	g.POST("/say", sim.say)
	g.POST("/signed", sim.signed)
}

// setup is what the page draws before anyone speaks: the account's name
// and custom menu.
func (m *simulator) setup(c *gin.Context) {
	menu, err := flows.Menu()
	if err != nil {
		c.JSON(http.StatusInternalServerError, gin.H{"error": err.Error()})
		return
	}
	// instance names this sandbox's database (a fresh one is another): the
	// page keeps its people under it.
	born, err := m.db.Born(c.Request.Context())
	if err != nil {
		c.JSON(http.StatusInternalServerError, gin.H{"error": err.Error()})
		return
	}
	c.JSON(http.StatusOK, gin.H{"account": m.name, "menu": menu, "safe_mode": m.phone.Signer.AESKey != "",
		"instance": m.sealer.Hash("sandbox simulator", born.UTC().Format(time.RFC3339Nano))[:12]})
}

// say sends {"openid", "kind", "text"} (kind text, voice, click, follow or
// unfollow) to /wechat and answers {"reply", "at"}: the passive reply,
// empty when the bot answered later or not at all, and the sandbox time.
func (m *simulator) say(c *gin.Context) {
	var in struct {
		OpenID string `json:"openid"`
		Kind   string `json:"kind"`
		Text   string `json:"text"`
	}
	if err := c.ShouldBindJSON(&in); err != nil || !validOpenID(in.OpenID) {
		c.JSON(http.StatusBadRequest, gin.H{"error": `send {"openid": "o_...", "kind": "text", "text": "签约"}; an openid is letters, digits, - and _`})
		return
	}
	at := m.clock.Now().In(flows.Shanghai).Format(time.RFC3339)
	reply, err := m.phone.Send(c.Request.Context(), in.OpenID, wechat.Action{Kind: in.Kind, Text: in.Text})
	if refused := (*wechat.ErrRefused)(nil); errors.As(err, &refused) {
		c.JSON(http.StatusBadGateway, gin.H{"error": "/wechat refused the message: " + refused.Body, "status": refused.Status})
		return
	}
	if err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	c.JSON(http.StatusOK, gin.H{"reply": reply, "at": at})
}

// signedNames are the made-up people the simulator signs.
var signedNames = []string{"张桂兰", "李秀珍", "王淑芬", "刘玉兰", "陈德明", "杨建国"}

// signed makes a resident already signed with the first team serving the
// first community, managed by a new WeChat user, for trying what comes
// after signing (booking, 我的签约, renewal) without signing first. The
// contract goes through the rules desk signing uses, active at once; the
// ID number and phone are synthetic. Answers {"openid", "name", "number"}.
func (m *simulator) signed(c *gin.Context) {
	ctx := c.Request.Context()
	fail := func(err error) { c.JSON(http.StatusInternalServerError, gin.H{"error": err.Error()}) }
	communities, err := m.db.Communities(ctx)
	if err != nil {
		fail(err)
		return
	}
	for _, community := range communities {
		teams, err := m.db.TeamsServing(ctx, community.ID)
		if err != nil {
			fail(err)
			return
		}
		if len(teams) == 0 {
			continue
		}
		openID := fmt.Sprintf("o_web_signed_%012x", rand.Uint64()>>16)
		now := m.clock.Now()
		var refusal *flows.Refusal
		for range 5 { // a made-up ID number may already be signed: another one
			n := rand.IntN(1000)
			name := signedNames[n%len(signedNames)]
			number, err := flows.SignAtDesk(ctx, m.db, m.sealer, flows.DeskSigning{Name: name,
				IDNumber: flows.SyntheticID(now.AddDate(-70, 0, -n), n), Phone: fmt.Sprintf("139%08d", rand.IntN(1e8)),
				CommunityID: community.ID, TeamID: teams[0].ID, Request: openID + fmt.Sprint(n), OpenID: openID},
				flows.ResidentImport{Institution: teams[0].InstitutionID, Actor: "sandbox simulator", Now: now})
			if errors.As(err, &refusal) {
				continue
			}
			if err != nil {
				fail(err)
				return
			}
			c.JSON(http.StatusOK, gin.H{"openid": openID, "name": name, "number": number, "team": teams[0].Name})
			return
		}
		fail(refusal)
		return
	}
	c.JSON(http.StatusConflict, gin.H{"error": "no community is served by a team yet"})
}

// validOpenID accepts what WeChat's openids look like (28 characters of
// letters, digits, - and _), a little longer for readable test names.
func validOpenID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// handlerTransport delivers a request to a handler in process, as from
// this machine.
type handlerTransport struct{ handler func() http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.RemoteAddr = "127.0.0.1:0"
	w := &recorder{header: http.Header{}, code: http.StatusOK}
	t.handler().ServeHTTP(w, req)
	return &http.Response{StatusCode: w.code, Status: http.StatusText(w.code), Header: w.header, Proto: "HTTP/1.1", ProtoMajor: 1,
		ProtoMinor: 1, Body: io.NopCloser(&w.body), ContentLength: int64(w.body.Len()), Request: req}, nil
}

// recorder keeps what a handler writes.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
	wrote  bool
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}
