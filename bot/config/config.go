// Package config reads jiayi's configuration from JIAYI_* environment
// variables. A bad value stops start-up with a message naming the variable;
// secret values never appear in messages or logs.
package config

import (
	"cmp"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jiayi-health/jiayi/bot/push"
	"github.com/jiayi-health/jiayi/bot/wechat"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"

	"github.com/jiayi-health/jiayi/flows"
)

// Config is jiayi's whole configuration.
type Config struct {
	Addr        string
	DatabaseURL string
	RedisURL    string // empty: the embedded store
	AppID       string
	Secret      string // empty: sandbox mode
	Token       string
	AESKey      string
	// AcceptPlaintext takes plaintext messages although AESKey is set, for
	// the days an account moves to safe mode; otherwise an AES key means
	// only encrypted messages are taken.
	AcceptPlaintext bool
	PIIKey          []byte // 32 bytes; nil in sandbox mode without one: a key file is used
	AdminToken      string
	Region          string                       // region profile: national, linzi, kunming, yaoguan, harbin, township
	Templates       map[string]string            // push kind -> WeChat template ID
	Fields          map[string]map[string]string // push kind -> our field -> template keyword
	WeChatAPI       string                       // base URL of the WeChat API (a gateway); empty: api.weixin.qq.com
	OutboxLease     time.Duration                // how long a dispatcher holds the pushes it claimed
	PushWorkers     int                          // recipients a dispatcher sends to at once
	DailyQuota      int                          // template messages WeChat allows a day
	Rates           map[string]float64           // sends per second per WeChat API: template, customer
	FlowIdle        time.Duration                // a conversation left this long expires
	BindingTTL      time.Duration                // how long a doctor's binding code stays valid
	// TrustedProxies are the addresses (IPs or CIDRs) of the proxies in
	// front of jiayi whose X-Forwarded-For names the client; none by default.
	TrustedProxies []string
	// MaxPerMinute is how many messages one WeChat user may send in a
	// minute before the rest wait (0: no limit).
	MaxPerMinute int
	// MaxConnsPerIP caps the open connections from one address. WeChat's
	// servers or a load balancer are few addresses carrying everyone, so the
	// default is generous: it stops one client hoarding connections.
	MaxConnsPerIP int
	// PprofAddr, when set, is a loopback address where Go's profiler is
	// served, for finding where the time goes under load.
	PprofAddr string
}

// Defaults of the limits above.
const (
	DefaultMaxPerMinute  = 40
	DefaultMaxConnsPerIP = 1000
)

// Sandbox reports whether jiayi runs without WeChat credentials: every
// outbound call is answered by the in-process stand-in.
func (c Config) Sandbox() bool { return c.Secret == "" }

var (
	appIDPattern   = regexp.MustCompile(`^wx[0-9A-Za-z]{16}$`)
	sandboxAppID   = regexp.MustCompile(`^[0-9A-Za-z_]{1,32}$`)
	tokenPattern   = regexp.MustCompile(`^[0-9A-Za-z]{3,32}$`)
	minAdminLength = 16
)

// Load reads the configuration through getenv (os.Getenv in production).
func Load(getenv func(string) string) (Config, error) {
	l := &loader{getenv: getenv}
	c := Config{
		Addr:        cmp.Or(getenv("JIAYI_ADDR"), ":8080"),
		PprofAddr:   getenv("JIAYI_PPROF_ADDR"),
		DatabaseURL: cmp.Or(getenv("JIAYI_DATABASE_URL"), storage.DefaultDatabaseURL),
		RedisURL:    getenv("JIAYI_REDIS_URL"),
		AppID:       getenv("JIAYI_WECHAT_APPID"),
		Secret:      getenv("JIAYI_WECHAT_SECRET"),
		Token:       getenv("JIAYI_WECHAT_TOKEN"),
		AESKey:      getenv("JIAYI_WECHAT_AES_KEY"),
		AdminToken:  getenv("JIAYI_ADMIN_TOKEN"),
		Region:      cmp.Or(getenv("JIAYI_REGION"), "national"),
	}
	l.service(&c)
	l.delivery(&c)
	l.account(&c)
	return c, errors.Join(l.errs...)
}

// loader gathers every problem instead of stopping at the first.
type loader struct {
	getenv func(string) string
	errs   []error
}

func (l *loader) bad(name, why string) { l.errs = append(l.errs, fmt.Errorf("%s: %s", name, why)) }

// pairs reads "a=b,c=d" and hands each pair to take, which says if it fits.
func (l *loader) pairs(name, usage string, take func(left, right string) bool) {
	raw := l.getenv(name)
	if raw == "" {
		return
	}
	for _, pair := range strings.Split(raw, ",") {
		left, right, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || left == "" || right == "" || !take(left, right) {
			l.bad(name, usage)
			return
		}
	}
}

// service: where jiayi listens, stores and runs, and its time limits.
func (l *loader) service(c *Config) {
	if !validAddr(c.Addr) {
		l.bad("JIAYI_ADDR", "must be host:port or :port, e.g. :8080")
	}
	if c.PprofAddr != "" && !loopbackAddr(c.PprofAddr) {
		l.bad("JIAYI_PPROF_ADDR", "must be a loopback host:port, e.g. 127.0.0.1:6060: the profiler shows the server's insides")
	}
	if !slices.Contains(templates.ProfileCodes(), c.Region) {
		l.bad("JIAYI_REGION", "unknown region profile; known: "+strings.Join(templates.ProfileCodes(), ", "))
	}
	if _, _, err := storage.ParseDatabaseURL(c.DatabaseURL); err != nil {
		l.bad("JIAYI_DATABASE_URL", err.Error())
	}
	if c.RedisURL != "" {
		if rdb, err := storage.OpenRedis(c.RedisURL); err != nil {
			l.bad("JIAYI_REDIS_URL", "must be redis://host:port[/db], rediss://…, or a cluster or sentinel URL (see README)")
		} else {
			rdb.Close()
		}
	}
	c.FlowIdle = duration(l.getenv, "JIAYI_FLOW_IDLE", flows.DefaultIdleAfter, time.Minute, 24*time.Hour, l.bad)
	c.BindingTTL = duration(l.getenv, "JIAYI_BINDING_CODE_TTL", flows.BindingCodeTTL, time.Hour, 30*24*time.Hour, l.bad)
	if raw := l.getenv("JIAYI_PII_KEY"); raw != "" {
		key, err := parseKey(raw)
		if err != nil {
			l.bad("JIAYI_PII_KEY", err.Error())
		}
		c.PIIKey = key
	}
	for _, p := range strings.Split(l.getenv("JIAYI_TRUSTED_PROXIES"), ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		_, _, cidrErr := net.ParseCIDR(p)
		if net.ParseIP(p) == nil && cidrErr != nil {
			l.bad("JIAYI_TRUSTED_PROXIES", fmt.Sprintf("%q is neither an IP address nor a CIDR", p))
		}
		c.TrustedProxies = append(c.TrustedProxies, p)
	}
	if c.AdminToken != "" && len(c.AdminToken) < minAdminLength {
		l.bad("JIAYI_ADMIN_TOKEN", fmt.Sprintf("must be at least %d characters", minAdminLength))
	}
	c.MaxPerMinute = l.count("JIAYI_MAX_MESSAGES_PER_MINUTE", DefaultMaxPerMinute, 0, "messages a minute per WeChat user, 0 for no limit")
	c.MaxConnsPerIP = l.count("JIAYI_MAX_CONNS_PER_IP", DefaultMaxConnsPerIP, 1, "open connections per client address")
}

// count reads a whole number of at least lo, or the default.
func (l *loader) count(name string, def, lo int, what string) int {
	raw := l.getenv(name)
	if raw == "" {
		return def
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < lo {
		l.bad(name, fmt.Sprintf("must be a whole number of %s, at least %d (default %d)", what, lo, def))
		return def
	}
	return n
}

// delivery: how pushes reach WeChat.
func (l *loader) delivery(c *Config) {
	l.pairs("JIAYI_WECHAT_TEMPLATES", "must be kind=templateID pairs separated by commas", func(kind, id string) bool {
		switch {
		case kind == flows.PushSeasonal:
			l.bad("JIAYI_WECHAT_TEMPLATES", "seasonal_reminder takes no template: WeChat forbids marketing in template messages, "+
				"so seasonal tips go as customer-service messages or in the digest on the 1st and 16th")
			return true
		case !slices.Contains(flows.PushKinds, kind):
			l.bad("JIAYI_WECHAT_TEMPLATES", fmt.Sprintf("%q is no push kind; known: %s", kind, strings.Join(flows.PushKinds, ", ")))
			return true
		}
		if c.Templates == nil {
			c.Templates = map[string]string{}
		}
		c.Templates[kind] = id
		return true
	})
	l.pairs("JIAYI_WECHAT_TEMPLATE_FIELDS", "must be kind.field=keyword pairs separated by commas, e.g. sign_request.number=character_string1",
		func(left, keyword string) bool {
			kind, field, ok := strings.Cut(left, ".")
			if !ok || kind == "" || field == "" {
				return false
			}
			if c.Fields == nil {
				c.Fields = map[string]map[string]string{}
			}
			if c.Fields[kind] == nil {
				c.Fields[kind] = map[string]string{}
			}
			c.Fields[kind][field] = keyword
			return true
		})
	c.Rates = push.DefaultRates()
	l.pairs("JIAYI_WECHAT_RATES", "must be api=sends-per-second pairs for template and customer, e.g. template=50,customer=20",
		func(api, rate string) bool {
			n, err := strconv.ParseFloat(rate, 64)
			if _, known := c.Rates[api]; !known || err != nil || n <= 0 || n > 10000 {
				return false
			}
			c.Rates[api] = n
			return true
		})
	c.DailyQuota = 100000
	if raw := l.getenv("JIAYI_WECHAT_DAILY_QUOTA"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 {
			l.bad("JIAYI_WECHAT_DAILY_QUOTA", "must be a whole number of template messages a day, e.g. 100000")
		}
		c.DailyQuota = n
	}
	if c.WeChatAPI = strings.TrimRight(l.getenv("JIAYI_WECHAT_API"), "/"); c.WeChatAPI != "" {
		if u, err := url.Parse(c.WeChatAPI); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			l.bad("JIAYI_WECHAT_API", "must be an http(s) base URL, e.g. https://wechat-gateway.example.org")
		}
	}
	c.OutboxLease = duration(l.getenv, "JIAYI_OUTBOX_LEASE", push.DefaultLease, time.Second, 10*time.Minute, l.bad)
	c.PushWorkers = push.DefaultWorkers
	if raw := l.getenv("JIAYI_PUSH_WORKERS"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 256 {
			l.bad("JIAYI_PUSH_WORKERS", "must be a whole number of recipients to send to at once, 1 to 256, e.g. 16")
		}
		c.PushWorkers = n
	}
}

// account: the Official Account, and what production mode requires.
func (l *loader) account(c *Config) {
	if c.AESKey != "" && !wechat.ValidAESKey(c.AESKey) {
		l.bad("JIAYI_WECHAT_AES_KEY", "must be the 43-character EncodingAESKey from the WeChat console")
	}
	switch l.getenv("JIAYI_WECHAT_ACCEPT_PLAINTEXT") {
	case "", "false":
	case "true":
		c.AcceptPlaintext = true
		if c.AESKey == "" {
			l.bad("JIAYI_WECHAT_ACCEPT_PLAINTEXT", "only means something with JIAYI_WECHAT_AES_KEY set")
		}
	default:
		l.bad("JIAYI_WECHAT_ACCEPT_PLAINTEXT", "must be true or false")
	}
	if c.Sandbox() {
		c.AppID = cmp.Or(c.AppID, "wxsandbox")
		c.Token = cmp.Or(c.Token, "jiayi")
		if !sandboxAppID.MatchString(c.AppID) {
			l.bad("JIAYI_WECHAT_APPID", "must be letters, digits or _ (at most 32)")
		}
	} else {
		required := []struct{ name, value string }{
			{"JIAYI_WECHAT_APPID", c.AppID}, {"JIAYI_WECHAT_TOKEN", c.Token},
			{"JIAYI_PII_KEY", l.getenv("JIAYI_PII_KEY")}, {"JIAYI_REDIS_URL", c.RedisURL},
		}
		for _, r := range required {
			if r.value == "" {
				l.bad(r.name, "required when JIAYI_WECHAT_SECRET is set")
			}
		}
		if c.AppID != "" && !appIDPattern.MatchString(c.AppID) {
			l.bad("JIAYI_WECHAT_APPID", "must be the AppID from the WeChat console (wx and 16 letters or digits)")
		}
	}
	if c.Token != "" && !tokenPattern.MatchString(c.Token) {
		l.bad("JIAYI_WECHAT_TOKEN", "must be 3 to 32 letters or digits, as the WeChat console requires")
	}
}

// duration reads a Go duration (30m, 72h) within bounds, or the default.
func duration(getenv func(string) string, name string, def, lo, hi time.Duration, bad func(string, string)) time.Duration {
	raw := getenv(name)
	if raw == "" {
		return def
	}
	d, err := time.ParseDuration(raw)
	if err != nil || d < lo || d > hi {
		bad(name, fmt.Sprintf("must be a duration from %v to %v, e.g. %v", lo, hi, def))
		return def
	}
	return d
}

func validAddr(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 0 && n <= 65535
}

// loopbackAddr says addr is host:port on this machine only.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || !validAddr(addr) {
		return false
	}
	ip := net.ParseIP(host) // an address, not a name whose lookup decides
	return ip != nil && ip.IsLoopback()
}

// parseKey accepts 32 bytes as 64 hex digits or as base64.
func parseKey(raw string) ([]byte, error) {
	raw = strings.TrimSpace(raw)
	if b, err := hex.DecodeString(raw); err == nil && len(b) == 32 {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(raw); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	return nil, errors.New("must be 32 random bytes, as 64 hex digits or base64 (openssl rand -hex 32)")
}

// LogValue shows the configuration without its secrets.
func (c Config) LogValue() slog.Value {
	set := func(s string) string {
		if s == "" {
			return "unset"
		}
		return "set"
	}
	dialect, _, _ := storage.ParseDatabaseURL(c.DatabaseURL)
	redis := "embedded"
	if c.RedisURL != "" {
		redis = "external"
	}
	return slog.GroupValue(
		slog.String("addr", c.Addr),
		slog.String("pprof_addr", c.PprofAddr),
		slog.String("region", c.Region),
		slog.String("database", string(dialect)),
		slog.String("redis", redis),
		slog.String("appid", c.AppID),
		slog.Bool("sandbox", c.Sandbox()),
		slog.String("safe_mode_key", set(c.AESKey)),
		slog.Bool("accept_plaintext", c.AcceptPlaintext),
		slog.String("admin_token", set(c.AdminToken)),
	)
}
