package admin

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jiayi-health/jiayi/storage"
)

// Sign-in throttling, counted in Redis so every instance shares it. Each
// window starts at its first failure and ends on time, however many tries
// follow, and a browser that signed in as the account before is not held
// to the account's limit: strangers guessing a password slow themselves
// down but never lock the account's owner out.
const (
	failWindow   = 15 * time.Minute
	ipLimit      = 30 // failures from one address
	accountLimit = 10 // failures for one user name, from browsers it never used
	browserLimit = 10 // failures from one known browser
	knownFor     = 90 * 24 * time.Hour
	loginCSRF    = "jiayi_login"
)

// NormaliseUsername is how user names are stored and compared.
func NormaliseUsername(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

// CheckUsername says what is wrong with a new user name, or nil.
func CheckUsername(name string) error {
	if len(name) < 2 || len(name) > 32 {
		return errors.New("user name must be 2 to 32 characters")
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return errors.New("user name takes lower-case letters, digits, '_', '.' and '-'")
		}
	}
	return nil
}

func secure(c *gin.Context) bool {
	return c.Request.TLS != nil || c.GetHeader("X-Forwarded-Proto") == "https"
}

func setCookie(c *gin.Context, name, value string, maxAge time.Duration) {
	http.SetCookie(c.Writer, &http.Cookie{Name: name, Value: value, Path: "/admin", MaxAge: int(maxAge.Seconds()),
		HttpOnly: true, Secure: secure(c), SameSite: http.SameSiteLaxMode})
}

// signInForm shows the sign-in page; its hidden CSRF field matches a
// cookie set here (there is no session yet to hold it).
func (a *API) signInForm(c *gin.Context) {
	if _, err := a.who(c); err == nil {
		c.Redirect(http.StatusSeeOther, "/admin/")
		return
	}
	a.showSignIn(c, http.StatusOK, "", "")
}

func (a *API) showSignIn(c *gin.Context, status int, username, problem string) {
	token := newToken()
	setCookie(c, loginCSRF, token, time.Hour)
	data := gin.H{"CSRF": token, "Username": username, "Problem": problem, "Next": c.Query("next")}
	if c.Query("changed") != "" {
		data["Flash"] = "密码已修改，请用新密码登录。"
	}
	a.render(c, status, "signin", data)
}

// signIn checks a user name and password posted from the sign-in form.
func (a *API) signIn(c *gin.Context) {
	ctx := c.Request.Context()
	want, _ := c.Cookie(loginCSRF)
	if got := c.PostForm("csrf"); want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		a.showSignIn(c, http.StatusForbidden, "", "页面已过期，请重新登录。")
		return
	}
	name, password := NormaliseUsername(c.PostForm("username")), c.PostForm("password")
	browser, _ := c.Cookie(browserCookie)
	keys := []string{"ip:" + c.ClientIP(), "user:" + name}
	if browser != "" {
		keys = append(keys, "browser:"+browser)
	}
	staff, err := a.DB.StaffByUsername(ctx, name)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		a.pageFail(c, err)
		return
	}
	known := false
	if err == nil {
		if known, err = a.Redis.KnownBrowser(ctx, browser, staff.ID); err != nil {
			a.pageFail(c, err)
			return
		}
	}
	counts, err := a.Redis.CountSignIn(ctx, failWindow, keys...)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	// A known browser answers only for itself: neither strangers guessing
	// at the account nor guesses from the same address (a clinic's shared
	// connection, a proxy) hold it back.
	if !known && (counts[0] > ipLimit || counts[1] > accountLimit) || known && counts[2] > browserLimit {
		a.showSignIn(c, http.StatusTooManyRequests, name, "尝试次数过多，请 15 分钟后再试。")
		return
	}
	hash := dummyHash
	if staff.ID != 0 {
		hash = staff.PasswordHash
	}
	if !VerifyPassword(hash, password) || staff.ID == 0 || staff.Disabled {
		a.showSignIn(c, http.StatusUnauthorized, name, "用户名或密码不对，或账号已停用。")
		return
	}
	_ = a.Redis.ClearSignInFailures(ctx, keys[1:]...)
	_ = a.Redis.UncountSignIn(ctx, keys[0])
	token, _, err := a.Redis.StartStaffSession(ctx, staff.ID, staff.PasswordVersion, a.idle())
	if err != nil {
		a.pageFail(c, err)
		return
	}
	setCookie(c, sessionCookie, token, maxSession)
	setCookie(c, loginCSRF, "", -1)
	if !known {
		if b, err := a.Redis.RememberBrowser(ctx, staff.ID, knownFor); err == nil {
			setCookie(c, browserCookie, b, knownFor)
		}
	}
	a.Log.Info("staff signed in", "staff", staff.ID)
	c.Redirect(http.StatusSeeOther, localNext(c.PostForm("next")))
}

// localNext keeps a post-sign-in redirect inside the console.
func localNext(next string) string {
	if strings.HasPrefix(next, "/admin/") && !strings.HasPrefix(next, "//") && !strings.Contains(next, `\`) {
		return next
	}
	return "/admin/"
}

// signOut ends the session.
func (a *API) signOut(c *gin.Context) {
	p := caller(c)
	if p.token != "" {
		if err := a.Redis.EndStaffSession(c.Request.Context(), p.token); err != nil {
			a.pageFail(c, err)
			return
		}
	}
	setCookie(c, sessionCookie, "", -1)
	c.Redirect(http.StatusSeeOther, "/admin/login")
}

func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
