// Package admin is the console staff run the programme from, and its JSON
// API: staff sign in (password, session in Redis), and every request is
// checked by guard for who is calling, their role and, through the scope
// every query takes, their institution.
package admin

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
)

// API serves the console's JSON API under /admin/api, for the console's
// pages and for scripts.
type API struct {
	DB         *storage.DB
	Redis      *storage.Redis
	Sealer     *storage.Sealer
	Token      string        // JIAYI_ADMIN_TOKEN: city scope for scripts; empty: staff sessions only
	Idle       time.Duration // a console session unused this long ends; zero: DefaultIdle
	BindingTTL time.Duration // zero: flows.BindingCodeTTL
	Log        *slog.Logger
	// QR asks WeChat for a permanent QR code's URL for a scene.
	QR func(ctx context.Context, scene string) (string, error)
	// Now is the clock staff work on: a sandbox's can be moved forward; nil: the real time.
	Now func() time.Time

	pages map[string]*template.Template
}

func (a *API) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// actor is who the audit log names for a change made with the admin token.
const actor = "admin-api"

// route is one API route and what it needs of its caller.
type route struct {
	method, path string
	need         need
	handle       gin.HandlerFunc
}

func (a *API) routes() []route {
	return []route{
		{"GET", "/packages", toRead, a.packages},
		{"PUT", "/packages/:code/price", toManage, a.setPrice},
		{"GET", "/audit", toManage, a.audit},
		{"GET", "/outbox", toRead, a.outbox},
		{"POST", "/outbox/:id/retry", toManage, a.retry},
		{"GET", "/campaigns", toRead, a.campaigns},
		{"GET", "/calendar", toRead, a.calendar},
		{"POST", "/calendar", toManage, a.addCalendar},
		{"POST", "/calendar/:code", toManage, a.editCalendar},
		{"DELETE", "/calendar/:code", toManage, a.resetCalendar},
		{"GET", "/broadcasts", toRead, a.broadcasts},
		{"POST", "/broadcasts", toManage, a.createBroadcast},
		{"POST", "/broadcasts/audience", toManage, a.broadcastAudience},
		{"GET", "/broadcasts/:id", toRead, a.broadcast},
		{"POST", "/broadcasts/:id/cancel", toManage, a.cancelBroadcast},
		{"GET", "/doctors", toRead, a.doctors},
		{"GET", "/communities", toRead, a.communities},
		{"GET", "/teams", toRead, a.teams},
		{"POST", "/doctors/:id/binding-code", toManage, a.bindingCode},
		{"GET", "/doctors/:id/qr.png", toRead, a.doctorQR},
		{"POST", "/doctors/:id/hours", toCare, a.addWeeklyHours},
		{"POST", "/doctors/:id/exceptions", toCare, a.addException},
		{"POST", "/appointments/:id/visit", toCare, a.markVisit},
		{"GET", "/contracts/:number/fulfilment", toRead, a.fulfilment},
		{"GET", "/residents", toRead, a.residents},
		{"POST", "/residents/search", toRead, a.searchResidents},
		{"GET", "/residents/:id", toRead, a.resident},
		{"POST", "/residents/:id/unmask", toCare, a.unmask},
		{"POST", "/residents/:id/due", toCare, a.setDueDate},
		{"GET", "/contracts", toRead, a.contracts},
		{"POST", "/contracts/:number/answer", toCare, a.answer},
		{"POST", "/communities", toManage, a.createCommunity},
		{"POST", "/communities/:id/population", toManage, a.population},
		{"POST", "/doctors", toManage, a.createDoctor},
		{"POST", "/teams", toManage, a.createTeam},
		{"POST", "/teams/:id/handover", toManage, a.handover},
		{"GET", "/staff", toManage, a.staff},
		{"POST", "/staff", toManage, a.createStaffAPI},
		{"POST", "/staff/:id", toManage, a.changeStaff},
		{"POST", "/import/:what", toManage, a.importAPI},
		{"GET", "/export/residents.csv", toRead, a.exportResidents},
		{"GET", "/indicators", toRead, a.indicators},
		{"GET", "/indicators/:code/members", toRead, a.members},
	}
}

// Register adds the API's routes under /admin/api, each behind guard.
func (a *API) Register(r gin.IRouter) {
	pages, err := parsePages(a.now)
	if err != nil {
		panic(err) // the pages are embedded: a test catches a broken one
	}
	a.pages = pages
	g := r.Group("/admin/api")
	for _, rt := range a.routes() {
		g.Handle(rt.method, rt.path, a.guard(rt.need), rt.handle)
	}
	a.registerConsole(r)
}

// page reads ?limit= (1 to 500, default 50) and ?offset=.
func page(c *gin.Context) (storage.Page, bool) {
	limit, err1 := strconv.Atoi(c.DefaultQuery("limit", "50"))
	offset, err2 := strconv.Atoi(c.DefaultQuery("offset", "0"))
	if err1 != nil || err2 != nil || limit < 1 || limit > 500 || offset < 0 {
		c.JSON(http.StatusBadRequest, gin.H{"error": "limit must be 1 to 500 and offset 0 or more"})
		return storage.Page{}, false
	}
	return storage.Page{Limit: limit, Offset: offset}, true
}

// list answers a listing in the one shape every listing has.
func list[T any](c *gin.Context, items []T, total int, err error, a *API) {
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": items, "total": total})
}

func (a *API) doctors(c *gin.Context) {
	if pg, ok := page(c); ok {
		items, total, err := a.DB.ListDoctors(c.Request.Context(), caller(c).Scope, pg)
		list(c, items, total, err, a)
	}
}

func (a *API) communities(c *gin.Context) {
	if pg, ok := page(c); ok {
		items, total, err := a.DB.ListCommunities(c.Request.Context(), caller(c).Scope, pg)
		list(c, items, total, err, a)
	}
}

func (a *API) teams(c *gin.Context) {
	if pg, ok := page(c); ok {
		items, total, err := a.DB.ListTeams(c.Request.Context(), caller(c).Scope, pg)
		list(c, items, total, err, a)
	}
}

// id reads the :id path parameter and checks that the thing it names is in
// the caller's scope; anything else answers 404, as if it did not exist.
func (a *API) id(c *gin.Context, what storage.Thing) (int64, bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": string(what) + " id must be a number"})
		return 0, false
	}
	if err := a.DB.Visible(c.Request.Context(), caller(c).Scope, what, id); err != nil {
		a.fail(c, err)
		return 0, false
	}
	return id, true
}

// bindingCode issues a doctor a fresh single-use binding code, valid
// BindingTTL; the code is shown once and kept only as a keyed hash.
func (a *API) bindingCode(c *gin.Context) {
	id, ok := a.id(c, storage.ThingDoctor)
	if !ok {
		return
	}
	now, ttl := a.now(), a.bindingTTL()
	code, err := flows.IssueBindingCode(c.Request.Context(), a.DB, a.Sealer, id, now, ttl)
	if errors.Is(err, storage.ErrNotFound) {
		c.JSON(http.StatusNotFound, gin.H{"error": "no such doctor, or already bound"})
		return
	}
	if err != nil {
		a.fail(c, err)
		return
	}
	a.Log.Info("binding code issued", "doctor", id)
	c.JSON(http.StatusOK, gin.H{"doctor": id, "binding_code": code, "expires_at": now.Add(ttl).UTC()})
}

// packageJSON is a package as the API shows it. A share the programme
// gives no amount for is null until an admin sets the price.
type packageJSON struct {
	Code         string                                `json:"code"`
	Name         string                                `json:"name"`
	Kind         storage.PackageKind                   `json:"kind"`
	Default      bool                                  `json:"default"`
	Prices       map[storage.Insured]map[string]*int64 `json:"prices_fen"`
	PriceUnknown bool                                  `json:"price_unknown"`
	Assumed      bool                                  `json:"assumed"`
}

func pricesJSON(prices map[storage.Insured]storage.Split) map[storage.Insured]map[string]*int64 {
	out := map[storage.Insured]map[string]*int64{}
	for where, split := range prices {
		out[where] = map[string]*int64{}
		for payer, fen := range split {
			if fen == storage.Unknown {
				out[where][payer] = nil
				continue
			}
			out[where][payer] = &fen
		}
	}
	return out
}

// packages lists the catalog; ?unknown=true lists only the packages with a
// share of their price still to set.
func (a *API) packages(c *gin.Context) {
	cat, err := a.DB.Catalog(c.Request.Context())
	if err != nil {
		a.fail(c, err)
		return
	}
	onlyUnknown := c.Query("unknown") == "true"
	out := []packageJSON{}
	for _, p := range cat.Packages {
		if onlyUnknown && !p.PriceUnknown() {
			continue
		}
		out = append(out, packageJSON{Code: p.Code, Name: p.Name, Kind: p.Kind, Default: p.Default, Prices: pricesJSON(p.Prices),
			PriceUnknown: p.PriceUnknown(), Assumed: p.Assumed})
	}
	c.JSON(http.StatusOK, gin.H{"profile": cat.Profile.Code, "items": out, "total": len(out)})
}

// setPrice replaces a package's price split, in fen: {"local": {"resident":
// 5000}, "elsewhere": {...}}. New contracts use it; signed ones keep theirs.
func (a *API) setPrice(c *gin.Context) {
	if err := a.ownsCatalog(c); err != nil {
		a.catalogRefused(c, err)
		return
	}
	var prices map[storage.Insured]storage.Split
	if err := c.ShouldBindJSON(&prices); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": "body must be {\"local\": {payer: fen, …}, \"elsewhere\": {…}} with every amount given"})
		return
	}
	if err := profile.CheckPrice(prices); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	if err := a.DB.SetPackagePrice(c.Request.Context(), c.Param("code"), prices, caller(c).Name); err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"code": c.Param("code"), "prices_fen": pricesJSON(prices)})
}

// errNotCatalogOwner refuses a catalog change to an institution's admin
// where several institutions share the catalog.
var errNotCatalogOwner = errors.New("the catalog serves every institution: city staff set its prices")

func (a *API) catalogRefused(c *gin.Context, err error) {
	if errors.Is(err, errNotCatalogOwner) {
		c.JSON(http.StatusForbidden, gin.H{"error": err.Error()})
		return
	}
	a.fail(c, err)
}

// ownsCatalog says whether the caller may change the package catalog,
// which is the whole deployment's: city staff may, and so may an
// institution's admins when theirs is the deployment's only institution.
func (a *API) ownsCatalog(c *gin.Context) error {
	p := caller(c)
	if p.Scope.Whole() {
		return nil
	}
	n, err := a.DB.InstitutionCount(c.Request.Context())
	if err != nil {
		return err
	}
	if n != 1 {
		return errNotCatalogOwner
	}
	return nil
}

func (a *API) audit(c *gin.Context) {
	if pg, ok := page(c); ok {
		items, total, err := a.DB.AuditLog(c.Request.Context(), caller(c).Scope, pg)
		list(c, items, total, err, a)
	}
}

// outbox lists pushes by state: ?state=dead shows the dead letters with
// their errors; pending shows what waits (a kind without a template says so).
func (a *API) outbox(c *gin.Context) {
	state := c.DefaultQuery("state", "dead")
	if state != "dead" && state != "pending" && state != "sent" && state != "cancelled" {
		c.JSON(http.StatusBadRequest, gin.H{"error": "state must be dead, pending, sent or cancelled"})
		return
	}
	if pg, ok := page(c); ok {
		items, total, err := a.DB.ListOutbox(c.Request.Context(), caller(c).Scope, state, pg)
		list(c, items, total, err, a)
	}
}

// retry sends a dead letter again, with a fresh set of attempts.
func (a *API) retry(c *gin.Context) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": "push id must be a number"})
		return
	}
	p := caller(c)
	if err := a.DB.RetryDead(c.Request.Context(), p.Scope, id, a.now(), p.Name); err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"id": id, "state": "pending"})
}

// campaigns lists expanded campaigns, the seasonal tips still waiting
// (to go as customer-service messages, or in the digest) and when the
// next digest goes.
func (a *API) campaigns(c *gin.Context) {
	ctx := c.Request.Context()
	list, err := a.DB.Campaigns(ctx, 100)
	if err != nil {
		a.fail(c, err)
		return
	}
	pending, held, err := a.DB.SeasonalWaiting(ctx, flows.PriorityHeld)
	if err != nil {
		a.fail(c, err)
		return
	}
	if list == nil {
		list = []storage.Campaign{}
	}
	c.JSON(http.StatusOK, gin.H{"campaigns": list, "seasonal_pending": pending, "seasonal_held": held,
		"next_digest": flows.NextDigest(a.now()).Format(time.RFC3339)})
}

func (a *API) fail(c *gin.Context, err error) {
	if errors.Is(err, storage.ErrNotFound) {
		c.JSON(http.StatusNotFound, gin.H{"error": "not found"})
		return
	}
	if errors.Is(err, storage.ErrExists) {
		c.JSON(http.StatusConflict, gin.H{"error": "one with that name exists already"})
		return
	}
	var rule *flows.ErrSchedule
	if errors.As(err, &rule) {
		c.JSON(http.StatusBadRequest, gin.H{"error": rule.Reason})
		return
	}
	var refusal *flows.Refusal
	if errors.As(err, &refusal) {
		c.JSON(http.StatusBadRequest, gin.H{"error": refusal.Reason})
		return
	}
	a.Log.Error("admin api failed", "route", c.FullPath(), "err", err)
	c.JSON(http.StatusInternalServerError, gin.H{"error": "internal error"})
}

func (a *API) bindingTTL() time.Duration {
	if a.BindingTTL > 0 {
		return a.BindingTTL
	}
	return flows.BindingCodeTTL
}

// recordOn writes a staff action on a thing to the audit log of the
// thing's institution, which for city staff is not their own.
func (a *API) recordOn(c *gin.Context, what storage.Thing, key any, action, subject, detail string) {
	inst := caller(c).Scope.Institution
	if inst == 0 {
		var err error
		if inst, err = a.DB.InstitutionOf(c.Request.Context(), what, key); err != nil {
			a.Log.Error("audit entry's institution not found", "action", action, "err", err)
		}
	}
	a.record(c, inst, action, subject, detail)
}

// recordSchedule audits a change to a doctor's schedule under the doctor's
// name.
func (a *API) recordSchedule(c *gin.Context, doctor int64, action, detail string) {
	name, err := a.DB.DoctorName(c.Request.Context(), doctor)
	if err != nil {
		a.Log.Error("audit entry's doctor not found", "action", action, "err", err)
	}
	a.recordOn(c, storage.ThingDoctor, doctor, action, name+"医生", detail)
}

// answeredFor says how staff answered a request in a doctor's name.
func answeredFor(doctor, reason string) string {
	if reason == "" {
		return "代" + doctor + "医生确认"
	}
	return "代" + doctor + "医生拒绝：" + reason
}

// record writes a staff action to the audit log; the action has happened,
// so a failure to record it is logged, not shown as the action failing.
func (a *API) record(c *gin.Context, institution int64, action, subject, detail string) {
	if err := a.DB.Audit(c.Request.Context(), institution, caller(c).Name, action, subject, detail); err != nil {
		a.Log.Error("audit entry not written", "action", action, "err", err)
	}
}
