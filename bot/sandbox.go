package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jiayi-health/jiayi/bot/admin"
	"github.com/jiayi-health/jiayi/bot/wechat"
	"github.com/jiayi-health/jiayi/bot/wechat/sandbox"
	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
)

// loadDemo gives a new sandbox the region's demo organisation, and every
// unbound demo doctor a fresh binding code, so the doctor's side can be tried.
func (s *Server) loadDemo(ctx context.Context) error {
	if err := s.restoreClock(ctx); err != nil {
		return err
	}
	loaded, err := profile.LoadDemo(ctx, s.DB, s.Config.Region)
	if err != nil {
		return err
	}
	if loaded {
		s.log.Info("sandbox demo data loaded", "region", s.Config.Region)
	}
	// The demo doctors' slots exist before the first resident asks; the
	// daily job keeps them going.
	if _, err := flows.MaterialiseSlots(ctx, s.DB, s.clock.Now()); err != nil {
		return err
	}
	doctors, err := s.DB.Doctors(ctx)
	if err != nil {
		return err
	}
	if err := s.demoAdmin(ctx); err != nil {
		return err
	}
	s.demoCodes = map[int64]string{}
	for _, d := range doctors {
		if d.OpenID.Valid || s.demoCodes[d.ID] != "" {
			continue
		}
		// Valid as far as the sandbox clock can go: moving it must not
		// expire the codes /sandbox/demo shows.
		code, err := flows.IssueBindingCode(ctx, s.DB, s.Sealer, d.ID, s.clock.Now(), maxOffset+s.Config.BindingTTL)
		if err != nil {
			return err
		}
		s.demoCodes[d.ID] = code
	}
	return nil
}

// ErrDemoData says a production start found the sandbox's demo data.
var ErrDemoData = errors.New("this database holds sandbox demo data")

// refuseDemoData stops a production start on a database a sandbox loaded
// its demo organisation into: the demo doctors' binding codes were handed
// out at /sandbox/demo, and whoever bound as one would be sent residents'
// sign requests.
func refuseDemoData(ctx context.Context, db *storage.DB) error {
	demo, err := db.DemoInstitutions(ctx)
	if err != nil || len(demo) == 0 {
		return err
	}
	var names []string
	for _, in := range demo {
		names = append(names, in.Name+" (code "+in.Code+")")
	}
	return fmt.Errorf("%w (the demo institution %s, its doctors and their binding codes); "+
		"run `jiayi demo remove` to delete it before going live", ErrDemoData, strings.Join(names, ", "))
}

// demoAdminName is the sandbox's console admin.
const demoAdminName = "admin"

// demoAdmin makes sure the sandbox has a console admin for the demo
// institution. Its password is derived from the personal-data key, so it
// stays the same across restarts and differs between machines.
func (s *Server) demoAdmin(ctx context.Context) error {
	inst, err := s.DB.InstitutionByCode(ctx, "demo")
	if errors.Is(err, storage.ErrNotFound) {
		return nil // a sandbox on a database with an organisation of its own
	}
	if err != nil {
		return err
	}
	s.demoPassword = s.Sealer.Hash("sandbox", "console admin")[:16]
	staff, err := s.DB.StaffByUsername(ctx, demoAdminName)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		_, err = admin.CreateStaff(ctx, s.DB, storage.Scope{}, admin.NewStaff{Username: demoAdminName, Role: storage.RoleAdmin,
			Institution: inst.ID, Password: s.demoPassword}, "sandbox")
	case err == nil && !admin.VerifyPassword(staff.PasswordHash, s.demoPassword):
		err = s.DB.SetStaffPassword(ctx, storage.Scope{}, staff.ID, admin.HashPassword(s.demoPassword), "sandbox")
	}
	if err != nil {
		return err
	}
	s.log.Warn("SANDBOX MODE: the staff console is at /admin/; sign in as " + demoAdminName + " with password " + s.demoPassword)
	return nil
}

// demo lists the sandbox's communities and doctors with their binding codes.
func (s *Server) demo(c *gin.Context) {
	communities, err := s.DB.Communities(c.Request.Context())
	if err != nil {
		c.AbortWithStatus(http.StatusInternalServerError)
		return
	}
	doctors, err := s.DB.Doctors(c.Request.Context())
	if err != nil {
		c.AbortWithStatus(http.StatusInternalServerError)
		return
	}
	type doctorJSON struct {
		ID          int64  `json:"id"`
		Name        string `json:"name"`
		Team        string `json:"team"`
		BindingCode string `json:"binding_code"`
		Bound       bool   `json:"bound"`
	}
	out := []doctorJSON{}
	for _, d := range doctors {
		code := s.demoCodes[d.ID]
		if d.OpenID.Valid { // used: it would only be refused
			code = ""
		}
		out = append(out, doctorJSON{ID: d.ID, Name: d.Name, Team: d.TeamName, BindingCode: code, Bound: d.OpenID.Valid})
	}
	demo := gin.H{"region": s.Config.Region, "communities": communities, "doctors": out}
	if s.demoPassword != "" {
		account := gin.H{"username": demoAdminName, "password": s.demoPassword, "console": "/admin/"}
		// Once someone changed it in the console, the start-up password is no
		// longer the one: say so rather than hand out a wrong one.
		if staff, err := s.DB.StaffByUsername(c.Request.Context(), demoAdminName); err != nil ||
			!admin.VerifyPassword(staff.PasswordHash, s.demoPassword) {
			account["password"], account["note"] = nil, "changed in the console since start; a restart sets it back"
		}
		demo["admin"] = account
	}
	c.JSON(http.StatusOK, demo)
}

// sandboxAhead is how far messages' times move: the sandbox clock's lead;
// in production none (nil), WeChat's own time.
func (s *Server) sandboxAhead() func() time.Duration {
	if s.Config.Sandbox() {
		return s.clock.Offset
	}
	return nil
}

// restoreClock puts the sandbox clock where the last run left it: its lead
// is kept in the database, so a restart does not take it back behind the
// times already recorded.
func (s *Server) restoreClock(ctx context.Context) error {
	lead, err := s.DB.SandboxClockLead(ctx)
	if err != nil {
		return err
	}
	if lead == 0 {
		if lead, err = s.legacyClockLead(ctx); err != nil {
			return err
		}
	}
	if lead == 0 {
		return nil
	}
	s.clock.setOffset(lead)
	s.log.Info("sandbox clock restored", "ahead", lead.String())
	return nil
}

// legacyClockLead moves a lead an earlier version kept in a file beside a
// SQLite database (jiayi.db.clock) into the database, once.
func (s *Server) legacyClockLead(ctx context.Context) (time.Duration, error) {
	path := storage.BesideDatabase(s.Config.DatabaseURL, ".clock")
	if path == "" {
		return 0, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, nil // none
	}
	lead, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil || lead <= 0 || lead > maxOffset {
		return 0, nil
	}
	if err := s.DB.KeepSandboxClockLead(ctx, lead); err != nil {
		return 0, err
	}
	os.Remove(path)
	return lead, nil
}

// clockView is the sandbox time as GET and POST /sandbox/clock answer it.
type clockView struct {
	Now   string `json:"now"`   // RFC 3339, Asia/Shanghai
	Ahead string `json:"ahead"` // how far ahead of the real time, e.g. "26h0m0s"
}

func (s *Server) clockView() clockView {
	return clockView{Now: s.clock.Now().In(flows.Shanghai).Format(time.RFC3339), Ahead: s.clock.Offset().Round(time.Second).String()}
}

func (s *Server) showClock(c *gin.Context) { c.JSON(http.StatusOK, s.clockView()) }

// moveClock moves the sandbox clock forward: {"advance": "26h"},
// {"to": "2026-12-24T08:00:00+08:00"}, or {"next": "solar_term"} (the day
// the next solar term begins, 08:00) or {"next": "seasonal"} (08:00 on the
// seasonal calendar's next reminder day, when its pushes fall due). The
// background jobs look again at once, and the dispatcher sends what fell due.
func (s *Server) moveClock(c *gin.Context) {
	var in struct {
		Advance string `json:"advance"`
		To      string `json:"to"`
		Next    string `json:"next"`
	}
	if err := c.ShouldBindJSON(&in); err != nil || countSet(in.Advance, in.To, in.Next) != 1 {
		c.JSON(http.StatusBadRequest, gin.H{"error": `send {"advance": "26h"}, {"to": "2026-12-24T08:00:00+08:00"} or {"next": "solar_term"} or {"next": "seasonal"}`})
		return
	}
	var err error
	view := gin.H{}
	switch {
	case in.Advance != "":
		var d time.Duration
		if d, err = time.ParseDuration(in.Advance); err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": "advance must be a duration such as 90m, 26h or 720h"})
			return
		}
		err = s.clock.Advance(d)
	case in.To != "":
		var t time.Time
		if t, err = time.Parse(time.RFC3339, in.To); err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": "to must be a time in RFC 3339, e.g. 2026-12-24T08:00:00+08:00"})
			return
		}
		err = s.clock.MoveTo(t)
	default:
		var t time.Time
		if t, view["next"], err = s.nextDay(c.Request.Context(), in.Next); err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
			return
		}
		err = s.clock.MoveTo(t)
	}
	if err != nil {
		c.JSON(http.StatusConflict, gin.H{"error": err.Error(), "now": s.clockView().Now})
		return
	}
	s.log.Info("sandbox clock moved", "ahead", s.clock.Offset().Round(time.Second).String())
	if err := s.DB.KeepSandboxClockLead(c.Request.Context(), s.clock.Offset()); err != nil {
		s.log.Error("sandbox clock not kept; a restart takes it back", "err", err)
	}
	s.Pushes.Wake()
	cv := s.clockView()
	view["now"], view["ahead"] = cv.Now, cv.Ahead
	c.JSON(http.StatusOK, view)
}

func countSet(v ...string) int {
	n := 0
	for _, s := range v {
		if s != "" {
			n++
		}
	}
	return n
}

// nextDay is the time {"next": what} moves the clock to, and what happens
// then in words (the solar term's name, the reminder days' names).
func (s *Server) nextDay(ctx context.Context, what string) (time.Time, string, error) {
	now := s.clock.Now()
	switch what {
	case "solar_term":
		// The first term whose day's 08:00 is still to come (before 08:00
		// on a term's own day, that term).
		name, day, err := flows.NextSolarTerm(now.Add(-8 * time.Hour))
		return day.Add(8 * time.Hour), name, err
	case "seasonal":
		cal, err := flows.LoadCalendar(ctx, s.DB)
		if err != nil {
			return time.Time{}, "", err
		}
		at, on, err := flows.NextSeasonal(cal.Live(), now)
		var names []string
		for _, e := range on {
			if !slices.Contains(names, e.Name) {
				names = append(names, e.Name)
			}
		}
		return at, strings.Join(names, "、"), err
	}
	return time.Time{}, "", fmt.Errorf(`next must be "solar_term" or "seasonal", not %q`, what)
}

// outbox lists what the stand-in was asked to send to ?to=OPENID, each with
// the words the person would see: a template message's too, rendered from
// its fields as the template reads, so a reader need not know template IDs.
func (s *Server) outbox(c *gin.Context) {
	sent := s.StandIn.Outbox(c.Query("to"))
	// The record lives in memory: a page counting what it has shown
	// starts again when this changes.
	c.Header("X-Sandbox-Boot", s.boot)
	for i, m := range sent {
		if m.Kind == "template" && m.Text == "" {
			sent[i].Title, sent[i].Text = templateText(m.Data)
		}
	}
	c.JSON(http.StatusOK, sent)
}

// templateText is a sandbox template message's title and words: its
// template is named after the push kind, whose words flows knows.
func templateText(raw json.RawMessage) (title, text string) {
	var msg struct {
		TemplateID string                            `json:"template_id"`
		Data       map[string]struct{ Value string } `json:"data"`
	}
	if json.Unmarshal(raw, &msg) != nil {
		return "", ""
	}
	fields := map[string]string{}
	for k, v := range msg.Data {
		fields[k] = v.Value
	}
	kind, ok := strings.CutPrefix(msg.TemplateID, "sandbox_")
	if !ok {
		return "", ""
	}
	text, err := flows.PushText(kind, fields)
	if err != nil {
		return "", ""
	}
	title, _ = flows.PushTitle(kind)
	return title, text
}

// massReportDelay is how long the stand-in takes to report a mass-send
// job, as WeChat reports one some seconds after taking it.
const massReportDelay = time.Second

// reportMassJob posts each mass-send job's results to the server's own
// /wechat as WeChat would: signed (and encrypted with an AES key), through
// the full handler.
func (s *Server) reportMassJob(account wechat.Account) func(sandbox.MassJob) {
	phone := &wechat.Phone{Base: "http://jiayi.sandbox", Signer: wechat.Signer{Token: account.Token, AppID: account.AppID, AESKey: account.AESKey},
		HTTP: &http.Client{Transport: handlerTransport{s.Handler}, Timeout: 10 * time.Second}}
	return func(j sandbox.MassJob) {
		time.Sleep(massReportDelay)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := phone.MassJobFinished(ctx, j.MsgID, j.Status, j.Total, j.Filter, j.Sent, j.Errors); err != nil {
			s.log.Warn("sandbox: mass-send results not posted back", "msg_id", j.MsgID, "err", err)
		}
	}
}
