package profile

import (
	"context"
	"strings"
	"testing"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

func TestEnsureSeedsOnceThenTheDatabaseIsTheTruth(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if err := Ensure(ctx, db, "yaoguan"); err != nil {
			t.Fatal(err)
		}
		c, err := db.Catalog(ctx)
		if err != nil || c.Profile.Code != "yaoguan" || len(c.Packages) != 8 {
			t.Fatalf("after seeding: %s, %d packages, %v", c.Profile.Code, len(c.Packages), err)
		}
		// An admin changes a price; a restart must not undo it.
		if err := db.SetPackagePrice(ctx, "elderly", map[storage.Insured]storage.Split{storage.InsuredLocal: {"resident": 2500}}, "admin"); err != nil {
			t.Fatal(err)
		}
		if err := Ensure(ctx, db, "yaoguan"); err != nil {
			t.Fatal(err)
		}
		c, _ = db.Catalog(ctx)
		if p, _ := c.Package("elderly"); p.Price(storage.InsuredLocal)["resident"] != 2500 || p.PriceUnknown() {
			t.Fatalf("restart undid the admin's price: %+v", p.Prices)
		}
		// Another region is refused, with the way out.
		err = Ensure(ctx, db, "linzi")
		if err == nil || !strings.Contains(err.Error(), "jiayi profile load") || !strings.Contains(err.Error(), `"yaoguan"`) {
			t.Fatalf("other region: %v", err)
		}
		if err := Ensure(ctx, db, "atlantis"); err == nil || !strings.Contains(err.Error(), "known: harbin, kunming") {
			t.Fatalf("unknown region: %v", err)
		}
	})
}

func TestDiffSaysWhatALoadWouldChange(t *testing.T) {
	yaoguan, _ := Load("yaoguan")
	if d := Diff(yaoguan, yaoguan); len(d) != 0 {
		t.Fatalf("a catalog differs from itself: %v", d)
	}
	changed, _ := Load("yaoguan")
	changed.Packages = changed.Packages[1:] // public_health dropped
	changed.Packages[0].Prices = map[storage.Insured]storage.Split{storage.InsuredLocal: {"resident": 6000}}
	changed.Packages[1].Name = "健康管理包"
	d := strings.Join(Diff(yaoguan, changed), "\n")
	for _, want := range []string{"- public_health 基本公共卫生服务包", "~ basic_medical 基本医疗服务包: price local{insurance=5000 public_health=5000 resident=5000} elsewhere{public_health=5000 resident=10000} -> local{resident=6000}", "~ health_management 健康管理包:"} {
		if !strings.Contains(d, want) {
			t.Errorf("diff lacks %q:\n%s", want, d)
		}
	}
	linzi, _ := Load("linzi")
	if d := strings.Join(Diff(yaoguan, linzi), "\n"); !strings.Contains(d, "profile: yaoguan (常州市武进区遥观镇) -> linzi (淄博市临淄区)") || !strings.Contains(d, "+ hypertension 高血压服务包: local{district=7500 resident=unknown town=7500}") {
		t.Errorf("region change diff:\n%s", d)
	}
}
