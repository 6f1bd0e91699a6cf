package flows

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// BenchmarkIndicators measures the indicators page's report over a year
// for JIAYI_BENCH_RESIDENTS residents (default 20,000, a large township)
// spread over 20 teams of one institution: every resident signed, one in
// five a hypertension patient on the chronic package with four follow-ups
// this year (one with a blood pressure reading) and a survey answered.
// "institution" is the admin's page, "team" a doctor's.
func BenchmarkIndicators(b *testing.B) {
	n := 20000
	fmt.Sscan(os.Getenv("JIAYI_BENCH_RESIDENTS"), &n)
	b.Run("sqlite", func(b *testing.B) { benchIndicators(b, storagetest.SQLite(b), n) })
	if pg := os.Getenv("JIAYI_TEST_DATABASE_URL"); pg != "" {
		b.Run("postgres", func(b *testing.B) { benchIndicators(b, storagetest.Postgres(b, pg), n) })
	}
}

func benchIndicators(b *testing.B, db *storage.DB, n int) {
	ctx := context.Background()
	if err := profile.Ensure(ctx, db, "township"); err != nil {
		b.Fatal(err)
	}
	const teams = 20
	var communities []storage.Community
	var newTeams []storage.NewTeam
	for i := range teams {
		communities = append(communities, storage.Community{Town: "镇", Name: fmt.Sprintf("%d村", i)})
		newTeams = append(newTeams, storage.NewTeam{Name: fmt.Sprintf("%d团队", i), Doctor: storage.Doctor{Name: fmt.Sprintf("医生%d", i)},
			Communities: []int{i}})
	}
	ids, err := db.CreateInstitution(ctx, storage.Institution{Code: "bench", Name: "测试卫生院", Kind: "township_centre"}, communities, newTeams)
	if err != nil {
		b.Fatal(err)
	}
	sealer, _ := storage.NewSealer(make([]byte, 32))
	reading, _ := sealReadings(sealer, Readings{Systolic: 132, Diastolic: 84})
	start := time.Now()
	seedIndicators(b, db, n, teams, GroupTags(sealer, []string{"hypertension"})[0], reading)
	b.Logf("seeded %d residents in %s", n, time.Since(start).Round(time.Millisecond))
	now := time.Now()
	period, _ := ParsePeriod(fmt.Sprintf("%d-01-01", now.In(Shanghai).Year()), "", now)
	sql := storagetest.SQL(b, db)
	var team storage.Team
	sql.Get(&team, `SELECT id, institution_id, name, doctor_id FROM teams ORDER BY id LIMIT 1`)
	for name, scope := range map[string]storage.Scope{
		"institution": {Institution: ids[0]},
		"team":        {Institution: ids[0], Doctor: team.DoctorID},
	} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				r, err := Indicators(ctx, db, sealer, IndicatorScope{Scope: scope}, period, now)
				if err != nil || r.Activity.Visits == 0 {
					b.Fatalf("%+v %v", r.Activity, err)
				}
			}
		})
	}
}

// seedIndicators writes the benchmark's residents with set-based SQL, so a
// large N takes seconds, not hours.
func seedIndicators(b *testing.B, db *storage.DB, n, teams int, hypertension string, reading storage.SealedReadings) {
	sql := storagetest.SQL(b, db)
	now := time.Now().UTC()
	year := time.Date(now.Year(), 1, 1, 2, 0, 0, 0, time.UTC)
	for _, q := range []struct {
		query string
		args  []any
	}{
		{`INSERT INTO residents (manager_openid, relation, name, id_number_sealed, id_number_hash, phone_sealed, phone_hash, birth_date,
			sex, community_id, priority_groups, id_masked, phone_masked, groups_indexed, created_at, updated_at)
			WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
			SELECT 'o' || CAST(i AS TEXT), 'self', '居民' || CAST(i AS TEXT), 's', 'h' || CAST(i AS TEXT), 's', 'p' || CAST(i AS TEXT),
				CASE WHEN i % 3 = 0 THEN '1950-01-01' ELSE '1980-01-01' END, 'female',
				(SELECT MIN(id) FROM communities) + i % ?, '', '', '', 1, ?, ? FROM n`, []any{n, teams, now, now}},
		{`INSERT INTO contracts (number, request_key, resident_id, team_id, doctor_id, status, insured, term_months, term_end,
			agreement_version, agreed_at, consent_version, consented_at, consent_by, created_at, confirmed_at)
			SELECT 'QY' || CAST(r.id AS TEXT), 'r' || CAST(r.id AS TEXT), r.id, t.id, t.doctor_id, 'active', 'local', 12, '2099-12-31',
				'v', ?, 'v', ?, 'o', ?, ? FROM residents r JOIN teams t ON t.name = REPLACE(
				(SELECT name FROM communities WHERE id = r.community_id), '村', '团队')`, []any{year, year, year, year}},
		{`INSERT INTO contract_packages (contract_id, package_code, package_name, kind, split)
			SELECT id, 'basic', '基本', 'basic', '{}' FROM contracts`, nil},
		{`INSERT INTO contract_packages (contract_id, package_code, package_name, kind, split)
			SELECT id, 'chronic', '慢病', 'personalised', '{"resident":2000}' FROM contracts WHERE resident_id % 5 = 0`, nil},
		{`INSERT INTO resident_groups (resident_id, tag) SELECT id, ? FROM residents WHERE id % 5 = 0`, []any{hypertension}},
		{`INSERT INTO slots (doctor_id, day, starts_at, ends_at, capacity, booked) SELECT id, 'd', ?, ?, 1000000, 0 FROM doctors`,
			[]any{year, year.Add(10 * time.Minute)}},
		{`INSERT INTO appointments (request_key, resident_id, contract_id, doctor_id, slot_id, kind, status, starts_at, ends_at,
			created_at, updated_at, readings_sealed, bp_class, glucose_class, readings_classed)
			WITH RECURSIVE k(j) AS (SELECT 1 UNION ALL SELECT j + 1 FROM k WHERE j < 4)
			SELECT 'a' || CAST(c.id AS TEXT) || '-' || CAST(k.j AS TEXT), c.resident_id, c.id, c.doctor_id,
				(SELECT MIN(s.id) FROM slots s WHERE s.doctor_id = c.doctor_id), 'followup', 'done', ?, ?, ?, ?,
				CASE WHEN k.j = 4 THEN ? ELSE '' END, CASE WHEN k.j = 4 THEN ? ELSE '' END, CASE WHEN k.j = 4 THEN ? ELSE '' END, 1
			FROM contracts c, k WHERE c.resident_id % 5 = 0`, []any{year.Add(time.Hour), year.Add(time.Hour + 10*time.Minute), year, year,
			reading.Sealed, reading.BPClass, reading.GlucoseClass}},
		{`INSERT INTO surveys (appointment_id, openid, requested_at, score, answered_at)
			SELECT id, 'o', ?, 4 + id % 2, ? FROM appointments WHERE request_key LIKE '%-1'`, []any{year, year.Add(2 * time.Hour)}},
		{`INSERT INTO contract_events (contract_id, at, actor, from_status, to_status, reason)
			SELECT id, ?, 'o', '', 'active', 'seeded' FROM contracts`, []any{year}},
	} {
		sql.MustExec(sql.Rebind(q.query), q.args...)
	}
	if _, err := sql.Exec(`ANALYZE`); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkIndicatorsCity measures a city's indicators over a population
// made by jiayi demo seed on PostgreSQL: JIAYI_BENCH_RESIDENTS residents
// (default 1,000,000; Kunming has 4.37 million) in teams of about 1,035.
// It logs how long seeding and a whole round of team rollups take, then
// measures: counting one team's rollup ("team-rollup"), the city's page
// from the rollups ("city"), one institution's ("institution"), a team's
// page, live ("team"), and the city's page over a period no rollup keeps,
// live ("city-live", slow: run it with -benchtime 1x).
func BenchmarkIndicatorsCity(b *testing.B) {
	pg := os.Getenv("JIAYI_TEST_DATABASE_URL")
	if pg == "" {
		b.Skip("set JIAYI_TEST_DATABASE_URL: the city-scale benchmark runs on PostgreSQL")
	}
	n := 1_000_000
	fmt.Sscan(os.Getenv("JIAYI_BENCH_RESIDENTS"), &n)
	ctx := context.Background()
	db := storagetest.Postgres(b, pg)
	if err := profile.Ensure(ctx, db, "kunming"); err != nil {
		b.Fatal(err)
	}
	sealer, _ := storage.NewSealer(make([]byte, 32))
	now := time.Now()
	made, err := SeedDemo(ctx, db, sealer, n, now)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %+v in %s", made, time.Since(now).Round(time.Second))
	// A small run (CI's) is no city; it is rolled up as one all the same.
	defer func(was int) { rollupTeams = was }(rollupTeams)
	rollupTeams = min(rollupTeams, made.Teams-1)
	start := time.Now()
	run, err := RefreshRollups(ctx, db, sealer, time.Now, 24*time.Hour)
	if err != nil || run.Counted == 0 {
		b.Fatalf("rollups %+v, %v", run, err)
	}
	b.Logf("counted %d team rollups in %s", run.Counted, time.Since(start).Round(time.Second))
	year, _ := ParsePeriod(fmt.Sprintf("%d-01-01", now.In(Shanghai).Year()), "", now)
	custom, _ := ParsePeriod(fmt.Sprintf("%d-01-02", now.In(Shanghai).Year()), "", now)
	var team storage.Team
	storagetest.SQL(b, db).Get(&team, `SELECT id, institution_id, name, doctor_id FROM teams ORDER BY id LIMIT 1`)
	b.Run("team-rollup", func(b *testing.B) {
		for b.Loop() {
			if counted, err := countTeam(ctx, db, sealer, year, rollupKey(year, time.Now()), team.ID, time.Now()); err != nil || !counted {
				b.Fatalf("counted %v, %v", counted, err)
			}
		}
	})
	for _, c := range []struct {
		name   string
		scope  storage.Scope
		period Period
		rolled bool
	}{
		{"city", storage.Scope{}, year, true},
		{"institution", storage.Scope{Institution: team.InstitutionID}, year, true},
		{"team", storage.Scope{Institution: team.InstitutionID, Doctor: team.DoctorID}, year, false},
		{"city-live", storage.Scope{}, custom, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				r, err := Indicators(ctx, db, sealer, IndicatorScope{Scope: c.scope}, c.period, time.Now())
				if err != nil || (r.CountedAt != nil) != c.rolled {
					b.Fatalf("counted at %v, %v", r.CountedAt, err)
				}
			}
		})
	}
}
