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

	"github.com/jiayi-health/jiayi/bot/wechat"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
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
	PIIKey      []byte // 32 bytes; nil in sandbox mode without one: a key file is used
	AdminToken  string
	Region      string                       // region profile: national, linzi, kunming, yaoguan, harbin, township
	Templates   map[string]string            // push kind -> WeChat template ID
	Fields      map[string]map[string]string // push kind -> our field -> template keyword
	WeChatAPI   string                       // base URL of the WeChat API (a gateway); empty: api.weixin.qq.com
	OutboxLease time.Duration                // how long a dispatcher holds the pushes it claimed
	DailyQuota  int                          // template messages WeChat allows a day
	Rates       map[string]float64           // sends per second per WeChat API: template, customer
	FlowIdle    time.Duration                // a conversation left this long expires
	BindingTTL  time.Duration                // how long a doctor's binding code stays valid
}

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
	c := Config{
		Addr:        cmp.Or(getenv("JIAYI_ADDR"), ":8080"),
		DatabaseURL: cmp.Or(getenv("JIAYI_DATABASE_URL"), storage.DefaultDatabaseURL),
		RedisURL:    getenv("JIAYI_REDIS_URL"),
		AppID:       getenv("JIAYI_WECHAT_APPID"),
		Secret:      getenv("JIAYI_WECHAT_SECRET"),
		Token:       getenv("JIAYI_WECHAT_TOKEN"),
		AESKey:      getenv("JIAYI_WECHAT_AES_KEY"),
		AdminToken:  getenv("JIAYI_ADMIN_TOKEN"),
		Region:      cmp.Or(getenv("JIAYI_REGION"), "national"),
	}
	var errs []error
	bad := func(name, why string) { errs = append(errs, fmt.Errorf("%s: %s", name, why)) }

	if !validAddr(c.Addr) {
		bad("JIAYI_ADDR", "must be host:port or :port, e.g. :8080")
	}
	if !slices.Contains(templates.ProfileCodes(), c.Region) {
		bad("JIAYI_REGION", "unknown region profile; known: "+strings.Join(templates.ProfileCodes(), ", "))
	}
	if _, _, err := storage.ParseDatabaseURL(c.DatabaseURL); err != nil {
		bad("JIAYI_DATABASE_URL", err.Error())
	}
	if c.RedisURL != "" {
		if rdb, err := storage.OpenRedis(c.RedisURL); err != nil {
			bad("JIAYI_REDIS_URL", "must be redis://host:port[/db], rediss://…, or a cluster or sentinel URL (see README)")
		} else {
			rdb.Close()
		}
	}
	if raw := getenv("JIAYI_WECHAT_TEMPLATES"); raw != "" {
		c.Templates = map[string]string{}
		for _, pair := range strings.Split(raw, ",") {
			kind, id, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if !ok || kind == "" || id == "" {
				bad("JIAYI_WECHAT_TEMPLATES", "must be kind=templateID pairs separated by commas")
				break
			}
			c.Templates[kind] = id
		}
	}
	c.FlowIdle = duration(getenv, "JIAYI_FLOW_IDLE", 30*time.Minute, time.Minute, 24*time.Hour, bad)
	c.OutboxLease = duration(getenv, "JIAYI_OUTBOX_LEASE", 30*time.Second, time.Second, 10*time.Minute, bad)
	c.Rates = map[string]float64{"template": 50, "customer": 20}
	if raw := getenv("JIAYI_WECHAT_RATES"); raw != "" {
		for _, pair := range strings.Split(raw, ",") {
			api, rate, ok := strings.Cut(strings.TrimSpace(pair), "=")
			n, err := strconv.ParseFloat(rate, 64)
			if _, known := c.Rates[api]; !ok || !known || err != nil || n <= 0 || n > 10000 {
				bad("JIAYI_WECHAT_RATES", "must be api=sends-per-second pairs for template and customer, e.g. template=50,customer=20")
				break
			}
			c.Rates[api] = n
		}
	}
	c.DailyQuota = 100000
	if raw := getenv("JIAYI_WECHAT_DAILY_QUOTA"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 {
			bad("JIAYI_WECHAT_DAILY_QUOTA", "must be a whole number of template messages a day, e.g. 100000")
		}
		c.DailyQuota = n
	}
	if c.WeChatAPI = strings.TrimRight(getenv("JIAYI_WECHAT_API"), "/"); c.WeChatAPI != "" {
		if u, err := url.Parse(c.WeChatAPI); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("JIAYI_WECHAT_API", "must be an http(s) base URL, e.g. https://wechat-gateway.example.org")
		}
	}
	c.BindingTTL = duration(getenv, "JIAYI_BINDING_CODE_TTL", 72*time.Hour, time.Hour, 30*24*time.Hour, bad)
	if raw := getenv("JIAYI_WECHAT_TEMPLATE_FIELDS"); raw != "" {
		c.Fields = map[string]map[string]string{}
		for _, pair := range strings.Split(raw, ",") {
			left, keyword, ok := strings.Cut(strings.TrimSpace(pair), "=")
			kind, field, ok2 := strings.Cut(left, ".")
			if !ok || !ok2 || kind == "" || field == "" || keyword == "" {
				bad("JIAYI_WECHAT_TEMPLATE_FIELDS", "must be kind.field=keyword pairs separated by commas, e.g. sign_request.number=character_string1")
				break
			}
			if c.Fields[kind] == nil {
				c.Fields[kind] = map[string]string{}
			}
			c.Fields[kind][field] = keyword
		}
	}
	if c.AESKey != "" && !wechat.ValidAESKey(c.AESKey) {
		bad("JIAYI_WECHAT_AES_KEY", "must be the 43-character EncodingAESKey from the WeChat console")
	}
	if raw := getenv("JIAYI_PII_KEY"); raw != "" {
		key, err := parseKey(raw)
		if err != nil {
			bad("JIAYI_PII_KEY", err.Error())
		}
		c.PIIKey = key
	}
	if c.AdminToken != "" && len(c.AdminToken) < minAdminLength {
		bad("JIAYI_ADMIN_TOKEN", fmt.Sprintf("must be at least %d characters", minAdminLength))
	}

	if c.Sandbox() {
		c.AppID = cmp.Or(c.AppID, "wxsandbox")
		c.Token = cmp.Or(c.Token, "jiayi")
		if !sandboxAppID.MatchString(c.AppID) {
			bad("JIAYI_WECHAT_APPID", "must be letters, digits or _ (at most 32)")
		}
	} else {
		required := []struct{ name, value string }{
			{"JIAYI_WECHAT_APPID", c.AppID}, {"JIAYI_WECHAT_TOKEN", c.Token},
			{"JIAYI_PII_KEY", getenv("JIAYI_PII_KEY")}, {"JIAYI_REDIS_URL", c.RedisURL},
		}
		for _, r := range required {
			if r.value == "" {
				bad(r.name, "required when JIAYI_WECHAT_SECRET is set")
			}
		}
		if c.AppID != "" && !appIDPattern.MatchString(c.AppID) {
			bad("JIAYI_WECHAT_APPID", "must be the AppID from the WeChat console (wx and 16 letters or digits)")
		}
	}
	if c.Token != "" && !tokenPattern.MatchString(c.Token) {
		bad("JIAYI_WECHAT_TOKEN", "must be 3 to 32 letters or digits, as the WeChat console requires")
	}
	return c, errors.Join(errs...)
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
		slog.String("region", c.Region),
		slog.String("database", string(dialect)),
		slog.String("redis", redis),
		slog.String("appid", c.AppID),
		slog.Bool("sandbox", c.Sandbox()),
		slog.String("safe_mode_key", set(c.AESKey)),
		slog.String("admin_token", set(c.AdminToken)),
	)
}
