package flows

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jiayi-health/jiayi/storage"
)

// SeedDemo fills a database with residents for demonstrations and
// benchmarks (jiayi demo seed), in the proportions of a city's programme:
// about 1,035 signed residents a team, as Kunming's 4.37 million in 4,224
// teams, and 15 teams an institution. The profile's default package is
// everyone's; its package for hypertension patients is the chronic
// patients'. Nothing seeded is anyone's data: ID numbers and phones are a
// sealed placeholder.
func SeedDemo(ctx context.Context, db *storage.DB, s *storage.Sealer, residents int, now time.Time) (storage.SeedResult, error) {
	if residents < 1 || residents > 10_000_000 {
		return storage.SeedResult{}, &Refusal{Reason: "居民人数须在 1 到 1000 万之间"}
	}
	cat, err := db.Catalog(ctx)
	if err != nil {
		return storage.SeedResult{}, err
	}
	spec := storage.Seed{Run: fmt.Sprint(now.Unix()), Residents: residents, TeamSize: 1035, TeamsPerInstitution: 15, ChronicShare: 2000,
		GroupsSealed: map[string]string{}, Hypertension: GroupTags(s, []string{"hypertension"})[0],
		Diabetes: GroupTags(s, []string{"diabetes"})[0], Now: now}
	for _, p := range cat.Packages {
		switch {
		case p.Default && spec.Basic == "":
			spec.Basic = p.Code
		case p.Kind == storage.Personalised && slices.Contains(p.Groups, "hypertension") && spec.Chronic == "":
			spec.Chronic = p.Code
		}
	}
	if spec.Basic == "" {
		return storage.SeedResult{}, fmt.Errorf("flows.SeedDemo: the catalog has no default package")
	}
	if spec.SealedID, err = s.Seal("id_number", "演示数据"); err != nil {
		return storage.SeedResult{}, err
	}
	if spec.SealedPhone, err = s.Seal("phone", "演示数据"); err != nil {
		return storage.SeedResult{}, err
	}
	for key, groups := range map[string][]string{"": nil, "hypertension": {"hypertension"}, "diabetes": {"diabetes"},
		"both": {"hypertension", "diabetes"}} {
		if spec.GroupsSealed[key], err = SealGroups(s, groups); err != nil {
			return storage.SeedResult{}, err
		}
	}
	for i, r := range []Readings{{Systolic: 132, Diastolic: 84, Glucose: 6.4}, {Systolic: 152, Diastolic: 94, Glucose: 8.1}} {
		if spec.Readings[i], err = sealReadings(s, r); err != nil {
			return storage.SeedResult{}, err
		}
	}
	return db.SeedDemo(ctx, spec)
}
