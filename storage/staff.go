package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Role is what a staff member may do; see Scope for what they may see.
type Role string

const (
	RoleAdmin  Role = "admin"  // everything in their institution
	RoleDoctor Role = "doctor" // their own teams' residents, schedules and visits
	RoleViewer Role = "viewer" // read-only, their institution
	RoleCity   Role = "city"   // every institution
)

// Roles lists the roles in the order the console offers them.
var Roles = []Role{RoleAdmin, RoleDoctor, RoleViewer, RoleCity}

// Staff is a console account.
type Staff struct {
	ID              int64         `db:"id" json:"id"`
	Username        string        `db:"username" json:"username"`
	Role            Role          `db:"role" json:"role"`
	InstitutionID   sql.NullInt64 `db:"institution_id" json:"-"`
	DoctorID        sql.NullInt64 `db:"doctor_id" json:"-"`
	PasswordHash    string        `db:"password_hash" json:"-"`
	PasswordVersion int           `db:"password_version" json:"-"`
	Disabled        bool          `db:"disabled" json:"disabled"`
	CreatedAt       time.Time     `db:"created_at" json:"created_at"`
}

// Scope is what this staff member may see.
func (s Staff) Scope() Scope {
	if s.Role == RoleCity {
		return Scope{}
	}
	sc := Scope{Institution: s.InstitutionID.Int64}
	if s.Role == RoleDoctor {
		sc.Doctor = s.DoctorID.Int64
	}
	return sc
}

// ErrExists says a row with that unique name already exists.
var ErrExists = errors.New("already exists")

// ErrLastAdmin says a change would leave an institution with no enabled admin.
var ErrLastAdmin = errors.New("the institution's last enabled admin")

const staffColumns = `id, username, role, institution_id, doctor_id, password_hash, password_version, disabled, created_at`

// CreateStaff adds an account and audits who made it. A doctor account's
// doctor must belong to its institution.
func (db *DB) CreateStaff(ctx context.Context, s Staff, actor string) (int64, error) {
	const op = "CreateStaff"
	var id int64
	err := db.inTx(ctx, op, func(tx *DB) error {
		if s.DoctorID.Valid {
			var inst int64
			if err := tx.get(ctx, op+": doctor", &inst, `SELECT institution_id FROM doctors WHERE id = ?`, s.DoctorID.Int64); err != nil {
				return err
			}
			if inst != s.InstitutionID.Int64 {
				return fail(op, fmt.Errorf("doctor %d is not of institution %d: %w", s.DoctorID.Int64, s.InstitutionID.Int64, ErrNotFound))
			}
		}
		err := tx.get(ctx, op, &id, `INSERT INTO staff (username, role, institution_id, doctor_id, password_hash, created_at)
			VALUES (?, ?, ?, ?, ?, ?) RETURNING id`, s.Username, s.Role, s.InstitutionID, s.DoctorID, s.PasswordHash, db.now())
		if isUniqueViolation(err) {
			return fail(op, fmt.Errorf("user name %q: %w", s.Username, ErrExists))
		}
		if err != nil {
			return err
		}
		return tx.auditIn(ctx, op, actor, s.InstitutionID, "staff.create", s.Username, string(s.Role))
	})
	return id, err
}

// StaffByUsername finds an account by its user name.
func (db *DB) StaffByUsername(ctx context.Context, username string) (Staff, error) {
	var s Staff
	err := db.get(ctx, "StaffByUsername", &s, `SELECT `+staffColumns+` FROM staff WHERE username = ?`, username)
	return s, err
}

// StaffByID finds an account within a scope.
func (db *DB) StaffByID(ctx context.Context, scope Scope, id int64) (Staff, error) {
	cond, args := scope.where("institution_id", "")
	var s Staff
	err := db.get(ctx, "StaffByID", &s, `SELECT `+staffColumns+` FROM staff WHERE id = ? AND `+cond, append([]any{id}, args...)...)
	return s, err
}

// ListStaff lists the accounts in a scope by user name, with the total.
func (db *DB) ListStaff(ctx context.Context, scope Scope, page Page) ([]Staff, int, error) {
	const op = "ListStaff"
	page = page.clamp()
	cond, args := scope.where("institution_id", "")
	var total int
	if err := db.get(ctx, op, &total, `SELECT COUNT(*) FROM staff WHERE `+cond, args...); err != nil {
		return nil, 0, err
	}
	out := []Staff{}
	err := db.sel(ctx, op, &out, `SELECT `+staffColumns+` FROM staff WHERE `+cond+` ORDER BY username LIMIT ? OFFSET ?`,
		append(args, page.Limit, page.Offset)...)
	return out, total, err
}

// SetStaffPassword replaces an account's password hash; the version it
// bumps ends every session made under the old password.
func (db *DB) SetStaffPassword(ctx context.Context, scope Scope, id int64, hash, actor string) error {
	const op = "SetStaffPassword"
	return db.inTx(ctx, op, func(tx *DB) error {
		s, err := tx.StaffByID(ctx, scope, id)
		if err != nil {
			return err
		}
		if _, err := tx.exec(ctx, op, `UPDATE staff SET password_hash = ?, password_version = password_version + 1
			WHERE id = ?`, hash, id); err != nil {
			return err
		}
		return tx.auditIn(ctx, op, actor, s.InstitutionID, "staff.password", s.Username, "")
	})
}

// SetStaffDisabled disables or enables an account. The last enabled admin of
// an institution cannot be disabled, so an institution is never left with
// nobody who can run it.
func (db *DB) SetStaffDisabled(ctx context.Context, scope Scope, id int64, disabled bool, actor string) error {
	const op = "SetStaffDisabled"
	return db.inTx(ctx, op, func(tx *DB) error {
		s, err := tx.StaffByID(ctx, scope, id)
		if err != nil {
			return err
		}
		if disabled && s.Role == RoleAdmin && !s.Disabled {
			var admins int
			if err := tx.get(ctx, op, &admins, `SELECT COUNT(*) FROM staff WHERE institution_id = ? AND role = 'admin'
				AND NOT disabled`, s.InstitutionID); err != nil {
				return err
			}
			if admins <= 1 {
				return fail(op, fmt.Errorf("%s: %w", s.Username, ErrLastAdmin))
			}
		}
		if _, err := tx.exec(ctx, op, `UPDATE staff SET disabled = ?, password_version = password_version + 1
			WHERE id = ?`, disabled, id); err != nil {
			return err
		}
		action := "staff.enable"
		if disabled {
			action = "staff.disable"
		}
		return tx.auditIn(ctx, op, actor, s.InstitutionID, action, s.Username, "")
	})
}

// InstitutionByCode finds an institution by its code.
func (db *DB) InstitutionByCode(ctx context.Context, code string) (Institution, error) {
	var in Institution
	err := db.get(ctx, "InstitutionByCode", &in, `SELECT id, code, name, kind, phone, demo FROM institutions WHERE code = ?`, code)
	return in, err
}
