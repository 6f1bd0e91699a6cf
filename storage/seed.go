package storage

import (
	"context"
	"fmt"
	"time"
)

// Seed describes a made-up population for demonstrations and benchmarks:
// Residents residents in teams of TeamSize, each team serving its own
// community, TeamsPerInstitution teams an institution. Every resident is
// signed; one in five has hypertension and one in twelve diabetes, and those
// hold the chronic package (half with a personal share) and have had four
// follow-ups this year; about a third have the next booked a week ahead.
// Each follows the account (one in ten wrote to it in the last hour). Personal data are placeholders sealed with the
// deployment's key: a seeded resident unmasked shows "演示数据", never a
// real-looking number.
type Seed struct {
	Run                           string // tells this seeding's rows from others'
	Residents                     int
	TeamSize, TeamsPerInstitution int
	Basic, Chronic                string            // package codes
	ChronicShare                  int64             // the resident's share of the chronic package, fen, for half of its holders
	SealedID, SealedPhone         string            // the sealed placeholders for ID numbers and phones
	GroupsSealed                  map[string]string // "", "hypertension", "diabetes", "both" -> sealed list
	Hypertension, Diabetes        string            // the groups' blind-index tags
	Readings                      [2]SealedReadings // the last follow-up has readings: controlled, and (one resident in seven) not
	Now                           time.Time
}

// SeedResult says what a seeding made.
type SeedResult struct {
	Institutions int `json:"institutions"`
	Teams        int `json:"teams"`
	Residents    int `json:"residents"`
	Visits       int `json:"visits"`
	Bookings     int `json:"bookings"` // follow-ups booked ahead
}

// SeedDemo writes a made-up population with set-based SQL (a recursive
// query generates the residents), in one transaction per table, so a
// million residents take about a minute on PostgreSQL.
func (db *DB) SeedDemo(ctx context.Context, s Seed) (SeedResult, error) {
	const op = "SeedDemo"
	var r SeedResult
	teams := max(1, (s.Residents+s.TeamSize-1)/s.TeamSize)
	for first := 0; first < teams; first += s.TeamsPerInstitution {
		var communities []Community
		var newTeams []NewTeam
		for t := first; t < min(teams, first+s.TeamsPerInstitution); t++ {
			communities = append(communities, Community{Town: fmt.Sprintf("演示街道%d", first/s.TeamsPerInstitution+1), Name: fmt.Sprintf("演示社区%d", t+1)})
			newTeams = append(newTeams, NewTeam{Name: fmt.Sprintf("演示团队%d", t+1), Doctor: Doctor{Name: fmt.Sprintf("演示医生%d", t+1), Title: "全科医师"},
				Communities: []int{t - first}})
		}
		code := fmt.Sprintf("seed%s-%d", s.Run, first/s.TeamsPerInstitution+1)
		if _, err := db.CreateInstitution(ctx, Institution{Code: code, Name: fmt.Sprintf("演示卫生服务中心%d", first/s.TeamsPerInstitution+1),
			Kind: "community_centre"}, communities, newTeams); err != nil {
			return r, err
		}
		r.Institutions++
	}
	r.Teams = teams
	err := db.inTx(ctx, op, func(tx *DB) error {
		return tx.seedRows(ctx, op, s, teams, &r)
	})
	if err != nil {
		return r, err
	}
	// The planner's statistics would still describe the tables before the
	// load; queries right after (a benchmark, the first page) need them.
	_, err = db.exec(ctx, op, `ANALYZE`)
	return r, err
}

// seedRows writes the residents, their contracts, packages, groups, visits
// and surveys, and the communities' populations.
func (db *DB) seedRows(ctx context.Context, op string, s Seed, teams int, r *SeedResult) error {
	prefix := "seed:" + s.Run + ":"
	// place k (0..teams-1) is the k-th seeded team with its community.
	if _, err := db.exec(ctx, op, `CREATE TEMPORARY TABLE seed_places (k INTEGER PRIMARY KEY, community_id BIGINT, team_id BIGINT, doctor_id BIGINT)`); err != nil {
		return err
	}
	defer db.exec(context.WithoutCancel(ctx), op, `DROP TABLE seed_places`)
	if _, err := db.exec(ctx, op, `INSERT INTO seed_places (k, community_id, team_id, doctor_id)
		SELECT CAST(SUBSTR(t.name, 5) AS INTEGER) - 1, tc.community_id, t.id, t.doctor_id FROM teams t
		JOIN team_communities tc ON tc.team_id = t.id JOIN institutions i ON i.id = t.institution_id
		WHERE i.code LIKE ?`, "seed"+s.Run+"-%"); err != nil {
		return err
	}
	year := time.Date(s.Now.Year(), 1, 1, 1, 0, 0, 0, time.UTC)
	// Rows this seeding writes have IDs above these: range scans, not
	// pattern matches, find them.
	var before struct {
		Residents    int64 `db:"residents"`
		Contracts    int64 `db:"contracts"`
		Appointments int64 `db:"appointments"`
	}
	if err := db.get(ctx, op, &before, `SELECT (SELECT COALESCE(MAX(id), 0) FROM residents) AS residents,
		(SELECT COALESCE(MAX(id), 0) FROM contracts) AS contracts, (SELECT COALESCE(MAX(id), 0) FROM appointments) AS appointments`); err != nil {
		return err
	}
	group := `CASE WHEN i % 5 = 0 AND i % 12 = 1 THEN ? WHEN i % 5 = 0 THEN ? WHEN i % 12 = 1 THEN ? ELSE ? END`
	steps := []struct {
		query string
		args  []any
	}{
		{`INSERT INTO residents (manager_openid, relation, name, id_number_sealed, id_number_hash, phone_sealed, phone_hash, birth_date,
			sex, community_id, priority_groups, id_masked, phone_masked, groups_indexed, created_at, updated_at)
			WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
			SELECT ? || CAST(i AS TEXT), 'self', '演示居民' || CAST(i AS TEXT), ?, ? || CAST(i AS TEXT), ?, ? || 'p' || CAST(i AS TEXT),
				CASE i % 3 WHEN 0 THEN '1950-03-01' WHEN 1 THEN '1975-03-01' ELSE '1995-03-01' END,
				CASE i % 2 WHEN 0 THEN 'female' ELSE 'male' END, p.community_id, ` + group + `,
				'0000**********' || SUBSTR(CAST(10000 + i % 10000 AS TEXT), 2, 4), '139****' || SUBSTR(CAST(10000 + i % 10000 AS TEXT), 2, 4),
				1, ?, ? FROM n JOIN seed_places p ON p.k = i % ?`,
			[]any{s.Residents, prefix, s.SealedID, prefix, s.SealedPhone, prefix, s.GroupsSealed["both"], s.GroupsSealed["hypertension"],
				s.GroupsSealed["diabetes"], s.GroupsSealed[""], s.Now.UTC(), s.Now.UTC(), teams}},
	}
	// Each resident follows the account as their own WeChat user; one in ten
	// wrote to it an hour ago, the others a month ago.
	steps = append(steps, struct {
		query string
		args  []any
	}{`INSERT INTO wechat_users (openid, subscribed, state_time, first_seen_at, last_seen_at)
		SELECT r.manager_openid, TRUE, ?, ?, ? FROM residents r WHERE r.id > ?`,
		[]any{s.Now.AddDate(0, -1, 0).Unix(), s.Now.AddDate(-1, 0, 0).UTC(), s.Now.AddDate(0, -1, 0).UTC(), before.Residents}},
		struct {
			query string
			args  []any
		}{`UPDATE wechat_users SET last_seen_at = ? WHERE openid IN (SELECT manager_openid FROM residents WHERE id > ? AND id % 10 = 0)`,
			[]any{s.Now.Add(-time.Hour).UTC(), before.Residents}})
	// Signed on one of twelve days over the past year, by resident: one
	// statement a day, so each moment binds to its column with its type.
	for m := range 12 {
		at := s.Now.AddDate(0, -m, -1).UTC()
		steps = append(steps, struct {
			query string
			args  []any
		}{`INSERT INTO contracts (number, request_key, resident_id, team_id, doctor_id, status, insured, term_months, term_end,
			agreement_version, agreed_at, consent_version, consented_at, consent_by, created_at, confirmed_at)
			SELECT 'QYS' || ? || '-' || CAST(r.id AS TEXT), ? || 'k' || CAST(r.id AS TEXT), r.id, p.team_id, p.doctor_id, 'active', 'local', 12,
				?, 'demo', ?, 'demo', ?, 'staff:seed', ?, ?
			FROM residents r JOIN seed_places p ON p.community_id = r.community_id WHERE r.id > ? AND r.id % 12 = ?`,
			[]any{s.Run, prefix, at.AddDate(1, 0, -1).Format("2006-01-02"), at, at, at, at, before.Residents, m}})
	}
	steps = append(steps, []struct {
		query string
		args  []any
	}{
		{`INSERT INTO contract_events (contract_id, at, actor, from_status, to_status, reason)
			SELECT c.id, c.confirmed_at, 'staff:seed', '', 'active', 'seeded' FROM contracts c WHERE c.id > ?`, []any{before.Contracts}},
		{`INSERT INTO contract_packages (contract_id, package_code, package_name, kind, split)
			SELECT c.id, ?, '基础服务包', 'basic', '{}' FROM contracts c WHERE c.id > ?`, []any{s.Basic, before.Contracts}},
		{`CREATE TEMPORARY TABLE seed_chronic AS SELECT c.id AS contract_id, c.resident_id, c.doctor_id FROM contracts c
			JOIN residents r ON r.id = c.resident_id WHERE c.id > ? AND r.priority_groups <> ?`, []any{before.Contracts, s.GroupsSealed[""]}},
	}...)
	chronic := `SELECT contract_id, resident_id, doctor_id FROM seed_chronic`
	defer db.exec(context.WithoutCancel(ctx), op, `DROP TABLE IF EXISTS seed_chronic`)
	if s.Chronic != "" {
		steps = append(steps, struct {
			query string
			args  []any
		}{`INSERT INTO contract_packages (contract_id, package_code, package_name, kind, split)
			SELECT x.contract_id, ?, '慢病服务包', 'personalised', CASE x.contract_id % 2 WHEN 0 THEN ? ELSE '{}' END FROM (` + chronic + `) x`,
			[]any{s.Chronic, fmt.Sprintf(`{"resident":%d}`, s.ChronicShare)}})
	}
	steps = append(steps, []struct {
		query string
		args  []any
	}{
		{`INSERT INTO resident_groups (resident_id, tag) SELECT r.id, ? FROM residents r WHERE r.id > ?
			AND r.priority_groups IN (?, ?)`, []any{s.Hypertension, before.Residents, s.GroupsSealed["hypertension"], s.GroupsSealed["both"]}},
		{`INSERT INTO resident_groups (resident_id, tag) SELECT r.id, ? FROM residents r WHERE r.id > ?
			AND r.priority_groups IN (?, ?)`, []any{s.Diabetes, before.Residents, s.GroupsSealed["diabetes"], s.GroupsSealed["both"]}},
		{`INSERT INTO slots (doctor_id, day, starts_at, ends_at, capacity, booked)
			SELECT p.doctor_id, ?, ?, ?, 1000000, 0 FROM seed_places p`, []any{year.Format("2006-01-02"), year, year.Add(10 * time.Minute)}},
	}...)
	for _, st := range steps {
		if _, err := db.exec(ctx, op, st.query, st.args...); err != nil {
			return err
		}
	}
	// Four follow-ups this year, before now, the last with readings; the
	// first scored by the resident.
	for k := 1; k <= 4; k++ {
		at := year.Add(time.Duration(k) * s.Now.Sub(year) / 5)
		var good, bad SealedReadings
		if k == 4 {
			good, bad = s.Readings[0], s.Readings[1]
		}
		n, err := db.exec(ctx, op, `INSERT INTO appointments (request_key, resident_id, contract_id, doctor_id, slot_id, kind, status,
			starts_at, ends_at, created_at, updated_at, readings_sealed, bp_class, glucose_class, readings_classed)
			SELECT ? || 'v' || CAST(x.contract_id AS TEXT) || '-' || ?, x.resident_id, x.contract_id, x.doctor_id,
				(SELECT MIN(s.id) FROM slots s WHERE s.doctor_id = x.doctor_id AND s.starts_at = ?), 'followup', 'done', ?, ?, ?, ?,
				CASE WHEN x.resident_id % 7 = 0 THEN ? ELSE ? END, CASE WHEN x.resident_id % 7 = 0 THEN ? ELSE ? END,
				CASE WHEN x.resident_id % 7 = 0 THEN ? ELSE ? END, 1
			FROM (`+chronic+`) x`, prefix, fmt.Sprint(k), year, at, at.Add(10*time.Minute), at, at,
			bad.Sealed, good.Sealed, bad.BPClass, good.BPClass, bad.GlucoseClass, good.GlucoseClass)
		if err != nil {
			return err
		}
		r.Visits += int(n)
	}
	if err := db.seedBookings(ctx, op, s, prefix, r); err != nil {
		return err
	}
	if _, err := db.exec(ctx, op, `INSERT INTO surveys (appointment_id, openid, requested_at, score, answered_at)
		SELECT a.id, ?, a.starts_at, 3 + a.id % 3, a.starts_at FROM appointments a WHERE a.id > ? AND a.request_key LIKE ?`, prefix, before.Appointments, prefix+"v%-1"); err != nil {
		return err
	}
	if err := db.get(ctx, op, &r.Residents, `SELECT COUNT(*) FROM residents WHERE id > ?`, before.Residents); err != nil {
		return err
	}
	return db.seedPopulations(ctx, op, s.Now)
}

// seedBookings books about a third of the chronic patients their next
// follow-up a week from now, in one slot of each doctor's that day.
func (db *DB) seedBookings(ctx context.Context, op string, s Seed, prefix string, r *SeedResult) error {
	at := s.Now.AddDate(0, 0, 7).Truncate(time.Hour)
	if _, err := db.exec(ctx, op, `INSERT INTO slots (doctor_id, day, starts_at, ends_at, capacity, booked)
		SELECT p.doctor_id, ?, ?, ?, 1000000, 0 FROM seed_places p`, at.Format("2006-01-02"), at.UTC(), at.Add(10*time.Minute).UTC()); err != nil {
		return err
	}
	n, err := db.exec(ctx, op, `INSERT INTO appointments (request_key, resident_id, contract_id, doctor_id, slot_id, kind, status,
		starts_at, ends_at, created_at, updated_at)
		SELECT ? || 'b' || CAST(x.contract_id AS TEXT), x.resident_id, x.contract_id, x.doctor_id,
			(SELECT MIN(s.id) FROM slots s WHERE s.doctor_id = x.doctor_id AND s.starts_at = ?), 'followup', 'booked', ?, ?, ?, ?
		FROM seed_chronic x WHERE x.contract_id % 3 = 0`,
		prefix, at.UTC(), at.UTC(), at.Add(10*time.Minute).UTC(), s.Now.UTC(), s.Now.UTC())
	if err != nil {
		return err
	}
	r.Bookings = int(n)
	_, err = db.exec(ctx, op, `UPDATE slots SET booked = (SELECT COUNT(*) FROM appointments a WHERE a.slot_id = slots.id AND a.status = 'booked')
		WHERE starts_at = ? AND doctor_id IN (SELECT doctor_id FROM seed_places)`, at.UTC())
	return err
}

// seedPopulations records each seeded community's population as if six in
// ten residents had signed, and seven in ten of the 65+.
func (db *DB) seedPopulations(ctx context.Context, op string, now time.Time) error {
	var counts []struct {
		Community int64 `db:"community_id"`
		Signed    int   `db:"signed"`
		Elderly   int   `db:"elderly"`
	}
	if err := db.sel(ctx, op, &counts, `SELECT p.community_id, COUNT(r.id) AS signed,
		SUM(CASE WHEN r.birth_date <= ? THEN 1 ELSE 0 END) AS elderly
		FROM seed_places p JOIN residents r ON r.community_id = p.community_id GROUP BY p.community_id`,
		now.AddDate(-65, 0, 0).Format("2006-01-02")); err != nil {
		return err
	}
	for _, c := range counts {
		if _, err := db.exec(ctx, op, `UPDATE communities SET residents = ?, priority_counts = ?, counted_on = ? WHERE id = ?`,
			c.Signed*10/6, fmt.Sprintf(`{"elderly":%d}`, c.Elderly*10/7), now.Format("2006-01-02"), c.Community); err != nil {
			return err
		}
	}
	return nil
}
