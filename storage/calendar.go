package storage

import (
	"context"
	"strconv"
	"time"
)

// CalendarEdit is an admin's change to one seasonal calendar entry, for the
// whole deployment (Institution 0) or one institution's residents.
type CalendarEdit struct {
	Institution int64     `db:"institution_id"`
	Code        string    `db:"code"`
	Off         bool      `db:"off"`
	Text        string    `db:"text"`  // "" keeps the entry's own
	Entry       string    `db:"entry"` // an added entry as JSON; "" edits a built-in one
	UpdatedBy   string    `db:"updated_by"`
	UpdatedAt   time.Time `db:"updated_at"`
}

// CalendarEdits lists every change to the calendar.
func (db *DB) CalendarEdits(ctx context.Context) ([]CalendarEdit, error) {
	var out []CalendarEdit
	err := db.sel(ctx, "CalendarEdits", &out, `SELECT institution_id, code, off, text, entry, updated_by, updated_at
		FROM calendar_edits ORDER BY institution_id, code`)
	return out, err
}

// SaveCalendarEdit records a change, replacing the one before it, and
// audits what it was; switching an entry off withdraws this year's
// reminders of it still waiting to go (for the institution's residents).
func (db *DB) SaveCalendarEdit(ctx context.Context, e CalendarEdit, name string, year int) error {
	const op = "SaveCalendarEdit"
	return db.inTx(ctx, op, func(tx *DB) error {
		if _, err := tx.exec(ctx, op, `INSERT INTO calendar_edits (institution_id, code, off, text, entry, updated_by, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (institution_id, code) DO UPDATE SET off = excluded.off, text = excluded.text,
			entry = excluded.entry, updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
			e.Institution, e.Code, e.Off, e.Text, e.Entry, e.UpdatedBy, db.now()); err != nil {
			return err
		}
		if err := tx.rerunCampaign(ctx, op, e.Code, year); err != nil {
			return err
		}
		if !e.Off {
			if err := tx.reviveSeasonal(ctx, op, e.Institution, e.Code, year); err != nil {
				return err
			}
		}
		detail := "改写了提示内容"
		switch {
		case e.Off:
			detail = "停发"
			if err := tx.withdrawSeasonal(ctx, op, e.Institution, e.Code, year); err != nil {
				return err
			}
		case e.Entry != "":
			detail = "新增或修改了自定条目"
		case e.Text == "":
			detail = "恢复发送"
		}
		return tx.auditIn(ctx, op, e.UpdatedBy, nullID(e.Institution), "calendar.edit", name+"（"+e.Code+"）", detail)
	})
}

// DeleteCalendarEdit puts an entry back as the calendar has it, or removes
// an entry that was added.
func (db *DB) DeleteCalendarEdit(ctx context.Context, institution int64, code, name, actor string, year int) error {
	const op = "DeleteCalendarEdit"
	return db.inTx(ctx, op, func(tx *DB) error {
		var entry string
		if err := tx.get(ctx, op, &entry, `SELECT entry FROM calendar_edits WHERE institution_id = ? AND code = ?`,
			institution, code); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, op, `DELETE FROM calendar_edits WHERE institution_id = ? AND code = ?`, institution, code); err != nil {
			return err
		}
		if err := tx.rerunCampaign(ctx, op, code, year); err != nil {
			return err
		}
		if entry == "" {
			if err := tx.reviveSeasonal(ctx, op, institution, code, year); err != nil {
				return err
			}
		}
		detail := "恢复为日历原样"
		if entry != "" {
			detail = "删除了自定条目"
			if err := tx.withdrawSeasonal(ctx, op, institution, code, year); err != nil {
				return err
			}
		}
		return tx.auditIn(ctx, op, actor, nullID(institution), "calendar.edit", name+"（"+code+"）", detail)
	})
}

// WithdrawSwitchedOff cancels reminders by key still waiting to go: those a
// campaign enqueued for residents whose institution switched the entry off
// while it ran.
func (db *DB) WithdrawSwitchedOff(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	_, err := db.execIn(ctx, "WithdrawSwitchedOff", `UPDATE outbox SET state = 'cancelled', last_error = 'switched off in the calendar'
		WHERE state = 'pending' AND idempotency_key IN (?)`, keys)
	return err
}

// rerunCampaign makes an entry's finished campaign of this year run again
// for everyone at its next run inside its window (switched back on, it
// reaches those who did not have it; keys spare those who did).
// A campaign still running when the change lands keeps the mark: it
// finishes with through at the start, and a catch-up that read through
// before the change (its generation) cannot move it on.
func (db *DB) rerunCampaign(ctx context.Context, op, code string, year int) error {
	_, err := db.exec(ctx, op, `UPDATE campaigns SET through = ?, generation = generation + 1 WHERE code = ? AND year = ?`,
		time.Unix(0, 0).UTC(), "seasonal:"+code, year)
	return err
}

// reviveSeasonal puts back this year's reminders of an entry that switching
// it off withdrew, to one institution's residents or (0) everyone's, except
// where the entry is still off: an institution's own switch, or city
// staff's for all. Those past their window are withdrawn again when claimed.
func (db *DB) reviveSeasonal(ctx context.Context, op string, institution int64, code string, year int) error {
	prefix := "seasonal:" + code + ":" + strconv.Itoa(year) + ":"
	still := `SELECT CAST(? AS TEXT) || CAST(r.id AS TEXT) FROM residents r JOIN communities m ON m.id = r.community_id
		WHERE m.institution_id IN (SELECT institution_id FROM calendar_edits WHERE code = ? AND off)`
	args := []any{prefix, len(prefix), prefix, prefix, code}
	scoped := ""
	if institution != 0 {
		scoped = ` AND idempotency_key IN (SELECT CAST(? AS TEXT) || CAST(r.id AS TEXT) FROM residents r
			JOIN communities m ON m.id = r.community_id WHERE m.institution_id = ?)`
		args = append(args, prefix, institution)
	}
	var cityOff bool
	if err := db.get(ctx, op, &cityOff, `SELECT COUNT(*) > 0 FROM calendar_edits WHERE institution_id = 0 AND code = ? AND off`, code); err != nil {
		return err
	}
	if cityOff {
		return nil
	}
	_, err := db.exec(ctx, op, `UPDATE outbox SET state = 'pending', last_error = ''
		WHERE state = 'cancelled' AND last_error = 'switched off in the calendar' AND SUBSTR(idempotency_key, 1, ?) = ?
		AND idempotency_key NOT IN (`+still+`)
		AND recipient IN (SELECT openid FROM wechat_users WHERE subscribed AND seasonal_reminders)`+scoped, args[1:]...)
	return err
}

// withdrawSeasonal cancels an entry's reminders of a year, and of the year
// before (a December entry still going out under the daily quota in
// January), still waiting to go, to one institution's residents or (0) to
// everyone.
func (db *DB) withdrawSeasonal(ctx context.Context, op string, institution int64, code string, year int) error {
	for _, y := range []int{year - 1, year} {
		if err := db.withdrawSeasonalOf(ctx, op, institution, "seasonal:"+code+":"+strconv.Itoa(y)+":"); err != nil {
			return err
		}
	}
	return nil
}

func (db *DB) withdrawSeasonalOf(ctx context.Context, op string, institution int64, prefix string) error {
	var err error
	if institution == 0 {
		_, err = db.exec(ctx, op, `UPDATE outbox SET state = 'cancelled', last_error = 'switched off in the calendar'
			WHERE state = 'pending' AND SUBSTR(idempotency_key, 1, ?) = ?`, len(prefix), prefix)
		return err
	}
	_, err = db.exec(ctx, op, `UPDATE outbox SET state = 'cancelled', last_error = 'switched off in the calendar'
		WHERE state = 'pending' AND idempotency_key IN (SELECT CAST(? AS TEXT) || CAST(r.id AS TEXT) FROM residents r
		JOIN communities m ON m.id = r.community_id WHERE m.institution_id = ?)`, prefix, institution)
	return err
}
