package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// A synthetic resident (the ID's check digit is valid).
const (
	residentID    = "110105195503020210"
	residentPhone = "13912345678"
)

var msgCounter int64 = 5000

func nextMsgID() int {
	msgCounter++
	return int(msgCounter)
}

// live runs a server on a loopback port with its dispatcher, as serve does.
func live(t *testing.T, env map[string]string, opt Options) (*Server, string) {
	t.Helper()
	srv, _ := newServer(t, env, opt)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { stop(); <-done })
	return srv, "http://" + ln.Addr().String()
}

func chat(t testing.TB, srv *Server, from, text string) string {
	t.Helper()
	rec := postText(t, srv.Handler(), "jiayi", from, text, nextMsgID())
	if rec.Code != 200 {
		t.Fatalf("%q: status %d", text, rec.Code)
	}
	return rec.Body.String()
}

// waitPush waits for a template message of a kind to reach someone in the
// sandbox, and returns its data.
func waitPush(t *testing.T, srv *Server, to, kind string, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for _, m := range srv.StandIn.Outbox(to) {
			if m.Kind == "template" && strings.Contains(string(m.Data), `"template_id":"sandbox_`+kind+`"`) {
				return string(m.Data)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s push to %s within %v: %+v", kind, to, within, srv.StandIn.Outbox(to))
	return ""
}

func TestSignAndConfirmEndToEnd(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, stack storagetest.Stack) {
		srv, _ := live(t, map[string]string{"JIAYI_DATABASE_URL": stack.DatabaseURL, "JIAYI_REDIS_URL": stack.RedisURL},
			Options{RedisPrefix: stack.Redis.Prefix})
		var demo struct {
			Doctors []struct {
				ID          int64
				Name        string
				BindingCode string `json:"binding_code"`
			}
		}
		json.Unmarshal(get(t, srv.Handler(), "/sandbox/demo", local).Body.Bytes(), &demo)
		doctor := demo.Doctors[0]

		// The doctor binds first, so the sign request reaches them at once.
		if reply := chat(t, srv, "o_e2e_doc", "绑定 "+doctor.BindingCode); !strings.Contains(reply, "绑定成功") {
			t.Fatalf("bind: %s", reply)
		}
		resident := "o_e2e_res"
		for _, s := range []string{"签约", "1", "王秀英", "同意", residentID, residentPhone, "1", "1", "1", "0"} {
			chat(t, srv, resident, s)
		}
		signedAt := time.Now()
		reply := chat(t, srv, resident, "同意")
		number := regexp.MustCompile(`QY\d{10}`).FindString(reply)
		if number == "" || !strings.Contains(reply, "待医生确认") {
			t.Fatalf("sign: %s", reply)
		}
		data := waitPush(t, srv, "o_e2e_doc", "sign_request", 2*time.Second)
		t.Logf("sign request reached the doctor %v after 同意", time.Since(signedAt).Round(time.Millisecond))
		if !strings.Contains(data, number) || strings.Contains(data, residentID) || strings.Contains(data, residentPhone) {
			t.Fatalf("sign request data: %s", data)
		}
		if reply := chat(t, srv, "o_e2e_doc", "确认 "+number); !strings.Contains(reply, "已确认") {
			t.Fatalf("confirm: %s", reply)
		}
		if data := waitPush(t, srv, resident, "sign_confirmed", 2*time.Second); !strings.Contains(data, number) {
			t.Fatalf("confirmation: %s", data)
		}

		// Nothing at rest holds the ID number or the phone in clear.
		assertNoClearPersonalData(t, stack, srv)
	})
}

func assertNoClearPersonalData(t *testing.T, stack storagetest.Stack, srv *Server) {
	t.Helper()
	ctx := context.Background()
	secrets := []string{residentID, residentPhone, residentID[6:14] + residentID[14:17]}
	tables := []string{"residents", "contracts", "contract_packages", "contract_events", "outbox", "id_attempts", "audit_log",
		"wechat_users", "appointments", "surveys"}
	raw := storagetest.SQLAt(t, stack.DatabaseURL)
	for _, table := range tables {
		rows, err := raw.QueryxContext(ctx, "SELECT * FROM "+table)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			vals, _ := rows.SliceScan()
			line := fmt.Sprint(vals...)
			for _, v := range vals {
				if b, ok := v.([]byte); ok {
					line += string(b)
				}
			}
			for _, s := range secrets {
				if strings.Contains(line, s) {
					t.Fatalf("table %s holds %q in clear: %s", table, s, line)
				}
			}
		}
		rows.Close()
	}
	keys, err := srv.Redis.Client.Keys(ctx, srv.Redis.Prefix+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("redis keys: %v %v", keys, err)
	}
	for _, k := range keys {
		var blob string
		switch srv.Redis.Client.Type(ctx, k).Val() {
		case "hash":
			blob = fmt.Sprint(srv.Redis.Client.HGetAll(ctx, k).Val())
		case "string":
			blob = srv.Redis.Client.Get(ctx, k).Val()
		}
		for _, s := range secrets {
			if strings.Contains(blob, s) {
				t.Fatalf("redis %s holds %q in clear", k, s)
			}
		}
	}
}

// Two phones of one WeChat user press 同意 at the same moment: one contract.
func TestConcurrentAgreeMakesOneContract(t *testing.T) {
	srv, _ := newServer(t, nil, Options{})
	resident := "o_two_devices"
	for _, s := range []string{"签约", "1", "王秀英", "同意", residentID, residentPhone, "1", "1", "1", "0"} {
		chat(t, srv, resident, s)
	}
	var wg sync.WaitGroup
	replies := make([]string, 2)
	for i := range replies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i] = chat(t, srv, resident, "同意")
		}()
	}
	wg.Wait()
	contracts, err := srv.DB.ContractsManagedBy(context.Background(), resident)
	if err != nil || len(contracts) != 1 {
		t.Fatalf("%d contracts (%v); replies:\n%s\n%s", len(contracts), err, replies[0], replies[1])
	}
	numbered := 0
	for _, r := range replies {
		if strings.Contains(r, contracts[0].Number) {
			numbered++
		}
	}
	if numbered != 1 {
		t.Fatalf("replies: %q", replies)
	}
}

// A retried MsgId in the middle of signing does not move the conversation twice.
func TestRetryMidSigningRunsOnce(t *testing.T) {
	srv, _ := newServer(t, nil, Options{})
	h := srv.Handler()
	for _, s := range []string{"签约", "1"} {
		chat(t, srv, "o_retry_sign", s)
	}
	// The reply kept for retries is sent again stamped with its own moment:
	// a second may pass between the two.
	stamp := regexp.MustCompile(`<CreateTime>\d+</CreateTime>`)
	first := stamp.ReplaceAllString(postText(t, h, "jiayi", "o_retry_sign", "王秀英", 777).Body.String(), "")
	again := stamp.ReplaceAllString(postText(t, h, "jiayi", "o_retry_sign", "王秀英", 777).Body.String(), "")
	if first != again || !strings.Contains(first, "单独同意") {
		t.Fatalf("retry answered differently:\n%s\n%s", first, again)
	}
	// Still at the consent step: 同意 goes on to the ID number.
	if reply := chat(t, srv, "o_retry_sign", "同意"); !strings.Contains(reply, "身份证号码") {
		t.Fatalf("after the retry: %s", reply)
	}
}

func TestBookRescheduleCancelEndToEnd(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, stack storagetest.Stack) {
		srv, _ := live(t, map[string]string{"JIAYI_DATABASE_URL": stack.DatabaseURL, "JIAYI_REDIS_URL": stack.RedisURL},
			Options{RedisPrefix: stack.Redis.Prefix})
		var demo struct {
			Doctors []struct {
				BindingCode string `json:"binding_code"`
			}
		}
		json.Unmarshal(get(t, srv.Handler(), "/sandbox/demo", local).Body.Bytes(), &demo)
		doctor, resident := "o_bk_doc", "o_bk_res"
		chat(t, srv, doctor, "绑定 "+demo.Doctors[0].BindingCode)
		for _, s := range []string{"签约", "1", "王秀英", "同意", residentID, residentPhone, "1", "0", "1", "0"} {
			chat(t, srv, resident, s)
		}
		number := regexp.MustCompile(`QY\d{10}`).FindString(chat(t, srv, resident, "同意"))
		if reply := chat(t, srv, doctor, "确认 "+number); !strings.Contains(reply, "已确认") {
			t.Fatalf("confirm: %s", reply)
		}
		for _, s := range []string{"预约", "1", "1", "2", "上午", "1"} {
			chat(t, srv, resident, s)
		}
		if reply := chat(t, srv, resident, "确认"); !strings.Contains(reply, "预约成功") {
			t.Fatalf("book: %s", reply)
		}
		waitPush(t, srv, doctor, "booking_created", 2*time.Second)
		for _, s := range []string{"改约 1", "3", "上午", "2"} {
			chat(t, srv, resident, s)
		}
		if reply := chat(t, srv, resident, "确认"); !strings.Contains(reply, "改约成功") {
			t.Fatalf("reschedule: %s", reply)
		}
		waitPush(t, srv, doctor, "booking_changed", 2*time.Second)
		chat(t, srv, resident, "取消 1")
		if reply := chat(t, srv, resident, "确认"); !strings.Contains(reply, "已取消") {
			t.Fatalf("cancel: %s", reply)
		}
		waitPush(t, srv, doctor, "booking_cancelled", 2*time.Second)
		if reply := chat(t, srv, resident, "我的预约"); !strings.Contains(reply, "暂无预约") {
			t.Fatalf("after cancelling: %s", reply)
		}
		assertNoClearPersonalData(t, stack, srv)
	})
}

// The console's indicators follow what residents and doctors do in chat:
// a signing the doctor confirms counts once confirmed, and a cancellation
// counts too, while the resident is no longer signed at the period's end.
func TestIndicatorsFollowTheChat(t *testing.T) {
	srv, _ := newServer(t, map[string]string{"JIAYI_ADMIN_TOKEN": "a-long-enough-admin-token"}, Options{})
	activity := func() map[string]any {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, "/admin/api/indicators", nil)
		req.Header.Set("Authorization", "Bearer a-long-enough-admin-token")
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		var out struct {
			Activity map[string]any `json:"activity"`
		}
		if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &out) != nil {
			t.Fatalf("indicators: %d %s", rec.Code, rec.Body)
		}
		return out.Activity
	}
	var demo struct {
		Doctors []struct {
			BindingCode string `json:"binding_code"`
		}
	}
	json.Unmarshal(get(t, srv.Handler(), "/sandbox/demo", local).Body.Bytes(), &demo)
	doctor, resident := "o_ind_doc", "o_ind_res"
	chat(t, srv, doctor, "绑定 "+demo.Doctors[0].BindingCode)
	for _, s := range []string{"签约", "1", "王秀英", "同意", residentID, residentPhone, "1", "0", "1", "0"} {
		chat(t, srv, resident, s)
	}
	number := regexp.MustCompile(`QY\d{10}`).FindString(chat(t, srv, resident, "同意"))
	if a := activity(); a["signings"] != 0.0 {
		t.Fatalf("a request the doctor has not confirmed counts: %v", a)
	}
	if reply := chat(t, srv, doctor, "确认 "+number); !strings.Contains(reply, "已确认") {
		t.Fatalf("confirm: %s", reply)
	}
	if a := activity(); a["signings"] != 1.0 || a["cancellations"] != 0.0 {
		t.Fatalf("after the doctor confirmed: %v", a)
	}
	for _, s := range []string{"解约", "搬家了"} {
		chat(t, srv, resident, s)
	}
	if reply := chat(t, srv, resident, "确认"); !strings.Contains(reply, "已解约") {
		t.Fatalf("cancel: %s", reply)
	}
	if a := activity(); a["signings"] != 1.0 || a["cancellations"] != 1.0 {
		t.Fatalf("after the resident cancelled: %v", a)
	}
}
