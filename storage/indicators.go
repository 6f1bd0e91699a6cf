package storage

import (
	"context"
	"slices"
	"strings"
	"time"
)

// The indicators are counted where the rows are: one statement reads, for
// every contract, survey, visit and event of a period, what it adds to each
// figure (its "subject rows"), and totals them by place in the database.
// A city's page moves a few thousand totals, not millions of rows; a
// figure's drill-down reads the same subject rows for one place, so the
// list behind a figure always adds up to it. What each figure counts is
// decided in flows (flows/indicators.go) and handed here as IndicatorRules.

// IndicatorQuery asks for the figures of a period over a scope (and one
// community, when set).
type IndicatorQuery struct {
	Scope       Scope
	CommunityID int64
	TeamID      int64     // one team's figures alone, when set
	DoctorID    int64     // one doctor's, when set
	From        time.Time // the period's first moment
	AsOf        time.Time // when "signed at the end" is judged: the period's end, or now if sooner
	To          time.Time // the period's end: visits marked done early on its last day count
	Year        time.Time // the start of AsOf's calendar year: follow-ups and readings count from it
	Rules       IndicatorRules
}

// IndicatorRules are the programme's rules the figures are counted by.
type IndicatorRules struct {
	Groups   []GroupRule // every priority group a resident may be in
	Priority []string    // the groups whose signed residents are paid signing's denominator
	Items    []ItemRule  // the service items visits fulfil
	// Chronic patients: their follow-ups and readings are counted.
	Hypertension, Diabetes string // group codes
	FollowupKind           string // the visit kind of a chronic follow-up
	Followups              int    // a year, for standard management
	GoodScore              int    // a satisfaction score at or above it is satisfied
	// The readings classes (keyed hashes, see Appointment) that mean
	// controlled.
	BPControlled, GlucoseControlled string
}

// GroupRule says who is in a priority group: those who declared it (Tag,
// its keyed hash in resident_groups) or those born in a range of dates
// (YYYY-MM-DD bounds, for a group an age puts people in).
type GroupRule struct {
	Code           string
	Tag            string
	BornOnOrBefore string
	BornAfter      string
}

// ItemRule is a service item of a package that visits of a kind fulfil,
// PerYear times a year, due for holders in any of the For groups (every
// holder when none).
type ItemRule struct {
	Package   string
	VisitKind string
	PerYear   int
	For       []string
}

// FactPlace is where a figure belongs: its contract's team and doctor now,
// the team's institution and the resident's community.
type FactPlace struct {
	InstitutionID int64 `db:"institution_id"`
	CommunityID   int64 `db:"community_id"`
	TeamID        int64 `db:"team_id"`
	DoctorID      int64 `db:"doctor_id"`
}

// PlaceTotal is what the subject rows of one code add up to in one place.
// Codes are the indicators' own (fulfilment, renewal, …) and these counts:
// signed (residents signed at the end), signed:GROUP (of them, in a
// priority group), signings, cancellations, visit:KIND (done), no_show.
type PlaceTotal struct {
	FactPlace
	Code        string  `db:"code"`
	Numerator   float64 `db:"num"`
	Denominator float64 `db:"den"`
}

// Subject is one resident's (and contract's) share of a figure.
type Subject struct {
	FactPlace
	ResidentID  int64   `db:"resident_id"`
	ContractID  int64   `db:"contract_id"`
	Code        string  `db:"code"`
	Numerator   float64 `db:"num"`
	Denominator float64 `db:"den"`
}

// NameFact names an institution, a team or a doctor in scope.
type NameFact struct {
	Kind string `db:"kind"` // institution, team, doctor
	ID   int64  `db:"id"`
	Name string `db:"name"`
}

// IndicatorTotals is every figure of a period totalled by place, with the
// communities in scope (their populations) and the names of the places.
type IndicatorTotals struct {
	Totals      []PlaceTotal
	Communities []CommunityRow
	Names       []NameFact
	Pushes      int // sent in the period to people in scope
	Broadcasts  int // the scope's broadcasts WeChat took in the period
}

// IndicatorTotals reads the figures of a period.
func (db *DB) IndicatorTotals(ctx context.Context, q IndicatorQuery) (IndicatorTotals, error) {
	const op = "IndicatorTotals"
	var out IndicatorTotals
	var err error
	if out.Totals, err = db.CountIndicators(ctx, q); err != nil {
		return out, err
	}
	if err := db.indicatorScope(ctx, op, q, &out); err != nil {
		return out, err
	}
	if err := db.indicatorPushes(ctx, op, q, &out.Pushes); err != nil {
		return out, err
	}
	cond, args := broadcastScope(q.Scope)
	return out, db.get(ctx, op, &out.Broadcasts, `SELECT COUNT(*) FROM broadcasts b WHERE `+cond+` AND EXISTS (SELECT 1
		FROM broadcast_batches x WHERE x.broadcast_id = b.id AND x.submitted_at >= ? AND x.submitted_at < ?)`,
		append(args, q.From.UTC(), q.AsOf.UTC())...)
}

// CountIndicators totals every figure of a period by place, and by month:
// month:signings:2026-03, month:visits:…, month:survey:… (satisfied of
// answered).
func (db *DB) CountIndicators(ctx context.Context, q IndicatorQuery) ([]PlaceTotal, error) {
	const op = "CountIndicators"
	b := db.subjects(q, nil)
	out := []PlaceTotal{}
	err := db.readIndicators(ctx, op, func(tx *DB) error {
		return tx.selIn(ctx, op, &out, b.sql()+` SELECT institution_id, community_id, team_id, doctor_id, code,
			CAST(SUM(num) AS DOUBLE PRECISION) AS num, CAST(SUM(den) AS DOUBLE PRECISION) AS den FROM x
			GROUP BY institution_id, community_id, team_id, doctor_id, code`, b.args()...)
	})
	return out, err
}

// IndicatorSubjects lists the subject rows of some codes in one place
// (zero fields are any), those adding something to the figure. The place
// narrows the count itself: a team's rows in a city are a team's count.
func (db *DB) IndicatorSubjects(ctx context.Context, q IndicatorQuery, codes []string, at FactPlace) ([]Subject, error) {
	const op = "IndicatorSubjects"
	narrow := func(field *int64, id int64) bool { // false: the place is outside the query
		if id == 0 || *field == id {
			return true
		}
		if *field != 0 {
			return false
		}
		*field = id
		return true
	}
	out := []Subject{}
	if !narrow(&q.Scope.Institution, at.InstitutionID) || !narrow(&q.CommunityID, at.CommunityID) ||
		!narrow(&q.TeamID, at.TeamID) || !narrow(&q.DoctorID, at.DoctorID) {
		return out, nil
	}
	b := db.subjects(q, codes)
	err := db.readIndicators(ctx, op, func(tx *DB) error {
		return tx.selIn(ctx, op, &out, b.sql()+` SELECT institution_id, community_id, team_id, doctor_id, resident_id, contract_id, code,
			CAST(num AS DOUBLE PRECISION) AS num, CAST(den AS DOUBLE PRECISION) AS den FROM x WHERE num <> 0 OR den <> 0
			ORDER BY resident_id, contract_id, code`, b.args()...)
	})
	return out, err
}

// readIndicators runs fn in a transaction of its own. On PostgreSQL:
//   - room to hash a city's contracts in memory rather than spill them;
//   - no JIT compilation: the statement's estimated cost invites it, and
//     compiling took 470 ms of a team's 700 ms;
//   - a plan made for each call's arguments: the driver prepares the
//     statement, and after five calls PostgreSQL would settle on a generic
//     plan that cannot see one team is a thousandth of the city, scanning
//     every contract for it (3 s instead of 0.1 s).
func (db *DB) readIndicators(ctx context.Context, op string, fn func(tx *DB) error) error {
	return db.inTx(ctx, op, func(tx *DB) error {
		if db.Dialect == Postgres {
			for _, set := range []string{`SET LOCAL work_mem = '256MB'`, `SET LOCAL jit = off`, `SET LOCAL plan_cache_mode = force_custom_plan`} {
				if _, err := tx.exec(ctx, op, set); err != nil {
					return err
				}
			}
		}
		return fn(tx)
	})
}

// query is SQL with its arguments, built in the order they appear.
type query struct {
	strings.Builder
	params []any
}

func (q *query) add(sql string, args ...any) {
	q.WriteString(sql)
	q.params = append(q.params, args...)
}

// subjectSQL is the common tables (with) and the subject rows (body).
type subjectSQL struct{ with, body query }

// sql is the common tables and x, the subject rows.
func (s *subjectSQL) sql() string {
	return s.with.String() + `, x (institution_id, community_id, team_id, doctor_id, resident_id, contract_id, code, num, den) AS (` +
		s.body.String() + `)`
}

func (s *subjectSQL) args() []any { return append(append([]any{}, s.with.params...), s.body.params...) }

// spell picks how the dialect writes an expression: the few that SQLite
// and PostgreSQL write differently.
func (db *DB) spell(postgres, sqlite string) string {
	if db.Dialect == Postgres {
		return postgres
	}
	return sqlite
}

func (db *DB) least(a, b string) string {
	return db.spell("LEAST", "MIN") + "(" + a + ", " + b + ")"
}

func (db *DB) greatest(a, b string) string {
	return db.spell("GREATEST", "MAX") + "(" + a + ", " + b + ")"
}

// days is the number of days, with fractions, from a to b.
func (db *DB) days(a, b string) string {
	return db.spell("(EXTRACT(EPOCH FROM ("+b+" - "+a+")) / 86400.0)", "(julianday("+b+") - julianday("+a+"))")
}

// contains is whether text holds part, taken literally (LIKE would read
// the _ in family_planning as any character).
func (db *DB) contains(text, part string) string {
	return db.spell("strpos(", "instr(") + text + ", " + part + ") > 0"
}

// personalShare is a package's frozen split's share paid by the resident:
// Unknown (-1) where the programme gave no amount. Paid signing (有偿签约)
// counts a package with a share, or an unknown one beyond the basic
// package (the programmes file those as 收费项目).
func (db *DB) personalShare(split string) string {
	return db.spell("COALESCE(CAST(CAST("+split+" AS JSONB) ->> 'resident' AS BIGINT), 0)",
		"COALESCE(json_extract("+split+", '$.resident'), 0)")
}

// monthOf is a moment's calendar month in Asia/Shanghai (UTC+8 since 1991).
func (db *DB) monthOf(at string) string {
	return db.spell("to_char("+at+" AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM')", "strftime('%Y-%m', "+at+", '+8 hours')")
}

// placeCols are a subject row's place, from a contract (c), its team (t)
// and resident (r).
const placeCols = `t.institution_id, r.community_id, c.team_id, c.doctor_id`

// contractPlace joins a contract (c) to its team (t) and resident (r).
const contractPlace = ` JOIN teams t ON t.id = c.team_id JOIN residents r ON r.id = c.resident_id`

// inScope is the condition on c, t and r that keeps a row in the query's
// scope and community.
func (q IndicatorQuery) inScope() (string, []any) {
	cond, args := q.Scope.where("t.institution_id", "t.doctor_id = ?")
	cond, args = andEq(cond, args, "r.community_id", q.CommunityID)
	cond, args = andEq(cond, args, "c.team_id", q.TeamID)
	return andEq(cond, args, "c.doctor_id", q.DoctorID)
}

// subjects builds the subject rows of the codes asked (all when none).
//
// The common tables: k, the contracts in force at some time in the period
// with their place; g, their residents' priority groups at the end; s, the
// contract in force at the end of each resident signed then.
func (db *DB) subjects(q IndicatorQuery, codes []string) *subjectSQL {
	b := &subjectSQL{}
	from, asOf, to := q.From.UTC(), q.AsOf.UTC(), q.To.UTC()
	cond, cargs := q.inScope()
	w := &b.with
	w.add(`WITH gr (code, tag) AS (VALUES (CAST('' AS TEXT), CAST('' AS TEXT))`)
	for _, g := range q.Rules.Groups {
		if g.Tag != "" {
			w.add(`, (?, ?)`, g.Code, g.Tag)
		}
	}
	w.add(`), k AS MATERIALIZED (SELECT c.id, c.resident_id, `+placeCols+`, r.birth_date, c.confirmed_at, c.ended_at
		FROM contracts c`+contractPlace+` WHERE `+cond+` AND c.confirmed_at IS NOT NULL AND c.confirmed_at < ?
		AND (c.ended_at IS NULL OR c.ended_at >= ?))`, append(cargs, asOf, from)...)
	// Declared groups come from resident_groups (one row a resident and
	// tag); derived ones from birth dates, once a resident.
	w.add(`, g (resident_id, code) AS MATERIALIZED (SELECT x.resident_id, gr.code FROM resident_groups x JOIN gr ON gr.tag = x.tag
		WHERE x.resident_id IN (SELECT resident_id FROM k)`)
	for _, g := range q.Rules.Groups {
		if g.BornOnOrBefore != "" {
			w.add(` UNION ALL SELECT DISTINCT k.resident_id, CAST(? AS TEXT) FROM k WHERE k.birth_date <> '' AND k.birth_date <= ?`,
				g.Code, g.BornOnOrBefore)
		}
		if g.BornAfter != "" {
			w.add(` UNION ALL SELECT DISTINCT k.resident_id, CAST(? AS TEXT) FROM k WHERE k.birth_date > ?`, g.Code, g.BornAfter)
		}
	}
	// s: one contract a resident at the end, the latest confirmed, should
	// an earlier one (in this scope or another) not have ended yet when a
	// paper contract began. Looked up by the index on a resident's
	// contracts, so a team's count sees what the city's does.
	w.add(`), s AS MATERIALIZED (SELECT k.* FROM k WHERE (k.ended_at IS NULL OR k.ended_at >= ?) AND NOT EXISTS (SELECT 1 FROM contracts x
		WHERE x.resident_id = k.resident_id AND x.id <> k.id AND x.confirmed_at IS NOT NULL AND x.confirmed_at < ?
		AND (x.ended_at IS NULL OR x.ended_at >= ?) AND (x.confirmed_at > k.confirmed_at OR x.confirmed_at = k.confirmed_at AND x.id > k.id)))`,
		asOf, asOf, asOf)
	want := func(code string) bool { return len(codes) == 0 || slices.Contains(codes, code) }
	first := true
	part := func(sql string, args ...any) {
		if !first {
			b.body.add(` UNION ALL `)
		}
		first = false
		b.body.add(sql, args...)
	}
	subjectCols := `institution_id, community_id, team_id, doctor_id, resident_id, id AS contract_id`
	if want("signed") {
		part(`SELECT ` + subjectCols + `, CAST('signed' AS TEXT) AS code, 1.0 AS num, 0.0 AS den FROM s`)
		part(`SELECT s.institution_id, s.community_id, s.team_id, s.doctor_id, s.resident_id, s.id, 'signed:' || g.code, 1.0, 0.0
			FROM s JOIN g ON g.resident_id = s.resident_id`)
	}
	if want("signings") {
		part(`SELECT `+subjectCols+`, 'signings', 1.0, 0.0 FROM k WHERE k.confirmed_at >= ?`, from)
	}
	if want("fulfilment") {
		db.fulfilmentSubjects(b, q, part)
	}
	db.chronicSubjects(b, q, want, part)
	if want("paid_share") {
		part(`SELECT s.institution_id, s.community_id, s.team_id, s.doctor_id, s.resident_id, s.id, 'paid_share',
			CASE WHEN pp.contract_id IS NULL THEN 0.0 ELSE 1.0 END, CASE WHEN kp.resident_id IS NULL THEN 0.0 ELSE 1.0 END
			FROM s LEFT JOIN (SELECT DISTINCT p.contract_id FROM s s2 JOIN contract_packages p ON p.contract_id = s2.id
				WHERE p.split LIKE '%"resident"%' AND (`+db.personalShare("p.split")+` > 0
					OR `+db.personalShare("p.split")+` = -1 AND p.kind <> 'basic')) pp ON pp.contract_id = s.id
			LEFT JOIN (SELECT DISTINCT resident_id FROM g WHERE code IN (?)) kp
				ON kp.resident_id = s.resident_id`, append([]string{""}, q.Rules.Priority...))
	}
	if want("satisfaction") {
		part(`SELECT `+placeCols+`, c.resident_id, c.id, 'satisfaction', CASE WHEN v.score >= ? THEN 1.0 ELSE 0.0 END, 1.0
			FROM surveys v JOIN appointments a ON a.id = v.appointment_id JOIN contracts c ON c.id = a.contract_id`+contractPlace+`
			WHERE `+cond+` AND v.score IS NOT NULL AND v.answered_at >= ? AND v.answered_at < ?`,
			append(append([]any{q.Rules.GoodScore}, cargs...), from, asOf)...)
	}
	if want("renewal") || want("cancellations") {
		part(`SELECT `+placeCols+`, c.resident_id, c.id, CASE WHEN e.to_status = 'cancelled' AND e.reason <> 'renewed' THEN 'cancellations'
				ELSE 'renewal' END, CASE WHEN e.reason = 'renewed' OR e.to_status = 'cancelled' THEN 1.0 ELSE 0.0 END,
				CASE WHEN e.to_status = 'cancelled' AND e.reason <> 'renewed' THEN 0.0 ELSE 1.0 END
			FROM contract_events e JOIN contracts c ON c.id = e.contract_id`+contractPlace+`
			WHERE `+cond+` AND e.at >= ? AND e.at < ?
			AND (e.reason = 'renewed' OR e.from_status <> e.to_status AND e.to_status IN ('expired', 'cancelled'))`,
			append(cargs, from, asOf)...)
	}
	if want("visits") {
		part(`SELECT `+placeCols+`, c.resident_id, c.id, CASE WHEN a.status = 'done' THEN 'visit:' || a.kind ELSE 'no_show' END, 1.0, 0.0
			FROM appointments a JOIN contracts c ON c.id = a.contract_id`+contractPlace+`
			WHERE `+cond+` AND a.status IN ('done', 'no_show') AND a.starts_at >= ? AND a.starts_at < ?`, append(cargs, from, to)...)
	}
	if want("months") {
		part(`SELECT `+subjectCols+`, 'month:signings:' || `+db.monthOf("k.confirmed_at")+`, 1.0, 0.0 FROM k WHERE k.confirmed_at >= ?`, from)
		part(`SELECT `+placeCols+`, c.resident_id, c.id, 'month:visits:' || `+db.monthOf("a.starts_at")+`, 1.0, 0.0
			FROM appointments a JOIN contracts c ON c.id = a.contract_id`+contractPlace+`
			WHERE `+cond+` AND a.status = 'done' AND a.starts_at >= ? AND a.starts_at < ?`, append(cargs, from, to)...)
		part(`SELECT `+placeCols+`, c.resident_id, c.id, 'month:survey:' || `+db.monthOf("v.answered_at")+`,
				CASE WHEN v.score >= ? THEN 1.0 ELSE 0.0 END, 1.0
			FROM surveys v JOIN appointments a ON a.id = v.appointment_id JOIN contracts c ON c.id = a.contract_id`+contractPlace+`
			WHERE `+cond+` AND v.score IS NOT NULL AND v.answered_at >= ? AND v.answered_at < ?`,
			append(append([]any{q.Rules.GoodScore}, cargs...), from, asOf)...)
	}
	if first { // no code asked is known: no rows
		part(`SELECT ` + subjectCols + `, '', 0.0, 0.0 FROM s WHERE 1 = 0`)
	}
	return b
}

// fulfilmentSubjects adds, for each contract in force in the period, the
// service items due over the days it was (each item pro rata) and those
// delivered: visits of the item's kind in those days, at most what is due.
func (db *DB) fulfilmentSubjects(b *subjectSQL, q IndicatorQuery, part func(string, ...any)) {
	from, asOf, to := q.From.UTC(), q.AsOf.UTC(), q.To.UTC()
	w := &b.with
	w.add(`, it (n, package_code, visit_kind, per_year, fors) AS (VALUES (0, CAST('' AS TEXT), CAST('' AS TEXT), CAST(0 AS INTEGER),
		CAST('' AS TEXT))`)
	for i, it := range q.Rules.Items {
		fors := ""
		if len(it.For) > 0 {
			fors = "," + strings.Join(it.For, ",") + ","
		}
		w.add(`, (?, ?, ?, ?, ?)`, i+1, it.Package, it.VisitKind, it.PerYear, fors)
	}
	// kw: each contract's days in force in the period (fstart to fend) and
	// the days its visits count (to vend: one marked early on the period's
	// last day too).
	w.add(`), kw AS MATERIALIZED (SELECT k.*, `+db.greatest("k.confirmed_at", "?")+` AS fstart,
			`+db.least("COALESCE(k.ended_at, ?)", "?")+` AS fend, `+db.least("COALESCE(k.ended_at, ?)", "?")+` AS vend FROM k),
		due AS MATERIALIZED (SELECT kw.id, it.n, it.visit_kind, it.per_year * `+db.days("kw.fstart", "kw.fend")+` / 365.0 AS due
			FROM kw JOIN contract_packages p ON p.contract_id = kw.id JOIN it ON it.package_code = p.package_code
			WHERE kw.fstart < kw.fend AND it.fors = ''
			UNION ALL SELECT DISTINCT kw.id, it.n, it.visit_kind, it.per_year * `+db.days("kw.fstart", "kw.fend")+` / 365.0
			FROM kw JOIN contract_packages p ON p.contract_id = kw.id JOIN it ON it.package_code = p.package_code
			JOIN g ON g.resident_id = kw.resident_id AND `+db.contains("it.fors", "',' || g.code || ','")+`
			WHERE kw.fstart < kw.fend AND it.fors <> ''),
		dv AS (SELECT a.contract_id, a.kind, COUNT(*) AS n FROM appointments a JOIN kw ON kw.id = a.contract_id
			WHERE a.status = 'done' AND a.starts_at >= kw.fstart AND a.starts_at < kw.vend
			AND a.contract_id IN (SELECT id FROM due) GROUP BY a.contract_id, a.kind)`, from, asOf, asOf, to, to)
	part(`SELECT kw.institution_id, kw.community_id, kw.team_id, kw.doctor_id, kw.resident_id, kw.id, 'fulfilment',
			SUM(` + db.least("CAST(COALESCE(dv.n, 0) AS DOUBLE PRECISION)", "due.due") + `), SUM(due.due)
		FROM due JOIN kw ON kw.id = due.id LEFT JOIN dv ON dv.contract_id = due.id AND dv.kind = due.visit_kind
		GROUP BY kw.institution_id, kw.community_id, kw.team_id, kw.doctor_id, kw.resident_id, kw.id`)
}

// chronicSubjects adds, for hypertension and diabetes patients signed at
// the end, standard management (follow-ups this year) and control (the
// latest readings this year).
func (db *DB) chronicSubjects(b *subjectSQL, q IndicatorQuery, want func(string) bool, part func(string, ...any)) {
	if !want("chronic_managed") && !want("bp_control") && !want("glucose_control") {
		return
	}
	year, to := q.Year.UTC(), q.To.UTC()
	r := q.Rules
	w := &b.with
	w.add(`, cp AS MATERIALIZED (SELECT s.*, MAX(CASE WHEN g.code = ? THEN 1 ELSE 0 END) AS hyp, MAX(CASE WHEN g.code = ? THEN 1 ELSE 0 END) AS dia
			FROM s JOIN g ON g.resident_id = s.resident_id WHERE g.code IN (?, ?)
			GROUP BY s.id, s.resident_id, s.institution_id, s.community_id, s.team_id, s.doctor_id, s.birth_date, s.confirmed_at, s.ended_at)`,
		r.Hypertension, r.Diabetes, r.Hypertension, r.Diabetes)
	// Each patient's follow-ups and latest readings are looked up by the
	// index on a resident's visits: a few probes a patient, whatever the
	// scope's size.
	cols := `cp.institution_id, cp.community_id, cp.team_id, cp.doctor_id, cp.resident_id, cp.id`
	thisYear := `a.resident_id = cp.resident_id AND a.status = 'done' AND a.starts_at >= ? AND a.starts_at < ?`
	if want("chronic_managed") {
		part(`SELECT `+cols+`, 'chronic_managed', CASE WHEN (SELECT COUNT(*) FROM appointments a WHERE `+thisYear+` AND a.kind = ?) >= ?
			THEN 1.0 ELSE 0.0 END, 1.0 FROM cp`, year, to, r.FollowupKind, r.Followups)
	}
	latest := func(code, class, group, controlled string) {
		part(`SELECT `+cols+`, '`+code+`', CASE WHEN (SELECT a.`+class+` FROM appointments a WHERE `+thisYear+` AND a.`+class+` <> ''
			ORDER BY a.starts_at DESC, a.id DESC LIMIT 1) = ? THEN 1.0 ELSE 0.0 END, 1.0 FROM cp WHERE cp.`+group+` = 1`, year, to, controlled)
	}
	if want("bp_control") {
		latest("bp_control", "bp_class", "hyp", r.BPControlled)
	}
	if want("glucose_control") {
		latest("glucose_control", "glucose_class", "dia", r.GlucoseControlled)
	}
}

// IndicatorCommunities reads the communities in the query's scope, with
// their population.
func (db *DB) IndicatorCommunities(ctx context.Context, q IndicatorQuery) ([]CommunityRow, error) {
	mcond, margs := q.Scope.where("m.institution_id", "m.id IN (SELECT tc.community_id FROM team_communities tc JOIN teams t ON t.id = tc.team_id WHERE t.doctor_id = ?)")
	if q.CommunityID != 0 {
		mcond += ` AND m.id = ?`
		margs = append(margs, q.CommunityID)
	}
	out := []CommunityRow{}
	err := db.sel(ctx, "IndicatorCommunities", &out, `SELECT m.id, m.institution_id, m.town, m.name, m.residents, m.priority_counts,
		m.counted_on, 0 AS signed FROM communities m WHERE `+mcond+` ORDER BY m.id`, margs...)
	return out, err
}

// indicatorScope reads the communities (with their population) and the
// names of the institutions, teams and doctors in scope.
func (db *DB) indicatorScope(ctx context.Context, op string, q IndicatorQuery, f *IndicatorTotals) error {
	var err error
	if f.Communities, err = db.IndicatorCommunities(ctx, q); err != nil {
		return err
	}
	icond, iargs := q.Scope.where("i.id", "")
	tcond, targs := q.Scope.where("t.institution_id", "t.doctor_id = ?")
	dcond, dargs := q.Scope.where("d.institution_id", "d.id = ?")
	return db.sel(ctx, op, &f.Names, `SELECT 'institution' AS kind, i.id, i.name FROM institutions i WHERE `+icond+`
		UNION ALL SELECT 'team', t.id, t.name FROM teams t WHERE `+tcond+`
		UNION ALL SELECT 'doctor', d.id, d.name FROM doctors d WHERE `+dcond, append(append(iargs, targs...), dargs...)...)
}

// indicatorPushes counts the pushes sent in the period to people in scope:
// with a community, to its residents (a doctor belongs to none).
func (db *DB) indicatorPushes(ctx context.Context, op string, q IndicatorQuery, n *int) error {
	pushes, pargs := outboxWhere(q.Scope)
	if q.CommunityID != 0 {
		residents, rargs := q.Scope.where("m.institution_id", residentOfDoctor)
		pushes = `o.recipient IN (SELECT r.manager_openid FROM residents r JOIN communities m ON m.id = r.community_id
			WHERE r.community_id = ? AND ` + residents + `)`
		pargs = append([]any{q.CommunityID}, rargs...)
	}
	return db.get(ctx, op, n, `SELECT COUNT(*) FROM outbox o WHERE o.state = 'sent' AND o.sent_at >= ? AND o.sent_at < ? AND `+pushes,
		append([]any{q.From.UTC(), q.AsOf.UTC()}, pargs...)...)
}
