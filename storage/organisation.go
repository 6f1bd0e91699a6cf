package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Institution is a township health centre or a community health service centre.
type Institution struct {
	ID   int64  `db:"id"`
	Name string `db:"name"`
	Kind string `db:"kind"` // township_centre, community_centre
}

// Community is a village or neighbourhood an institution serves.
type Community struct {
	ID            int64  `db:"id" json:"id"`
	InstitutionID int64  `db:"institution_id" json:"institution_id"`
	Town          string `db:"town" json:"town"`
	Name          string `db:"name" json:"name"`
}

// Doctor is a family doctor who can lead a team and bind their WeChat.
type Doctor struct {
	ID            int64          `db:"id"`
	InstitutionID int64          `db:"institution_id"`
	Name          string         `db:"name"`
	Title         string         `db:"title"`
	OpenID        sql.NullString `db:"openid"`
}

// Member is one person of a team besides its doctor.
type Member struct {
	Role string `db:"role"`
	Name string `db:"name"`
}

// Team is a family-doctor team.
type Team struct {
	ID            int64  `db:"id"`
	InstitutionID int64  `db:"institution_id"`
	Name          string `db:"name"`
	DoctorID      int64  `db:"doctor_id"`
	DoctorName    string `db:"doctor_name"`
	Members       []Member
}

// NewTeam is a team to create, with its doctor, members and the communities
// it serves (indexes into the communities created with it).
type NewTeam struct {
	Name        string
	Doctor      Doctor
	Members     []Member
	Communities []int
}

// HasOrganisation reports whether any institution exists yet.
func (db *DB) HasOrganisation(ctx context.Context) (bool, error) {
	var n int
	if err := db.GetContext(ctx, &n, `SELECT COUNT(*) FROM institutions`); err != nil {
		return false, fmt.Errorf("storage.HasOrganisation: %w", err)
	}
	return n > 0, nil
}

// CreateInstitution adds an institution with its communities and teams in
// one transaction, returning the new communities' IDs in order. Teams name
// their communities by index into the communities given.
func (db *DB) CreateInstitution(ctx context.Context, in Institution, communities []Community, teams []NewTeam) ([]int64, error) {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("storage.CreateInstitution: %w", err)
	}
	defer tx.Rollback()
	insert := func(q string, args ...any) (int64, error) {
		var id int64
		err := tx.QueryRowxContext(ctx, db.Rebind(q+" RETURNING id"), args...).Scan(&id)
		return id, err
	}
	instID, err := insert(`INSERT INTO institutions (name, kind) VALUES (?, ?)`, in.Name, in.Kind)
	if err != nil {
		return nil, fmt.Errorf("storage.CreateInstitution: %w", err)
	}
	var ids []int64
	for _, c := range communities {
		id, err := insert(`INSERT INTO communities (institution_id, town, name) VALUES (?, ?, ?)`, instID, c.Town, c.Name)
		if err != nil {
			return nil, fmt.Errorf("storage.CreateInstitution: community %s: %w", c.Name, err)
		}
		ids = append(ids, id)
	}
	for _, t := range teams {
		docID, err := insert(`INSERT INTO doctors (institution_id, name, title) VALUES (?, ?, ?)`, instID, t.Doctor.Name, t.Doctor.Title)
		if err != nil {
			return nil, fmt.Errorf("storage.CreateInstitution: doctor %s: %w", t.Doctor.Name, err)
		}
		teamID, err := insert(`INSERT INTO teams (institution_id, name, doctor_id) VALUES (?, ?, ?)`, instID, t.Name, docID)
		if err != nil {
			return nil, fmt.Errorf("storage.CreateInstitution: team %s: %w", t.Name, err)
		}
		for i, m := range t.Members {
			if _, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO team_members (team_id, sort_order, role, name) VALUES (?, ?, ?, ?)`),
				teamID, i, m.Role, m.Name); err != nil {
				return nil, fmt.Errorf("storage.CreateInstitution: member: %w", err)
			}
		}
		for _, ci := range t.Communities {
			if ci < 0 || ci >= len(ids) {
				return nil, fmt.Errorf("storage.CreateInstitution: team %s serves community %d of %d", t.Name, ci, len(ids))
			}
			if _, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO team_communities (team_id, community_id) VALUES (?, ?)`),
				teamID, ids[ci]); err != nil {
				return nil, fmt.Errorf("storage.CreateInstitution: team community: %w", err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("storage.CreateInstitution: %w", err)
	}
	return ids, nil
}

// Communities lists every community in ID order.
func (db *DB) Communities(ctx context.Context) ([]Community, error) {
	var out []Community
	if err := db.SelectContext(ctx, &out, `SELECT id, institution_id, town, name FROM communities ORDER BY id`); err != nil {
		return nil, fmt.Errorf("storage.Communities: %w", err)
	}
	return out, nil
}

// TeamsServing lists the teams that serve a community, with their members.
func (db *DB) TeamsServing(ctx context.Context, communityID int64) ([]Team, error) {
	var teams []Team
	if err := db.SelectContext(ctx, &teams, db.Rebind(`SELECT t.id, t.institution_id, t.name, t.doctor_id, d.name AS doctor_name
		FROM teams t JOIN team_communities tc ON tc.team_id = t.id JOIN doctors d ON d.id = t.doctor_id
		WHERE tc.community_id = ? ORDER BY t.id`), communityID); err != nil {
		return nil, fmt.Errorf("storage.TeamsServing: %w", err)
	}
	for i := range teams {
		if err := db.SelectContext(ctx, &teams[i].Members, db.Rebind(`SELECT role, name FROM team_members
			WHERE team_id = ? ORDER BY sort_order`), teams[i].ID); err != nil {
			return nil, fmt.Errorf("storage.TeamsServing: members: %w", err)
		}
	}
	return teams, nil
}

// DoctorWithTeam is a doctor and the team they lead.
type DoctorWithTeam struct {
	Doctor
	TeamID   int64  `db:"team_id"`
	TeamName string `db:"team_name"`
}

// Doctors lists doctors with the team each leads, in ID order.
func (db *DB) Doctors(ctx context.Context) ([]DoctorWithTeam, error) {
	var out []DoctorWithTeam
	if err := db.SelectContext(ctx, &out, `SELECT d.id, d.institution_id, d.name, d.title, d.openid,
		t.id AS team_id, t.name AS team_name FROM doctors d JOIN teams t ON t.doctor_id = d.id ORDER BY d.id, t.id`); err != nil {
		return nil, fmt.Errorf("storage.Doctors: %w", err)
	}
	return out, nil
}

// SetBindingCode gives an unbound doctor a new single-use binding code
// (its keyed hash) that expires at the given time, replacing any earlier one.
func (db *DB) SetBindingCode(ctx context.Context, doctorID int64, codeHash string, expires time.Time) error {
	res, err := db.ExecContext(ctx, db.Rebind(`UPDATE doctors SET binding_code_hash = ?, binding_expires_at = ?
		WHERE id = ? AND openid IS NULL`), codeHash, expires.UTC(), doctorID)
	if err != nil {
		return fmt.Errorf("storage.SetBindingCode: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("storage.SetBindingCode: doctor %d unknown or already bound: %w", doctorID, ErrNotFound)
	}
	return nil
}

// ErrCodeInvalid says a binding code is unknown, used or expired.
var ErrCodeInvalid = errors.New("binding code unknown, used or expired")

// BindDoctor binds a WeChat user to the doctor holding this code, if the code
// is valid at now, and spends the code.
func (db *DB) BindDoctor(ctx context.Context, codeHash, openID string, now time.Time) (Doctor, error) {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return Doctor{}, fmt.Errorf("storage.BindDoctor: %w", err)
	}
	defer tx.Rollback()
	var d Doctor
	var expires time.Time
	err = tx.QueryRowxContext(ctx, db.Rebind(`SELECT id, institution_id, name, title, binding_expires_at FROM doctors
		WHERE binding_code_hash = ? AND openid IS NULL`), codeHash).Scan(&d.ID, &d.InstitutionID, &d.Name, &d.Title, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Doctor{}, fmt.Errorf("storage.BindDoctor: %w", ErrCodeInvalid)
	}
	if err != nil {
		return Doctor{}, fmt.Errorf("storage.BindDoctor: %w", err)
	}
	if !now.Before(expires) {
		return Doctor{}, fmt.Errorf("storage.BindDoctor: %w", ErrCodeInvalid)
	}
	if _, err := tx.ExecContext(ctx, db.Rebind(`UPDATE doctors SET openid = ?, bound_at = ?, binding_code_hash = NULL,
		binding_expires_at = NULL WHERE id = ?`), openID, now.UTC(), d.ID); err != nil {
		if isUniqueViolation(err) {
			return Doctor{}, fmt.Errorf("storage.BindDoctor: this WeChat is bound to another doctor: %w", ErrCodeInvalid)
		}
		return Doctor{}, fmt.Errorf("storage.BindDoctor: %w", err)
	}
	// What waited for this doctor to bind goes out now.
	if _, err := tx.ExecContext(ctx, db.Rebind(`UPDATE outbox SET due_at = ? WHERE recipient = ? AND state = 'pending'`),
		now.UTC(), fmt.Sprintf("doctor:%d", d.ID)); err != nil {
		return Doctor{}, fmt.Errorf("storage.BindDoctor: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return Doctor{}, fmt.Errorf("storage.BindDoctor: %w", err)
	}
	d.OpenID = sql.NullString{String: openID, Valid: true}
	return d, nil
}

// BindingFailures returns how many wrong binding codes a user sent on a day.
func (db *DB) BindingFailures(ctx context.Context, openID, day string) (int, error) {
	var n int
	err := db.GetContext(ctx, &n, db.Rebind(`SELECT count FROM binding_failures WHERE openid = ? AND day = ?`), openID, day)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("storage.BindingFailures: %w", err)
	}
	return n, nil
}

// AddBindingFailure counts one more wrong binding code.
func (db *DB) AddBindingFailure(ctx context.Context, openID, day string) error {
	_, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO binding_failures (openid, day, count) VALUES (?, ?, 1)
		ON CONFLICT (openid, day) DO UPDATE SET count = binding_failures.count + 1`), openID, day)
	if err != nil {
		return fmt.Errorf("storage.AddBindingFailure: %w", err)
	}
	return nil
}

// DoctorOpenID is the WeChat a doctor bound, if any.
func (db *DB) DoctorOpenID(ctx context.Context, doctorID int64) (string, bool, error) {
	var openID sql.NullString
	err := db.GetContext(ctx, &openID, db.Rebind(`SELECT openid FROM doctors WHERE id = ?`), doctorID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, fmt.Errorf("storage.DoctorOpenID: %w", ErrNotFound)
	}
	if err != nil {
		return "", false, fmt.Errorf("storage.DoctorOpenID: %w", err)
	}
	return openID.String, openID.Valid, nil
}
