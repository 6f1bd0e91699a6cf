package bot

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/jiayi-health/jiayi/bot/wechat/sandbox"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// piiKey is the personal-data key both modes start with in these tests, as
// an operator going live keeps the sandbox's key.
var piiKey = strings.Repeat("ab", 32)

// productionEnv is env with WeChat credentials: production mode.
func productionEnv(t *testing.T, env map[string]string) map[string]string {
	t.Helper()
	prod := map[string]string{"JIAYI_WECHAT_SECRET": "prod-secret-for-test", "JIAYI_WECHAT_APPID": "wx0123456789abcdef",
		"JIAYI_WECHAT_TOKEN": "prodtoken"}
	for k, v := range env {
		prod[k] = v
	}
	if prod["JIAYI_REDIS_URL"] == "" {
		prod["JIAYI_REDIS_URL"] = embeddedURL(t)
	}
	return prod
}

// sandboxCodes lists the binding codes a sandbox shows at /sandbox/demo.
func sandboxCodes(t *testing.T, srv *Server) []string {
	t.Helper()
	var demo struct {
		Doctors []struct {
			BindingCode string `json:"binding_code"`
		}
	}
	if err := json.Unmarshal(get(t, srv.Handler(), "/sandbox/demo", local).Body.Bytes(), &demo); err != nil {
		t.Fatal(err)
	}
	var codes []string
	for _, d := range demo.Doctors {
		codes = append(codes, d.BindingCode)
	}
	return codes
}

// A database a sandbox loaded its demo into does not go live: production
// refuses to start on it, naming the command that removes the demo, and
// starts once it has run.
func TestProductionRefusesSandboxDemoData(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, stack storagetest.Stack) {
		env := map[string]string{"JIAYI_DATABASE_URL": stack.DatabaseURL, "JIAYI_PII_KEY": piiKey}
		tried, _ := newServer(t, env, Options{RedisPrefix: stack.Redis.Prefix})
		if codes := sandboxCodes(t, tried); len(codes) < 2 {
			t.Fatalf("the sandbox showed codes %v", codes)
		}
		tried.Close()

		prod := productionEnv(t, map[string]string{"JIAYI_DATABASE_URL": stack.DatabaseURL, "JIAYI_PII_KEY": piiKey,
			"JIAYI_REDIS_URL": stack.RedisURL})
		err := refusedStart(t, prod)
		if !errors.Is(err, ErrDemoData) || !strings.Contains(err.Error(), "jiayi demo remove") ||
			!strings.Contains(err.Error(), "binding codes") {
			t.Fatalf("the refusal does not say what to do: %v", err)
		}
		if _, err := stack.DB.RemoveDemo(context.Background(), "test"); err != nil {
			t.Fatal(err)
		}
		standIn := sandbox.NewWithSecret("prod-secret-for-test")
		defer standIn.Close()
		live, _ := newServer(t, prod, Options{Transport: sandbox.Transport{}, RedisPrefix: stack.Redis.Prefix})
		if n, _ := live.DB.InstitutionCount(context.Background()); n != 0 {
			t.Fatalf("%d institutions left after the demo was removed", n)
		}
	})
}

// The codes a sandbox hands out at /sandbox/demo bind no one in production,
// whoever's they are: a sandbox started on a database with an organisation
// of its own gives that organisation's doctors codes too.
func TestSandboxBindingCodesDoNotBindInProduction(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, stack storagetest.Stack) {
		ctx := context.Background()
		if _, err := stack.DB.CreateInstitution(ctx, storage.Institution{Code: "hedong", Name: "河东镇卫生院", Kind: "township_centre"},
			[]storage.Community{{Town: "河东镇", Name: "河东村"}}, []storage.NewTeam{{Name: "孔医生团队",
				Doctor: storage.Doctor{Name: "孔医生"}, Communities: []int{0}}}); err != nil {
			t.Fatal(err)
		}
		env := map[string]string{"JIAYI_DATABASE_URL": stack.DatabaseURL, "JIAYI_PII_KEY": piiKey}
		tried, _ := newServer(t, env, Options{RedisPrefix: stack.Redis.Prefix})
		codes := sandboxCodes(t, tried)
		tried.Close()
		if len(codes) != 1 || len(codes[0]) != 8 {
			t.Fatalf("the sandbox showed codes %v", codes)
		}

		standIn := sandbox.NewWithSecret("prod-secret-for-test")
		defer standIn.Close()
		prod := productionEnv(t, map[string]string{"JIAYI_DATABASE_URL": stack.DatabaseURL, "JIAYI_PII_KEY": piiKey,
			"JIAYI_REDIS_URL": stack.RedisURL})
		live, _ := newServer(t, prod, Options{Transport: sandbox.Transport{}, RedisPrefix: stack.Redis.Prefix})
		h := live.Handler()
		refused := postText(t, h, "prodtoken", "o_stranger", "绑定 "+codes[0], 1).Body.String()
		unknown := postText(t, h, "prodtoken", "o_guesser", "绑定 AAAAAAAA", 2).Body.String()
		if !strings.Contains(refused, "绑定码不对") || strings.Contains(refused, "孔医生") ||
			stripXMLEnvelope(refused) != stripXMLEnvelope(unknown) {
			t.Fatalf("a sandbox code in production is answered %s; an unknown one %s", refused, unknown)
		}
		doctors, _ := live.DB.Doctors(ctx)
		if doctors[0].OpenID.Valid {
			t.Fatalf("a sandbox code bound %+v in production", doctors[0])
		}
	})
}

// stripXMLEnvelope is a passive reply's content, without whom it is to and
// when: what the user reads.
func stripXMLEnvelope(reply string) string {
	_, content, _ := strings.Cut(reply, "<Content>")
	content, _, _ = strings.Cut(content, "</Content>")
	return content
}
