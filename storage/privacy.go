package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// HeldData counts what is held about a resident beyond their record, for
// 我的数据.
type HeldData struct {
	Contracts int `db:"contracts"`
	Visits    int `db:"visits"`
	Readings  int `db:"readings"`  // visits with blood pressure or glucose recorded
	Addresses int `db:"addresses"` // home visits with an address
	Referrals int `db:"referrals"`
	Comments  int `db:"comments"` // survey comments
	// The consent of the latest contract, and its withdrawal if any.
	ConsentVersion sql.NullString `db:"consent_version"`
	ConsentedAt    sql.NullTime   `db:"consented_at"`
	WithdrawnAt    sql.NullTime   `db:"withdrawn_at"`
}

// ResidentHeld counts a resident's records.
func (db *DB) ResidentHeld(ctx context.Context, residentID int64) (HeldData, error) {
	var h HeldData
	err := db.get(ctx, "ResidentHeld", &h, `SELECT
		(SELECT COUNT(*) FROM contracts WHERE resident_id = ?) AS contracts,
		(SELECT COUNT(*) FROM appointments WHERE resident_id = ?) AS visits,
		(SELECT COUNT(*) FROM appointments WHERE resident_id = ? AND readings_sealed <> '') AS readings,
		(SELECT COUNT(*) FROM appointments WHERE resident_id = ? AND address_sealed <> '') AS addresses,
		(SELECT COUNT(*) FROM referrals WHERE resident_id = ?) AS referrals,
		(SELECT COUNT(*) FROM surveys s JOIN appointments a ON a.id = s.appointment_id
			WHERE a.resident_id = ? AND s.comment <> '') AS comments,
		(SELECT consent_version FROM contracts WHERE resident_id = ? ORDER BY id DESC LIMIT 1) AS consent_version,
		(SELECT consented_at FROM contracts WHERE resident_id = ? ORDER BY id DESC LIMIT 1) AS consented_at,
		(SELECT consent_withdrawn_at FROM residents WHERE id = ?) AS withdrawn_at`,
		residentID, residentID, residentID, residentID, residentID, residentID, residentID, residentID, residentID)
	return h, err
}

// ConsentWithdrawn records that a resident withdrew their consent; the
// first moment stays.
func (db *DB) ConsentWithdrawn(ctx context.Context, residentID int64, actor string, at time.Time) error {
	const op = "ConsentWithdrawn"
	return db.inTx(ctx, op, func(tx *DB) error {
		if _, err := tx.exec(ctx, op, `UPDATE residents SET consent_withdrawn_at = COALESCE(consent_withdrawn_at, ?)
			WHERE id = ?`, at.UTC(), residentID); err != nil {
			return err
		}
		inst, err := tx.InstitutionOf(ctx, ThingResident, residentID)
		if err != nil {
			return err
		}
		return tx.auditIn(ctx, op, actor, nullID(inst), "resident.consent_withdrawn", fmt.Sprint(residentID), "")
	})
}

// DataRequest is a resident's request about their data.
type DataRequest struct {
	ID           int64        `db:"id" json:"id"`
	ResidentID   int64        `db:"resident_id" json:"resident_id"`
	ResidentName string       `db:"resident_name" json:"resident_name"`
	Kind         string       `db:"kind" json:"kind"`
	RequestedAt  time.Time    `db:"requested_at" json:"requested_at"`
	HandledBy    string       `db:"handled_by" json:"handled_by"`
	HandledAt    sql.NullTime `db:"handled_at" json:"-"`
	Answer       string       `db:"answer" json:"answer"`
}

// RequestDeletion records a resident's deletion request for their
// institution's admins; asking again while one is open finds it (created
// false).
func (db *DB) RequestDeletion(ctx context.Context, residentID int64, openID string, at time.Time) (created bool, err error) {
	const op = "RequestDeletion"
	err = db.inTx(ctx, op, func(tx *DB) error {
		var open int
		if err := tx.get(ctx, op, &open, `SELECT COUNT(*) FROM data_requests WHERE resident_id = ? AND kind = 'delete'
			AND handled_at IS NULL`, residentID); err != nil {
			return err
		}
		if open > 0 {
			return nil
		}
		if _, err := tx.exec(ctx, op, `INSERT INTO data_requests (resident_id, kind, requested_by, requested_at)
			VALUES (?, 'delete', ?, ?)`, residentID, openID, at.UTC()); err != nil {
			return err
		}
		created = true
		inst, err := tx.InstitutionOf(ctx, ThingResident, residentID)
		if err != nil {
			return err
		}
		return tx.auditIn(ctx, op, openID, nullID(inst), "resident.deletion_requested", fmt.Sprint(residentID), "")
	})
	return created, err
}

// DataRequests lists the requests of residents in scope, open first.
func (db *DB) DataRequests(ctx context.Context, scope Scope, page Page) ([]DataRequest, int, error) {
	const op = "DataRequests"
	page = page.clamp()
	cond, args := scope.where("c.institution_id", "")
	from := ` FROM data_requests q JOIN residents r ON r.id = q.resident_id JOIN communities c ON c.id = r.community_id WHERE ` + cond
	var total int
	if err := db.get(ctx, op, &total, `SELECT COUNT(*)`+from, args...); err != nil {
		return nil, 0, err
	}
	out := []DataRequest{}
	err := db.sel(ctx, op, &out, `SELECT q.id, q.resident_id, r.name AS resident_name, q.kind, q.requested_at, q.handled_by,
		q.handled_at, q.answer`+from+` ORDER BY q.handled_at IS NOT NULL, q.id DESC LIMIT ? OFFSET ?`, append(args, page.Limit, page.Offset)...)
	return out, total, err
}

// AnswerDataRequest records how staff handled an open request, in scope,
// and enqueues what notify returns for the user who asked.
func (db *DB) AnswerDataRequest(ctx context.Context, scope Scope, id int64, actor, answer string, at time.Time,
	notify func(requestedBy, resident string) []Push) error {
	const op = "AnswerDataRequest"
	return db.inTx(ctx, op, func(tx *DB) error {
		var q struct {
			Resident    int64  `db:"resident_id"`
			Name        string `db:"name"`
			RequestedBy string `db:"requested_by"`
			Institution int64  `db:"institution_id"`
		}
		err := tx.get(ctx, op, &q, `SELECT q.resident_id, r.name, q.requested_by, c.institution_id FROM data_requests q
			JOIN residents r ON r.id = q.resident_id
			JOIN communities c ON c.id = r.community_id WHERE q.id = ? AND q.handled_at IS NULL`, id)
		if errors.Is(err, ErrNotFound) || err == nil && !scope.Whole() && scope.Institution != q.Institution {
			return fail(op, fmt.Errorf("data request %d: %w", id, ErrNotFound))
		}
		if err != nil {
			return err
		}
		if _, err := tx.exec(ctx, op, `UPDATE data_requests SET handled_by = ?, handled_at = ?, answer = ? WHERE id = ?`,
			actor, at.UTC(), answer, id); err != nil {
			return err
		}
		if err := tx.auditIn(ctx, op, actor, nullID(q.Institution), "resident.deletion_answered", fmt.Sprint(q.Resident), answer); err != nil {
			return err
		}
		return tx.enqueue(ctx, op, notify(q.RequestedBy, q.Name))
	})
}
