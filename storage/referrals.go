package storage

import (
	"context"
	"errors"
	"time"
)

// NewReferral is a resident's request to be referred to a hospital.
type NewReferral struct {
	RequestKey   string // the conversation run: a retry finds the first request
	ResidentID   int64
	ContractID   int64
	DoctorID     int64
	Hospital     string // "" where the programme names none
	GreenChannel bool   // the hospital is one the resident signed with
	ReasonSealed string
	At           time.Time
	Pushes       func(id int64) []Push // the doctor's notice, sent with the request
}

// Referral is a request as stored.
type Referral struct {
	ID           int64     `db:"id" json:"id"`
	ResidentID   int64     `db:"resident_id" json:"resident_id"`
	ContractID   int64     `db:"contract_id" json:"contract_id"`
	DoctorID     int64     `db:"doctor_id" json:"doctor_id"`
	Hospital     string    `db:"hospital" json:"hospital"`
	GreenChannel bool      `db:"green_channel" json:"green_channel"`
	ReasonSealed string    `db:"reason_sealed" json:"-"`
	CreatedAt    time.Time `db:"created_at" json:"created_at"`
}

// RequestReferral records a referral request under an active contract of
// the resident with that doctor, and enqueues the doctor's notice in the
// same transaction. The same request key again returns the first request.
func (db *DB) RequestReferral(ctx context.Context, r NewReferral) (int64, error) {
	const op = "RequestReferral"
	var id int64
	err := db.inTx(ctx, op, func(tx *DB) error {
		err := tx.get(ctx, op, &id, `SELECT id FROM referrals WHERE request_key = ?`, r.RequestKey)
		if err == nil {
			return nil
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		var live int
		if err := tx.get(ctx, op, &live, `SELECT COUNT(*) FROM contracts WHERE id = ? AND resident_id = ? AND status = 'active'
			AND doctor_id = ?`, r.ContractID, r.ResidentID, r.DoctorID); err != nil {
			return err
		}
		if live == 0 {
			return fail(op, ErrContractChanged)
		}
		if err := tx.get(ctx, op, &id, `INSERT INTO referrals (request_key, resident_id, contract_id, doctor_id, hospital,
			green_channel, reason_sealed, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			r.RequestKey, r.ResidentID, r.ContractID, r.DoctorID, r.Hospital, r.GreenChannel, r.ReasonSealed, r.At.UTC()); err != nil {
			return err
		}
		if r.Pushes != nil {
			return tx.enqueue(ctx, op, r.Pushes(id))
		}
		return nil
	})
	return id, err
}

// ReferralsOf lists a resident's referral requests, newest first.
func (db *DB) ReferralsOf(ctx context.Context, residentID int64) ([]Referral, error) {
	out := []Referral{}
	err := db.sel(ctx, "ReferralsOf", &out, `SELECT id, resident_id, contract_id, doctor_id, hospital, green_channel,
		reason_sealed, created_at FROM referrals WHERE resident_id = ? ORDER BY id DESC LIMIT 50`, residentID)
	return out, err
}

// ReferralSent is a recent referral request as its resident's manager sees
// it in 我的预约.
type ReferralSent struct {
	ResidentName string    `db:"resident_name"`
	Hospital     string    `db:"hospital"`
	CreatedAt    time.Time `db:"created_at"`
}

// ReferralsManagedBy lists the referral requests made since a moment for
// the residents a WeChat user manages, newest first.
func (db *DB) ReferralsManagedBy(ctx context.Context, openID string, since time.Time) ([]ReferralSent, error) {
	var out []ReferralSent
	err := db.sel(ctx, "ReferralsManagedBy", &out, `SELECT r.name AS resident_name, f.hospital, f.created_at
		FROM referrals f JOIN residents r ON r.id = f.resident_id
		WHERE r.manager_openid = ? AND f.created_at >= ? ORDER BY f.id DESC LIMIT 5`, openID, since.UTC())
	return out, err
}
