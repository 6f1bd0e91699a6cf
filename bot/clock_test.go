package bot

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/bot/wechat/sandbox"
	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

func moveClock(t *testing.T, h http.Handler, body string) (int, clockView) {
	t.Helper()
	rec := postJSON(t, h, "/sandbox/clock", local, body)
	var v clockView
	json.Unmarshal(rec.Body.Bytes(), &v)
	return rec.Code, v
}

// The sandbox clock is read and moved by scripts, forward only, from this
// machine only.
func TestSandboxClockMovesForwardOnly(t *testing.T) {
	srv, _ := newServer(t, nil, Options{})
	h := srv.Handler()
	var before clockView
	if rec := get(t, h, "/sandbox/clock", local); rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &before) != nil {
		t.Fatalf("GET: %d %s", rec.Code, rec.Body)
	}
	start, err := time.Parse(time.RFC3339, before.Now)
	if err != nil || time.Since(start) > time.Minute || time.Until(start) > time.Minute {
		t.Fatalf("the clock starts at %q, not now", before.Now)
	}
	code, after := moveClock(t, h, `{"advance": "26h"}`)
	moved, _ := time.Parse(time.RFC3339, after.Now)
	if code != 200 || moved.Sub(start) < 26*time.Hour || moved.Sub(start) > 26*time.Hour+time.Minute {
		t.Fatalf("advance 26h: %d %+v from %s", code, after, before.Now)
	}
	target := "2099-01-01T08:00:00+08:00"
	if code, v := moveClock(t, h, `{"to": "`+target+`"}`); code != 200 || v.Now != target {
		t.Fatalf("to: %d %+v", code, v)
	}
	for body, want := range map[string]int{
		`{"to": "2030-01-01T08:00:00+08:00"}`: http.StatusConflict, // back in time
		`{"advance": "-1h"}`:                  http.StatusConflict,
		`{"advance": "soon"}`:                 http.StatusBadRequest,
		`{}`:                                  http.StatusBadRequest,
		`{"advance": "1h", "to": "` + target + `"}`: http.StatusBadRequest,
	} {
		if code, _ := moveClock(t, h, body); code != want {
			t.Errorf("%s: %d, want %d", body, code, want)
		}
	}
	if rec := get(t, h, "/sandbox/clock", "10.0.0.8:4000"); rec.Code != http.StatusNotFound {
		t.Fatalf("clock from another host: %d", rec.Code)
	}
}

// A resident books; the clock jumps to the evening before the visit, and the
// reminder arrives without anyone writing, its words in the outbox.
func TestMovingTheClockBringsTheReminder(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, stack storagetest.Stack) {
		srv, _ := live(t, map[string]string{"JIAYI_DATABASE_URL": stack.DatabaseURL, "JIAYI_REDIS_URL": stack.RedisURL},
			Options{RedisPrefix: stack.Redis.Prefix})
		h := srv.Handler()
		// Tomorrow 10:00 first, so the evening before any visit offered is still ahead.
		tomorrow := flows.StartOfDay(time.Now()).AddDate(0, 0, 1).Add(10 * time.Hour)
		if code, _ := moveClock(t, h, `{"to": "`+tomorrow.Format(time.RFC3339)+`"}`); code != 200 {
			t.Fatalf("move to %s: %d", tomorrow, code)
		}
		var demo struct {
			Doctors []struct {
				BindingCode string `json:"binding_code"`
			}
		}
		json.Unmarshal(get(t, h, "/sandbox/demo", local).Body.Bytes(), &demo)
		doctor, resident := "o_clk_doc", "o_clk_res"
		chat(t, srv, doctor, "绑定 "+demo.Doctors[0].BindingCode)
		chat(t, srv, doctor, "确认 "+signByChat(t, srv, resident))
		for _, s := range []string{"预约", "1", "1", "2", "上午", "1"} {
			chat(t, srv, resident, s)
		}
		if reply := chat(t, srv, resident, "确认"); !strings.Contains(reply, "预约成功") {
			t.Fatalf("book: %s", reply)
		}
		var due time.Time
		raw := storagetest.SQLAt(t, stack.DatabaseURL)
		if err := raw.Get(&due, raw.Rebind(`SELECT due_at FROM outbox WHERE kind = 'appointment_reminder' AND recipient = ?
			ORDER BY due_at LIMIT 1`), resident); err != nil {
			t.Fatalf("no reminder waits: %v", err)
		}
		if reminded(srv, resident) != "" {
			t.Fatal("reminded before its time")
		}
		if code, _ := moveClock(t, h, `{"to": "`+due.Add(time.Minute).In(flows.Shanghai).Format(time.RFC3339)+`"}`); code != 200 {
			t.Fatalf("move to the reminder: %d", code)
		}
		deadline := time.Now().Add(5 * time.Second)
		for reminded(srv, resident) == "" {
			if time.Now().After(deadline) {
				t.Fatalf("no reminder after the clock reached %s", due)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if text := reminded(srv, resident); !strings.Contains(text, "预约") {
			t.Fatalf("the reminder's words: %q", text)
		}
	})
}

// reminded is the words of the appointment reminder the resident received,
// as /sandbox/outbox gives them; "" before it came.
func reminded(srv *Server, resident string) string {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/sandbox/outbox?to="+resident, nil)
	req.RemoteAddr = local
	req.Host = "127.0.0.1:8080"
	req.Header.Set("Content-Type", "application/json")
	srv.Handler().ServeHTTP(rec, req)
	var sent []sandbox.Message
	json.Unmarshal(rec.Body.Bytes(), &sent)
	for _, m := range sent {
		if m.Kind == "template" && strings.Contains(string(m.Data), "sandbox_appointment_reminder") {
			return m.Text
		}
	}
	return ""
}

// A move while a job runs its pass wakes it when it next waits; a move too
// far is refused rather than wrapping the clock back.
func TestClockMovesAreNotMissedNorTooFar(t *testing.T) {
	c := NewClock()
	moved := c.moves()                           // taken before the pass
	if err := c.Advance(time.Hour); err != nil { // during the pass
		t.Fatal(err)
	}
	woke := make(chan bool, 1)
	go func() { woke <- c.wait(t.Context(), moved, time.Hour) }()
	select {
	case ok := <-woke:
		if !ok {
			t.Fatal("wait reported its context ended")
		}
	case <-time.After(10 * time.Second): // a hang, not a speed: it should return at once
		t.Fatal("a move during the pass was missed")
	}
	if err := c.Advance(maxOffset); err != ErrClockTooFar {
		t.Fatalf("past a century: %v", err)
	}
	if err := c.MoveTo(time.Now()); err != ErrClockBackwards {
		t.Fatalf("back to the real time: %v", err)
	}
}

// The sandbox clock outlives a restart, on SQLite and PostgreSQL, and the
// demo doctors' binding codes outlive any move of it.
func TestSandboxClockIsKeptAndCodesStayValid(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, stack storagetest.Stack) {
		env := map[string]string{"JIAYI_DATABASE_URL": stack.DatabaseURL, "JIAYI_REDIS_URL": stack.RedisURL}
		opt := Options{RedisPrefix: stack.Redis.Prefix}
		first, _ := newServer(t, env, opt)
		if code, _ := moveClock(t, first.Handler(), `{"advance": "720h"}`); code != 200 {
			t.Fatalf("advance: %d", code)
		}
		first.Close()
		second, _ := newServer(t, env, opt)
		if ahead := second.clock.Offset(); ahead < 720*time.Hour || ahead > 721*time.Hour {
			t.Fatalf("after a restart the clock is %v ahead", ahead)
		}
		var demo struct {
			Doctors []struct {
				BindingCode string `json:"binding_code"`
			}
		}
		json.Unmarshal(get(t, second.Handler(), "/sandbox/demo", local).Body.Bytes(), &demo)
		if reply := chat(t, second, "o_clock_doc", "绑定 "+demo.Doctors[0].BindingCode); !strings.Contains(reply, "绑定成功") {
			t.Fatalf("a demo code a month of sandbox time later: %s", reply)
		}
		// Used, the code is no longer offered: the simulator would send it in vain.
		json.Unmarshal(get(t, second.Handler(), "/sandbox/demo", local).Body.Bytes(), &demo)
		if demo.Doctors[0].BindingCode != "" {
			t.Fatalf("/sandbox/demo still offers the used code %q", demo.Doctors[0].BindingCode)
		}
	})
}

// What the database stamps keeps to the sandbox clock: a resident who signs
// after the clock jumped a month made a fresh request, which the follow-up
// job leaves alone, not one a month old.
func TestSandboxTimesStampedByTheDatabaseFollowTheClock(t *testing.T) {
	srv, _ := newServer(t, nil, Options{})
	h := srv.Handler()
	if code, _ := moveClock(t, h, `{"advance": "720h"}`); code != 200 {
		t.Fatalf("advance: %d", code)
	}
	resident := "o_stamp_res"
	number := signByChat(t, srv, resident)
	var created time.Time
	raw := storagetest.SQLAt(t, srv.Config.DatabaseURL)
	if err := raw.Get(&created, `SELECT created_at FROM contracts WHERE number = ?`, number); err != nil {
		t.Fatal(err)
	}
	if d := srv.clock.Now().Sub(created); d < 0 || d > time.Minute {
		t.Fatalf("the contract was made at %s, %v before the sandbox time", created, d)
	}
	n, err := flows.FollowUpSignRequests(t.Context(), srv.DB, srv.clock.Now())
	if err != nil || n != 0 {
		t.Fatalf("a request made a moment ago was followed up: %d %v", n, err)
	}
}

// A lead an earlier version kept beside SQLite moves into the database.
func TestLegacyClockFileIsTakenOver(t *testing.T) {
	db := filepath.Join(t.TempDir(), "jiayi.db")
	if err := os.WriteFile(db+".clock", []byte("720h0m0s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, _ := newServer(t, map[string]string{"JIAYI_DATABASE_URL": "sqlite:" + db}, Options{})
	if ahead := srv.clock.Offset(); ahead != 720*time.Hour {
		t.Fatalf("the clock is %v ahead, want 720h", ahead)
	}
	if lead, err := srv.DB.SandboxClockLead(t.Context()); err != nil || lead != 720*time.Hour {
		t.Fatalf("kept lead %v %v", lead, err)
	}
	if _, err := os.Stat(db + ".clock"); !os.IsNotExist(err) {
		t.Fatalf("the old file is still there: %v", err)
	}
}
