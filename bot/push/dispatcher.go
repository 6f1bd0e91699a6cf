// Package push sends what the outbox holds: every instance runs a
// dispatcher that claims due pushes with a lease, sends them through WeChat
// and marks them sent, retried with backoff, or dead.
package push

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jiayi-health/jiayi/bot/wechat"
	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
)

// Sender delivers pushes: template messages, and customer-service text
// where no template is configured and WeChat's window allows it.
type Sender interface {
	SendTemplate(ctx context.Context, openID, templateID string, fields map[string]string) error
	SendText(ctx context.Context, openID, text string) error
}

// MassSender sends mass messages (群发): health tips to an openid list,
// and a preview of one to a member of staff.
type MassSender interface {
	MassSend(ctx context.Context, openIDs []string, m wechat.MassMessage, clientMsgID string) (msgID string, err error)
	MassSendToTag(ctx context.Context, tagID int64, m wechat.MassMessage, clientMsgID string) (msgID string, err error)
	MassPreview(ctx context.Context, openID string, m wechat.MassMessage) error
	// UploadArticle puts an article (图文) in the draft box, its cover a
	// permanent image unless one is named, and returns the draft's media_id
	// and the cover's.
	UploadArticle(ctx context.Context, a wechat.Article) (mediaID, thumbID string, err error)
	// DeleteDraft takes a draft out of the draft box.
	DeleteDraft(ctx context.Context, mediaID string) error
}

// serviceWindow is how long after someone's last message WeChat lets an
// account write to them freely.
const serviceWindow = 48 * time.Hour

// noTemplateKinds are the pushes that never go as template messages:
// seasonal tips (customer-service messages; the digest) and broadcasts
// (mass messages). The template quota does not hold them back.
var noTemplateKinds = []string{flows.PushSeasonal, storage.KindBroadcast, storage.KindBroadcastPreview}

// ErrPermanent marks a failure that retrying cannot fix.
var ErrPermanent = errors.New("permanent failure")

// errNotYet marks a push whose recipient cannot be reached yet (a doctor who
// has not bound): it waits without using up its attempts.
var errNotYet = errors.New("recipient not reachable yet")

// errHeld marks a seasonal tip for someone outside WeChat's 48 hours: it
// waits for the digest, using up no attempt.
var errHeld = errors.New("held for the digest")

// errInfra marks a failure of jiayi's own infrastructure before anything
// reached WeChat (a database lookup): the push is not at fault, so the
// attempt is given back and it is never dead-lettered for it.
var errInfra = errors.New("infrastructure unavailable")

// Defaults, which the configuration takes too.
const (
	DefaultLease   = 30 * time.Second // how long a claimed push is held
	DefaultWorkers = 16               // recipients a dispatcher sends to at once: at WeChat's 50 ms a call, 300 a second, past the default rates
)

// DefaultRates are sends per second per WeChat API.
func DefaultRates() map[string]float64 {
	return map[string]float64{apiTemplate: 50, apiCustomer: 20, apiMass: 5}
}

// Dispatcher sends due pushes.
type Dispatcher struct {
	DB   *storage.DB
	Send Sender
	Mass MassSender // broadcasts; nil: they wait
	// SyncTag brings a WeChat tag's members in line with the database
	// before a broadcast goes to it; nil: the tag is sent as it is.
	SyncTag     func(ctx context.Context, tagID int64) error
	Templates   map[string]string                                 // push kind -> WeChat template ID
	Fields      map[string]map[string]string                      // push kind -> our field -> the template's keyword; none: names as they are
	Permanent   func(err error) bool                              // WeChat errors not worth retrying
	QuotaHit    func(err error) bool                              // WeChat's daily quota is used up (45009): pause until tomorrow
	Rates       map[string]float64                                // sends per second per WeChat API ("template", "customer"); missing: 50
	Quiet       func(context.Context) (profile.QuietHours, error) // the programme's quiet hours, when reminders wait; nil: none
	DailyQuota  int                                               // template messages a day (WeChat\'s default 100,000); zero: no pacing
	Log         *slog.Logger
	Interval    time.Duration // between polls when idle; zero: 1 s
	Workers     int           // recipients sent to at once; zero: DefaultWorkers
	Lease       time.Duration // how long a claimed row is ours; zero: DefaultLease
	MaxAttempts int           // then dead; zero: 8
	Now         func() time.Time

	once sync.Once
	wake chan struct{}

	articleMu sync.Mutex // held while an article's draft (and first, its cover) is made

	mu          sync.Mutex
	pausedUntil map[string]time.Time // per API: daily quota reached, nothing is sent before this
	limiters    map[string]*bucket
	// unrecorded are outcomes (a send, above all) the database did not take
	// when they happened. Nothing more is claimed until they are recorded:
	// a sent push whose record is lost would be sent again.
	unrecorded []record
}

// record is one outcome to write to the outbox.
type record struct {
	kind  string
	write func(context.Context) error
}

func (d *Dispatcher) init() {
	d.once.Do(func() {
		d.wake = make(chan struct{}, 1)
		if d.Now == nil {
			d.Now = time.Now
		}
		d.pausedUntil = map[string]time.Time{}
		d.limiters = map[string]*bucket{}
		for _, api := range []string{apiTemplate, apiCustomer, apiMass} {
			d.limiters[api] = newBucket(cmp.Or(d.Rates[api], DefaultRates()[api]))
		}
	})
}

// Wake asks for a poll now, after a turn committed pushes, so transactional
// notifications go at once.
func (d *Dispatcher) Wake() {
	d.init()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run dispatches until ctx is done.
func (d *Dispatcher) Run(ctx context.Context) {
	d.init()
	interval := cmp.Or(d.Interval, time.Second)
	for {
		for d.DispatchOnce(ctx) > 0 && ctx.Err() == nil {
		}
		select {
		case <-ctx.Done():
			last, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if !d.flushUnrecorded(last) {
				d.Log.Error("outbox records lost at shutdown; those pushes may go twice", "count", d.Unrecorded())
			}
			return
		case <-d.wake:
		case <-time.After(interval):
		}
	}
}

// DispatchOnce sends one batch of due pushes and returns how many it claimed.
// While an earlier outcome is still unrecorded (the database failed), it
// only retries that record and claims nothing.
func (d *Dispatcher) DispatchOnce(ctx context.Context) int {
	d.init()
	if !d.flushUnrecorded(ctx) {
		return 0
	}
	// In quiet hours only transactional pushes go; reminders wait for morning.
	maxPriority := flows.PrioritySeasonal
	if d.Quiet != nil {
		quiet, err := d.Quiet(ctx)
		if err != nil { // hold reminders rather than wake anyone at night
			d.Log.Error("quiet hours unreadable; only notices go", "err", err)
			quiet = profile.QuietHours{From: 0, To: 24}
		}
		if quiet.Contains(d.Now(), flows.Shanghai) {
			maxPriority = flows.PriorityTransactional
		}
	}
	quotaPriority, batch := d.quotaAllows(ctx)
	rows, err := d.DB.ClaimDue(ctx, batch, cmp.Or(d.Lease, DefaultLease), d.Now(), min(maxPriority, quotaPriority))
	if err == nil && quotaPriority < maxPriority && len(rows) < d.claimSize() {
		// What uses none of the template quota goes on when it is nearly spent.
		var more []storage.OutboxRow
		more, err = d.DB.ClaimDueOf(ctx, noTemplateKinds, d.claimSize()-len(rows), cmp.Or(d.Lease, DefaultLease), d.Now(), maxPriority)
		rows = append(rows, more...)
	}
	if err != nil {
		if ctx.Err() == nil {
			d.Log.Error("outbox claim failed", "err", err)
		}
		return 0
	}
	d.deliverAll(ctx, rows)
	return len(rows)
}

// workers is how many recipients the dispatcher sends to at once.
func (d *Dispatcher) workers() int { return max(1, cmp.Or(d.Workers, DefaultWorkers)) }

// claimSize is how many pushes one claim takes: batchSize for each worker,
// but no more than the slower of the template and customer-service rates
// sends in half the lease, so what is claimed goes before the lease's last
// quarter rather than being handed back.
func (d *Dispatcher) claimSize() int {
	slowest := min(cmp.Or(d.Rates[apiTemplate], DefaultRates()[apiTemplate]), cmp.Or(d.Rates[apiCustomer], DefaultRates()[apiCustomer]))
	inTime := int(slowest * cmp.Or(d.Lease, DefaultLease).Seconds() / 2)
	return max(d.workers(), min(batchSize*d.workers(), inTime))
}

// deliverAll sends claimed rows, recipients in parallel (up to Workers at
// once, within each API's rate) and each recipient's in the order claimed,
// so one person's notices never arrive out of order.
func (d *Dispatcher) deliverAll(ctx context.Context, rows []storage.OutboxRow) {
	var order []string
	byRecipient := map[string][]storage.OutboxRow{}
	for _, row := range rows {
		if _, ok := byRecipient[row.Recipient]; !ok {
			order = append(order, row.Recipient)
		}
		byRecipient[row.Recipient] = append(byRecipient[row.Recipient], row)
	}
	lease := cmp.Or(d.Lease, DefaultLease)
	var dbDown atomic.Bool // the database failed: what is not yet tried waits
	work := make(chan []storage.OutboxRow)
	workers := min(d.workers(), len(order))
	sent := make(chan sentRecord, workers)
	recorded := make(chan struct{})
	go func() { d.recordSends(ctx, sent); close(recorded) }()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for rows := range work {
				for i, row := range rows {
					if dbDown.Load() {
						d.release(ctx, rows[i:], false)
						break
					}
					// Nothing is sent in the last quarter of the claim: the row may be
					// another dispatcher's by the time the send is done.
					if !d.Now().Before(row.LeaseUntil.Add(-lease / 4)) {
						d.release(ctx, rows[i:], true)
						break
					}
					if !d.deliver(ctx, row, sent) {
						dbDown.Store(true)
						d.release(ctx, rows[i+1:], false)
						break
					}
				}
			}
		})
	}
	for _, r := range order {
		work <- byRecipient[r]
	}
	close(work)
	wg.Wait()
	close(sent)
	<-recorded
}

// sentRecord is a push sent, waiting for its record; done says whether
// the group it was written with was taken.
type sentRecord struct {
	id   int64
	at   time.Time
	done chan error
}

// maxSentGroup bounds how many sends one statement records.
const maxSentGroup = 200

// recordSends writes the records of sends as they come, each with those of
// any others that finished meanwhile, in one statement: a commit for each
// group, not each send, so the workers' sends wait on the database far less
// and each is still recorded before its worker sends again.
func (d *Dispatcher) recordSends(ctx context.Context, in <-chan sentRecord) {
	for first := range in {
		group := []sentRecord{first}
		ids := []int64{first.id}
		at := first.at
	more:
		for len(group) < maxSentGroup {
			select {
			case r, ok := <-in:
				if !ok {
					break more
				}
				group, ids, at = append(group, r), append(ids, r.id), later(at, r.at)
			default:
				break more
			}
		}
		err := d.write(ctx, record{"sent", func(ctx context.Context) error { return d.DB.MarkSentMany(ctx, ids, at) }})
		for _, r := range group {
			r.done <- err
		}
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// recordSent records a push sent with the others sent meanwhile (see
// recordSends); if their statement fails, it is recorded on its own, with
// save's retries and fallback.
func (d *Dispatcher) recordSent(ctx context.Context, row storage.OutboxRow, sentAt time.Time, recorder chan<- sentRecord) bool {
	done := make(chan error, 1)
	recorder <- sentRecord{row.ID, sentAt, done}
	if <-done == nil {
		return true
	}
	return d.save(ctx, record{"sent", func(ctx context.Context) error { return d.DB.MarkSent(ctx, row.ID, sentAt) }})
}

// release hands back claimed rows that were not tried, so they use up no
// attempt; with the database failing (dbUp false) the releases wait with the
// other unrecorded outcomes.
func (d *Dispatcher) release(ctx context.Context, rows []storage.OutboxRow, dbUp bool) {
	for _, row := range rows {
		r := record{"released", func(ctx context.Context) error { return d.DB.ReleaseClaim(ctx, row.ID, row.LeaseUntil) }}
		if dbUp && d.write(ctx, r) == nil {
			continue
		}
		d.mu.Lock()
		d.unrecorded = append(d.unrecorded, r)
		d.mu.Unlock()
	}
}

// recordTimeout bounds one write of an outcome: a frozen database must not
// hold the dispatcher, or its shutdown, for longer.
const recordTimeout = 2 * time.Second

func (d *Dispatcher) write(ctx context.Context, r record) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	return r.write(ctx)
}

// recordTries are the waits between tries of writing an outcome before it is
// kept in memory for later: a blip of the database costs no double send.
var recordTries = []time.Duration{0, 50 * time.Millisecond, 200 * time.Millisecond, 800 * time.Millisecond}

// save writes an outcome at once, retrying with back-off; if the database
// still fails it is kept for flushUnrecorded and save reports false.
func (d *Dispatcher) save(ctx context.Context, r record) bool {
	var err error
	for _, wait := range recordTries {
		time.Sleep(wait) // not cut short by a shutdown: the record matters more
		if err = d.write(ctx, r); err == nil {
			return true
		}
	}
	d.Log.Error("outbox record failed; kept until the database answers", "what", r.kind, "err", err)
	d.mu.Lock()
	d.unrecorded = append(d.unrecorded, r)
	d.mu.Unlock()
	return false
}

// flushUnrecorded writes the outcomes kept while the database failed, and
// reports whether none is left.
// The writes happen outside d.mu, each bounded, so nothing that only reads
// the count waits on the database.
func (d *Dispatcher) flushUnrecorded(ctx context.Context) bool {
	d.mu.Lock()
	pending := d.unrecorded
	d.unrecorded = nil
	d.mu.Unlock()
	done := 0
	for _, r := range pending {
		if ctx.Err() != nil || d.write(ctx, r) != nil {
			break
		}
		done++
	}
	if done == len(pending) {
		return true
	}
	d.mu.Lock()
	d.unrecorded = append(pending[done:], d.unrecorded...)
	d.mu.Unlock()
	return false
}

// Unrecorded counts the outcomes still waiting for the database.
func (d *Dispatcher) Unrecorded() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.unrecorded)
}

// The WeChat APIs pushes go through, each with its own rate and quota.
const (
	apiTemplate = "template"
	apiCustomer = "customer"
	apiMass     = "mass"
)

// apiFor is the API a push goes through: mass messages for broadcasts,
// else its template, or customer service.
func (d *Dispatcher) apiFor(kind string) string {
	if kind == storage.KindBroadcast || kind == storage.KindBroadcastPreview {
		return apiMass
	}
	if _, ok := d.Templates[kind]; ok {
		return apiTemplate
	}
	return apiCustomer
}

// deliver sends one claimed push and records the outcome at once (a send
// through recorder, with those sent meanwhile). It reports false when the
// database would not take the record.
func (d *Dispatcher) deliver(ctx context.Context, row storage.OutboxRow, recorder chan<- sentRecord) bool {
	api := d.apiFor(row.Kind)
	d.mu.Lock()
	paused := d.pausedUntil[api]
	d.mu.Unlock()
	if d.Now().Before(paused) {
		reason := "daily quota of the " + api + " API reached; paused until " + paused.Format(time.RFC3339)
		return d.save(ctx, record{"paused", func(ctx context.Context) error { return d.DB.MarkFailed(ctx, row.ID, reason, paused) }})
	}
	if err := d.limiters[api].wait(ctx); err != nil {
		return true // shutting down; the lease returns the row
	}
	if lease := cmp.Or(d.Lease, DefaultLease); !d.Now().Before(row.LeaseUntil.Add(-lease / 4)) {
		d.release(ctx, []storage.OutboxRow{row}, true) // the wait took it past its time
		return true
	}
	var err error
	if row.Kind == storage.KindBroadcast {
		var done func(context.Context) error
		if done, err = d.broadcast(ctx, row); err == nil {
			return d.save(ctx, record{"sent", done})
		}
	} else if err = d.send(ctx, row); err == nil {
		return d.recordSent(ctx, row, d.Now(), recorder)
	}
	if errors.Is(err, errHeld) {
		fields, _ := row.Fields() // send read them already
		held := flows.HoldForDigest(storage.Push{Due: d.Now(), StaleAt: d.Now(), Fields: fields}, d.Now())
		return d.save(ctx, record{"held", func(ctx context.Context) error {
			return d.DB.HoldTip(ctx, row.ID, flows.PriorityHeld, held.Due, held.StaleAt)
		}})
	}
	if errors.Is(err, errInfra) {
		retryAt, reason := d.Now().Add(backoff(1)), err.Error()
		d.Log.Warn("push waits for the database", "kind", row.Kind, "err", err)
		d.save(ctx, record{"deferred", func(ctx context.Context) error { return d.DB.MarkDeferred(ctx, row.ID, reason, retryAt) }})
		return false // the database is failing: claim no more for now
	}
	maxAttempts := d.MaxAttempts
	if maxAttempts == 0 {
		maxAttempts = 8
	}
	var retryAt time.Time
	switch {
	case d.QuotaHit != nil && d.QuotaHit(err):
		retryAt = nextMidnight(d.Now())
		d.mu.Lock()
		d.pausedUntil[api] = retryAt
		d.mu.Unlock()
	case errors.Is(err, errNotYet):
		retryAt = d.Now().Add(backoff(row.Attempts))
	case !errors.Is(err, ErrPermanent) && (d.Permanent == nil || !d.Permanent(err)) && row.Attempts < maxAttempts:
		retryAt = d.Now().Add(backoff(row.Attempts))
	}
	d.Log.Warn("push not delivered", "kind", row.Kind, "attempt", row.Attempts, "dead", retryAt.IsZero(), "err", err)
	reason := err.Error()
	return d.save(ctx, record{"failed", func(ctx context.Context) error { return d.DB.MarkFailed(ctx, row.ID, reason, retryAt) }})
}

func (d *Dispatcher) send(ctx context.Context, row storage.OutboxRow) error {
	fields, err := row.Fields()
	if err != nil {
		return fmt.Errorf("%w: unreadable payload: %v", ErrPermanent, err)
	}
	if row.Kind == storage.KindBroadcastPreview {
		if d.Mass == nil {
			return fmt.Errorf("%w: no mass sender", errNotYet)
		}
		m, err := d.massMessage(ctx, fields["title"], fields["text"], fields["article"])
		if err != nil {
			return err
		}
		defer d.dropDraft(m)
		return d.Mass.MassPreview(ctx, row.Recipient, m)
	}
	to, err := d.recipient(ctx, row.Recipient)
	if err != nil {
		return err
	}
	if row.Kind == flows.PushSeasonal {
		return d.sendTip(ctx, to, fields)
	}
	if tpl, ok := d.Templates[row.Kind]; ok {
		return d.Send.SendTemplate(ctx, to, tpl, mapFields(d.Fields[row.Kind], fields))
	}
	// No template for this kind: a customer-service message, if the
	// recipient wrote to the account lately; otherwise it waits, and says why.
	u, err := d.DB.WeChatUser(ctx, to)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%w: %v", errInfra, err)
	}
	if err == nil && d.Now().Sub(u.LastSeenAt) < serviceWindow {
		text, err := flows.PushText(row.Kind, fields)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrPermanent, err)
		}
		return d.Send.SendText(ctx, to, text)
	}
	return fmt.Errorf("no template configured for push kind %q and the customer-service window is closed", row.Kind)
}

// sendTip sends a seasonal tip as a customer-service message if its
// recipient wrote to the account lately; otherwise it says errHeld, and the
// tip waits for the digest. Never as a template message: WeChat forbids
// marketing there.
func (d *Dispatcher) sendTip(ctx context.Context, to string, fields map[string]string) error {
	u, err := d.DB.WeChatUser(ctx, to)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%w: %v", errInfra, err)
	}
	if err != nil || !flows.InServiceWindow(u.LastSeenAt, d.Now()) {
		return errHeld
	}
	text, err := flows.PushText(flows.PushSeasonal, fields)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrPermanent, err)
	}
	return d.Send.SendText(ctx, to, text)
}

// broadcast sends one batch of a broadcast as a mass message under the
// row's key as clientmsgid, and returns the record of it to write. Those
// who unfollowed or turned tips off since it was written are left out; a
// batch of one goes as a customer-service message if that resident wrote
// in the last 48 hours (a mass message needs two openids).
func (d *Dispatcher) broadcast(ctx context.Context, row storage.OutboxRow) (func(context.Context) error, error) {
	fields, err := row.Fields()
	if err != nil {
		return nil, fmt.Errorf("%w: unreadable payload: %v", ErrPermanent, err)
	}
	id, err1 := strconv.ParseInt(fields["broadcast"], 10, 64)
	batch, err2 := strconv.Atoi(fields["batch"])
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("%w: bad broadcast payload %q", ErrPermanent, row.Payload)
	}
	if d.Mass == nil {
		return nil, fmt.Errorf("%w: no mass sender", errNotYet)
	}
	b, err := d.DB.BroadcastBatch(ctx, id, batch)
	if err != nil {
		return nil, fmt.Errorf("%w: broadcast %d: %v", errInfra, id, err)
	}
	at := d.Now()
	finished := func(msgID string, r storage.MassResult) func(context.Context) error {
		r.MsgID = msgID
		return func(ctx context.Context) error { return d.DB.MarkBroadcastSubmitted(ctx, row.ID, b, msgID, at, &r) }
	}
	submitted := func(msgID string) func(context.Context) error {
		return func(ctx context.Context) error { return d.DB.MarkBroadcastSubmitted(ctx, row.ID, b, msgID, at, nil) }
	}
	if len(b.OpenIDs) == 0 {
		return finished("none:"+row.Key, storage.MassResult{Status: "nobody left"}), nil
	}
	if len(b.OpenIDs) == 1 && b.ArticleID != 0 {
		// A customer-service message: an article goes as its text, as much
		// of it as one message holds (one published by the account could go
		// whole, as mpnewsarticle; jiayi does not publish).
		b.ArticleID, b.Body = 0, flows.ArticleExcerpt(b.Body)
	}
	m, err := d.massMessage(ctx, b.Title, b.Body, strconv.FormatInt(b.ArticleID, 10))
	if err != nil {
		return nil, err
	}
	defer d.dropDraft(m)
	switch {
	case b.TagID != 0:
		if d.SyncTag != nil {
			if err := d.SyncTag(ctx, b.TagID); err != nil {
				return nil, err
			}
		}
		msgID, err := d.Mass.MassSendToTag(ctx, b.TagID, m, row.Key)
		if err != nil {
			return nil, err
		}
		return submitted(msgID), nil
	case len(b.OpenIDs) == 1:
		u, err := d.DB.WeChatUser(ctx, b.OpenIDs[0])
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errInfra, err)
		}
		if d.Now().Sub(u.LastSeenAt) >= serviceWindow {
			return nil, fmt.Errorf("%w: a mass message needs two openids, and the one resident left has not written in 48 hours", ErrPermanent)
		}
		if err := d.Send.SendText(ctx, b.OpenIDs[0], m.Text); err != nil {
			return nil, err
		}
		return finished("cs:"+row.Key, storage.MassResult{Status: "send success", Total: 1, Sent: 1}), nil
	}
	msgID, err := d.Mass.MassSend(ctx, b.OpenIDs, m, row.Key)
	if err != nil {
		return nil, err
	}
	return submitted(msgID), nil
}

// dropDraft takes an article's draft out of the draft box once its send or
// preview is over; WeChat takes out a draft it mass-sent itself, so a
// failure here is no fault.
func (d *Dispatcher) dropDraft(m wechat.MassMessage) {
	if m.NewsMediaID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Mass.DeleteDraft(ctx, m.NewsMediaID); err != nil {
		d.Log.Debug("draft not deleted", "media_id", m.NewsMediaID, "err", err)
	}
}

// massMessage is a tip as a mass message: its text, or for an article (ID
// not "" or "0") a draft of it made for this one send (WeChat removes a
// draft once it is mass-sent), its cover uploaded at the first and reused.
func (d *Dispatcher) massMessage(ctx context.Context, title, body, articleID string) (wechat.MassMessage, error) {
	text, err := flows.BroadcastText(title, body)
	if err != nil {
		return wechat.MassMessage{}, fmt.Errorf("%w: %v", ErrPermanent, err)
	}
	m := wechat.MassMessage{Text: text}
	id, _ := strconv.ParseInt(articleID, 10, 64)
	if id == 0 {
		return m, nil
	}
	// One article at a time: batches sent at once would each put its cover
	// up before the first had saved it.
	d.articleMu.Lock()
	defer d.articleMu.Unlock()
	a, err := d.DB.ArticleByID(ctx, storage.Scope{}, id)
	if err != nil {
		return m, fmt.Errorf("%w: article %d: %v", errInfra, id, err)
	}
	media, thumb, err := d.Mass.UploadArticle(ctx, wechat.Article{Title: a.Title, Digest: flows.ArticleDigest(a.Body),
		HTML: flows.ArticleHTML(a.Body), SourceURL: a.SourceURL, ThumbMediaID: a.CoverMediaID, Cover: a.Cover, CoverName: a.CoverName})
	if err != nil {
		return m, err
	}
	if a.CoverMediaID == "" {
		if err := d.DB.SetArticleCover(ctx, id, thumb); err != nil {
			return m, fmt.Errorf("%w: article %d: %v", errInfra, id, err)
		}
	}
	m.NewsMediaID = media
	return m, nil
}

// mapFields renames a push's fields to the template's keywords and cuts each
// value to what WeChat takes for the keyword's type (a thing is at most 20
// characters). Without a mapping the fields go as they are.
func mapFields(mapping, fields map[string]string) map[string]string {
	if mapping == nil {
		return fields
	}
	out := make(map[string]string, len(mapping))
	for ours, keyword := range mapping {
		if v, ok := fields[ours]; ok {
			out[keyword] = fitKeyword(keyword, v)
		}
	}
	return out
}

// keywordLimits are WeChat's longest values per template keyword type.
var keywordLimits = []struct {
	prefix string
	max    int
}{{"thing", 20}, {"character_string", 32}, {"phrase", 5}, {"name", 10}, {"number", 32}, {"letter", 32}, {"car_number", 8}}

func fitKeyword(keyword, v string) string {
	for _, l := range keywordLimits {
		if strings.HasPrefix(keyword, l.prefix) {
			if r := []rune(v); len(r) > l.max {
				return string(r[:l.max-1]) + "…"
			}
			break
		}
	}
	return v
}

// recipient resolves "doctor:ID" to the WeChat the doctor bound; a doctor
// who has not bound yet gets the push once they do.
func (d *Dispatcher) recipient(ctx context.Context, to string) (string, error) {
	raw, ok := strings.CutPrefix(to, "doctor:")
	if !ok {
		return to, nil
	}
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return "", fmt.Errorf("%w: bad recipient %q", ErrPermanent, to)
	}
	openID, bound, err := d.DB.DoctorOpenID(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return "", fmt.Errorf("%w: no doctor %d", ErrPermanent, id)
	case err != nil:
		return "", fmt.Errorf("%w: doctor lookup: %v", errInfra, err)
	case !bound:
		return "", fmt.Errorf("%w: doctor %d has not bound their WeChat", errNotYet, id)
	}
	return openID, nil
}

// QuotaReserve is the share of the daily template quota kept for
// transactional notices and appointment reminders: personal reminders stop
// there and go on the next day (what goes by no template goes on).
const QuotaReserve = 0.1

// batchSize is how many pushes a dispatcher claims at once for each
// worker: few enough to send well inside the lease.
const batchSize = 20

// quotaAllows is the least urgent priority today's quota still allows, and
// how many pushes to claim so personal and seasonal ones stop at the reserve.
func (d *Dispatcher) quotaAllows(ctx context.Context) (int, int) {
	if d.DailyQuota <= 0 {
		return flows.PrioritySeasonal, d.claimSize()
	}
	sent, err := d.DB.SentSince(ctx, flows.StartOfDay(d.Now()))
	if err != nil {
		return flows.PrioritySeasonal, d.claimSize()
	}
	allowance := d.DailyQuota - sent - int(float64(d.DailyQuota)*QuotaReserve)
	if allowance <= 0 {
		return flows.PriorityAppointment, d.claimSize()
	}
	return flows.PrioritySeasonal, min(d.claimSize(), allowance)
}

// nextMidnight is when WeChat's daily quotas start again (Asia/Shanghai).
func nextMidnight(now time.Time) time.Time {
	return flows.StartOfDay(now).AddDate(0, 0, 1)
}

// bucket paces sends to a steady rate with a burst of one second's worth.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	tokens float64
	last   time.Time
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
}

func newBucket(perSecond float64) *bucket {
	return &bucket{rate: perSecond, tokens: perSecond, last: time.Now(), now: time.Now, sleep: sleepCtx}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func (b *bucket) wait(ctx context.Context) error {
	for {
		b.mu.Lock()
		now := b.now()
		b.tokens = min(b.rate, b.tokens+now.Sub(b.last).Seconds()*b.rate)
		b.last = now
		if b.tokens >= 1 {
			b.tokens--
			b.mu.Unlock()
			return nil
		}
		need := time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
		b.mu.Unlock()
		if err := b.sleep(ctx, need); err != nil {
			return err
		}
	}
}

// backoff grows exponentially from 2 s to at most an hour, with jitter so
// failed rows do not come back together.
func backoff(attempt int) time.Duration {
	d := 2 * time.Second << min(attempt-1, 11)
	d = min(d, time.Hour)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}
