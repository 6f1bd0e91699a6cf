package storage_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// BenchmarkListResidents measures the console's residents page (a page of
// 50 and the total) over an institution of JIAYI_BENCH_RESIDENTS residents
// (default 20,000), each with a contract: unfiltered, by name, by the last
// four digits and by a declared priority group.
func BenchmarkListResidents(b *testing.B) {
	n := 20000
	fmt.Sscan(os.Getenv("JIAYI_BENCH_RESIDENTS"), &n)
	b.Run("sqlite", func(b *testing.B) { benchListResidents(b, storagetest.SQLite(b), n) })
	if pg := os.Getenv("JIAYI_TEST_DATABASE_URL"); pg != "" {
		b.Run("postgres", func(b *testing.B) { benchListResidents(b, storagetest.Postgres(b, pg), n) })
	}
}

func benchListResidents(b *testing.B, db *storage.DB, n int) {
	ctx := context.Background()
	ids, err := db.CreateInstitution(ctx, storage.Institution{Code: "bench", Name: "测试卫生院", Kind: "township_centre"},
		[]storage.Community{{Town: "镇", Name: "东村"}, {Town: "镇", Name: "西村"}},
		[]storage.NewTeam{{Name: "甲团队", Doctor: storage.Doctor{Name: "甲医生"}, Communities: []int{0, 1}}})
	if err != nil {
		b.Fatal(err)
	}
	sql := storagetest.SQL(b, db)
	var community, team, doctor int64
	sql.Get(&community, `SELECT MIN(id) FROM communities`)
	sql.Get(&team, `SELECT MIN(id) FROM teams`)
	sql.Get(&doctor, `SELECT MIN(id) FROM doctors`)
	now := time.Now().UTC()
	start := time.Now()
	sql.MustExec(sql.Rebind(`INSERT INTO residents (manager_openid, relation, name, id_number_sealed, id_number_hash,
		phone_sealed, phone_hash, birth_date, sex, community_id, priority_groups, id_masked, phone_masked, groups_indexed,
		created_at, updated_at)
		WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
		SELECT 'o' || CAST(i AS TEXT), 'self', '居民' || CAST(i AS TEXT), 's', 'h' || CAST(i AS TEXT), 's', 'p' || CAST(i AS TEXT),
			'1950-01-01', 'female', ?, '', '1101**********' || SUBSTR(CAST(10000 + i % 10000 AS TEXT), 2, 4), '138****0000', 1, ?, ?
		FROM n`), n, community, now, now)
	sql.MustExec(sql.Rebind(`INSERT INTO contracts (number, request_key, resident_id, team_id, doctor_id, status, insured,
		term_months, agreement_version, agreed_at, consent_version, consented_at, consent_by, created_at)
		SELECT 'QY' || CAST(id AS TEXT), 'r' || CAST(id AS TEXT), id, ?, ?, 'active', 'local', 12, 'v', ?, 'v', ?, 'o', ?
		FROM residents`), team, doctor, now, now, now)
	sql.MustExec(`INSERT INTO resident_groups (resident_id, tag) SELECT id, 'tag' FROM residents WHERE id % 5 = 0`)
	if _, err := sql.Exec(`ANALYZE`); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d residents in %s", n, time.Since(start).Round(time.Millisecond))
	scope := storage.Scope{Institution: ids[0]}
	for name, f := range map[string]storage.ResidentFilter{
		"all": {}, "name": {Query: "居民1234"}, "tail": {Query: "0042"}, "group": {GroupTag: "tag"},
	} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				rows, total, err := db.ListResidents(ctx, scope, f, storage.Page{Limit: 50})
				if err != nil || len(rows) == 0 || total == 0 {
					b.Fatalf("%d rows of %d: %v", len(rows), total, err)
				}
			}
		})
	}
}
