package push

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/bot/wechat"
	"github.com/jiayi-health/jiayi/bot/wechat/sandbox"
	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

func dispatcher(t testing.TB, db *storage.DB, r *storage.Redis) (*Dispatcher, *sandbox.StandIn) {
	standIn := sandbox.New()
	t.Cleanup(standIn.Close)
	wechat.UseTransport(sandbox.Transport{})
	client := wechat.NewClient(wechat.Account{AppID: "wxsandbox", Secret: standIn.Secret()}, r.Client, r.Prefix)
	return &Dispatcher{
		DB: db, Send: client, Mass: client, Templates: map[string]string{"sign_request": "tpl_sign"},
		Permanent: func(err error) bool { return wechat.ErrCode(err) == 43004 },
		Log:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, standIn
}

func enqueue(t *testing.T, db *storage.DB, key, kind, to string) {
	t.Helper()
	if err := db.Apply(context.Background(), storage.Changes{Pushes: []storage.Push{
		{Key: key, Kind: kind, Recipient: to, Fields: map[string]string{"number": "QY2611230001"}},
	}}); err != nil {
		t.Fatal(err)
	}
}

func state(t *testing.T, db *storage.DB, to string) storage.OutboxEntry {
	t.Helper()
	rows, err := db.OutboxFor(context.Background(), to)
	if err != nil || len(rows) != 1 {
		t.Fatalf("outbox for %s: %+v %v", to, rows, err)
	}
	return rows[0]
}

func TestDispatcherDeliversRetriesAndGivesUp(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, s storagetest.Stack) {
		ctx := context.Background()
		d, standIn := dispatcher(t, s.DB, s.Redis)
		clock := time.Now().Add(time.Second)
		d.Now = func() time.Time { return clock }

		enqueue(t, s.DB, "a", "sign_request", "o_doc")
		enqueue(t, s.DB, "b", "sign_request", "o_gone")
		enqueue(t, s.DB, "c", "sign_request", "o_busy")
		enqueue(t, s.DB, "d", "no_such_kind", "o_x")
		standIn.Refuse("o_gone", 43004)
		standIn.Refuse("o_busy", -1)

		if n := d.DispatchOnce(ctx); n != 4 {
			t.Fatalf("claimed %d, want 4", n)
		}
		sent := standIn.Outbox("o_doc")
		if len(sent) != 1 || sent[0].Kind != "template" || !contains(string(sent[0].Data), `"template_id":"tpl_sign"`, `QY2611230001`) {
			t.Fatalf("delivered = %+v", sent)
		}
		if e := state(t, s.DB, "o_doc"); e.State != "sent" {
			t.Fatalf("o_doc: %+v", e)
		}
		if e := state(t, s.DB, "o_gone"); e.State != "dead" || !contains(e.LastError, "43004") {
			t.Fatalf("unfollowed recipient: %+v", e)
		}
		if e := state(t, s.DB, "o_busy"); e.State != "pending" {
			t.Fatalf("busy: %+v", e)
		}
		if e := state(t, s.DB, "o_x"); e.State != "pending" || !contains(e.LastError, "no template configured") {
			t.Fatalf("kind without a template: %+v", e)
		}
		// Nothing is due until the backoff has passed; then WeChat is fine again.
		if n := d.DispatchOnce(ctx); n != 0 {
			t.Fatalf("retried at once: %d", n)
		}
		standIn.Refuse("o_busy", 0)
		clock = clock.Add(time.Minute)
		d.DispatchOnce(ctx)
		if e := state(t, s.DB, "o_busy"); e.State != "sent" || e.Attempts != 2 {
			t.Fatalf("after the retry: %+v", e)
		}
		// A kind that never gets a template dies after the attempt limit.
		for range 10 {
			clock = clock.Add(2 * time.Hour)
			d.DispatchOnce(ctx)
		}
		if e := state(t, s.DB, "o_x"); e.State != "dead" || e.Attempts != 8 {
			t.Fatalf("after the limit: %+v", e)
		}
	})
}

func TestBackoffGrowsWithJitterAndACap(t *testing.T) {
	for attempt, lim := range map[int][2]time.Duration{1: {time.Second, 2 * time.Second}, 3: {4 * time.Second, 8 * time.Second}, 30: {30 * time.Minute, time.Hour}} {
		for range 50 {
			if b := backoff(attempt); b < lim[0] || b > lim[1] {
				t.Fatalf("backoff(%d) = %v, want %v..%v", attempt, b, lim[0], lim[1])
			}
		}
	}
}

func contains(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

func TestQuietHoursHoldRemindersNotNotices(t *testing.T) {
	s := storagetest.Stack{DB: storagetest.SQLite(t), Redis: storagetest.Embedded(t)}
	ctx := context.Background()
	d, standIn := dispatcher(t, s.DB, s.Redis)
	d.Templates = map[string]string{"sign_request": "tpl_sign", "appointment_reminder": "tpl_remind"}
	d.Quiet = func(context.Context) (profile.QuietHours, error) { return profile.QuietHours{From: 21, To: 8}, nil }
	night := time.Date(2026, 11, 23, 23, 0, 0, 0, flows.Shanghai)
	d.Now = func() time.Time { return night }
	s.DB.Apply(ctx, storage.Changes{Pushes: []storage.Push{
		{Key: "n1", Kind: "sign_request", Recipient: "o_doc", Due: night.Add(-time.Minute)},
		{Key: "r1", Kind: "appointment_reminder", Recipient: "o_res", Priority: flows.PriorityAppointment, Due: night.Add(-time.Minute)},
	}})
	d.DispatchOnce(ctx)
	if len(standIn.Outbox("o_doc")) != 1 || len(standIn.Outbox("o_res")) != 0 {
		t.Fatalf("at 23:00: doctor %d, resident %d", len(standIn.Outbox("o_doc")), len(standIn.Outbox("o_res")))
	}
	morning := time.Date(2026, 11, 24, 8, 0, 0, 0, flows.Shanghai)
	d.Now = func() time.Time { return morning }
	d.DispatchOnce(ctx)
	if len(standIn.Outbox("o_res")) != 1 {
		t.Fatal("the reminder did not go in the morning")
	}
}

// Two instances' dispatchers on one database deliver each push once.
func TestTwoDispatchersDeliverEachPushOnce(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, s storagetest.Stack) {
		ctx := context.Background()
		a, standIn := dispatcher(t, s.DB, s.Redis)
		b := &Dispatcher{DB: s.DB, Send: a.Send, Templates: a.Templates, Log: a.Log, Permanent: a.Permanent}
		const n = 200
		var pushes []storage.Push
		for i := range n {
			pushes = append(pushes, storage.Push{Key: fmt.Sprintf("two:%d", i), Kind: "sign_request", Recipient: fmt.Sprintf("o_two_%d", i)})
		}
		if err := s.DB.Enqueue(ctx, pushes); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for _, d := range []*Dispatcher{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for d.DispatchOnce(ctx) > 0 {
				}
			}()
		}
		wg.Wait()
		sent := map[string]int{}
		for _, m := range standIn.Outbox("") {
			if m.Kind == "template" {
				sent[m.To]++
			}
		}
		for i := range n {
			if c := sent[fmt.Sprintf("o_two_%d", i)]; c != 1 {
				t.Fatalf("push %d delivered %d times", i, c)
			}
		}
	})
}

func TestFieldsMapToTemplateKeywordsAndFit(t *testing.T) {
	got := mapFields(map[string]string{"number": "character_string1", "resident": "thing2", "text": "thing3"},
		map[string]string{"number": "QY2611230001", "resident": "王秀英", "text": "霜降到了，天气转凉。65岁以上老人和慢病患者请尽早接种流感疫苗", "extra": "dropped"})
	if len(got) != 3 || got["character_string1"] != "QY2611230001" || got["thing2"] != "王秀英" {
		t.Fatalf("mapped = %v", got)
	}
	if r := []rune(got["thing3"]); len(r) != 20 || r[19] != '…' {
		t.Fatalf("thing3 = %q (%d characters)", got["thing3"], len(r))
	}
	plain := map[string]string{"a": "b"}
	if out := mapFields(nil, plain); out["a"] != "b" {
		t.Fatal("without a mapping the fields go as they are")
	}
}

func TestWithoutATemplateACustomerServiceMessageWithinTheWindow(t *testing.T) {
	s := storagetest.Stack{DB: storagetest.SQLite(t), Redis: storagetest.Embedded(t)}
	ctx := context.Background()
	d, standIn := dispatcher(t, s.DB, s.Redis)
	d.Templates = map[string]string{}
	now := time.Now()
	d.Now = func() time.Time { return now.Add(time.Second) }
	s.DB.Apply(ctx, storage.Changes{Seen: &storage.UserSeen{OpenID: "o_recent", Subscribed: true, EventTime: now}})
	s.DB.Apply(ctx, storage.Changes{Pushes: []storage.Push{
		{Key: "w1", Kind: flows.PushSignConfirmed, Recipient: "o_recent", Fields: map[string]string{"doctor": "林静", "number": "QY2611230001", "term_end": "2027-11-22", "resident": "王秀英"}},
		{Key: "w2", Kind: flows.PushSignConfirmed, Recipient: "o_stranger", Fields: map[string]string{"doctor": "林静", "number": "QY2611230002", "term_end": "2027-11-22", "resident": "李四"}},
	}})
	d.DispatchOnce(ctx)
	sent := standIn.Outbox("o_recent")
	if len(sent) != 1 || sent[0].Kind != "customer-service" || !contains(sent[0].Text, "林静医生已确认王秀英的签约（QY2611230001）") {
		t.Fatalf("within the window: %+v", sent)
	}
	if e := state(t, s.DB, "o_stranger"); e.State != "pending" || !contains(e.LastError, "window is closed") {
		t.Fatalf("outside the window: %+v", e)
	}
	// Two days later the window has closed for the first user too.
	d.Now = func() time.Time { return now.Add(49 * time.Hour) }
	s.DB.Apply(ctx, storage.Changes{Pushes: []storage.Push{{Key: "w3", Kind: flows.PushSignDeclined, Recipient: "o_recent",
		Fields: map[string]string{"doctor": "林静", "number": "QY2611230003", "reason": "x", "resident": "王秀英"}}}})
	d.DispatchOnce(ctx)
	if len(standIn.Outbox("o_recent")) != 1 {
		t.Fatal("sent outside the window")
	}
}

// A seasonal tip goes as a customer-service message to one who wrote
// lately, even with a template configured for it (WeChat forbids
// marketing in template messages); for anyone else it waits for the
// digest, using up no attempt, and nothing is sent.
func TestSeasonalTipsAreNeverTemplateMessages(t *testing.T) {
	s := storagetest.Stack{DB: storagetest.SQLite(t), Redis: storagetest.Embedded(t)}
	ctx := context.Background()
	d, standIn := dispatcher(t, s.DB, s.Redis)
	d.Templates = map[string]string{flows.PushSeasonal: "tpl_seasonal"}
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, flows.Shanghai)
	s.DB.SetClock(func() time.Time { return now.Add(-72 * time.Hour) }) // three days ago
	s.DB.Apply(ctx, storage.Changes{Seen: &storage.UserSeen{OpenID: "o_quiet", Subscribed: true, EventTime: now.Add(-72 * time.Hour)}})
	s.DB.Apply(ctx, storage.Changes{Seen: &storage.UserSeen{OpenID: "o_quiet2", Subscribed: true, EventTime: now.Add(-72 * time.Hour)}})
	s.DB.SetClock(func() time.Time { return now })
	d.Now = func() time.Time { return now.Add(time.Minute) }
	s.DB.Apply(ctx, storage.Changes{Seen: &storage.UserSeen{OpenID: "o_recent", Subscribed: true, EventTime: now}})
	for _, to := range []string{"o_recent", "o_quiet"} {
		tip := flows.SeasonalReminder{Key: "tip:" + to, OpenID: to, Resident: "王秀英", Name: "大雪", Text: "大雪节气，出门防滑。",
			Due: now, From: time.Date(2026, 12, 7, 0, 0, 0, 0, flows.Shanghai), StaleAt: now.Add(24 * time.Hour)}.Push()
		if err := s.DB.Enqueue(ctx, []storage.Push{tip}); err != nil {
			t.Fatal(err)
		}
	}
	for d.DispatchOnce(ctx) > 0 {
	}
	sent := standIn.Outbox("o_recent")
	if len(sent) != 1 || sent[0].Kind != "customer-service" || !contains(sent[0].Text, "大雪节气，出门防滑。") ||
		!contains(sent[0].Text, "回复“提醒设置”可以关闭") {
		t.Fatalf("to one who wrote: %+v", sent)
	}
	if got := standIn.Outbox("o_quiet"); len(got) != 0 {
		t.Fatalf("to one who did not write: %+v", got)
	}
	e := state(t, s.DB, "o_quiet")
	if e.State != "pending" || e.Attempts != 0 || e.LastError != "held for the digest" {
		t.Fatalf("the tip held: %+v", e)
	}
	// The digest on the 16th sends it with another's; no dispatcher claims it before.
	s.DB.Enqueue(ctx, []storage.Push{flows.HoldForDigest(flows.SeasonalReminder{Key: "tip:o_quiet2", OpenID: "o_quiet2", Name: "大雪",
		Text: "大雪节气，出门防滑。", Due: now, From: time.Date(2026, 12, 7, 0, 0, 0, 0, flows.Shanghai)}.Push(), now)})
	digest := time.Date(2026, 12, 16, 10, 0, 0, 0, flows.Shanghai)
	d.Now = func() time.Time { return digest.Add(-time.Minute) }
	if n := d.DispatchOnce(ctx); n != 0 {
		t.Fatalf("%d held tips claimed before the digest", n)
	}
	s.DB.SetClock(func() time.Time { return digest })
	run, err := flows.RunDigest(ctx, s.DB, digest)
	if err != nil || run.Messages != 1 || run.Tips != 2 {
		t.Fatalf("digest: %+v %v", run, err)
	}
	d.Now, standIn.Now = func() time.Time { return digest.Add(time.Minute) }, func() time.Time { return digest.Add(time.Minute) }
	for d.DispatchOnce(ctx) > 0 {
	}
	for _, to := range []string{"o_quiet", "o_quiet2"} {
		got := standIn.Outbox(to)
		if len(got) != 1 || got[0].Kind != "mass" || !contains(got[0].Text, "【大雪（12月7日）】大雪节气，出门防滑。") {
			t.Fatalf("%s had from the digest: %+v", to, got)
		}
	}
	for _, m := range standIn.Outbox("") {
		if m.Kind == "template" {
			t.Fatalf("a template message: %s", m.Data)
		}
	}
}

// Personal reminders beyond the day's quota are paced over the following
// days, while notices still go.
func TestPersonalRemindersArePacedByTheDailyQuota(t *testing.T) {
	s := storagetest.Stack{DB: storagetest.SQLite(t), Redis: storagetest.Embedded(t)}
	ctx := context.Background()
	d, standIn := dispatcher(t, s.DB, s.Redis)
	d.DailyQuota = 10
	d.Templates = map[string]string{flows.PushPersonal: "tpl_personal", "sign_request": "tpl_sign"}
	day1 := time.Date(2026, 10, 23, 9, 0, 0, 0, flows.Shanghai)
	var pushes []storage.Push
	for i := range 20 {
		pushes = append(pushes, storage.Push{Key: fmt.Sprintf("s:%d", i), Kind: flows.PushPersonal, Recipient: fmt.Sprintf("o_s%d", i),
			Priority: flows.PriorityPersonal, Due: day1})
	}
	s.DB.Enqueue(ctx, pushes)
	personalSent := func() int {
		n := 0
		for _, m := range standIn.Outbox("") {
			if m.Kind == "template" && strings.Contains(string(m.Data), "tpl_personal") {
				n++
			}
		}
		return n
	}
	for i, want := range []int{9, 18, 20} {
		d.Now = func() time.Time { return day1.AddDate(0, 0, i).Add(time.Hour) }
		for d.DispatchOnce(ctx) > 0 {
		}
		if got := personalSent(); got != want {
			t.Fatalf("day %d: %d personal reminders sent, want %d", i+1, got, want)
		}
		if i == 0 { // the day's quota is nearly used: a notice still goes
			s.DB.Enqueue(ctx, []storage.Push{{Key: "notice", Kind: "sign_request", Recipient: "o_doc", Due: day1}})
			for d.DispatchOnce(ctx) > 0 {
			}
			if len(standIn.Outbox("o_doc")) != 1 {
				t.Fatal("a transactional notice was held by the pacing")
			}
			// A tip to one who wrote lately uses no template: it goes too.
			s.DB.Apply(ctx, storage.Changes{Seen: &storage.UserSeen{OpenID: "o_wrote", Subscribed: true, EventTime: day1}})
			s.DB.Enqueue(ctx, []storage.Push{flows.SeasonalReminder{Key: "tip", OpenID: "o_wrote", Name: "霜降", Text: "霜降了。", Due: day1}.Push()})
			for d.DispatchOnce(ctx) > 0 {
			}
			if got := standIn.Outbox("o_wrote"); len(got) != 1 || got[0].Kind != "customer-service" {
				t.Fatalf("a tip by customer-service message was held by the template pacing: %+v", got)
			}
		}
	}
}

func TestStaleTokenIsRefreshedOnceAndQuotaPausesUntilTomorrow(t *testing.T) {
	storagetest.ForEachStack(t, func(t *testing.T, s storagetest.Stack) {
		ctx := context.Background()
		d, standIn := dispatcher(t, s.DB, s.Redis)
		d.QuotaHit = func(err error) bool { return wechat.ErrCode(err) == 45009 }
		noon := time.Now().Add(time.Minute) // after the pushes below are due
		d.Now = func() time.Time { return noon }

		// A stale token: WeChat answers 40001 once; one refresh, one retry.
		standIn.FailNext("o_stale", 40001, 1)
		enqueue(t, s.DB, "t1", "sign_request", "o_stale")
		d.DispatchOnce(ctx)
		tokens := 0
		for _, m := range standIn.Outbox("") {
			if m.Kind == "token" {
				tokens++
			}
		}
		if e := state(t, s.DB, "o_stale"); e.State != "sent" || tokens != 2 {
			t.Fatalf("after 40001: %+v, %d token requests", e, tokens)
		}

		// The day's template quota runs out: that push and the next wait until midnight.
		standIn.FailNext("o_q1", 45009, 1)
		enqueue(t, s.DB, "q1", "sign_request", "o_q1")
		d.DispatchOnce(ctx)
		enqueue(t, s.DB, "q2", "sign_request", "o_q2")
		d.DispatchOnce(ctx)
		if len(standIn.Outbox("o_q2")) != 0 || state(t, s.DB, "o_q2").State != "pending" || !contains(state(t, s.DB, "o_q2").LastError, "paused until") {
			t.Fatalf("sent during the pause: %+v", state(t, s.DB, "o_q2"))
		}
		// The pause is the template API's: a customer-service message still goes.
		s.DB.Apply(ctx, storage.Changes{Seen: &storage.UserSeen{OpenID: "o_cs", Subscribed: true, EventTime: noon}})
		s.DB.Enqueue(ctx, []storage.Push{{Key: "cs1", Kind: flows.PushSignDeclined, Recipient: "o_cs",
			Fields: map[string]string{"doctor": "林静", "number": "QY2611230009", "reason": "x"}}})
		d.DispatchOnce(ctx)
		if sent := standIn.Outbox("o_cs"); len(sent) != 1 || sent[0].Kind != "customer-service" {
			t.Fatalf("customer service during the template pause: %+v", sent)
		}
		d.Now = func() time.Time { return nextMidnight(noon).Add(time.Minute) }
		d.DispatchOnce(ctx)
		if state(t, s.DB, "o_q1").State != "sent" || state(t, s.DB, "o_q2").State != "sent" {
			t.Fatalf("after midnight: %+v %+v", state(t, s.DB, "o_q1"), state(t, s.DB, "o_q2"))
		}
	})
}

func TestBucketPacesSends(t *testing.T) {
	b := newBucket(100)
	clock := time.Unix(0, 0)
	var slept time.Duration
	b.now, b.last = func() time.Time { return clock }, clock
	b.sleep = func(_ context.Context, d time.Duration) error {
		slept += d
		clock = clock.Add(d)
		return nil
	}
	for range 150 {
		if err := b.wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// 100 go at once from the burst, the other 50 at 100 a second.
	if slept < 490*time.Millisecond || slept > 510*time.Millisecond {
		t.Fatalf("150 sends at 100/s waited %v, want 0.5 s", slept)
	}
}

// A claim takes batchSize pushes for each worker, but no more than the
// slower rate sends in half the lease: the rest would be handed back.
func TestClaimSizeFitsTheRatesAndTheLease(t *testing.T) {
	d := &Dispatcher{Workers: 32}
	if got, want := d.claimSize(), int(DefaultRates()[apiCustomer]*DefaultLease.Seconds()/2); got != want {
		t.Fatalf("default rates: %d claimed, want %d (customer service's rate for half the lease)", got, want)
	}
	d.Rates = map[string]float64{apiTemplate: 100000, apiCustomer: 100000}
	if got := d.claimSize(); got != 32*batchSize {
		t.Fatalf("rates lifted: %d claimed, want %d", got, 32*batchSize)
	}
	d = &Dispatcher{Workers: 4, Rates: map[string]float64{apiTemplate: 0.01, apiCustomer: 0.01}}
	if got := d.claimSize(); got != 4 {
		t.Fatalf("very slow rates: %d claimed, want one for each worker", got)
	}
}
