package admin

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jiayi-health/jiayi/storage"
)

// principal is who is calling and what they may see.
type principal struct {
	Name  string // as the audit log names them
	Role  storage.Role
	Scope storage.Scope
	Staff *storage.Staff // nil for the operator's token
	CSRF  string         // the session's CSRF token; "" for the token, which needs none
	token string         // the session cookie's value
}

// need is what a route does, and so which roles may call it.
type need int

const (
	toRead    need = iota // every role, inside its scope
	toCare                // doctors for their own teams, admins, city staff
	toManage              // admins of an institution and city staff
	toRunCity             // city staff only: institutions themselves
)

// may is the one table of who may do what.
func may(r storage.Role, n need) bool {
	switch n {
	case toRead:
		return r != ""
	case toCare:
		return r == storage.RoleDoctor || r == storage.RoleAdmin || r == storage.RoleCity
	case toManage:
		return r == storage.RoleAdmin || r == storage.RoleCity
	case toRunCity:
		return r == storage.RoleCity
	}
	return false
}

const (
	sessionCookie = "jiayi_staff"
	browserCookie = "jiayi_browser"
	// DefaultIdle is how long an unused console session lasts.
	DefaultIdle = 30 * time.Minute
	// maxSession is how long any session lasts, used or not.
	maxSession = 12 * time.Hour
)

// errSignedOut says the request carries no live session or token.
var errSignedOut = errors.New("not signed in")

// errBadToken says an Authorization header carries the wrong token.
var errBadToken = errors.New("wrong admin token")

// who finds the caller: the operator's bearer token, or a staff session
// that is live, not disabled and made under the current password.
func (a *API) who(c *gin.Context) (principal, error) {
	if h := c.GetHeader("Authorization"); h != "" {
		token, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || a.Token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(a.Token)) != 1 {
			return principal{}, errBadToken
		}
		return principal{Name: actor, Role: storage.RoleCity}, nil
	}
	token, err := c.Cookie(sessionCookie)
	if err != nil || token == "" {
		return principal{}, errSignedOut
	}
	ctx := c.Request.Context()
	s, err := a.Redis.TouchStaffSession(ctx, token, a.idle())
	if errors.Is(err, storage.ErrNoSession) {
		return principal{}, errSignedOut
	}
	if err != nil {
		return principal{}, err
	}
	staff, err := a.DB.StaffByID(ctx, storage.Scope{}, s.StaffID)
	if errors.Is(err, storage.ErrNotFound) {
		return principal{}, errSignedOut
	}
	if err != nil {
		return principal{}, err
	}
	if staff.Disabled || staff.PasswordVersion != s.PasswordVersion || time.Since(s.Created) > maxSession {
		_ = a.Redis.EndStaffSession(ctx, token)
		return principal{}, errSignedOut
	}
	return principal{Name: staff.Username, Role: staff.Role, Scope: staff.Scope(), Staff: &staff, CSRF: s.CSRF, token: token}, nil
}

func (a *API) idle() time.Duration {
	if a.Idle > 0 {
		return a.Idle
	}
	return DefaultIdle
}

// csrfOK reports whether a request that changes something carries the
// session's CSRF token, in the X-CSRF-Token header or the csrf form field.
// The bearer token needs none: a browser never sends it by itself.
func csrfOK(c *gin.Context, p principal) bool {
	switch c.Request.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	if p.Staff == nil {
		return true
	}
	got := c.GetHeader("X-CSRF-Token")
	if got == "" {
		got = c.PostForm("csrf")
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(p.CSRF)) == 1
}

// admit is the one check every API route and page passes: signed in
// (401), allowed by role (403), carrying the CSRF token when it writes
// (403). What it lets through sees only its scope, because every lookup
// takes p.Scope. It answers with the status to refuse with, or 0.
func (a *API) admit(c *gin.Context, n need) (principal, int, error) {
	p, err := a.who(c)
	switch {
	case errors.Is(err, errSignedOut), errors.Is(err, errBadToken):
		return p, http.StatusUnauthorized, err
	case err != nil:
		return p, http.StatusInternalServerError, err
	case !may(p.Role, n):
		return p, http.StatusForbidden, errors.New("your role may not do this")
	case !csrfOK(c, p):
		return p, http.StatusForbidden, errors.New("missing or wrong CSRF token")
	}
	c.Set(principalKey, p)
	return p, 0, nil
}

// guard admits API calls, answering refusals as JSON.
func (a *API) guard(n need) gin.HandlerFunc {
	return func(c *gin.Context) {
		_, status, err := a.admit(c, n)
		switch status {
		case 0:
			c.Next()
		case http.StatusUnauthorized:
			c.AbortWithStatusJSON(status, gin.H{"error": "sign in, or send Authorization: Bearer JIAYI_ADMIN_TOKEN"})
		case http.StatusForbidden:
			c.AbortWithStatusJSON(status, gin.H{"error": err.Error()})
		default:
			a.fail(c, err)
			c.Abort()
		}
	}
}

const principalKey = "jiayi.principal"

// caller is the principal guard let through.
func caller(c *gin.Context) principal {
	return c.MustGet(principalKey).(principal)
}
