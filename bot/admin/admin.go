// Package admin is the HTTP API the health centre's admins use (the console
// comes later): for now the package catalog and its prices, and the audit
// log. Every request carries JIAYI_ADMIN_TOKEN as a bearer token.
package admin

import (
	"cmp"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jiayi-health/jiayi/bot/push"
	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
)

// API serves /admin/api.
type API struct {
	DB         *storage.DB
	Sealer     *storage.Sealer
	Token      string
	BindingTTL time.Duration // zero: flows.BindingCodeTTL
	DailyQuota int           // template messages a day, for campaign completion dates
	Log        *slog.Logger
}

// actor is who the audit log names for a change made with the admin token.
const actor = "admin-api"

// Register adds the API's routes under /admin/api.
func (a *API) Register(r gin.IRouter) {
	g := r.Group("/admin/api", a.authorize)
	g.GET("/packages", a.packages)
	g.PUT("/packages/:code/price", a.setPrice)
	g.POST("/packages/:code/confirm", a.confirm)
	g.GET("/audit", a.audit)
	g.GET("/outbox", a.outbox)
	g.GET("/campaigns", a.campaigns)
	g.GET("/doctors", a.doctors)
	g.POST("/doctors/:id/binding-code", a.bindingCode)
	g.POST("/doctors/:id/hours", a.addWeeklyHours)
	g.POST("/doctors/:id/exceptions", a.addException)
	g.POST("/appointments/:id/visit", a.markVisit)
	g.GET("/contracts/:number/fulfilment", a.fulfilment)
}

func (a *API) doctors(c *gin.Context) {
	docs, err := a.DB.Doctors(c.Request.Context())
	if err != nil {
		a.fail(c, err)
		return
	}
	type doctorJSON struct {
		ID    int64  `json:"id"`
		Name  string `json:"name"`
		Team  string `json:"team"`
		Bound bool   `json:"bound"`
	}
	out := []doctorJSON{}
	for _, d := range docs {
		out = append(out, doctorJSON{ID: d.ID, Name: d.Name, Team: d.TeamName, Bound: d.OpenID.Valid})
	}
	c.JSON(http.StatusOK, gin.H{"doctors": out})
}

// bindingCode issues a doctor a fresh single-use binding code, valid
// BindingTTL; the code is shown once and kept only as a keyed hash.
func (a *API) bindingCode(c *gin.Context) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": "doctor id must be a number"})
		return
	}
	now, ttl := time.Now(), a.BindingTTL
	if ttl == 0 {
		ttl = flows.BindingCodeTTL
	}
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

func (a *API) authorize(c *gin.Context) {
	token, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(token), []byte(a.Token)) != 1 {
		c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"error": "missing or wrong admin token"})
		return
	}
	c.Next()
}

// packageJSON is a package as the API shows it.
type packageJSON struct {
	Code           string                            `json:"code"`
	Name           string                            `json:"name"`
	Kind           storage.PackageKind               `json:"kind"`
	Default        bool                              `json:"default"`
	Prices         map[storage.Insured]storage.Split `json:"prices_fen"`
	PriceAssumed   bool                              `json:"price_assumed"`
	PriceConfirmed bool                              `json:"price_confirmed"`
	Unconfirmed    bool                              `json:"unconfirmed"`
}

// packages lists the catalog; ?unconfirmed=true lists only the prices that
// were assumed and not yet confirmed by an admin.
func (a *API) packages(c *gin.Context) {
	cat, err := a.DB.Catalog(c.Request.Context())
	if err != nil {
		a.fail(c, err)
		return
	}
	onlyUnconfirmed := c.Query("unconfirmed") == "true"
	out := []packageJSON{}
	for _, p := range cat.Packages {
		if onlyUnconfirmed && !p.Unconfirmed() {
			continue
		}
		out = append(out, packageJSON{Code: p.Code, Name: p.Name, Kind: p.Kind, Default: p.Default, Prices: p.Prices,
			PriceAssumed: p.PriceAssumed, PriceConfirmed: p.PriceConfirmed, Unconfirmed: p.Unconfirmed()})
	}
	c.JSON(http.StatusOK, gin.H{"profile": cat.Profile.Code, "packages": out})
}

// setPrice replaces a package's price split, in fen: {"local": {"resident":
// 5000}, "elsewhere": {...}}. New contracts use it; signed ones keep theirs.
func (a *API) setPrice(c *gin.Context) {
	var prices map[storage.Insured]storage.Split
	if err := c.ShouldBindJSON(&prices); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": "body must be {\"local\": {payer: fen, …}, \"elsewhere\": {…}}"})
		return
	}
	if err := profile.CheckPrice(prices); err != nil {
		c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		return
	}
	if err := a.DB.SetPackagePrice(c.Request.Context(), c.Param("code"), prices, actor); err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"code": c.Param("code"), "prices_fen": prices, "price_confirmed": true})
}

// confirm records that an assumed price is right as it stands.
func (a *API) confirm(c *gin.Context) {
	if err := a.DB.ConfirmPackagePrice(c.Request.Context(), c.Param("code"), actor); err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"code": c.Param("code"), "price_confirmed": true})
}

func (a *API) audit(c *gin.Context) {
	limit, err := strconv.Atoi(c.DefaultQuery("limit", "50"))
	if err != nil || limit < 1 || limit > 1000 {
		c.JSON(http.StatusBadRequest, gin.H{"error": "limit must be 1 to 1000"})
		return
	}
	entries, err := a.DB.AuditLog(c.Request.Context(), limit)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"entries": entries})
}

// outbox lists pushes by state: ?state=dead shows the dead letters with
// their errors; pending shows what waits (a kind without a template says so).
func (a *API) outbox(c *gin.Context) {
	state := c.DefaultQuery("state", "dead")
	if state != "dead" && state != "pending" && state != "sent" && state != "cancelled" {
		c.JSON(http.StatusBadRequest, gin.H{"error": "state must be dead, pending, sent or cancelled"})
		return
	}
	limit, err := strconv.Atoi(c.DefaultQuery("limit", "50"))
	if err != nil || limit < 1 || limit > 1000 {
		c.JSON(http.StatusBadRequest, gin.H{"error": "limit must be 1 to 1000"})
		return
	}
	rows, err := a.DB.OutboxByState(c.Request.Context(), state, limit)
	if err != nil {
		a.fail(c, err)
		return
	}
	if rows == nil {
		rows = []storage.OutboxEntry{}
	}
	c.JSON(http.StatusOK, gin.H{"state": state, "pushes": rows})
}

// campaigns lists expanded campaigns and when the seasonal pushes still
// waiting will have gone, at the part of the daily quota they may use.
func (a *API) campaigns(c *gin.Context) {
	ctx := c.Request.Context()
	list, err := a.DB.Campaigns(ctx, 100)
	if err != nil {
		a.fail(c, err)
		return
	}
	pending, err := a.DB.PendingOfKind(ctx, flows.PushSeasonal)
	if err != nil {
		a.fail(c, err)
		return
	}
	quota := cmp.Or(a.DailyQuota, 100000)
	today := time.Now().In(flows.Shanghai)
	if list == nil {
		list = []storage.Campaign{}
	}
	c.JSON(http.StatusOK, gin.H{"campaigns": list, "seasonal_pending": pending, "daily_quota": quota,
		"expected_completion": push.ExpectedCompletion(pending, quota, today).Format("2006-01-02")})
}

func (a *API) fail(c *gin.Context, err error) {
	if errors.Is(err, storage.ErrNotFound) {
		c.JSON(http.StatusNotFound, gin.H{"error": "not found"})
		return
	}
	var rule *flows.ErrSchedule
	if errors.As(err, &rule) {
		c.JSON(http.StatusBadRequest, gin.H{"error": rule.Reason})
		return
	}
	a.Log.Error("admin api failed", "route", c.FullPath(), "err", err)
	c.JSON(http.StatusInternalServerError, gin.H{"error": "internal error"})
}
