package storage

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Push is one message to send unprompted.
type Push struct {
	Key       string            // idempotency key, e.g. contract:42:sign-request
	Kind      string            // sign_request, sign_confirmed, …
	Recipient string            // openid
	Fields    map[string]string // the template's fields
	Priority  int               // 0 transactional
	Due       time.Time
	StaleAt   time.Time // when sending it no longer makes sense; zero: never
}

// OutboxRow is a claimed push.
type OutboxRow struct {
	ID        int64  `db:"id"`
	Key       string `db:"idempotency_key"`
	Kind      string `db:"kind"`
	Recipient string `db:"recipient"`
	Payload   string `db:"payload"`
	Priority  int    `db:"priority"`
	Attempts  int    `db:"attempts"`
	// LeaseUntil is when the claim ends and another dispatcher may take
	// the row: nothing may be sent for it after that.
	LeaseUntil time.Time `db:"-"`
}

// Fields decodes the push's template fields.
func (r OutboxRow) Fields() (map[string]string, error) {
	var f map[string]string
	err := json.Unmarshal([]byte(r.Payload), &f)
	return f, err
}

const (
	outboxInsert   = `INSERT INTO outbox (idempotency_key, kind, recipient, payload, priority, due_at, created_at, stale_at) VALUES`
	outboxConflict = `ON CONFLICT (idempotency_key) DO NOTHING`
)

// pushRow is an outbox row for p.
func pushRow(p Push, now time.Time) ([]any, error) {
	payload, err := json.Marshal(p.Fields)
	if err != nil {
		return nil, err
	}
	due := p.Due
	if due.IsZero() {
		due = now
	}
	var stale any
	if !p.StaleAt.IsZero() {
		stale = p.StaleAt.UTC()
	}
	return []any{p.Key, p.Kind, p.Recipient, string(payload), p.Priority, due.UTC(), now, stale}, nil
}

// enqueue writes pushes inside a transaction; a key already written is
// skipped, so replaying a step never sends twice. The pushes written make
// the transaction call OnPushes when it commits.
func (db *DB) enqueue(ctx context.Context, op string, pushes []Push) error {
	_, err := db.enqueueNew(ctx, op, pushes)
	return err
}

// enqueueNew is enqueue saying how many pushes were new.
func (db *DB) enqueueNew(ctx context.Context, op string, pushes []Push) (int64, error) {
	now := db.now()
	rows := make([][]any, len(pushes))
	for i, p := range pushes {
		row, err := pushRow(p, now)
		if err != nil {
			return 0, fail(op, fmt.Errorf("enqueue %s: %w", p.Key, err))
		}
		rows[i] = row
	}
	n, err := db.insertMany(ctx, op+": enqueue", outboxInsert, outboxConflict, rows)
	db.pushed(n)
	return n, err
}

// cancelPushesTo withdraws everything still waiting for someone who unfollowed.
func (db *DB) cancelPushesTo(ctx context.Context, op, openID string) error {
	_, err := db.exec(ctx, op, `UPDATE outbox SET state = 'cancelled', last_error = 'recipient unsubscribed'
		WHERE recipient = ? AND state = 'pending'`, openID)
	return err
}

// ClaimDue leases up to n due pushes of priority at most maxPriority, most
// urgent first. Rows leased by a dispatcher that died come back when the
// lease runs out. PostgreSQL skips rows another instance is claiming; SQLite
// serialises writers anyway.
func (db *DB) ClaimDue(ctx context.Context, n int, lease time.Duration, now time.Time, maxPriority int) ([]OutboxRow, error) {
	// A tip held for the digest keeps why it waited, so the console can say
	// why it never went; one in a digest's batch goes, or not, with it.
	if _, err := db.exec(ctx, "ClaimDue: stale", `UPDATE outbox SET state = 'cancelled', lease_until = NULL,
		last_error = CASE WHEN last_error LIKE 'held%' THEN last_error || '; moment passed' ELSE 'moment passed' END
		WHERE state = 'pending' AND stale_at IS NOT NULL AND stale_at <= ? AND broadcast_id IS NULL
		AND (lease_until IS NULL OR lease_until < ?)`, now.UTC(), now.UTC()); err != nil { // one being sent now is left to its sender
		return nil, err
	}
	return db.claim(ctx, "", nil, lease, now, maxPriority, n)
}

// ClaimDueOf leases, as ClaimDue does, due pushes of the given kinds only
// (those that use none of the template quota, when it is nearly spent).
func (db *DB) ClaimDueOf(ctx context.Context, kinds []string, n int, lease time.Duration, now time.Time, maxPriority int) ([]OutboxRow, error) {
	return db.claim(ctx, " AND kind IN (?)", []any{kinds}, lease, now, maxPriority, n)
}

// claim leases up to n due pushes of priority at most maxPriority that
// also meet and (with its arguments), most urgent first. PostgreSQL skips
// rows another instance is claiming; SQLite serialises writers anyway.
func (db *DB) claim(ctx context.Context, and string, andArgs []any, lease time.Duration, now time.Time, maxPriority, n int) ([]OutboxRow, error) {
	lock := ""
	if db.Dialect == Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	// To the microsecond, as PostgreSQL keeps it, so ReleaseClaim can name it.
	leaseUntil := now.Add(lease).UTC().Truncate(time.Microsecond)
	var rows []OutboxRow
	args := append(append([]any{leaseUntil, now.UTC(), now.UTC(), maxPriority}, andArgs...), n)
	err := db.selIn(ctx, "ClaimDue", &rows, `UPDATE outbox SET lease_until = ?, attempts = attempts + 1
WHERE id IN (SELECT id FROM outbox WHERE state = 'pending' AND due_at <= ? AND (lease_until IS NULL OR lease_until < ?)
    AND priority <= ?`+and+` ORDER BY priority, due_at, id LIMIT ?`+lock+`)
RETURNING id, idempotency_key, kind, recipient, payload, priority, attempts`, args...)
	if err != nil {
		return nil, err
	}
	for i := range rows {
		rows[i].LeaseUntil = leaseUntil
	}
	// RETURNING keeps no order; send the most urgent first.
	slices.SortFunc(rows, func(a, b OutboxRow) int {
		return cmp.Or(cmp.Compare(a.Priority, b.Priority), cmp.Compare(a.ID, b.ID))
	})
	return rows, nil
}

// MarkSent records a delivered push.
func (db *DB) MarkSent(ctx context.Context, id int64, now time.Time) error {
	return db.MarkSentMany(ctx, []int64{id}, now)
}

// MarkSentMany records delivered pushes in one statement, one commit: the
// sends a dispatcher's workers finished together, sent by now.
func (db *DB) MarkSentMany(ctx context.Context, ids []int64, now time.Time) error {
	_, err := db.execIn(ctx, "MarkSentMany", `UPDATE outbox SET state = 'sent', sent_at = ?, lease_until = NULL, last_error = ''
		WHERE id IN (?)`, now.UTC(), ids)
	return err
}

// MarkFailed records a failed attempt: retried at retryAt, or dead (kept
// for admins with its error) when retryAt is zero.
func (db *DB) MarkFailed(ctx context.Context, id int64, reason string, retryAt time.Time) error {
	const op = "MarkFailed"
	var err error
	if retryAt.IsZero() {
		_, err = db.exec(ctx, op, `UPDATE outbox SET state = 'dead', lease_until = NULL, last_error = ?
			WHERE id = ? AND state = 'pending'`, reason, id)
	} else {
		_, err = db.exec(ctx, op, `UPDATE outbox SET due_at = ?, lease_until = NULL, last_error = ?
			WHERE id = ? AND state = 'pending'`, retryAt.UTC(), reason, id)
	}
	return err
}

// MarkDeferred puts a claimed push back until retryAt and gives back the
// attempt its claim counted: it failed for want of jiayi's own services, not
// for anything about the push.
func (db *DB) MarkDeferred(ctx context.Context, id int64, reason string, retryAt time.Time) error {
	_, err := db.exec(ctx, "MarkDeferred", `UPDATE outbox SET due_at = ?, lease_until = NULL, last_error = ?,
		attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END WHERE id = ? AND state = 'pending'`, retryAt.UTC(), reason, id)
	return err
}

// ReleaseClaim hands back a claimed push that was not tried, with the
// attempt its claim counted, if the claim is still the caller's (its lease
// unchanged): one another dispatcher has claimed since is left alone.
func (db *DB) ReleaseClaim(ctx context.Context, id int64, leaseUntil time.Time) error {
	_, err := db.exec(ctx, "ReleaseClaim", `UPDATE outbox SET lease_until = NULL,
		attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END
		WHERE id = ? AND lease_until = ? AND state = 'pending'`, id, leaseUntil)
	return err
}

// OutboxEntry is a push as admins and tests see it.
type OutboxEntry struct {
	ID        int64  `db:"id" json:"id"`
	Key       string `db:"idempotency_key" json:"key"`
	Kind      string `db:"kind" json:"kind"`
	Recipient string `db:"recipient" json:"recipient"`
	State     string `db:"state" json:"state"`
	Attempts  int    `db:"attempts" json:"attempts"`
	LastError string `db:"last_error" json:"last_error"`
	Payload   string `db:"payload" json:"-"` // names and times: read through Fields, never listed
}

// Fields decodes the push's template fields.
func (e OutboxEntry) Fields() (map[string]string, error) {
	return OutboxRow{Payload: e.Payload}.Fields()
}

// OutboxFor lists the pushes to one recipient, oldest first.
func (db *DB) OutboxFor(ctx context.Context, recipient string) ([]OutboxEntry, error) {
	var out []OutboxEntry
	if err := db.sel(ctx, "OutboxFor", &out, `SELECT idempotency_key, kind, recipient, state, attempts, last_error, payload
		FROM outbox WHERE recipient = ? ORDER BY id`, recipient); err != nil {
		return nil, err
	}
	return out, nil
}

// PushToResident is a push to the WeChat user who manages a resident, as
// the resident's page lists it: its kind, when it was due or went, and
// whether it went; not its words.
type PushToResident struct {
	ID     int64        `db:"id" json:"id"`
	Kind   string       `db:"kind" json:"kind"`
	State  string       `db:"state" json:"state"`
	DueAt  time.Time    `db:"due_at" json:"due_at"`
	SentAt sql.NullTime `db:"sent_at" json:"-"`
}

// PushesToResident lists the newest pushes, up to limit, to the WeChat user
// who manages a resident (which, for a family's manager, includes those
// about the rest of the family). A resident signed at the desk without
// WeChat has none.
func (db *DB) PushesToResident(ctx context.Context, residentID int64, limit int) ([]PushToResident, error) {
	out := []PushToResident{}
	err := db.sel(ctx, "PushesToResident", &out, `SELECT o.id, o.kind, o.state, o.due_at, o.sent_at FROM outbox o
		JOIN residents r ON r.manager_openid = o.recipient WHERE r.id = ? AND r.manager_openid <> ''
		ORDER BY o.id DESC LIMIT ?`, residentID, limit)
	return out, err
}

// SentSince counts the pushes sent since a moment (today's use of the
// template quota); mass messages have their own limits, and seasonal tips
// go as customer-service messages or in the digest, so neither is counted.
func (db *DB) SentSince(ctx context.Context, since time.Time) (int, error) {
	var n int
	err := db.get(ctx, "SentSince", &n, `SELECT COUNT(*) FROM outbox WHERE state = 'sent' AND sent_at >= ?
		AND kind NOT IN (?, ?, ?)`, since.UTC(), KindBroadcast, KindBroadcastPreview, KindSeasonal)
	return n, err
}

// SeasonalWaiting counts the seasonal tips still to go: those the
// dispatcher sends and those held (priority held) for the digest.
func (db *DB) SeasonalWaiting(ctx context.Context, held int) (pending, waiting int, err error) {
	var n struct {
		Pending int `db:"pending"`
		Held    int `db:"held"`
	}
	err = db.get(ctx, "SeasonalWaiting", &n, `SELECT COALESCE(SUM(CASE WHEN priority = ? THEN 0 ELSE 1 END), 0) AS pending,
		COALESCE(SUM(CASE WHEN priority = ? THEN 1 ELSE 0 END), 0) AS held FROM outbox WHERE state = 'pending' AND kind = ?`,
		held, held, KindSeasonal)
	return n.Pending, n.Held, err
}

// Campaign is one expanded campaign.
type Campaign struct {
	Code       string       `db:"code" json:"code"`
	Year       int          `db:"year" json:"year"`
	StartedAt  time.Time    `db:"started_at" json:"started_at"`
	FinishedAt sql.NullTime `db:"finished_at" json:"-"`
	Pushes     int          `db:"pushes" json:"pushes"`
}

// Campaigns lists the seasonal campaigns and the digests, newest first.
func (db *DB) Campaigns(ctx context.Context, limit int) ([]Campaign, error) {
	var out []Campaign
	// A day's personal reminders are a run too, one a day: they would
	// crowd the calendar's and the digests' out of the list.
	if err := db.sel(ctx, "Campaigns", &out, `SELECT code, year, started_at, finished_at, pushes FROM campaigns
		WHERE code NOT LIKE 'personal:%' ORDER BY started_at DESC LIMIT ?`, limit); err != nil {
		return nil, err
	}
	return out, nil
}
