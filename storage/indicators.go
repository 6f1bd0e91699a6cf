package storage

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// IndicatorQuery asks for the facts the programme's indicators are
// computed from: everything in Scope (and in one community, when set) that
// happened in [From, To), and the visits from VisitsFrom (the start of the
// year, for chronic follow-ups, when it is earlier than From) up to
// VisitsTo (the period's end: a visit marked done early on its day counts
// at once; To when zero).
type IndicatorQuery struct {
	Scope                Scope
	CommunityID          int64
	From, To             time.Time
	VisitsFrom, VisitsTo time.Time
}

// IndicatorFacts are the rows the indicators are computed from, each
// carrying where it belongs (institution, community, team, doctor) so one
// pass can total them for the scope and for each breakdown.
type IndicatorFacts struct {
	Contracts   []ContractFact
	Packages    []PackageFact
	Groups      []GroupFact
	Visits      []VisitFact
	Surveys     []SurveyFact
	Events      []EventFact
	Communities []CommunityRow
	Names       []NameFact
	Pushes      int // sent in the period to people in scope
}

// FactPlace is where a fact belongs: its contract's team and doctor now,
// the team's institution and the resident's community.
type FactPlace struct {
	InstitutionID int64 `db:"institution_id"`
	CommunityID   int64 `db:"community_id"`
	TeamID        int64 `db:"team_id"`
	DoctorID      int64 `db:"doctor_id"`
}

const factPlace = `t.institution_id, r.community_id, c.team_id, c.doctor_id`

// ContractFact is a contract in force at some time in the period.
type ContractFact struct {
	FactPlace
	ID          int64        `db:"id"`
	ResidentID  int64        `db:"resident_id"`
	BirthDate   string       `db:"birth_date"`
	ConfirmedAt time.Time    `db:"confirmed_at"`
	EndedAt     sql.NullTime `db:"ended_at"`
}

// PackageFact is a package a contract holds, with the split frozen at
// signing.
type PackageFact struct {
	ContractID int64  `db:"contract_id"`
	Code       string `db:"package_code"`
	RawSplit   string `db:"split"`
	Split      Split  `db:"-"`
}

// GroupFact is a declared priority group of a resident, by its keyed hash.
type GroupFact struct {
	ResidentID int64  `db:"resident_id"`
	Tag        string `db:"tag"`
}

// VisitFact is a visit that took place (done) or was missed (no_show).
type VisitFact struct {
	FactPlace
	ContractID int64     `db:"contract_id"`
	ResidentID int64     `db:"resident_id"`
	Kind       string    `db:"kind"`
	Status     string    `db:"status"`
	StartsAt   time.Time `db:"starts_at"`
	Readings   string    `db:"readings_sealed"` // sealed; "" for none
}

// SurveyFact is a satisfaction survey answered in the period.
type SurveyFact struct {
	FactPlace
	ContractID int64     `db:"contract_id"`
	ResidentID int64     `db:"resident_id"`
	Score      int       `db:"score"`
	AnsweredAt time.Time `db:"answered_at"`
}

// EventFact is a change of a contract in the period: a renewal, an expiry
// or a cancellation (confirmations are read from the contracts).
type EventFact struct {
	FactPlace
	ContractID int64     `db:"contract_id"`
	ResidentID int64     `db:"resident_id"`
	From       string    `db:"from_status"`
	To         string    `db:"to_status"`
	Reason     string    `db:"reason"`
	At         time.Time `db:"at"`
}

// NameFact names an institution, a team or a doctor in scope.
type NameFact struct {
	Kind string `db:"kind"` // institution, team, doctor
	ID   int64  `db:"id"`
	Name string `db:"name"`
}

// contractPlace joins a contract (c) to its team (t), resident (r) and the
// resident's community (m); the scope is the team's institution, or the
// teams a doctor leads.
const contractPlace = ` JOIN teams t ON t.id = c.team_id JOIN residents r ON r.id = c.resident_id
	JOIN communities m ON m.id = r.community_id`

// IndicatorFacts reads what the indicators of a period are computed from.
func (db *DB) IndicatorFacts(ctx context.Context, q IndicatorQuery) (IndicatorFacts, error) {
	const op = "IndicatorFacts"
	var f IndicatorFacts
	cond, args := q.Scope.where("t.institution_id", "t.doctor_id = ?")
	if q.CommunityID != 0 {
		cond += ` AND r.community_id = ?`
		args = append(args, q.CommunityID)
	}
	from, to, visitsFrom, visitsTo := q.From.UTC(), q.To.UTC(), q.VisitsFrom.UTC(), q.VisitsTo.UTC()
	if q.VisitsTo.IsZero() {
		visitsTo = to
	}
	inForce := ` AND c.confirmed_at IS NOT NULL AND c.confirmed_at < ? AND (c.ended_at IS NULL OR c.ended_at >= ?)`
	with := func(extra ...any) []any { return append(append([]any{}, args...), extra...) }
	reads := []struct {
		dest  any
		query string
		args  []any
	}{
		{&f.Contracts, `SELECT c.id, c.resident_id, ` + factPlace + `, r.birth_date,
			c.confirmed_at, c.ended_at FROM contracts c` + contractPlace + ` WHERE ` + cond + inForce + ` ORDER BY c.id`, with(to, from)},
		// Only packages that matter: those visits fulfil, and those with a
		// personal share (paid signings).
		{&f.Packages, `SELECT p.contract_id, p.package_code, p.split FROM contract_packages p JOIN contracts c ON c.id = p.contract_id` + contractPlace +
			` WHERE ` + cond + inForce + ` AND (p.package_code IN (SELECT i.package_code FROM package_items i
			WHERE i.visit_kind <> '' AND i.per_year > 0) OR p.split LIKE '%"resident"%')`, with(to, from)},
		{&f.Groups, `SELECT DISTINCT g.resident_id, g.tag FROM resident_groups g JOIN contracts c ON c.resident_id = g.resident_id` + contractPlace +
			` WHERE ` + cond + inForce, with(to, from)},
		{&f.Visits, `SELECT ` + factPlace + `, a.contract_id, a.resident_id, a.kind, a.status, a.starts_at, a.readings_sealed FROM appointments a JOIN contracts c ON c.id = a.contract_id` + contractPlace +
			` WHERE ` + cond + ` AND a.status IN ('done', 'no_show') AND a.starts_at >= ? AND a.starts_at < ?`,
			with(earlier(from, visitsFrom), visitsTo)},
		{&f.Surveys, `SELECT ` + factPlace + `, a.contract_id, c.resident_id, s.score, s.answered_at FROM surveys s JOIN appointments a ON a.id = s.appointment_id JOIN contracts c ON c.id = a.contract_id` + contractPlace +
			` WHERE ` + cond + ` AND s.score IS NOT NULL AND s.answered_at >= ? AND s.answered_at < ?`, with(from, to)},
		{&f.Events, `SELECT ` + factPlace + `, e.contract_id, c.resident_id, e.from_status, e.to_status, e.reason, e.at FROM contract_events e JOIN contracts c ON c.id = e.contract_id` + contractPlace +
			` WHERE ` + cond + ` AND e.at >= ? AND e.at < ?
			AND (e.reason = 'renewed' OR e.from_status <> e.to_status AND e.to_status IN ('expired', 'cancelled'))`, with(from, to)},
	}
	for _, r := range reads {
		if err := db.sel(ctx, op, r.dest, r.query, r.args...); err != nil {
			return f, err
		}
	}
	for i, p := range f.Packages {
		if err := json.Unmarshal([]byte(p.RawSplit), &f.Packages[i].Split); err != nil {
			return f, fail(op, fmt.Errorf("contract %d package split: %w", p.ContractID, err))
		}
	}
	if err := db.indicatorScope(ctx, op, q, &f); err != nil {
		return f, err
	}
	pushes, pargs := outboxWhere(q.Scope)
	if q.CommunityID != 0 { // a community's residents' pushes: a doctor's belong to no community
		residents, rargs := q.Scope.where("m.institution_id", residentOfDoctor)
		pushes = `o.recipient IN (SELECT r.manager_openid FROM residents r JOIN communities m ON m.id = r.community_id
			WHERE r.community_id = ? AND ` + residents + `)`
		pargs = append([]any{q.CommunityID}, rargs...)
	}
	err := db.get(ctx, op, &f.Pushes, `SELECT COUNT(*) FROM outbox o WHERE o.state = 'sent' AND o.sent_at >= ? AND o.sent_at < ? AND `+pushes,
		append([]any{from, to}, pargs...)...)
	return f, err
}

// indicatorScope reads the communities (with their population) and the
// names of the institutions, teams and doctors in scope.
func (db *DB) indicatorScope(ctx context.Context, op string, q IndicatorQuery, f *IndicatorFacts) error {
	mcond, margs := q.Scope.where("m.institution_id", "m.id IN (SELECT tc.community_id FROM team_communities tc JOIN teams t ON t.id = tc.team_id WHERE t.doctor_id = ?)")
	if q.CommunityID != 0 {
		mcond += ` AND m.id = ?`
		margs = append(margs, q.CommunityID)
	}
	if err := db.sel(ctx, op, &f.Communities, `SELECT m.id, m.institution_id, m.town, m.name, m.residents, m.priority_counts,
		m.counted_on, 0 AS signed FROM communities m WHERE `+mcond+` ORDER BY m.id`, margs...); err != nil {
		return err
	}
	icond, iargs := q.Scope.where("i.id", "")
	tcond, targs := q.Scope.where("t.institution_id", "t.doctor_id = ?")
	dcond, dargs := q.Scope.where("d.institution_id", "d.id = ?")
	return db.sel(ctx, op, &f.Names, `SELECT 'institution' AS kind, i.id, i.name FROM institutions i WHERE `+icond+`
		UNION ALL SELECT 'team', t.id, t.name FROM teams t WHERE `+tcond+`
		UNION ALL SELECT 'doctor', d.id, d.name FROM doctors d WHERE `+dcond, append(append(iargs, targs...), dargs...)...)
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
