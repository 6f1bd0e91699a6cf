package load

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/bot/wechat"
	"github.com/jiayi-health/jiayi/flows"
)

const testAESKey = "jiayiTestKeyJiayiTestKeyJiayiTestKey0123456"

// The bare echo checks the signature and answers each text with itself, in
// plaintext and sealed in safe mode; a request signed with another token is
// refused, and counted as an error.
func TestEchoAnswersEachTextWithItself(t *testing.T) {
	for _, key := range []string{"", testAESKey} {
		web := httptest.NewServer(Echo("tok", "wxload", key))
		defer web.Close()
		o := Options{Targets: []string{web.URL}, Signer: wechat.Signer{Token: "tok", AppID: "wxload", AESKey: key},
			Script: func(i int) []Step { return Echoed(Browse(i)) }, Residents: 8, Clients: 2, Duration: 5 * time.Second, OpenIDs: "o_echo_"}
		res, err := Run(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		// Browse has six text steps; each of 8 residents had them once.
		if res.Sent != 48 || res.Served != 48 || res.Steps["packages"].Served != 8 {
			t.Fatalf("AES key %q: %+v", key, res)
		}
		o.Signer.Token = "other"
		if res, err = Run(context.Background(), o); err != nil || res.Served != 0 || res.Steps["help"].Errors != 8 ||
			!strings.Contains(res.Steps["help"].Example, "400") {
			t.Fatalf("another token: %v %+v", err, res.Steps["help"])
		}
	}
}

// A reply counts as served only when it is the expected answer: "success"
// is late (and who got it is kept, to look for the push), another answer
// is wrong, a refusal is an error; a conversation stops at the first
// answer that is not the expected one.
func TestOnlyTheExpectedAnswerIsServed(t *testing.T) {
	answers := map[string]string{"o_t_0": "ok", "o_t_1": "success", "o_t_2": "wrong", "o_t_3": "refuse"}
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch answers[r.URL.Query().Get("openid")] {
		case "ok":
			w.Write([]byte("<xml><Content><![CDATA[您好 expected]]></Content></xml>"))
		case "success":
			w.Write([]byte("success"))
		case "wrong":
			w.Write([]byte("<xml><Content><![CDATA[something else]]></Content></xml>"))
		default:
			http.Error(w, "no", http.StatusServiceUnavailable)
		}
	}))
	defer web.Close()
	script := func(int) []Step {
		return []Step{{Name: "first", Action: text("a"), Expect: "expected"}, {Name: "second", Action: text("b"), Expect: "expected"}}
	}
	res, err := Run(context.Background(), Options{Targets: []string{web.URL}, Signer: wechat.Signer{Token: "tok"}, Script: script,
		Residents: 4, Clients: 2, Duration: 5 * time.Second, OpenIDs: "o_t_"})
	if err != nil {
		t.Fatal(err)
	}
	first, second := res.Steps["first"], res.Steps["second"]
	if first.Sent != 4 || first.Served != 1 || first.Late != 1 || first.Wrong != 1 || first.Errors != 1 {
		t.Fatalf("first step: %+v", first)
	}
	// The served and the late resident go on; the others stopped.
	if second.Sent != 2 || second.Served != 1 || second.Late != 1 || res.Served != 2 {
		t.Fatalf("second step: %+v", second)
	}
	if len(res.Late) != 2 || res.Late[0].OpenID != "o_t_1" || res.Late[0].Target != web.URL {
		t.Fatalf("late replies: %+v", res.Late)
	}
	if !strings.Contains(first.Example, "something else") && !strings.Contains(first.Example, "503") {
		t.Fatalf("example: %q", first.Example)
	}
}

// With a rate, messages go at that rate whatever the answers: a slow
// server does not slow the sending. A message due when every resident
// waits for an answer is not sent, and counted.
func TestARateSendsOnTime(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(100 * time.Millisecond)
		w.Write([]byte("<xml><Content><![CDATA[帮助]]></Content></xml>"))
	}))
	defer web.Close()
	res, err := Run(context.Background(), Options{Targets: []string{web.URL}, Signer: wechat.Signer{Token: "tok"}, Script: EchoHelp,
		Cycle: true, Residents: 200, Clients: 1, Rate: 100, Duration: 2 * time.Second, OpenIDs: "o_r_"})
	if err != nil {
		t.Fatal(err)
	}
	// One client closed-loop would send about 20; at 100 a second, about
	// 200, whatever is in flight.
	if res.Sent < 150 || res.Sent > 201 || res.Unsent != 0 || res.P50 < 100 {
		t.Fatalf("sent %d, unsent %d, p50 %v ms", res.Sent, res.Unsent, res.P50)
	}
	// 10 residents, each answered after 100 ms, can write 100 times a
	// second at most: the rest of 300 a second goes unsent.
	res, err = Run(context.Background(), Options{Targets: []string{web.URL}, Signer: wechat.Signer{Token: "tok"}, Script: EchoHelp,
		Cycle: true, Residents: 10, Clients: 1, Rate: 300, Duration: time.Second, OpenIDs: "o_r2_"})
	if err != nil || res.Sent > 110 || res.Unsent < 150 {
		t.Fatalf("more than the residents can send: %v sent %d, unsent %d", err, res.Sent, res.Unsent)
	}
}

// No resident writes again before they are answered, however slow their
// answer and however fast everyone else's.
func TestAResidentWaitsForTheirAnswer(t *testing.T) {
	var mu sync.Mutex
	inFlight, worst := map[string]int{}, 0
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who := r.URL.Query().Get("openid")
		mu.Lock()
		inFlight[who]++
		worst = max(worst, inFlight[who])
		mu.Unlock()
		if strings.HasSuffix(who, "_0") {
			time.Sleep(300 * time.Millisecond)
		}
		mu.Lock()
		inFlight[who]--
		mu.Unlock()
		w.Write([]byte("<xml><Content><![CDATA[帮助]]></Content></xml>"))
	}))
	defer web.Close()
	for _, rate := range []float64{0, 500} {
		// Each run its own residents: the server still works on the slow
		// one's message a run cut off.
		res, err := Run(context.Background(), Options{Targets: []string{web.URL}, Signer: wechat.Signer{Token: "tok"}, Script: EchoHelp,
			Cycle: true, Residents: 8, Clients: 4, Rate: rate, Duration: time.Second, OpenIDs: fmt.Sprintf("o_w%v_", rate)})
		if err != nil || res.Served < 20 {
			t.Fatalf("rate %v: %v %+v", rate, err, res)
		}
	}
	if worst != 1 {
		t.Fatalf("a resident had %d messages in flight at once", worst)
	}
}

// Fewer residents than twice the clients could make one resident write
// twice at once, which no resident does; it is refused.
func TestTooFewResidentsAreRefused(t *testing.T) {
	if _, err := Run(context.Background(), Options{Targets: []string{"http://127.0.0.1:1"}, Script: Help, Residents: 10, Clients: 8,
		Duration: time.Second}); err == nil || !strings.Contains(err.Error(), "twice as many") {
		t.Fatalf("got %v", err)
	}
}

// Made-up people are valid ones, adults, and different from each other.
func TestMadeUpPeopleAreValidAndDistinct(t *testing.T) {
	today := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	seen := map[string]bool{}
	for _, n := range []int{0, 1, 999, 1000, 123456, People - 1} {
		id := IDNumber(n)
		p, err := flows.ParseID(id, today)
		if err != nil {
			t.Fatalf("IDNumber(%d) = %s: %v", n, id, err)
		}
		if age := today.Year() - p.Birth.Year(); age < 36 || age > 87 {
			t.Fatalf("IDNumber(%d) is %d years old", n, age)
		}
		if seen[id] || seen[Phone(n)] {
			t.Fatalf("person %d repeats a number", n)
		}
		seen[id], seen[Phone(n)] = true, true
	}
	if IDNumber(People) != IDNumber(0) {
		t.Fatal("People is not where the numbers start again")
	}
}
