package storage

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
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
	GroupsSealed  string   // declared priority groups (health status), sealed
	GroupTags     []string // the same groups by their keyed hashes, for search
	DueDateSealed string   // a pregnancy's expected due date, sealed; "" for none
	IDMasked      string   // 3203**********1234
	PhoneMasked   string   // 138****5678
	// FamilyRelation is what the person signing them declared they are to
	// that person (子女, 配偶, 父母 …); "" for oneself.
	FamilyRelation string
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
	// A contract signed on paper or in another system comes in active, with
	// its term's end; Event says where it came from. The zero values are a
	// signing in chat: pending, "signed in chat".
	Active  bool
	TermEnd string // YYYY-MM-DD, with Active
	Event   string
	// MemberCode, when set, is the keyed hash of the code the family member
	// confirms with, valid until MemberCodeExpires: the contract waits for
	// them and Notify is held until they confirm (ConfirmMember).
	MemberCode        string
	MemberCodeExpires time.Time
	// NumberInTx takes the contract number inside the transaction, for
	// signings a caller may roll back together (an import, and its dry
	// run): a rollback then leaves no number unused. It holds the day's
	// counter until the commit, so other signings wait for it.
	NumberInTx bool
}

// ErrLiveContract says the resident already has a pending or active contract.
var ErrLiveContract = errors.New("resident already has a pending or active contract")

// CreateContract records a signing as a pending contract, with its frozen
// packages, its first event and the doctor's notification, in one
// transaction. A replay of the same signing returns the first contract's
// number with created false.
func (db *DB) CreateContract(ctx context.Context, nc NewContract) (number string, created bool, err error) {
	const op = "CreateContract"
	err = db.inTx(ctx, op, func(tx *DB) error {
		// A replay's contract and the resident, if known, in one query.
		var known struct {
			Number   sql.NullString `db:"number"`
			Resident sql.NullInt64  `db:"resident"`
		}
		if err := tx.get(ctx, op, &known, `SELECT (SELECT number FROM contracts WHERE request_key = ?) AS number,
			(SELECT id FROM residents WHERE id_number_hash = ?) AS resident`, nc.RequestKey, nc.Resident.IDHash); err != nil {
			return err
		}
		if known.Number.Valid {
			number = known.Number.String
			return nil
		}
		now, signErr := db.now(), error(nil)
		if tx.Dialect == Postgres && !known.Resident.Valid {
			number, signErr = tx.signNew(ctx, op, nc, now)
		} else {
			number, signErr = tx.signKnown(ctx, op, nc, known.Resident, now)
		}
		created = signErr == nil
		return signErr
	})
	if err != nil {
		return "", false, err
	}
	return number, created, nil
}

// signNew signs a resident not yet known on PostgreSQL: every row in one
// statement. The number is taken first; a race with the same person's
// signing elsewhere leaves it unused.
func (db *DB) signNew(ctx context.Context, op string, nc NewContract, now time.Time) (string, error) {
	number, err := db.takeNumber(ctx, op, nc.Day, nc.NumberInTx)
	if err != nil {
		return "", err
	}
	err = db.insertSigning(ctx, op, nc, number, now)
	if isUniqueViolation(err) && signingClash(err) {
		return "", fail(op, ErrLiveContract)
	}
	return number, err
}

// signKnown signs a statement a table: a resident already known (their
// row is brought up to date), or any resident on SQLite.
func (db *DB) signKnown(ctx context.Context, op string, nc NewContract, known sql.NullInt64, now time.Time) (string, error) {
	residentID, err := db.upsertResident(ctx, op, nc.Resident, known, now)
	if isUniqueViolation(err) { // the same person is being signed at this moment elsewhere
		return "", fail(op, ErrLiveContract)
	}
	if err != nil {
		return "", err
	}
	// The number is taken once the resident is known, so a signing
	// refused for a live contract does not use one up.
	number, err := db.takeNumber(ctx, op, nc.Day, nc.NumberInTx)
	if err != nil {
		return "", err
	}
	var contractID int64
	err = db.get(ctx, op, &contractID, contractInsert("?")+` RETURNING id`,
		append([]any{residentID}, contractArgs(nc, number, now)...)...)
	if isUniqueViolation(err) {
		return "", fail(op, ErrLiveContract)
	}
	if err != nil {
		return "", err
	}
	if _, err := db.insertMany(ctx, op, packagesInsert, "", withID(contractID, packageRows(nc.Packages))); err != nil {
		return "", err
	}
	if err := db.addEvents(ctx, op, []int64{contractID}, nc.ConsentBy, "", contractStatus(nc), contractEvent(nc)); err != nil {
		return "", err
	}
	if nc.Notify != nil && nc.MemberCode == "" {
		if err := db.enqueue(ctx, op, []Push{nc.Notify(number)}); err != nil {
			return "", err
		}
	}
	return number, nil
}

// takeNumber gives the next contract number of the day: QY, the day
// (YYMMDD) and a count of at least four digits (five from the 10,000th
// signing of a day, six from the 100,000th). The count is one row every signing updates.
//
// On PostgreSQL it is taken apart from the signing's transaction, in a
// statement of its own committed without waiting for the disk, so the row
// is held for that statement only, not until the signing commits; inside
// the transaction, signings queued on the row one commit at a time. A
// number is still never given twice after a crash: a signing's own commit
// waits for the log up to itself, and so also for the count it took
// before. A signing that then fails leaves its number unused: numbers
// rise through a day but may skip. With inTx, or on SQLite (one writer
// at a time, where the transaction may hold the file's write lock), it is
// taken inside the transaction and a rollback returns it.
func (db *DB) takeNumber(ctx context.Context, op, day string, inTx bool) (string, error) {
	const bump = `INSERT INTO contract_numbers (day, last) VALUES (?, 1)
		ON CONFLICT (day) DO UPDATE SET last = contract_numbers.last + 1 RETURNING last`
	var seq int
	var err error
	if numbers := db.shared.numbers; numbers != nil && !inTx {
		err = fail(op, numbers.GetContext(ctx, &seq, numbers.Rebind(bump), day))
	} else {
		err = db.get(ctx, op, &seq, bump, day)
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("QY%s%04d", day, seq), nil
}

// upsertResident adds the resident, or updates the one known by their ID
// hash (known, found by the caller). A resident with a live contract
// cannot be signed again; otherwise the signing user
// becomes their manager and their details are refreshed.
func (db *DB) upsertResident(ctx context.Context, op string, r NewResident, known sql.NullInt64, now time.Time) (int64, error) {
	id := known.Int64
	if !known.Valid {
		if err := db.get(ctx, op, &id, residentInsert+` RETURNING id`, residentArgs(r, now)...); err != nil {
			return 0, err
		}
		return id, db.insertGroupTags(ctx, op, id, r.GroupTags) // a new resident: tags written with the row
	}
	var live int
	if err := db.get(ctx, op, &live, `SELECT COUNT(*) FROM contracts WHERE resident_id = ?
		AND status IN ('pending', 'active')`, id); err != nil {
		return 0, err
	}
	if live > 0 {
		return 0, fail(op, ErrLiveContract)
	}
	// A resident signed at the desk has no WeChat: whoever manages them in
	// chat keeps doing so.
	_, err := db.exec(ctx, op, `UPDATE residents SET manager_openid = CASE WHEN ? = '' THEN manager_openid ELSE ? END,
		relation = ?, name = ?, id_number_sealed = ?,
		phone_sealed = ?, phone_hash = ?, community_id = ?, priority_groups = ?, id_masked = ?, phone_masked = ?,
		family_relation = ?, due_date_sealed = COALESCE(NULLIF(?, ''), due_date_sealed), consent_withdrawn_at = NULL, updated_at = ? WHERE id = ?`,
		r.ManagerOpenID, r.ManagerOpenID, r.Relation, r.Name, r.IDSealed, r.PhoneSealed, r.PhoneHash, r.CommunityID,
		r.GroupsSealed, r.IDMasked, r.PhoneMasked, r.FamilyRelation, r.DueDateSealed, now, id)
	if err != nil {
		return 0, err
	}
	return id, db.setGroupTags(ctx, op, id, r.GroupTags)
}

// setGroupTags replaces a resident's priority-group tags.
func (db *DB) setGroupTags(ctx context.Context, op string, residentID int64, tags []string) error {
	if _, err := db.exec(ctx, op, `DELETE FROM resident_groups WHERE resident_id = ?`, residentID); err != nil {
		return err
	}
	if err := db.insertGroupTags(ctx, op, residentID, tags); err != nil {
		return err
	}
	_, err := db.exec(ctx, op, `UPDATE residents SET groups_indexed = 1 WHERE id = ?`, residentID)
	return err
}

const groupsInsert = `INSERT INTO resident_groups (resident_id, tag) VALUES`

// insertGroupTags adds a resident's priority-group tags, once each.
func (db *DB) insertGroupTags(ctx context.Context, op string, residentID int64, tags []string) error {
	rows := withID(residentID, tagRows(tags))
	if len(rows) == 0 {
		return nil
	}
	_, err := db.insertMany(ctx, op, groupsInsert, "", rows)
	return err
}

// UnindexedGroups lists the residents whose priority-group tags are not
// written yet, with their sealed groups.
func (db *DB) UnindexedGroups(ctx context.Context) ([]ResidentGroups, error) {
	var out []ResidentGroups
	err := db.sel(ctx, "UnindexedGroups", &out, `SELECT id, priority_groups FROM residents WHERE groups_indexed = 0`)
	return out, err
}

// SetGroupTags writes a resident's priority-group tags.
func (db *DB) SetGroupTags(ctx context.Context, residentID int64, tags []string) error {
	return db.inTx(ctx, "SetGroupTags", func(tx *DB) error { return tx.setGroupTags(ctx, "SetGroupTags", residentID, tags) })
}

const eventsInsert = `INSERT INTO contract_events (contract_id, at, actor, from_status, to_status, reason) VALUES`

// addEvents records the same state change of several contracts.
func (db *DB) addEvents(ctx context.Context, op string, contractIDs []int64, actor, from, to, reason string) error {
	now := db.now()
	rows := make([][]any, len(contractIDs))
	for i, id := range contractIDs {
		rows[i] = []any{id, now, actor, from, to, reason}
	}
	_, err := db.insertMany(ctx, op, eventsInsert, "", rows)
	return err
}

// HasLiveContract reports whether the ID number (by hash) has a pending or
// active contract.
func (db *DB) HasLiveContract(ctx context.Context, idHash string) (bool, error) {
	live, _, err := db.LiveContractOf(ctx, idHash)
	return live, err
}

// LiveContractOf reports whether the resident with this ID number has a
// pending or active contract, and whether it is a signing by a family
// member that waits for them to confirm it.
func (db *DB) LiveContractOf(ctx context.Context, idHash string) (live, awaiting bool, err error) {
	var row struct {
		N        int `db:"n"`
		Awaiting int `db:"awaiting"`
	}
	err = db.get(ctx, "LiveContractOf", &row, `SELECT COUNT(*) AS n,
		COALESCE(SUM(CASE WHEN c.member_code_hash <> '' THEN 1 ELSE 0 END), 0) AS awaiting
		FROM contracts c JOIN residents r ON r.id = c.resident_id
		WHERE r.id_number_hash = ? AND c.status IN ('pending', 'active')`, idHash)
	return row.N > 0, row.Awaiting > 0, err
}

// TryID records that a WeChat user entered an ID number today and returns
// how many different ones they have entered today, this one included.
func (db *DB) TryID(ctx context.Context, openID, day, idHash string) (int, error) {
	const op = "TryID"
	if _, err := db.exec(ctx, op, `INSERT INTO id_attempts (openid, day, id_hash) VALUES (?, ?, ?)
		ON CONFLICT (openid, day, id_hash) DO NOTHING`, openID, day, idHash); err != nil {
		return 0, err
	}
	var n int
	if err := db.get(ctx, op, &n, `SELECT COUNT(*) FROM id_attempts WHERE openid = ? AND day = ?`, openID, day); err != nil {
		return 0, err
	}
	return n, nil
}

// IDTriedToday reports whether this ID number is one the user already
// entered today (retyping it does not count again).
func (db *DB) IDTriedToday(ctx context.Context, openID, day, idHash string) (bool, int, error) {
	var rows []string
	if err := db.sel(ctx, "IDTriedToday", &rows, `SELECT id_hash FROM id_attempts WHERE openid = ? AND day = ?`, openID, day); err != nil {
		return false, 0, err
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
	if err := db.sel(ctx, "ManagedResidents", &out, `SELECT id, name, relation FROM residents WHERE manager_openid = ?
		ORDER BY id`, openID); err != nil {
		return nil, err
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
	Groups        string         `db:"resident_groups"` // declared priority groups, sealed
	BirthDate     string         `db:"birth_date"`
	DueDate       string         `db:"due_date_sealed"` // a pregnancy's expected due date, sealed; "" for none
	Insured       string         `db:"insured"`         // where the resident is insured, as priced at signing
	// AwaitingMember: signed for another adult, it waits for them to
	// confirm it themselves; the doctor has not been asked.
	AwaitingMember bool `db:"awaiting_member"`
	// A 改签 waiting for the new team's doctor: the contract stays with its
	// team until then.
	ChangeTeamID   sql.NullInt64  `db:"change_team_id"`
	ChangeTeamName sql.NullString `db:"change_team_name"`
	ChangeDoctorID sql.NullInt64  `db:"change_doctor_id"`
	CreatedAt      time.Time      `db:"created_at"`
	Packages       []ContractPackage
}

const contractViewSQL = `SELECT ` + contractViewColumns + ` FROM ` + contractViewFrom

const contractViewColumns = `c.id, c.number, c.status, r.name AS resident_name, r.id_number_sealed, r.manager_openid,
	t.name AS team_name, c.doctor_id, d.name AS doctor_name, d.openid AS doctor_openid, c.term_months, c.term_end,
	r.community_id, cm.name AS community_name, c.team_id, c.resident_id, r.priority_groups AS resident_groups,
	r.birth_date, r.due_date_sealed, c.insured, c.member_code_hash <> '' AS awaiting_member, c.partner_district, c.partner_tertiary, c.change_team_id, ct.name AS change_team_name, c.change_doctor_id,
	c.created_at`

const contractViewFrom = `contracts c JOIN residents r ON r.id = c.resident_id JOIN teams t ON t.id = c.team_id
	JOIN doctors d ON d.id = c.doctor_id JOIN communities cm ON cm.id = r.community_id
	LEFT JOIN teams ct ON ct.id = c.change_team_id`

// ContractByNumber finds a contract by its number.
func (db *DB) ContractByNumber(ctx context.Context, number string) (ContractView, error) {
	const op = "ContractByNumber"
	var v ContractView
	if err := db.get(ctx, op, &v, contractViewSQL+` WHERE c.number = ?`, number); err != nil {
		return v, err
	}
	one := []ContractView{v}
	err := db.loadPackages(ctx, op, one)
	return one[0], err
}

// ContractsManagedBy lists the contracts of every resident a user manages,
// newest first.
func (db *DB) ContractsManagedBy(ctx context.Context, openID string) ([]ContractView, error) {
	const op = "ContractsManagedBy"
	var out []ContractView
	if err := db.sel(ctx, op, &out, contractViewSQL+` WHERE r.manager_openid = ? ORDER BY c.id DESC`, openID); err != nil {
		return nil, err
	}
	if err := db.loadPackages(ctx, op, out); err != nil {
		return nil, err
	}
	return out, nil
}

// loadPackages fills in the packages of every contract listed, with one
// query.
func (db *DB) loadPackages(ctx context.Context, op string, views []ContractView) error {
	if len(views) == 0 {
		return nil
	}
	ids := make([]int64, len(views))
	for i := range views {
		ids[i] = views[i].ID
	}
	return db.attachPackages(ctx, op, views, `contract_id IN (?)`, ids)
}

// loadPackagesOfRange is loadPackages for views in ID order that are most
// of the contracts in their range: one range scan, not a list of IDs.
func (db *DB) loadPackagesOfRange(ctx context.Context, op string, views []ContractView) error {
	if len(views) == 0 {
		return nil
	}
	return db.attachPackages(ctx, op, views, `contract_id >= ? AND contract_id <= ?`, views[0].ID, views[len(views)-1].ID)
}

// attachPackages reads the packages of the contracts where says and gives
// each view its own.
func (db *DB) attachPackages(ctx context.Context, op string, views []ContractView, where string, args ...any) error {
	index := make(map[int64]int, len(views))
	for i := range views {
		index[views[i].ID] = i
		views[i].Packages = nil
	}
	var rows []struct {
		ContractID int64  `db:"contract_id"`
		Code       string `db:"package_code"`
		Name       string `db:"package_name"`
		Kind       string `db:"kind"`
		Split      string `db:"split"`
	}
	if err := db.selIn(ctx, op+": packages", &rows, `SELECT contract_id, package_code, package_name, kind, split
		FROM contract_packages WHERE `+where+` ORDER BY contract_id, package_code`, args...); err != nil {
		return err
	}
	for _, r := range rows {
		i, ok := index[r.ContractID]
		if !ok {
			continue // in the range, not among the views
		}
		p := ContractPackage{Code: r.Code, Name: r.Name, Kind: r.Kind}
		if err := json.Unmarshal([]byte(r.Split), &p.Split); err != nil {
			return fail(op, fmt.Errorf("contract package split: %w", err))
		}
		views[i].Packages = append(views[i].Packages, p)
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
	// VisitsEnded, when set, cancels the contract's visits still to come
	// (after At), frees their places, withdraws their reminders and
	// enqueues what it returns for them: a contract that ends keeps no
	// bookings.
	VisitsEnded func(cancelled []AppointmentView) []Push
	At          time.Time
	// Renewal, when set with TermEnd and IfTermEnd, is the new term's
	// packages and agreement: the ending term's packages are kept in
	// contract_past_terms and the contract holds the new ones.
	Renewal *Renewal
}

// Renewal is what a resident agrees to for a contract's next term.
type Renewal struct {
	Packages         []ContractPackage
	AgreementVersion string
	AgreedAt         time.Time
}

// ChangeStatus applies a state change if the contract is still in From,
// records the event and enqueues the notifications, in one transaction.
func (db *DB) ChangeStatus(ctx context.Context, c StatusChange) error {
	const op = "ChangeStatus"
	return db.inTx(ctx, op, func(tx *DB) error {
		var id int64
		at := c.At
		if at.IsZero() {
			at = db.now()
		}
		var confirmed, ended sql.NullTime
		switch {
		case c.To == c.From:
		case c.To == ContractActive:
			confirmed = sql.NullTime{Time: at.UTC(), Valid: true}
		case c.To != ContractPending:
			ended = sql.NullTime{Time: at.UTC(), Valid: true}
		}
		// A contract that ends takes any 改签 waiting on it along.
		err := tx.get(ctx, op, &id, `UPDATE contracts SET status = ?, term_end = COALESCE(NULLIF(?, ''), term_end),
		change_team_id = CASE WHEN status <> ? THEN NULL ELSE change_team_id END,
		change_doctor_id = CASE WHEN status <> ? THEN NULL ELSE change_doctor_id END,
		team_id = CASE WHEN ? > 0 THEN ? ELSE team_id END, doctor_id = CASE WHEN ? > 0 THEN ? ELSE doctor_id END,
		confirmed_at = COALESCE(confirmed_at, ?), ended_at = COALESCE(ended_at, ?)
		WHERE number = ? AND status = ? AND (? = '' OR term_end = ?) AND (? <> 'active' OR member_code_hash = '') RETURNING id`,
			c.To, c.TermEnd, c.To, c.To, c.TeamID, c.TeamID, c.DoctorID, c.DoctorID, confirmed, ended,
			c.Number, c.From, c.IfTermEnd, c.IfTermEnd, c.To)
		if errors.Is(err, ErrNotFound) {
			return fail(op, fmt.Errorf("%s: %w", c.Number, ErrStatusChanged))
		}
		if err != nil {
			return err
		}
		if err := tx.addEvents(ctx, op, []int64{id}, c.Actor, c.From, c.To, c.Reason); err != nil {
			return err
		}
		if c.To != c.From {
			if err := tx.withdrawTeamChanges(ctx, op, "contract ended", c.Number); err != nil {
				return err
			}
		}
		if c.From == ContractPending && c.To != c.From {
			// An answered request needs no more following up, and a doctor
			// who binds later is not asked what staff already answered.
			if _, err := tx.execIn(ctx, op, `UPDATE outbox SET state = 'cancelled', last_error = 'sign request answered'
				WHERE idempotency_key IN (?) AND state = 'pending'`, append(SignFollowUpKeys(c.Number), SignRequestKey(c.Number))); err != nil {
				return err
			}
		}
		if c.From == ContractPending && c.To == c.From && c.TeamID > 0 {
			if err := tx.withdrawMovedRequests(ctx, op, c.Number); err != nil {
				return err
			}
		}
		if c.Renewal != nil {
			if err := tx.renewTerm(ctx, op, id, c.IfTermEnd, *c.Renewal); err != nil {
				return err
			}
		}
		if c.VisitsEnded != nil {
			cancelled, err := tx.cancelVisitsAfter(ctx, op, id, c.At)
			if err != nil {
				return err
			}
			if len(cancelled) > 0 {
				if err := tx.enqueue(ctx, op, c.VisitsEnded(cancelled)); err != nil {
					return err
				}
			}
		}
		return tx.enqueue(ctx, op, c.Notify)
	})
}

// renewTerm keeps the ending term's packages and puts the new term's in
// their place, with the agreement the resident gave for it.
func (db *DB) renewTerm(ctx context.Context, op string, contractID int64, ending string, r Renewal) error {
	if ending == "" || len(r.Packages) == 0 || r.AgreementVersion == "" {
		return fail(op, errors.New("a renewal needs the term it follows, its packages and its agreement"))
	}
	current := []ContractPackage{}
	views := []ContractView{{ID: contractID}}
	if err := db.loadPackages(ctx, op, views); err != nil {
		return err
	}
	current = append(current, views[0].Packages...)
	past, _ := json.Marshal(current)
	if _, err := db.exec(ctx, op, `INSERT INTO contract_past_terms (contract_id, term_end, packages) VALUES (?, ?, ?)`,
		contractID, ending, string(past)); err != nil {
		return err
	}
	if _, err := db.exec(ctx, op, `DELETE FROM contract_packages WHERE contract_id = ?`, contractID); err != nil {
		return err
	}
	if _, err := db.insertMany(ctx, op, packagesInsert, "", withID(contractID, packageRows(r.Packages))); err != nil {
		return err
	}
	_, err := db.exec(ctx, op, `UPDATE contracts SET agreement_version = ?, agreed_at = ? WHERE id = ?`,
		r.AgreementVersion, r.AgreedAt.UTC(), contractID)
	return err
}

// SignFollowUpKeys are the keys of the follow-up pushes of a sign request.
func SignFollowUpKeys(number string) []string {
	return []string{"contract:" + number + ":sign-reminder", "contract:" + number + ":sign-waiting"}
}

// SignRequestKey is the key of the doctor's sign request push.
func SignRequestKey(number string) string { return "contract:" + number + ":sign-request" }

// TeamChangeKeyPrefix is how the pushes of a contract's 改签 requests are
// keyed, so a request still unsent can be withdrawn when the contract ends.
func TeamChangeKeyPrefix(number string) string { return "contract:" + number + ":change:" }

// withdrawTeamChanges cancels the unsent 改签 requests of the contracts,
// saying why.
func (db *DB) withdrawTeamChanges(ctx context.Context, op, why string, numbers ...string) error {
	for _, n := range numbers {
		if _, err := db.exec(ctx, op, `UPDATE outbox SET state = 'cancelled', last_error = ?
		WHERE state = 'pending' AND idempotency_key LIKE ?`, why, TeamChangeKeyPrefix(n)+"%"); err != nil {
			return err
		}
	}
	return nil
}

// withdrawMovedRequests cancels what still waits to ask a former doctor to
// answer pending requests now moved to another team: the sign request, its
// reminder and an earlier move's request. The new team's doctor is asked
// afresh.
func (db *DB) withdrawMovedRequests(ctx context.Context, op string, numbers ...string) error {
	if len(numbers) == 0 {
		return nil
	}
	var keys []string
	for _, n := range numbers {
		keys = append(keys, SignRequestKey(n), SignFollowUpKeys(n)[0])
	}
	if _, err := db.execIn(ctx, op, `UPDATE outbox SET state = 'cancelled', last_error = 'request moved to another team'
		WHERE idempotency_key IN (?) AND state = 'pending'`, keys); err != nil {
		return err
	}
	return db.withdrawTeamChanges(ctx, op, "request moved to another team", numbers...)
}

// RequestTeamChange asks to move an active contract to another team (改签):
// the contract keeps its team until that team's doctor answers. It fails
// with ErrStatusChanged if the contract is not active or a change already
// waits.
func (db *DB) RequestTeamChange(ctx context.Context, number string, teamID, doctorID int64, actor string, notify []Push) error {
	const op = "RequestTeamChange"
	return db.inTx(ctx, op, func(tx *DB) error {
		var id int64
		err := tx.get(ctx, op, &id, `UPDATE contracts SET change_team_id = ?, change_doctor_id = ?
		WHERE number = ? AND status = 'active' AND change_team_id IS NULL RETURNING id`, teamID, doctorID, number)
		if errors.Is(err, ErrNotFound) {
			return fail(op, fmt.Errorf("%s: %w", number, ErrStatusChanged))
		}
		if err != nil {
			return err
		}
		if err := tx.addEvents(ctx, op, []int64{id}, actor, ContractActive, ContractActive, "team change requested"); err != nil {
			return err
		}
		return tx.enqueue(ctx, op, notify)
	})
}

// AnswerTeamChange is the new team's doctor's answer to a 改签: accepted,
// the contract moves to the team; declined (reason given), it stays as it
// was. It fails with ErrStatusChanged if no change waits for this doctor.
func (db *DB) AnswerTeamChange(ctx context.Context, number string, doctorID int64, accept bool, actor, reason string, notify []Push) error {
	const op = "AnswerTeamChange"
	move, why := `team_id = change_team_id, doctor_id = change_doctor_id, `, "team change confirmed"
	if !accept {
		move, why = "", "team change declined: "+reason
	}
	return db.inTx(ctx, op, func(tx *DB) error {
		var teams struct {
			From int64         `db:"team_id"`
			To   sql.NullInt64 `db:"change_team_id"`
		}
		if err := tx.get(ctx, op, &teams, `SELECT team_id, change_team_id FROM contracts WHERE number = ?`, number); err != nil {
			return err
		}
		var id int64
		err := tx.get(ctx, op, &id, `UPDATE contracts SET `+move+`change_team_id = NULL, change_doctor_id = NULL
		WHERE number = ? AND status = 'active' AND change_doctor_id = ? RETURNING id`, number, doctorID)
		if errors.Is(err, ErrNotFound) {
			return fail(op, fmt.Errorf("%s: %w", number, ErrStatusChanged))
		}
		if err != nil {
			return err
		}
		if err := tx.addEvents(ctx, op, []int64{id}, actor, ContractActive, ContractActive, why); err != nil {
			return err
		}
		if accept {
			if err := tx.staleRollups(ctx, op, teams.From, teams.To.Int64); err != nil {
				return err
			}
		}
		// Answered (in the console, say), the request still unsent would
		// ask the doctor for an answer already given.
		if err := tx.withdrawTeamChanges(ctx, op, "team change answered", number); err != nil {
			return err
		}
		return tx.enqueue(ctx, op, notify)
	})
}

// DoctorByOpenID finds the doctor bound to a WeChat user.
//
// A doctor's commands ask it first, before anything else is read: it does
// not begin the transaction the DB is scoped to (a BEGIN and a COMMIT for
// one SELECT), but reads on its own unless the transaction has begun.
func (db *DB) DoctorByOpenID(ctx context.Context, openID string) (Doctor, error) {
	var d Doctor
	err := db.unbegun().get(ctx, "DoctorByOpenID", &d, `SELECT id, institution_id, name, title, openid FROM doctors WHERE openid = ?`, openID)
	return d, err
}

// ExpireContracts ends active contracts whose term ended before today
// (YYYY-MM-DD, Asia/Shanghai), recording each, and returns how many.
func (db *DB) ExpireContracts(ctx context.Context, today string) (int, error) {
	const op = "ExpireContracts"
	var ids []int64
	err := db.inTx(ctx, op, func(tx *DB) error {
		var waiting []string // numbers with a 改签 waiting, whose requests go with them
		if err := tx.sel(ctx, op, &waiting, `SELECT number FROM contracts WHERE status = 'active' AND term_end < ?
		AND change_team_id IS NOT NULL`, today); err != nil {
			return err
		}
		if err := tx.sel(ctx, op, &ids, `UPDATE contracts SET status = 'expired', change_team_id = NULL, change_doctor_id = NULL,
		ended_at = COALESCE(ended_at, ?) WHERE status = 'active' AND term_end < ? RETURNING id`, db.now(), today); err != nil {
			return err
		}
		if err := tx.withdrawTeamChanges(ctx, op, "contract ended", waiting...); err != nil {
			return err
		}
		return tx.addEvents(ctx, op, ids, "system", ContractActive, ContractExpired, "term ended")
	})
	if err != nil {
		return 0, err
	}
	return len(ids), nil
}

// ActiveContractsPage pages through active contracts whose manager follows
// the account and wants personal reminders, by contract ID after afterID up
// to lastID (a chunk of the day's run), with packages. Only what the
// reminders read is filled in: the contract's ID, number and term, the
// resident's ID, name, manager, birth date, sealed groups and due date.
// Read for a city's every contract each day, it joins nothing else.
func (db *DB) ActiveContractsPage(ctx context.Context, afterID, lastID int64, limit int) ([]ContractView, error) {
	const op = "ActiveContractsPage"
	out := make([]ContractView, 0, min(limit, 10000)) // no growing copies of a chunk
	if err := db.sel(ctx, op, &out, `SELECT c.id, c.number, c.term_months, c.term_end, c.resident_id, r.name AS resident_name,
		r.manager_openid, r.priority_groups AS resident_groups, r.birth_date, r.due_date_sealed
		FROM contracts c JOIN residents r ON r.id = c.resident_id JOIN wechat_users u ON u.openid = r.manager_openid
		WHERE c.status = 'active' AND c.id > ? AND c.id <= ? AND u.subscribed AND u.personal_reminders
		ORDER BY c.id LIMIT ?`, afterID, lastID, limit); err != nil {
		return nil, err
	}
	if err := db.loadPackagesOfRange(ctx, op, out); err != nil {
		return nil, err
	}
	return out, nil
}

// VisitSummary is what the personal reminders need of a contract's visits:
// when each kind was last done, and whether one of a kind is booked ahead.
type VisitSummary struct {
	LastDone map[string]time.Time
	Upcoming map[string]bool
}

// VisitSummaries reads the visits of the contracts with IDs after afterID
// up to lastID (a chunk of the personal reminders' run) done since a
// moment or booked after now, in one query, and sums them up by contract.
func (db *DB) VisitSummaries(ctx context.Context, afterID, lastID int64, since, now time.Time) (map[int64]VisitSummary, error) {
	out := map[int64]VisitSummary{}
	var rows []struct {
		ContractID int64     `db:"contract_id"`
		Kind       string    `db:"kind"`
		Status     string    `db:"status"`
		StartsAt   time.Time `db:"starts_at"`
	}
	if err := db.sel(ctx, "VisitSummaries", &rows, `SELECT contract_id, kind, status, starts_at FROM appointments
		WHERE contract_id > ? AND contract_id <= ? AND ((status = 'done' AND starts_at >= ?) OR (status = 'booked' AND starts_at > ?))`,
		afterID, lastID, since.UTC(), now.UTC()); err != nil {
		return nil, err
	}
	for _, r := range rows {
		v, ok := out[r.ContractID]
		if !ok {
			v = VisitSummary{LastDone: map[string]time.Time{}, Upcoming: map[string]bool{}}
			out[r.ContractID] = v
		}
		if r.Status == "booked" {
			v.Upcoming[r.Kind] = true
		} else if r.StartsAt.After(v.LastDone[r.Kind]) {
			v.LastDone[r.Kind] = r.StartsAt
		}
	}
	return out, nil
}

// SealedResident is a resident's sealed ID number and phone.
type SealedResident struct {
	ID          int64  `db:"id"`
	IDSealed    string `db:"id_number_sealed"`
	PhoneSealed string `db:"phone_sealed"`
}

// UnmaskedResidents lists the residents whose masked ID number is not kept yet.
func (db *DB) UnmaskedResidents(ctx context.Context) ([]SealedResident, error) {
	var out []SealedResident
	err := db.sel(ctx, "UnmaskedResidents", &out, `SELECT id, id_number_sealed, phone_sealed FROM residents WHERE id_masked = ''`)
	return out, err
}

// SetResidentMasks keeps a resident's masked ID number and phone.
func (db *DB) SetResidentMasks(ctx context.Context, id int64, idMasked, phoneMasked string) error {
	_, err := db.exec(ctx, "SetResidentMasks", `UPDATE residents SET id_masked = ?, phone_masked = ? WHERE id = ?`, idMasked, phoneMasked, id)
	return err
}

// SignRequestWaiting is a sign request left unanswered since Since.
type SignRequestWaiting struct {
	ContractID    int64     `db:"id"`
	Number        string    `db:"number"`
	DoctorID      int64     `db:"doctor_id"`
	DoctorName    string    `db:"doctor_name"`
	ManagerOpenID string    `db:"manager_openid"`
	ResidentName  string    `db:"resident_name"`
	Since         time.Time `db:"created_at"` // or when the member confirmed, below
	Phone         string    `db:"phone"`
	// MemberConfirmedAt: a request made for a family member waits for the
	// doctor from when the member confirmed it.
	MemberConfirmedAt sql.NullTime `db:"member_confirmed_at"`
}

// SignRequestsWaitingSince lists pending contracts made before a moment,
// a page at a time after a contract ID.
func (db *DB) SignRequestsWaitingSince(ctx context.Context, before time.Time, afterID int64, limit int) ([]SignRequestWaiting, error) {
	var out []SignRequestWaiting
	// A request made for a family member waits for the doctor from when
	// the member confirmed it.
	err := db.sel(ctx, "SignRequestsWaitingSince", &out, `SELECT c.id, c.number, c.doctor_id, d.name AS doctor_name, r.manager_openid,
		r.name AS resident_name, c.created_at, c.member_confirmed_at, i.phone
		FROM contracts c JOIN doctors d ON d.id = c.doctor_id JOIN residents r ON r.id = c.resident_id
		JOIN institutions i ON i.id = d.institution_id
		WHERE c.status = 'pending' AND c.member_code_hash = '' AND COALESCE(c.member_confirmed_at, c.created_at) < ?
		AND c.id > ? ORDER BY c.id LIMIT ?`, before.UTC(), afterID, limit)
	for i, r := range out {
		if r.MemberConfirmedAt.Valid {
			out[i].Since = r.MemberConfirmedAt.Time
		}
	}
	return out, err
}

// residentAudited is what an audit entry about a resident names: their
// name, and the institution whose log it goes in.
type residentAudited struct {
	Institution int64  `db:"institution_id"`
	Name        string `db:"name"`
}

func (db *DB) residentAudited(ctx context.Context, op string, id int64) (residentAudited, error) {
	var was residentAudited
	err := db.get(ctx, op, &was, `SELECT m.institution_id, r.name FROM residents r JOIN communities m ON m.id = r.community_id
		WHERE r.id = ?`, id)
	return was, err
}

// subject names a resident in the audit log.
func (r residentAudited) subject(id int64) string {
	return fmt.Sprintf("%s（居民 #%d）", r.Name, id)
}

// UpdateResidentContact records a resident's new community and, when
// PhoneSealed is set, their new phone; the audit log names who, never the
// phone.
func (db *DB) UpdateResidentContact(ctx context.Context, id int64, r NewResident, actor string) error {
	const op = "UpdateResidentContact"
	return db.inTx(ctx, op, func(tx *DB) error {
		was, err := tx.residentAudited(ctx, op, id)
		if err != nil {
			return err
		}
		if _, err := tx.exec(ctx, op, `UPDATE residents SET community_id = ?, phone_sealed = COALESCE(NULLIF(?, ''), phone_sealed),
			phone_hash = COALESCE(NULLIF(?, ''), phone_hash), phone_masked = COALESCE(NULLIF(?, ''), phone_masked), updated_at = ?
			WHERE id = ?`, r.CommunityID, r.PhoneSealed, r.PhoneHash, r.PhoneMasked, db.now(), id); err != nil {
			return err
		}
		var community string
		if err := tx.get(ctx, op, &community, `SELECT name FROM communities WHERE id = ?`, r.CommunityID); err != nil {
			return err
		}
		detail := "社区：" + community
		if r.PhoneSealed != "" {
			detail += "；更换了电话"
		}
		return tx.auditIn(ctx, op, actor, nullID(was.Institution), "resident.update", was.subject(id), detail)
	})
}

// DueDateByIDHash is the sealed expected due date of the resident with an
// ID number (by hash), "" if none is recorded or there is no such resident:
// signing them again corrects it from there.
func (db *DB) DueDateByIDHash(ctx context.Context, idHash string) (string, error) {
	var sealed string
	err := db.get(ctx, "DueDateByIDHash", &sealed, `SELECT due_date_sealed FROM residents WHERE id_number_hash = ?`, idHash)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	return sealed, err
}

// SetDueDate records a resident's expected due date (sealed; "" clears
// it); the audit log says it changed, never the date.
func (db *DB) SetDueDate(ctx context.Context, id int64, sealed, actor string) error {
	const op = "SetDueDate"
	return db.inTx(ctx, op, func(tx *DB) error {
		was, err := tx.residentAudited(ctx, op, id)
		if err != nil {
			return err
		}
		if _, err := tx.exec(ctx, op, `UPDATE residents SET due_date_sealed = ?, updated_at = ? WHERE id = ?`, sealed, db.now(), id); err != nil {
			return err
		}
		detail := "更新了预产期"
		if sealed == "" {
			detail = "清除了预产期"
		}
		return tx.auditIn(ctx, op, actor, nullID(was.Institution), "resident.due_date", was.subject(id), detail)
	})
}

// EndReasons are the reasons given when contracts were cancelled or
// declined, by contract: staff read them on the resident's page (the
// doctor's notice leaves a resident's words out).
func (db *DB) EndReasons(ctx context.Context, contractIDs []int64) (map[int64]string, error) {
	out := map[int64]string{}
	if len(contractIDs) == 0 {
		return out, nil
	}
	var rows []struct {
		ContractID int64  `db:"contract_id"`
		Reason     string `db:"reason"`
	}
	if err := db.selIn(ctx, "EndReasons", &rows, `SELECT contract_id, reason FROM contract_events
		WHERE contract_id IN (?) AND to_status IN ('cancelled', 'declined') AND reason <> '' ORDER BY id`, contractIDs); err != nil {
		return nil, err
	}
	for _, r := range rows {
		out[r.ContractID] = r.Reason
	}
	return out, nil
}
