package storage

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"time"
)

// ReminderSettings say which unprompted reminders a WeChat user wants.
type ReminderSettings struct {
	Seasonal bool `db:"seasonal_reminders"`
	Personal bool `db:"personal_reminders"`
}

// Reminders reads a user's settings; someone never seen gets both.
func (db *DB) Reminders(ctx context.Context, openID string) (ReminderSettings, error) {
	var s ReminderSettings
	err := db.get(ctx, "Reminders", &s, `SELECT seasonal_reminders, personal_reminders FROM wechat_users WHERE openid = ?`, openID)
	if errors.Is(err, ErrNotFound) {
		return ReminderSettings{Seasonal: true, Personal: true}, nil
	}
	return s, err
}

// SetReminders stores a user's settings and withdraws pending reminders of
// the kinds turned off.
func (db *DB) SetReminders(ctx context.Context, openID string, s ReminderSettings, seasonalKinds, personalKinds []string) error {
	const op = "SetReminders"
	return db.inTx(ctx, op, func(tx *DB) error {
		n, err := tx.exec(ctx, op, `UPDATE wechat_users SET seasonal_reminders = ?, personal_reminders = ? WHERE openid = ?`,
			s.Seasonal, s.Personal, openID)
		if err != nil {
			return err
		}
		if n == 0 {
			return fail(op, ErrNotFound)
		}
		var off []string
		if !s.Seasonal {
			off = append(off, seasonalKinds...)
		}
		if !s.Personal {
			off = append(off, personalKinds...)
		}
		if len(off) == 0 {
			return nil
		}
		_, err = tx.execIn(ctx, op, `UPDATE outbox SET state = 'cancelled', last_error = 'reminders turned off'
			WHERE recipient = ? AND kind IN (?) AND state = 'pending'`, openID, off)
		return err
	})
}

// Recipient is a signed resident as seasonal campaigns see them.
type Recipient struct {
	ResidentID    int64  `db:"resident_id"`
	Name          string `db:"name"`
	ManagerOpenID string `db:"manager_openid"`
	BirthDate     string `db:"birth_date"`
	Groups        string `db:"priority_groups"` // declared priority groups, sealed
	CommunityID   int64  `db:"community_id"`
	// LastSeenAt is when the WeChat user last wrote: a tip reaches them by
	// customer-service message inside WeChat's 48 hours, else by digest.
	LastSeenAt time.Time `db:"last_seen_at"`
}

// SeasonalRecipients pages through residents with an active contract whose
// manager follows the account and wants seasonal reminders, by resident ID
// after the given one up to lastID (a campaign's chunk), so a campaign for
// millions never loads them at once.
func (db *DB) SeasonalRecipients(ctx context.Context, afterID, lastID int64, limit int) ([]Recipient, error) {
	return db.seasonalRecipients(ctx, "SeasonalRecipients", "", nil, afterID, lastID, limit)
}

// SeasonalRecipientsSince pages, as SeasonalRecipients does, through those
// whose contract became active at or after a moment: who signed after a
// campaign last ran.
func (db *DB) SeasonalRecipientsSince(ctx context.Context, since time.Time, afterID int64, limit int) ([]Recipient, error) {
	return db.seasonalRecipients(ctx, "SeasonalRecipientsSince", `AND EXISTS (SELECT 1 FROM contracts c JOIN contract_events e
		ON e.contract_id = c.id WHERE c.resident_id = r.id AND e.to_status = 'active' AND e.from_status <> 'active' AND e.at >= ?)`,
		[]any{since.UTC()}, afterID, math.MaxInt64, limit)
}

// The bounds are said twice: PostgreSQL does not carry r.id's to the
// contracts it merges with, and would read them from the first each page.
func (db *DB) seasonalRecipients(ctx context.Context, op, and string, args []any, afterID, lastID int64, limit int) ([]Recipient, error) {
	var out []Recipient
	err := db.sel(ctx, op, &out, `SELECT r.id AS resident_id, r.name, r.manager_openid, r.birth_date, r.priority_groups,
		r.community_id, u.last_seen_at FROM residents r
		JOIN wechat_users u ON u.openid = r.manager_openid
		WHERE r.id > ? AND r.id <= ? AND u.subscribed AND u.seasonal_reminders
		AND EXISTS (SELECT 1 FROM contracts c WHERE c.resident_id = r.id AND c.resident_id > ? AND c.resident_id <= ? AND c.status = 'active') `+and+`
		ORDER BY r.id LIMIT ?`, append(append([]any{afterID, lastID, afterID, lastID}, args...), limit)...)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Enqueue writes pushes on their own (a campaign's page), each key once.
func (db *DB) Enqueue(ctx context.Context, pushes []Push) error {
	return db.Apply(ctx, Changes{Pushes: pushes})
}

// EnqueueNew writes pushes as Enqueue does and says how many were new (a
// key written before adds nothing).
func (db *DB) EnqueueNew(ctx context.Context, pushes []Push) (int, error) {
	if len(pushes) == 0 {
		return 0, nil
	}
	n, err := db.enqueueNew(ctx, "EnqueueNew", pushes)
	return int(n), err
}

// ClaimCampaign lets one instance expand a campaign for a year: it wins if
// no one started it, or if whoever did has not finished within lease (died).
func (db *DB) ClaimCampaign(ctx context.Context, code string, year int, now time.Time, lease time.Duration) (bool, error) {
	var got string
	err := db.get(ctx, "ClaimCampaign", &got, `INSERT INTO campaigns (code, year, started_at) VALUES (?, ?, ?)
		ON CONFLICT (code, year) DO UPDATE SET started_at = excluded.started_at
		WHERE campaigns.finished_at IS NULL AND campaigns.started_at < ?
		RETURNING code`, code, year, now.UTC(), now.Add(-lease).UTC())
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// FinishCampaign records that a campaign's expansion is complete: it has
// reached everyone active when it started.
func (db *DB) FinishCampaign(ctx context.Context, code string, year int, pushes int, now time.Time) error {
	// A change to the entry while it ran (rerunCampaign) left through at the
	// start: it stays there, so the next run reads everyone again.
	_, err := db.exec(ctx, "FinishCampaign", `UPDATE campaigns SET finished_at = ?, pushes = ?, through = COALESCE(through, started_at)
		WHERE code = ? AND year = ?`, now.UTC(), pushes, code, year)
	return err
}

// CampaignReach is how far a finished campaign has reached, and how many
// changes to its entry it has seen.
type CampaignReach struct {
	Through    time.Time
	Generation int
}

// CampaignThrough is how far a finished campaign has reached (see
// CatchUpCampaign); ok is false while it is not finished.
func (db *DB) CampaignThrough(ctx context.Context, code string, year int) (reach CampaignReach, ok bool, err error) {
	var row struct {
		Through    sql.NullTime `db:"through"`
		Generation int          `db:"generation"`
	}
	err = db.get(ctx, "CampaignThrough", &row, `SELECT through, generation FROM campaigns WHERE code = ? AND year = ?
		AND finished_at IS NOT NULL`, code, year)
	if errors.Is(err, ErrNotFound) {
		return reach, false, nil
	}
	return CampaignReach{Through: row.Through.Time, Generation: row.Generation}, err == nil && row.Through.Valid, err
}

// CatchUpCampaign records that a finished campaign has caught up to a
// moment (after a run over those who signed since what it read), adding
// what it enqueued; it does nothing if another run moved it first, or if
// the entry changed meanwhile (the next run reads everyone again).
func (db *DB) CatchUpCampaign(ctx context.Context, code string, year int, was CampaignReach, to time.Time, pushes int) error {
	_, err := db.exec(ctx, "CatchUpCampaign", `UPDATE campaigns SET through = ?, pushes = pushes + ?
		WHERE code = ? AND year = ? AND through = ? AND generation = ?`, to.UTC(), pushes, code, year, was.Through.UTC(), was.Generation)
	return err
}

// ResidentGroups is one resident's stored priority groups.
type ResidentGroups struct {
	ResidentID int64  `db:"id"`
	Groups     string `db:"priority_groups"`
}

// ClearGroups lists the residents whose priority groups were stored in
// clear, before they were sealed.
func (db *DB) ClearGroups(ctx context.Context) ([]ResidentGroups, error) {
	var out []ResidentGroups
	err := db.sel(ctx, "ClearGroups", &out, `SELECT id, priority_groups FROM residents WHERE priority_groups LIKE '[%'`)
	return out, err
}

// SealGroups replaces a resident's clear priority groups with sealed ones,
// if they are still what was read.
func (db *DB) SealGroups(ctx context.Context, residentID int64, clear, sealed string) error {
	_, err := db.exec(ctx, "SealGroups", `UPDATE residents SET priority_groups = ? WHERE id = ? AND priority_groups = ?`,
		sealed, residentID, clear)
	return err
}
