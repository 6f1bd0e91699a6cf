package storage

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// This file holds the console's listings: each takes a Scope and a Page and
// returns the page with the total the scope holds.

// count and list run a listing's two queries over the same FROM … WHERE.
func (db *DB) listing(ctx context.Context, op string, dest any, total *int, columns, from, order string, page Page, args []any) error {
	page = page.clamp()
	if err := db.get(ctx, op+": count", total, `SELECT COUNT(*) FROM `+from, args...); err != nil {
		return err
	}
	return db.sel(ctx, op, dest, `SELECT `+columns+` FROM `+from+` ORDER BY `+order+` LIMIT ? OFFSET ?`,
		append(args, page.Limit, page.Offset)...)
}

// DoctorRow is a doctor as the console lists them.
type DoctorRow struct {
	ID            int64     `db:"id" json:"id"`
	InstitutionID int64     `db:"institution_id" json:"institution_id"`
	Name          string    `db:"name" json:"name"`
	Title         string    `db:"title" json:"title"`
	Bound         bool      `db:"bound" json:"bound"`
	Teams         []TeamRef `json:"teams"`
}

// TeamRef names a team.
type TeamRef struct {
	ID   int64  `db:"id" json:"id"`
	Name string `db:"name" json:"name"`
}

// ListDoctors lists the doctors in scope by ID, each with the teams they lead.
func (db *DB) ListDoctors(ctx context.Context, scope Scope, page Page) ([]DoctorRow, int, error) {
	const op = "ListDoctors"
	cond, args := scope.where("d.institution_id", "d.id = ?")
	out := []DoctorRow{}
	var total int
	if err := db.listing(ctx, op, &out, &total, `d.id, d.institution_id, d.name, d.title, d.openid IS NOT NULL AS bound`,
		`doctors d WHERE `+cond, "d.id", page, args); err != nil {
		return nil, 0, err
	}
	if len(out) == 0 {
		return out, total, nil
	}
	ids := make([]int64, len(out))
	at := map[int64]int{}
	for i, d := range out {
		ids[i], at[d.ID] = d.ID, i
		out[i].Teams = []TeamRef{}
	}
	var teams []struct {
		DoctorID int64 `db:"doctor_id"`
		TeamRef
	}
	if err := db.selIn(ctx, op+": teams", &teams, `SELECT doctor_id, id, name FROM teams WHERE doctor_id IN (?) ORDER BY id`, ids); err != nil {
		return nil, 0, err
	}
	for _, t := range teams {
		out[at[t.DoctorID]].Teams = append(out[at[t.DoctorID]].Teams, t.TeamRef)
	}
	return out, total, nil
}

// CommunityRow is a community as the console lists it.
type CommunityRow struct {
	ID             int64          `db:"id" json:"id"`
	InstitutionID  int64          `db:"institution_id" json:"institution_id"`
	Town           string         `db:"town" json:"town"`
	Name           string         `db:"name" json:"name"`
	Residents      int            `db:"residents" json:"population"`
	PriorityCounts PriorityCounts `db:"priority_counts" json:"priority_population"` // group code -> residents
	CountedOn      string         `db:"counted_on" json:"counted_on"`               // YYYY-MM-DD
	Signed         int            `db:"signed" json:"signed"`
}

// PriorityCounts is how many residents of a community are in each priority
// group, stored as JSON.
type PriorityCounts map[string]int

// Scan reads the stored JSON.
func (p *PriorityCounts) Scan(v any) error {
	var raw []byte
	switch t := v.(type) {
	case string:
		raw = []byte(t)
	case []byte:
		raw = t
	case nil:
		*p = PriorityCounts{}
		return nil
	default:
		return fmt.Errorf("priority counts: %T", v)
	}
	out := PriorityCounts{}
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
	*p = out
	return nil
}

// SetPopulation records a community's population and its priority groups'
// counts, with the day they were counted.
func (db *DB) SetPopulation(ctx context.Context, scope Scope, id int64, population int, groups PriorityCounts, countedOn, actor string) error {
	const op = "SetPopulation"
	return db.inTx(ctx, op, func(tx *DB) error {
		if err := tx.Visible(ctx, scope, ThingCommunity, id); err != nil {
			return err
		}
		raw, _ := json.Marshal(groups)
		var m struct {
			Institution int64  `db:"institution_id"`
			Name        string `db:"name"`
		}
		if err := tx.get(ctx, op, &m, `UPDATE communities SET residents = ?, priority_counts = ?, counted_on = ? WHERE id = ?
			RETURNING institution_id, name`, population, string(raw), countedOn, id); err != nil {
			return err
		}
		return tx.auditIn(ctx, op, actor, nullID(m.Institution), "community.population", m.Name,
			fmt.Sprintf("常住人口 %d，重点人群 %s，%s 统计", population, raw, countedOn))
	})
}

// ListCommunities lists the communities in scope with their population and
// how many of their residents hold a live contract.
func (db *DB) ListCommunities(ctx context.Context, scope Scope, page Page) ([]CommunityRow, int, error) {
	cond, args := scope.where("m.institution_id", "")
	out := []CommunityRow{}
	var total int
	err := db.listing(ctx, "ListCommunities", &out, &total, `m.id, m.institution_id, m.town, m.name, m.residents, m.priority_counts,
		m.counted_on,
		(SELECT COUNT(*) FROM residents r JOIN contracts c ON c.resident_id = r.id
		 WHERE r.community_id = m.id AND c.status IN ('pending', 'active') AND c.member_code_hash = '') AS signed`,
		`communities m WHERE `+cond, "m.id", page, args)
	return out, total, err
}

// CommunitiesNamed finds the communities in scope with a name; city staff
// may find one in each of several institutions.
func (db *DB) CommunitiesNamed(ctx context.Context, scope Scope, name string) ([]CommunityRow, error) {
	cond, args := scope.where("m.institution_id", "")
	out := []CommunityRow{}
	err := db.sel(ctx, "CommunitiesNamed", &out, `SELECT m.id, m.institution_id, m.town, m.name, m.residents, m.priority_counts,
		m.counted_on, 0 AS signed FROM communities m WHERE m.name = ? AND `+cond+` ORDER BY m.id`, append([]any{name}, args...)...)
	return out, err
}

// TeamRow is a team as the console lists it.
type TeamRow struct {
	ID            int64  `db:"id" json:"id"`
	InstitutionID int64  `db:"institution_id" json:"institution_id"`
	Name          string `db:"name" json:"name"`
	DoctorID      int64  `db:"doctor_id" json:"doctor_id"`
	DoctorName    string `db:"doctor_name" json:"doctor"`
	Signed        int    `db:"signed" json:"signed"`
	// Members besides the lead doctor, and the communities served.
	Members     []Member `db:"-" json:"members"`
	Communities []string `db:"-" json:"communities"`
}

// ListTeams lists the teams in scope with their members, communities and
// live contracts.
func (db *DB) ListTeams(ctx context.Context, scope Scope, page Page) ([]TeamRow, int, error) {
	cond, args := scope.where("t.institution_id", "t.doctor_id = ?")
	out := []TeamRow{}
	var total int
	err := db.listing(ctx, "ListTeams", &out, &total, `t.id, t.institution_id, t.name, t.doctor_id, d.name AS doctor_name,
		(SELECT COUNT(*) FROM contracts c WHERE c.team_id = t.id AND c.status IN ('pending', 'active') AND c.member_code_hash = '') AS signed`,
		`teams t JOIN doctors d ON d.id = t.doctor_id WHERE `+cond, "t.id", page, args)
	if err != nil || len(out) == 0 {
		return out, total, err
	}
	return out, total, db.teamDetails(ctx, out)
}

// teamDetails fills a page of teams' members and communities in two queries.
func (db *DB) teamDetails(ctx context.Context, teams []TeamRow) error {
	const op = "ListTeams"
	ids := make([]int64, len(teams))
	index := make(map[int64]int, len(teams))
	for i, t := range teams {
		ids[i], index[t.ID] = t.ID, i
		teams[i].Members, teams[i].Communities = []Member{}, []string{}
	}
	members, err := db.membersOf(ctx, op, ids)
	if err != nil {
		return err
	}
	for i, t := range teams {
		teams[i].Members = append(teams[i].Members, members[t.ID]...)
	}
	var served []struct {
		TeamID int64  `db:"team_id"`
		Name   string `db:"name"`
	}
	if err := db.selIn(ctx, op+": communities", &served, `SELECT tc.team_id, m.name FROM team_communities tc
		JOIN communities m ON m.id = tc.community_id WHERE tc.team_id IN (?) ORDER BY tc.team_id, m.id`, ids); err != nil {
		return err
	}
	for _, c := range served {
		t := &teams[index[c.TeamID]]
		t.Communities = append(t.Communities, c.Name)
	}
	return nil
}

// outboxInScope keeps the pushes to a scope's doctors and to the WeChat users
// who manage its residents; pushes to no one in particular (seasonal tips to
// followers) are the whole deployment's.
const outboxInScope = `(o.recipient IN (SELECT 'doctor:' || CAST(d.id AS TEXT) FROM doctors d WHERE %[1]s)
	OR o.recipient IN (SELECT r.manager_openid FROM residents r JOIN communities m ON m.id = r.community_id WHERE %[2]s))`

func outboxWhere(scope Scope) (string, []any) {
	if scope.Whole() {
		return "1 = 1", nil
	}
	doctors, dargs := scope.where("d.institution_id", "d.id = ?")
	residents, rargs := scope.where("m.institution_id", residentOfDoctor)
	return fmt.Sprintf(outboxInScope, doctors, residents), append(dargs, rargs...)
}

// ListOutbox lists the pushes of one state in scope, newest first.
func (db *DB) ListOutbox(ctx context.Context, scope Scope, state string, page Page) ([]OutboxEntry, int, error) {
	cond, args := outboxWhere(scope)
	out := []OutboxEntry{}
	var total int
	err := db.listing(ctx, "ListOutbox", &out, &total, `o.id, o.idempotency_key, o.kind, o.recipient, o.state, o.attempts, o.last_error`,
		`outbox o WHERE o.state = ? AND `+cond, "o.id DESC", page, append([]any{state}, args...))
	return out, total, err
}

// RetryDead gives a dead letter in scope a fresh set of attempts, due now,
// and audits who asked.
func (db *DB) RetryDead(ctx context.Context, scope Scope, id int64, now time.Time, actor string) error {
	const op = "RetryDead"
	cond, args := outboxWhere(scope)
	return db.inTx(ctx, op, func(tx *DB) error {
		var key string
		if err := tx.get(ctx, op, &key, `SELECT o.idempotency_key FROM outbox o WHERE o.id = ? AND o.state = 'dead' AND `+cond,
			append([]any{id}, args...)...); err != nil {
			return err
		}
		n, err := tx.exec(ctx, op, `UPDATE outbox SET state = 'pending', attempts = 0, last_error = '', due_at = ?,
			lease_until = NULL WHERE id = ? AND state = 'dead'`, now.UTC(), id)
		if err != nil {
			return err
		}
		tx.pushed(n)
		return tx.auditIn(ctx, op, actor, nullID(scope.Institution), "outbox.retry", key, "")
	})
}

// ResidentFilter narrows the residents listing. Query is a name (or part of
// one), the last four digits of an ID number or phone, or a whole masked ID
// number as screens show it.
type ResidentFilter struct {
	Query       string
	IDHash      string // a whole ID number typed, by its keyed hash
	PhoneHash   string // a whole phone number typed, by its keyed hash
	CommunityID int64
	TeamID      int64
	Status      string // of the newest contract: pending, active, declined, cancelled, expired; "none": never signed
	// A priority group: declared ones by their tag in resident_groups,
	// those that follow from age by a range of birth dates (YYYY-MM-DD).
	GroupTag             string
	BornAfter, BornUntil string
}

// ResidentRow is a resident as the console lists them: masked, never in clear.
type ResidentRow struct {
	ID             int64          `db:"id" json:"id"`
	Name           string         `db:"name" json:"name"`
	IDMasked       string         `db:"id_masked" json:"id_number"`
	PhoneMasked    string         `db:"phone_masked" json:"phone"`
	BirthDate      string         `db:"birth_date" json:"-"` // with the masked ID it would give away 16 of 18 digits
	Sex            string         `db:"sex" json:"sex"`
	CommunityID    int64          `db:"community_id" json:"community_id"`
	Community      string         `db:"community" json:"community"`
	ContractNumber sql.NullString `db:"contract_number" json:"-"`
	ContractStatus sql.NullString `db:"contract_status" json:"-"`
	Team           sql.NullString `db:"team" json:"-"`
	Doctor         sql.NullString `db:"doctor" json:"-"`
	DueDateSealed  string         `db:"due_date_sealed" json:"-"` // a pregnancy's expected due date, sealed
}

// MarshalJSON shows the newest contract as plain strings.
func (r ResidentRow) MarshalJSON() ([]byte, error) {
	type plain ResidentRow
	return json.Marshal(struct {
		plain
		BirthYear string `json:"birth_year"`
		Contract  string `json:"contract"`
		Status    string `json:"status"`
		Team      string `json:"team"`
		Doctor    string `json:"doctor"`
	}{plain(r), r.BirthYear(), r.ContractNumber.String, r.ContractStatus.String, r.Team.String, r.Doctor.String})
}

// BirthYear is what the console shows of a resident's birth date: the
// masked ID number already shows its first and last four digits, and the
// whole date beside them would leave only the county code hidden.
func (r ResidentRow) BirthYear() string {
	if len(r.BirthDate) < 4 {
		return ""
	}
	return r.BirthDate[:4]
}

const residentRowFrom = `residents r JOIN communities m ON m.id = r.community_id
	LEFT JOIN contracts c ON c.id = (SELECT MAX(id) FROM contracts WHERE resident_id = r.id)
	LEFT JOIN teams t ON t.id = c.team_id LEFT JOIN doctors d ON d.id = c.doctor_id`

const residentRowColumns = `r.id, r.name, r.id_masked, r.phone_masked, r.birth_date, r.sex, r.community_id, r.due_date_sealed,
	m.name AS community, c.number AS contract_number, c.status AS contract_status, t.name AS team, d.name AS doctor`

// ListResidents lists the residents in scope that match the filter, by ID.
func (db *DB) ListResidents(ctx context.Context, scope Scope, f ResidentFilter, page Page) ([]ResidentRow, int, error) {
	cond, args := scope.where("m.institution_id", residentOfDoctor)
	if q := strings.TrimSpace(f.Query); q != "" {
		switch {
		case f.IDHash != "":
			cond += ` AND r.id_number_hash = ?`
			args = append(args, f.IDHash)
		case f.PhoneHash != "":
			cond += ` AND r.phone_hash = ?`
			args = append(args, f.PhoneHash)
		case len(q) == 4 && strings.Trim(q, "0123456789Xx") == "":
			cond += ` AND (r.id_masked LIKE ? OR r.phone_masked LIKE ?)`
			args = append(args, "%"+strings.ToUpper(q), "%"+q)
		case strings.Contains(q, "*"):
			cond += ` AND r.id_masked = ?`
			args = append(args, strings.ToUpper(q))
		default: // % and _ typed are characters of a name, not wildcards
			cond += ` AND r.name LIKE ? ESCAPE '\'`
			args = append(args, "%"+likeEscaper.Replace(q)+"%")
		}
	}
	cond, args = andEq(cond, args, "r.community_id", f.CommunityID)
	cond, args = andEq(cond, args, "c.team_id", f.TeamID)
	if f.GroupTag != "" {
		cond += ` AND r.id IN (SELECT resident_id FROM resident_groups WHERE tag = ?)`
		args = append(args, f.GroupTag)
	}
	if f.BornAfter != "" {
		cond += ` AND r.birth_date > ?`
		args = append(args, f.BornAfter)
	}
	if f.BornUntil != "" {
		cond += ` AND r.birth_date <= ?`
		args = append(args, f.BornUntil)
	}
	switch f.Status {
	case "":
	case "none":
		cond += ` AND c.id IS NULL`
	default:
		cond += ` AND c.status = ?`
		args = append(args, f.Status)
	}
	out := []ResidentRow{}
	var total int
	err := db.listing(ctx, "ListResidents", &out, &total, residentRowColumns, residentRowFrom+` WHERE `+cond, "r.id", page, args)
	return out, total, err
}

// ResidentsByID are the residents in scope among ids, as the console lists
// them; those outside the scope are left out.
func (db *DB) ResidentsByID(ctx context.Context, scope Scope, ids []int64) ([]ResidentRow, error) {
	out := []ResidentRow{}
	if len(ids) == 0 {
		return out, nil
	}
	cond, args := scope.where("m.institution_id", residentOfDoctor)
	err := db.selIn(ctx, "ResidentsByID", &out, `SELECT `+residentRowColumns+` FROM `+residentRowFrom+` WHERE r.id IN (?) AND `+cond,
		append([]any{ids}, args...)...)
	return out, err
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// Resident is one resident in scope, as the console shows them.
func (db *DB) Resident(ctx context.Context, scope Scope, id int64) (ResidentRow, error) {
	cond, args := scope.where("m.institution_id", residentOfDoctor)
	var r ResidentRow
	err := db.get(ctx, "Resident", &r, `SELECT `+residentRowColumns+` FROM `+residentRowFrom+` WHERE r.id = ? AND `+cond,
		append([]any{id}, args...)...)
	return r, err
}

// ResidentSecrets are a resident's sealed ID number and phone, read only
// to show them in full to staff who gave a reason; the reading is audited
// in the same transaction, so no reading goes unrecorded.
func (db *DB) ResidentSecrets(ctx context.Context, scope Scope, id int64, actor, reason string) (SealedResident, error) {
	const op = "ResidentSecrets"
	var s SealedResident
	err := db.inTx(ctx, op, func(tx *DB) error {
		cond, args := scope.where("m.institution_id", residentOfDoctor)
		var row struct {
			SealedResident
			Name        string `db:"name"`
			Institution int64  `db:"institution_id"`
		}
		if err := tx.get(ctx, op, &row, `SELECT r.id, r.id_number_sealed, r.phone_sealed, r.name, m.institution_id
			FROM residents r JOIN communities m ON m.id = r.community_id WHERE r.id = ? AND `+cond,
			append([]any{id}, args...)...); err != nil {
			return err
		}
		s = row.SealedResident
		return tx.auditIn(ctx, op, actor, nullID(row.Institution), "resident.unmask",
			fmt.Sprintf("%s（居民 #%d）", row.Name, id), reason)
	})
	return s, err
}

// ContractsOfResident lists a resident's contracts, newest first.
func (db *DB) ContractsOfResident(ctx context.Context, residentID int64) ([]ContractView, error) {
	const op = "ContractsOfResident"
	var out []ContractView
	if err := db.sel(ctx, op, &out, contractViewSQL+` WHERE c.resident_id = ? ORDER BY c.id DESC`, residentID); err != nil {
		return nil, err
	}
	return out, db.loadPackages(ctx, op, out)
}

// AppointmentsOfResident lists a resident's appointments, newest first.
func (db *DB) AppointmentsOfResident(ctx context.Context, residentID int64, limit int) ([]AppointmentView, error) {
	var out []AppointmentView
	err := db.sel(ctx, "AppointmentsOfResident", &out, appointmentViewSQL+` WHERE a.resident_id = ?
		ORDER BY a.starts_at DESC, a.id DESC LIMIT ?`, residentID, limit)
	return out, err
}

// ListContracts lists the contracts in scope, oldest first, of one status
// or ("") every status; the pending ones are the sign requests waiting for
// a doctor.
func (db *DB) ListContracts(ctx context.Context, scope Scope, status string, page Page) ([]ContractView, int, error) {
	const op = "ListContracts"
	cond, args := scope.where("t.institution_id", "c.doctor_id = ?")
	if status != "" {
		cond += ` AND c.status = ?`
		args = append(args, status)
	}
	out := []ContractView{}
	var total int
	if err := db.listing(ctx, op, &out, &total, contractViewColumns, contractViewFrom+` WHERE `+cond, "c.id", page, args); err != nil {
		return nil, 0, err
	}
	return out, total, db.loadPackages(ctx, op, out)
}

// ExportRow is one contract as the residents file carries it, masked.
type ExportRow struct {
	ContractID  int64          `db:"contract_id"`
	Name        string         `db:"name"`
	IDMasked    string         `db:"id_masked"`
	PhoneMasked string         `db:"phone_masked"`
	Community   string         `db:"community"`
	Team        string         `db:"team"`
	SignedAt    time.Time      `db:"agreed_at"`
	TermEnd     sql.NullString `db:"term_end"`
	Number      string         `db:"number"`
	Status      string         `db:"status"`
	Packages    []string
}

// ExportContracts calls fn with every live contract in scope, a page at a
// time, in contract order.
func (db *DB) ExportContracts(ctx context.Context, scope Scope, fn func([]ExportRow) error) error {
	const op = "ExportContracts"
	cond, args := scope.where("t.institution_id", "c.doctor_id = ?")
	var after int64
	for {
		var rows []ExportRow
		if err := db.sel(ctx, op, &rows, `SELECT c.id AS contract_id, r.name, r.id_masked, r.phone_masked, m.name AS community,
			t.name AS team, c.agreed_at, c.term_end, c.number, c.status
			FROM contracts c JOIN residents r ON r.id = c.resident_id JOIN communities m ON m.id = r.community_id
			JOIN teams t ON t.id = c.team_id
			WHERE c.status IN ('pending', 'active') AND c.member_code_hash = '' AND c.id > ? AND `+cond+` ORDER BY c.id LIMIT 500`,
			append([]any{after}, args...)...); err != nil {
			return err
		}
		if len(rows) == 0 {
			return nil
		}
		ids := make([]int64, len(rows))
		at := map[int64]int{}
		for i, r := range rows {
			ids[i], at[r.ContractID] = r.ContractID, i
		}
		var pkgs []struct {
			ContractID int64  `db:"contract_id"`
			Name       string `db:"package_name"`
		}
		if err := db.selIn(ctx, op, &pkgs, `SELECT contract_id, package_name FROM contract_packages WHERE contract_id IN (?)
			ORDER BY contract_id, package_code`, ids); err != nil {
			return err
		}
		for _, p := range pkgs {
			rows[at[p.ContractID]].Packages = append(rows[at[p.ContractID]].Packages, p.Name)
		}
		if err := fn(rows); err != nil {
			return err
		}
		after = rows[len(rows)-1].ContractID
	}
}

// AppointmentsBetween lists the appointments in scope that start in
// [from, to), by time; doctorID narrows them to one doctor.
func (db *DB) AppointmentsBetween(ctx context.Context, scope Scope, from, to time.Time, doctorID int64) ([]AppointmentView, error) {
	cond, args := scope.where("d.institution_id", "a.doctor_id = ?")
	if doctorID != 0 {
		cond += ` AND a.doctor_id = ?`
		args = append(args, doctorID)
	}
	out := []AppointmentView{}
	err := db.sel(ctx, "AppointmentsBetween", &out, appointmentViewSQL+` WHERE a.starts_at >= ? AND a.starts_at < ? AND `+cond+`
		ORDER BY a.starts_at, d.name, a.id LIMIT 1000`, append([]any{from.UTC(), to.UTC()}, args...)...)
	return out, err
}

// ListTeamChanges lists the 改签 requests in scope waiting for the new
// team's doctor, oldest first; the scope is the new team's.
func (db *DB) ListTeamChanges(ctx context.Context, scope Scope, page Page) ([]ContractView, int, error) {
	const op = "ListTeamChanges"
	cond, args := scope.where("ct.institution_id", "c.change_doctor_id = ?")
	out := []ContractView{}
	var total int
	if err := db.listing(ctx, op, &out, &total, contractViewColumns, contractViewFrom+` WHERE c.change_team_id IS NOT NULL AND `+cond,
		"c.id", page, args); err != nil {
		return nil, 0, err
	}
	return out, total, db.loadPackages(ctx, op, out)
}
