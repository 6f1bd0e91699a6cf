package storage

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// Contract states.
const (
	ContractPending   = "pending"   // 待医生确认
	ContractActive    = "active"    // 已签约
	ContractDeclined  = "declined"  // 已拒绝
	ContractCancelled = "cancelled" // 已解约
	ContractExpired   = "expired"   // 已到期
)

// NewResident is the person a contract is for, with personal data sealed.
type NewResident struct {
	ManagerOpenID string
	Relation      string // self, family
	Name          string
	IDSealed      string
	IDHash        string
	PhoneSealed   string
	PhoneHash     string
	BirthDate     string // YYYY-MM-DD
	Sex           string // male, female
	CommunityID   int64
	Groups        []string
}

// ContractPackage is a package in a contract with its frozen price split.
type ContractPackage struct {
	Code, Name, Kind string
	Split            Split
}

// NewContract is a signing to record.
type NewContract struct {
	RequestKey       string // the signing conversation that made it; a replay finds the same contract
	Day              string // YYMMDD in Asia/Shanghai, for the contract number
	Resident         NewResident
	TeamID, DoctorID int64
	Insured          Insured
	TermMonths       int
	PartnerDistrict  string
	PartnerTertiary  string
	AgreementVersion string
	AgreedAt         time.Time
	ConsentVersion   string
	ConsentedAt      time.Time
	ConsentBy        string
	Packages         []ContractPackage
	// Notify builds the doctor's notification once the number is known.
	Notify func(number string) Push
}

// ErrLiveContract says the resident already has a pending or active contract.
var ErrLiveContract = errors.New("resident already has a pending or active contract")

// CreateContract records a signing as a pending contract, with its frozen
// packages, its first event and the doctor's notification, in one
// transaction. A replay of the same signing returns the first contract's
// number with created false.
func (db *DB) CreateContract(ctx context.Context, nc NewContract) (number string, created bool, err error) {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return "", false, fmt.Errorf("storage.CreateContract: %w", err)
	}
	defer tx.Rollback()
	err = tx.GetContext(ctx, &number, db.Rebind(`SELECT number FROM contracts WHERE request_key = ?`), nc.RequestKey)
	if err == nil {
		return number, false, nil
	} else if !errors.Is(err, sql.ErrNoRows) {
		return "", false, fmt.Errorf("storage.CreateContract: %w", err)
	}
	now := time.Now().UTC()
	residentID, err := upsertResident(ctx, tx, db, nc.Resident, now)
	if isUniqueViolation(err) { // the same person is being signed at this moment elsewhere
		err = ErrLiveContract
	}
	if err != nil {
		return "", false, fmt.Errorf("storage.CreateContract: %w", err)
	}
	var seq int
	if err := tx.GetContext(ctx, &seq, db.Rebind(`INSERT INTO contract_numbers (day, last) VALUES (?, 1)
		ON CONFLICT (day) DO UPDATE SET last = contract_numbers.last + 1 RETURNING last`), nc.Day); err != nil {
		return "", false, fmt.Errorf("storage.CreateContract: number: %w", err)
	}
	number = fmt.Sprintf("QY%s%04d", nc.Day, seq)
	var contractID int64
	err = tx.QueryRowxContext(ctx, db.Rebind(`INSERT INTO contracts (number, request_key, resident_id, team_id, doctor_id, status,
		insured, term_months, partner_district, partner_tertiary, agreement_version, agreed_at, consent_version, consented_at,
		consent_by, created_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		number, nc.RequestKey, residentID, nc.TeamID, nc.DoctorID, string(nc.Insured), nc.TermMonths, nc.PartnerDistrict,
		nc.PartnerTertiary, nc.AgreementVersion, nc.AgreedAt.UTC(), nc.ConsentVersion, nc.ConsentedAt.UTC(), nc.ConsentBy, now).Scan(&contractID)
	if isUniqueViolation(err) {
		return "", false, fmt.Errorf("storage.CreateContract: %w", ErrLiveContract)
	}
	if err != nil {
		return "", false, fmt.Errorf("storage.CreateContract: %w", err)
	}
	for _, p := range nc.Packages {
		split, _ := json.Marshal(p.Split)
		if _, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO contract_packages (contract_id, package_code, package_name, kind, split)
			VALUES (?, ?, ?, ?, ?)`), contractID, p.Code, p.Name, p.Kind, string(split)); err != nil {
			return "", false, fmt.Errorf("storage.CreateContract: package: %w", err)
		}
	}
	if err := addEvent(ctx, tx, db, contractID, nc.ConsentBy, "", ContractPending, "signed in chat"); err != nil {
		return "", false, fmt.Errorf("storage.CreateContract: %w", err)
	}
	if nc.Notify != nil {
		if err := enqueue(ctx, tx, db, []Push{nc.Notify(number)}); err != nil {
			return "", false, fmt.Errorf("storage.CreateContract: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return "", false, fmt.Errorf("storage.CreateContract: %w", err)
	}
	return number, true, nil
}

// upsertResident finds the resident by ID hash or adds them. A resident
// with a live contract cannot be signed again; otherwise the signing user
// becomes their manager and their details are refreshed.
func upsertResident(ctx context.Context, tx *sqlx.Tx, db *DB, r NewResident, now time.Time) (int64, error) {
	groups, _ := json.Marshal(nonNil(r.Groups))
	var id int64
	err := tx.GetContext(ctx, &id, db.Rebind(`SELECT id FROM residents WHERE id_number_hash = ?`), r.IDHash)
	if errors.Is(err, sql.ErrNoRows) {
		err = tx.QueryRowxContext(ctx, db.Rebind(`INSERT INTO residents (manager_openid, relation, name, id_number_sealed,
			id_number_hash, phone_sealed, phone_hash, birth_date, sex, community_id, priority_groups, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
			r.ManagerOpenID, r.Relation, r.Name, r.IDSealed, r.IDHash, r.PhoneSealed, r.PhoneHash, r.BirthDate, r.Sex,
			r.CommunityID, string(groups), now, now).Scan(&id)
		return id, err
	}
	if err != nil {
		return 0, err
	}
	var live int
	if err := tx.GetContext(ctx, &live, db.Rebind(`SELECT COUNT(*) FROM contracts WHERE resident_id = ?
		AND status IN ('pending', 'active')`), id); err != nil {
		return 0, err
	}
	if live > 0 {
		return 0, ErrLiveContract
	}
	_, err = tx.ExecContext(ctx, db.Rebind(`UPDATE residents SET manager_openid = ?, relation = ?, name = ?, id_number_sealed = ?,
		phone_sealed = ?, phone_hash = ?, community_id = ?, priority_groups = ?, updated_at = ? WHERE id = ?`),
		r.ManagerOpenID, r.Relation, r.Name, r.IDSealed, r.PhoneSealed, r.PhoneHash, r.CommunityID, string(groups), now, id)
	return id, err
}

func addEvent(ctx context.Context, tx execer, db *DB, contractID int64, actor, from, to, reason string) error {
	_, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO contract_events (contract_id, at, actor, from_status, to_status, reason)
		VALUES (?, ?, ?, ?, ?, ?)`), contractID, time.Now().UTC(), actor, from, to, reason)
	return err
}

func isUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "SQLSTATE 23505")
}

// HasLiveContract reports whether the ID number (by hash) has a pending or
// active contract.
func (db *DB) HasLiveContract(ctx context.Context, idHash string) (bool, error) {
	var n int
	err := db.GetContext(ctx, &n, db.Rebind(`SELECT COUNT(*) FROM contracts c JOIN residents r ON r.id = c.resident_id
		WHERE r.id_number_hash = ? AND c.status IN ('pending', 'active')`), idHash)
	if err != nil {
		return false, fmt.Errorf("storage.HasLiveContract: %w", err)
	}
	return n > 0, nil
}

// TryID records that a WeChat user entered an ID number today and returns
// how many different ones they have entered today, this one included.
func (db *DB) TryID(ctx context.Context, openID, day, idHash string) (int, error) {
	if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO id_attempts (openid, day, id_hash) VALUES (?, ?, ?)
		ON CONFLICT (openid, day, id_hash) DO NOTHING`), openID, day, idHash); err != nil {
		return 0, fmt.Errorf("storage.TryID: %w", err)
	}
	var n int
	if err := db.GetContext(ctx, &n, db.Rebind(`SELECT COUNT(*) FROM id_attempts WHERE openid = ? AND day = ?`), openID, day); err != nil {
		return 0, fmt.Errorf("storage.TryID: %w", err)
	}
	return n, nil
}

// IDTriedToday reports whether this ID number is one the user already
// entered today (retyping it does not count again).
func (db *DB) IDTriedToday(ctx context.Context, openID, day, idHash string) (bool, int, error) {
	var rows []string
	if err := db.SelectContext(ctx, &rows, db.Rebind(`SELECT id_hash FROM id_attempts WHERE openid = ? AND day = ?`), openID, day); err != nil {
		return false, 0, fmt.Errorf("storage.IDTriedToday: %w", err)
	}
	for _, h := range rows {
		if h == idHash {
			return true, len(rows), nil
		}
	}
	return false, len(rows), nil
}

// ManagedResident is a resident as their manager sees them in a list.
type ManagedResident struct {
	ID       int64  `db:"id"`
	Name     string `db:"name"`
	Relation string `db:"relation"`
}

// ManagedResidents lists the residents a WeChat user manages.
func (db *DB) ManagedResidents(ctx context.Context, openID string) ([]ManagedResident, error) {
	var out []ManagedResident
	if err := db.SelectContext(ctx, &out, db.Rebind(`SELECT id, name, relation FROM residents WHERE manager_openid = ?
		ORDER BY id`), openID); err != nil {
		return nil, fmt.Errorf("storage.ManagedResidents: %w", err)
	}
	return out, nil
}

// ContractView is a contract with what a resident or doctor is shown.
type ContractView struct {
	ID            int64          `db:"id"`
	Number        string         `db:"number"`
	Status        string         `db:"status"`
	ResidentName  string         `db:"resident_name"`
	IDSealed      string         `db:"id_number_sealed"`
	ManagerOpenID string         `db:"manager_openid"`
	TeamName      string         `db:"team_name"`
	DoctorID      int64          `db:"doctor_id"`
	DoctorName    string         `db:"doctor_name"`
	DoctorOpenID  sql.NullString `db:"doctor_openid"`
	TermMonths    int            `db:"term_months"`
	TermEnd       sql.NullString `db:"term_end"`
	CommunityID   int64          `db:"community_id"`
	CommunityName string         `db:"community_name"`
	TeamID        int64          `db:"team_id"`
	District      string         `db:"partner_district"` // partner hospitals chosen at signing (Harbin)
	Tertiary      string         `db:"partner_tertiary"`
	ResidentID    int64          `db:"resident_id"`
	Groups        string         `db:"resident_groups"` // JSON array of declared priority groups
	BirthDate     string         `db:"birth_date"`
	Packages      []ContractPackage
}

const contractViewSQL = `SELECT c.id, c.number, c.status, r.name AS resident_name, r.id_number_sealed, r.manager_openid,
	t.name AS team_name, c.doctor_id, d.name AS doctor_name, d.openid AS doctor_openid, c.term_months, c.term_end,
	r.community_id, cm.name AS community_name, c.team_id, c.resident_id, r.priority_groups AS resident_groups,
	r.birth_date, c.partner_district, c.partner_tertiary
	FROM contracts c JOIN residents r ON r.id = c.resident_id JOIN teams t ON t.id = c.team_id
	JOIN doctors d ON d.id = c.doctor_id JOIN communities cm ON cm.id = r.community_id`

// ContractByNumber finds a contract by its number.
func (db *DB) ContractByNumber(ctx context.Context, number string) (ContractView, error) {
	var v ContractView
	err := db.GetContext(ctx, &v, db.Rebind(contractViewSQL+` WHERE c.number = ?`), number)
	if errors.Is(err, sql.ErrNoRows) {
		return v, fmt.Errorf("storage.ContractByNumber: %w", ErrNotFound)
	}
	if err != nil {
		return v, fmt.Errorf("storage.ContractByNumber: %w", err)
	}
	return v, db.loadPackages(ctx, &v)
}

// ContractsManagedBy lists the contracts of every resident a user manages,
// newest first.
func (db *DB) ContractsManagedBy(ctx context.Context, openID string) ([]ContractView, error) {
	var out []ContractView
	if err := db.SelectContext(ctx, &out, db.Rebind(contractViewSQL+` WHERE r.manager_openid = ? ORDER BY c.id DESC`), openID); err != nil {
		return nil, fmt.Errorf("storage.ContractsManagedBy: %w", err)
	}
	for i := range out {
		if err := db.loadPackages(ctx, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (db *DB) loadPackages(ctx context.Context, v *ContractView) error {
	var rows []struct {
		Code  string `db:"package_code"`
		Name  string `db:"package_name"`
		Kind  string `db:"kind"`
		Split string `db:"split"`
	}
	if err := db.SelectContext(ctx, &rows, db.Rebind(`SELECT package_code, package_name, kind, split FROM contract_packages
		WHERE contract_id = ? ORDER BY package_code`), v.ID); err != nil {
		return fmt.Errorf("storage: contract packages: %w", err)
	}
	v.Packages = nil
	for _, r := range rows {
		p := ContractPackage{Code: r.Code, Name: r.Name, Kind: r.Kind}
		if err := json.Unmarshal([]byte(r.Split), &p.Split); err != nil {
			return fmt.Errorf("storage: contract package split: %w", err)
		}
		v.Packages = append(v.Packages, p)
	}
	return nil
}

// ErrStatusChanged says the contract was not in the state the change expects.
var ErrStatusChanged = errors.New("contract is not in the expected state")

// StatusChange moves a contract from one state to another (or keeps it,
// for a renewal or a change of team).
type StatusChange struct {
	Number   string
	From, To string
	Actor    string // openid or admin
	Reason   string
	TermEnd  string // YYYY-MM-DD: set when the term starts or is renewed
	TeamID   int64  // with DoctorID: a change of team; 0 keeps the team
	DoctorID int64
	// IfTermEnd makes a renewal conditional on the end it extends, so a
	// replayed renewal does not extend twice.
	IfTermEnd string
	Notify    []Push
}

// ChangeStatus applies a state change if the contract is still in From,
// records the event and enqueues the notifications, in one transaction.
func (db *DB) ChangeStatus(ctx context.Context, c StatusChange) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("storage.ChangeStatus: %w", err)
	}
	defer tx.Rollback()
	var id int64
	err = tx.QueryRowxContext(ctx, db.Rebind(`UPDATE contracts SET status = ?, term_end = COALESCE(NULLIF(?, ''), term_end),
		team_id = CASE WHEN ? > 0 THEN ? ELSE team_id END, doctor_id = CASE WHEN ? > 0 THEN ? ELSE doctor_id END
		WHERE number = ? AND status = ? AND (? = '' OR term_end = ?) RETURNING id`),
		c.To, c.TermEnd, c.TeamID, c.TeamID, c.DoctorID, c.DoctorID, c.Number, c.From, c.IfTermEnd, c.IfTermEnd).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("storage.ChangeStatus %s: %w", c.Number, ErrStatusChanged)
	}
	if err != nil {
		return fmt.Errorf("storage.ChangeStatus: %w", err)
	}
	if err := addEvent(ctx, tx, db, id, c.Actor, c.From, c.To, c.Reason); err != nil {
		return fmt.Errorf("storage.ChangeStatus: %w", err)
	}
	if err := enqueue(ctx, tx, db, c.Notify); err != nil {
		return fmt.Errorf("storage.ChangeStatus: %w", err)
	}
	return tx.Commit()
}

// DoctorByOpenID finds the doctor bound to a WeChat user.
func (db *DB) DoctorByOpenID(ctx context.Context, openID string) (Doctor, error) {
	var d Doctor
	err := db.GetContext(ctx, &d, db.Rebind(`SELECT id, institution_id, name, title, openid FROM doctors WHERE openid = ?`), openID)
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("storage.DoctorByOpenID: %w", ErrNotFound)
	}
	if err != nil {
		return d, fmt.Errorf("storage.DoctorByOpenID: %w", err)
	}
	return d, nil
}

// ExpireContracts ends active contracts whose term ended before today
// (YYYY-MM-DD, Asia/Shanghai), recording each, and returns how many.
func (db *DB) ExpireContracts(ctx context.Context, today string) (int, error) {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("storage.ExpireContracts: %w", err)
	}
	defer tx.Rollback()
	var ids []int64
	if err := tx.SelectContext(ctx, &ids, db.Rebind(`UPDATE contracts SET status = 'expired'
		WHERE status = 'active' AND term_end < ? RETURNING id`), today); err != nil {
		return 0, fmt.Errorf("storage.ExpireContracts: %w", err)
	}
	for _, id := range ids {
		if err := addEvent(ctx, tx, db, id, "system", ContractActive, ContractExpired, "term ended"); err != nil {
			return 0, fmt.Errorf("storage.ExpireContracts: %w", err)
		}
	}
	return len(ids), tx.Commit()
}

// ActiveContractsPage pages through active contracts whose manager follows
// the account and wants personal reminders, by contract ID, with packages.
func (db *DB) ActiveContractsPage(ctx context.Context, afterID int64, limit int) ([]ContractView, error) {
	var out []ContractView
	if err := db.SelectContext(ctx, &out, db.Rebind(contractViewSQL+`
		JOIN wechat_users u ON u.openid = r.manager_openid
		WHERE c.status = 'active' AND c.id > ? AND u.subscribed AND u.personal_reminders
		ORDER BY c.id LIMIT ?`), afterID, limit); err != nil {
		return nil, fmt.Errorf("storage.ActiveContractsPage: %w", err)
	}
	if len(out) == 0 {
		return out, nil
	}
	ids := make([]int64, len(out))
	index := map[int64]int{}
	for i, c := range out {
		ids[i], index[c.ID] = c.ID, i
	}
	q, args, err := sqlx.In(`SELECT contract_id, package_code, package_name, kind, split FROM contract_packages
		WHERE contract_id IN (?) ORDER BY contract_id, package_code`, ids)
	if err != nil {
		return nil, fmt.Errorf("storage.ActiveContractsPage: %w", err)
	}
	var rows []struct {
		ContractID int64  `db:"contract_id"`
		Code       string `db:"package_code"`
		Name       string `db:"package_name"`
		Kind       string `db:"kind"`
		Split      string `db:"split"`
	}
	if err := db.SelectContext(ctx, &rows, db.Rebind(q), args...); err != nil {
		return nil, fmt.Errorf("storage.ActiveContractsPage: packages: %w", err)
	}
	for _, r := range rows {
		p := ContractPackage{Code: r.Code, Name: r.Name, Kind: r.Kind}
		_ = json.Unmarshal([]byte(r.Split), &p.Split)
		c := &out[index[r.ContractID]]
		c.Packages = append(c.Packages, p)
	}
	return out, nil
}

// HasUpcoming reports whether a contract has a booked visit of a kind ahead.
func (db *DB) HasUpcoming(ctx context.Context, contractID int64, kind string, now time.Time) (bool, error) {
	var n int
	if err := db.GetContext(ctx, &n, db.Rebind(`SELECT COUNT(*) FROM appointments WHERE contract_id = ? AND kind = ?
		AND status = 'booked' AND starts_at > ?`), contractID, kind, now.UTC()); err != nil {
		return false, fmt.Errorf("storage.HasUpcoming: %w", err)
	}
	return n > 0, nil
}

// LastDoneVisit is when the contract's last completed visit of a kind was.
func (db *DB) LastDoneVisit(ctx context.Context, contractID int64, kind string) (time.Time, bool, error) {
	var at time.Time
	err := db.GetContext(ctx, &at, db.Rebind(`SELECT starts_at FROM appointments WHERE contract_id = ? AND kind = ?
		AND status = 'done' ORDER BY starts_at DESC LIMIT 1`), contractID, kind)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("storage.LastDoneVisit: %w", err)
	}
	return at, true, nil
}

// LastDoneVisitSince is the contract's last completed visit of a kind at or
// after a moment, if any.
func (db *DB) LastDoneVisitSince(ctx context.Context, contractID int64, kind string, since time.Time) (time.Time, bool, error) {
	at, ok, err := db.LastDoneVisit(ctx, contractID, kind)
	if err != nil || !ok || at.Before(since) {
		return time.Time{}, false, err
	}
	return at, true, nil
}
