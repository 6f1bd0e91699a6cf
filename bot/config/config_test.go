package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/bot/push"
)

const (
	secret   = "s3cr3t-wechat-app-secret-value"
	piiKey   = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	aesKey   = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	adminTok = "admin-token-long-enough-1234"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func production() map[string]string {
	return map[string]string{
		"JIAYI_WECHAT_SECRET": secret, "JIAYI_WECHAT_APPID": "wx2c2769f8efd9abc2", "JIAYI_WECHAT_TOKEN": "tok123",
		"JIAYI_PII_KEY": piiKey, "JIAYI_REDIS_URL": "redis://127.0.0.1:6379/0",
		"JIAYI_DATABASE_URL": "postgres://jiayi:dbpassw0rd@db/jiayi", "JIAYI_WECHAT_AES_KEY": aesKey,
		"JIAYI_ADMIN_TOKEN": adminTok,
	}
}

func TestDefaultsAreTheSandbox(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Sandbox() || c.Addr != ":8080" || c.Region != "national" || c.DatabaseURL != "sqlite:jiayi.db" || c.RedisURL != "" ||
		c.AppID != "wxsandbox" || c.Token != "jiayi" || c.PIIKey != nil {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestSandboxTakesAnAppIDAndAESKeyForSafeMode(t *testing.T) {
	c, err := Load(env(map[string]string{"JIAYI_WECHAT_APPID": "wxtry", "JIAYI_WECHAT_AES_KEY": aesKey}))
	if err != nil || !c.Sandbox() || c.AppID != "wxtry" || c.AESKey != aesKey {
		t.Fatalf("%+v %v", c, err)
	}
}

func TestProductionLoads(t *testing.T) {
	c, err := Load(env(production()))
	if err != nil {
		t.Fatal(err)
	}
	if c.Sandbox() || len(c.PIIKey) != 32 || c.PIIKey[1] != 0x11 {
		t.Fatalf("%+v", c)
	}
}

func TestProductionRequiresItsSettings(t *testing.T) {
	for _, name := range []string{"JIAYI_WECHAT_APPID", "JIAYI_WECHAT_TOKEN", "JIAYI_PII_KEY", "JIAYI_REDIS_URL"} {
		e := production()
		delete(e, name)
		_, err := Load(env(e))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("without %s: %v", name, err)
		}
	}
}

func TestBadValuesNameTheVariableAndHideSecrets(t *testing.T) {
	cases := map[string]string{
		"JIAYI_ADDR":                    "8080",
		"JIAYI_DATABASE_URL":            "mysql://root:dbpassw0rd@x/y",
		"JIAYI_REDIS_URL":               "127.0.0.1:6379",
		"JIAYI_WECHAT_APPID":            "not-an-appid",
		"JIAYI_WECHAT_TOKEN":            "to",
		"JIAYI_WECHAT_AES_KEY":          "tooShortKeyValue",
		"JIAYI_PII_KEY":                 "hunter2-not-32-bytes",
		"JIAYI_ADMIN_TOKEN":             "short",
		"JIAYI_REGION":                  "atlantis",
		"JIAYI_FLOW_IDLE":               "forever",
		"JIAYI_BINDING_CODE_TTL":        "1s",
		"JIAYI_TRUSTED_PROXIES":         "10.0.0.1, the-load-balancer",
		"JIAYI_MAX_MESSAGES_PER_MINUTE": "-1",
		"JIAYI_MAX_CONNS_PER_IP":        "0",
		"JIAYI_WECHAT_ACCEPT_PLAINTEXT": "yes",
		"JIAYI_PUSH_WORKERS":            "0",
		"JIAYI_PPROF_ADDR":              "0.0.0.0:6060",
	}
	for name, value := range cases {
		e := production()
		e[name] = value
		_, err := Load(env(e))
		if err == nil || !strings.Contains(err.Error(), name+":") {
			t.Errorf("%s=%q: err %v", name, value, err)
			continue
		}
		for _, hidden := range []string{secret, "dbpassw0rd", "hunter2", "tooShortKeyValue", piiKey} {
			if strings.Contains(err.Error(), hidden) {
				t.Errorf("%s: error shows a secret: %v", name, err)
			}
		}
	}
}

func TestLogValueHidesSecrets(t *testing.T) {
	c, err := Load(env(production()))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	slog.New(slog.NewJSONHandler(&b, nil)).Info("start", "config", c)
	out := b.String()
	for _, hidden := range []string{secret, "dbpassw0rd", aesKey, adminTok, piiKey, fmt.Sprint(c.PIIKey)} {
		if strings.Contains(out, hidden) {
			t.Errorf("log shows %q: %s", hidden, out)
		}
	}
	if !strings.Contains(out, `"sandbox":false`) || !strings.Contains(out, `"database":"postgres"`) {
		t.Errorf("log lacks the settings: %s", out)
	}
}

func TestUnknownRegionNamesTheKnownProfiles(t *testing.T) {
	_, err := Load(env(map[string]string{"JIAYI_REGION": "atlantis"}))
	if err == nil || !strings.Contains(err.Error(), "JIAYI_REGION") || !strings.Contains(err.Error(), "harbin, kunming, linzi, national, township, yaoguan") {
		t.Fatalf("err = %v", err)
	}
	if c, err := Load(env(map[string]string{"JIAYI_REGION": "yaoguan"})); err != nil || c.Region != "yaoguan" {
		t.Fatalf("yaoguan: %+v %v", c, err)
	}
}

func TestRates(t *testing.T) {
	c, err := Load(env(map[string]string{"JIAYI_WECHAT_RATES": "template=10,customer=2.5"}))
	if err != nil || c.Rates["template"] != 10 || c.Rates["customer"] != 2.5 {
		t.Fatalf("%v %v", c.Rates, err)
	}
	if c.PushWorkers != push.DefaultWorkers {
		t.Fatalf("push workers %d by default, want %d", c.PushWorkers, push.DefaultWorkers)
	}
	if c, err := Load(env(map[string]string{"JIAYI_PUSH_WORKERS": "32"})); err != nil || c.PushWorkers != 32 {
		t.Fatalf("JIAYI_PUSH_WORKERS=32: %d %v", c.PushWorkers, err)
	}
}

// Templates are for the notices of push kinds jiayi has; a seasonal tip
// is marketing, which WeChat forbids in template messages.
func TestTemplatesNameKnownKindsAndNotSeasonalTips(t *testing.T) {
	c, err := Load(env(map[string]string{"JIAYI_WECHAT_TEMPLATES": "sign_request=tpl_a,personal_reminder=tpl_b"}))
	if err != nil || c.Templates["sign_request"] != "tpl_a" || c.Templates["personal_reminder"] != "tpl_b" {
		t.Fatalf("%v %v", c.Templates, err)
	}
	for value, says := range map[string]string{
		"sign_request=tpl_a,seasonal_reminder=tpl_s": "WeChat forbids marketing in template messages",
		"sign_requset=tpl_a":                         `"sign_requset" is no push kind`,
	} {
		if _, err := Load(env(map[string]string{"JIAYI_WECHAT_TEMPLATES": value})); err == nil ||
			!strings.Contains(err.Error(), "JIAYI_WECHAT_TEMPLATES") || !strings.Contains(err.Error(), says) {
			t.Errorf("%s: %v", value, err)
		}
	}
}

func TestDurations(t *testing.T) {
	c, err := Load(env(map[string]string{"JIAYI_FLOW_IDLE": "45m", "JIAYI_BINDING_CODE_TTL": "24h"}))
	if err != nil || c.FlowIdle != 45*time.Minute || c.BindingTTL != 24*time.Hour {
		t.Fatalf("%v %v %v", c.FlowIdle, c.BindingTTL, err)
	}
	if c, _ := Load(env(nil)); c.FlowIdle != 30*time.Minute || c.BindingTTL != 72*time.Hour {
		t.Fatalf("defaults %v %v", c.FlowIdle, c.BindingTTL)
	}
}

func TestLimitsAndPlaintext(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil || c.MaxPerMinute != DefaultMaxPerMinute || c.MaxConnsPerIP != DefaultMaxConnsPerIP || c.AcceptPlaintext {
		t.Fatalf("defaults: %d %d %v %v", c.MaxPerMinute, c.MaxConnsPerIP, c.AcceptPlaintext, err)
	}
	c, err = Load(env(map[string]string{"JIAYI_MAX_MESSAGES_PER_MINUTE": "0", "JIAYI_MAX_CONNS_PER_IP": "50",
		"JIAYI_WECHAT_AES_KEY": aesKey, "JIAYI_WECHAT_ACCEPT_PLAINTEXT": "true"}))
	if err != nil || c.MaxPerMinute != 0 || c.MaxConnsPerIP != 50 || !c.AcceptPlaintext {
		t.Fatalf("set: %d %d %v %v", c.MaxPerMinute, c.MaxConnsPerIP, c.AcceptPlaintext, err)
	}
	// Accepting plaintext means nothing without a key: said, not ignored.
	if _, err := Load(env(map[string]string{"JIAYI_WECHAT_ACCEPT_PLAINTEXT": "true"})); err == nil ||
		!strings.Contains(err.Error(), "JIAYI_WECHAT_ACCEPT_PLAINTEXT:") {
		t.Fatalf("plaintext without a key: %v", err)
	}
}

// The profiler listens on this machine only, and only when asked.
func TestProfilerAddress(t *testing.T) {
	if c, err := Load(env(nil)); err != nil || c.PprofAddr != "" {
		t.Fatalf("default: %q, %v", c.PprofAddr, err)
	}
	for _, ok := range []string{"127.0.0.1:6060", "[::1]:6060"} {
		if c, err := Load(env(map[string]string{"JIAYI_PPROF_ADDR": ok})); err != nil || c.PprofAddr != ok {
			t.Errorf("%s: %q, %v", ok, c.PprofAddr, err)
		}
	}
	for _, bad := range []string{":6060", "10.0.0.5:6060", "example.com:6060", "localhost:6060", "127.0.0.1"} {
		if _, err := Load(env(map[string]string{"JIAYI_PPROF_ADDR": bad})); err == nil || !strings.Contains(err.Error(), "JIAYI_PPROF_ADDR:") {
			t.Errorf("%s accepted: %v", bad, err)
		}
	}
}

func TestTrustedProxies(t *testing.T) {
	c, err := Load(env(map[string]string{"JIAYI_TRUSTED_PROXIES": "10.0.0.1, 172.16.0.0/12"}))
	if err != nil || len(c.TrustedProxies) != 2 || c.TrustedProxies[1] != "172.16.0.0/12" {
		t.Fatalf("%v %v", c.TrustedProxies, err)
	}
}
