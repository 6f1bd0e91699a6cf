package storage_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

func intp(v int) *int { return &v }

func sampleCatalog() storage.Catalog {
	return storage.Catalog{
		Profile: storage.Profile{Code: "demo", Name: "示例", Settings: json.RawMessage(`{"team_model":{"label":"1+1+X"}}`)},
		Packages: []storage.Package{
			{Code: "b", Name: "基础包", Kind: storage.Basic, Default: true, Summary: "s", TermMonths: 12,
				Groups: []string{}, Requires: []string{}, Items: []storage.Item{{Name: "随访", PerYear: 4, VisitKind: "followup", For: []string{"hypertension", "diabetes"}}},
				Prices: map[storage.Insured]storage.Split{storage.InsuredLocal: {}}},
			{Code: "p", Name: "老年包", Kind: storage.Personalised, Summary: "s", TermMonths: 12, MinAge: intp(65),
				Groups: []string{"elderly"}, Requires: []string{}, Items: []storage.Item{{Name: "体检", PerYear: 1}, {Name: "辨识", PerYear: 0}},
				Prices: map[storage.Insured]storage.Split{
					storage.InsuredLocal:     {"public_health": 5000, "insurance": 3000, "resident": storage.Unknown},
					storage.InsuredElsewhere: {"public_health": 5000, "resident": storage.Unknown},
				}, Assumed: true},
			{Code: "a", Name: "增值包", Kind: storage.AddOn, Summary: "s", TermMonths: 12, Groups: []string{"diabetes"},
				Requires: []string{"b"}, Items: []storage.Item{{Name: "检测", PerYear: 2}},
				Prices: map[storage.Insured]storage.Split{storage.InsuredLocal: {"resident": 36000}}},
		},
	}
}

func TestCatalogRoundTrips(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if code, err := db.ProfileCode(ctx); err != nil || code != "" {
			t.Fatalf("empty database: profile %q, %v", code, err)
		}
		if _, err := db.Catalog(ctx); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("empty catalog: %v", err)
		}
		want := sampleCatalog()
		if err := db.SaveCatalog(ctx, want, "test"); err != nil {
			t.Fatal(err)
		}
		got, err := db.Catalog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if code, _ := db.ProfileCode(ctx); code != "demo" {
			t.Fatalf("profile code %q", code)
		}
		if string(got.Profile.Settings) != string(want.Profile.Settings) || got.Profile.Name != "示例" {
			t.Fatalf("profile = %+v", got.Profile)
		}
		if !reflect.DeepEqual(got.Packages, want.Packages) {
			t.Fatalf("packages differ:\n got %+v\nwant %+v", got.Packages, want.Packages)
		}
	})
}

func TestReloadDeactivatesDroppedPackagesAndKeepsOrder(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		c := sampleCatalog()
		if err := db.SaveCatalog(ctx, c, "test"); err != nil {
			t.Fatal(err)
		}
		c.Packages = []storage.Package{c.Packages[2], c.Packages[0]} // drop p, reorder
		c.Packages[0].Requires = []string{"b"}
		if err := db.SaveCatalog(ctx, c, "test"); err != nil {
			t.Fatal(err)
		}
		got, _ := db.Catalog(ctx)
		if len(got.Packages) != 2 || got.Packages[0].Code != "a" || got.Packages[1].Code != "b" {
			t.Fatalf("after reload: %+v", got.Packages)
		}
		if _, ok := got.Package("p"); ok {
			t.Fatal("a dropped package is still offered")
		}
	})
}

func TestAdminSetsAnUnknownPriceAndTheAuditLogKeepsIt(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if err := db.SaveCatalog(ctx, sampleCatalog(), "operator"); err != nil {
			t.Fatal(err)
		}
		c, _ := db.Catalog(ctx)
		p, _ := c.Package("p")
		if !p.PriceUnknown() || p.Price(storage.InsuredElsewhere).Known() {
			t.Fatalf("an unknown share is read back known: %+v", p.Prices)
		}
		if fen, known := p.Price(storage.InsuredLocal).Resident(); known || fen != 0 {
			t.Fatalf("unknown resident share reads %d, %v", fen, known)
		}
		if b, _ := c.Package("b"); b.PriceUnknown() {
			t.Fatal("a free package reads as unknown")
		}
		set := map[storage.Insured]storage.Split{
			storage.InsuredLocal:     {"public_health": 5000, "insurance": 3000, "resident": 7000},
			storage.InsuredElsewhere: {"public_health": 5000, "resident": 10000},
		}
		if err := db.SetPackagePrice(ctx, "p", set, "admin"); err != nil {
			t.Fatal(err)
		}
		c, _ = db.Catalog(ctx)
		if p, _ := c.Package("p"); p.PriceUnknown() || !reflect.DeepEqual(p.Prices, set) {
			t.Fatalf("after the admin set it: %+v", p.Prices)
		}
		newPrice := map[storage.Insured]storage.Split{storage.InsuredLocal: {"resident": 4500}}
		if err := db.SetPackagePrice(ctx, "a", newPrice, "admin"); err != nil {
			t.Fatal(err)
		}
		c, _ = db.Catalog(ctx)
		if a, _ := c.Package("a"); a.Price(storage.InsuredLocal)["resident"] != 4500 || len(a.Prices) != 1 {
			t.Fatalf("after price change: %+v", a.Prices)
		}
		if err := db.SetPackagePrice(ctx, "nope", newPrice, "admin"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("price for a missing package: %v", err)
		}
		// An institution's admin reads the catalog's changes too: its
		// prices are the ones their residents sign at.
		if inst, n, _ := db.AuditLog(ctx, storage.Scope{Institution: 99}, storage.Page{Limit: 10}); n != 3 || inst[0].Action != "package.price" {
			t.Fatalf("an institution's audit log: %d %+v", n, inst)
		}
		log, _, err := db.AuditLog(ctx, storage.Scope{}, storage.Page{Limit: 10})
		if err != nil || len(log) != 3 || log[0].Action != "package.price" || log[0].Actor != "admin" || log[1].Action != "package.price" ||
			!strings.Contains(log[1].Detail, "10000") || log[2].Action != "catalog.load" {
			t.Fatalf("audit log = %+v, %v", log, err)
		}
	})
}

// Migration 0031 turns a price that was guessed and never confirmed by an
// admin into unknown shares, and leaves a confirmed one as it is.
func TestGuessedPricesBecomeUnknown(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if err := db.SaveCatalog(ctx, sampleCatalog(), "test"); err != nil {
			t.Fatal(err)
		}
		sql := storagetest.SQL(t, db)
		// The state before 0031: p's price guessed, a's confirmed by an admin.
		sql.MustExec(`UPDATE package_prices SET known = TRUE, fen = 7000`)
		sql.MustExec(`UPDATE packages SET price_assumed = (code IN ('p', 'a'))`)
		sql.MustExec(sql.Rebind(`UPDATE packages SET price_confirmed_at = ? WHERE code = 'a'`), time.Now().UTC())
		all, err := storage.Migrations()
		if err != nil {
			t.Fatal(err)
		}
		ran := false
		for _, m := range all {
			if m.Version != 31 {
				continue
			}
			for _, stmt := range strings.Split(m.SQL, ";") {
				if strings.Contains(stmt, "UPDATE package_prices") {
					sql.MustExec(stmt[strings.Index(stmt, "UPDATE"):])
					ran = true
				}
			}
		}
		if !ran {
			t.Fatal("migration 0031 has no price update")
		}
		c, _ := db.Catalog(ctx)
		if p, _ := c.Package("p"); p.Price(storage.InsuredLocal).Known() {
			t.Fatalf("a guessed price is still shown: %v", p.Prices)
		}
		if a, _ := c.Package("a"); !a.Price(storage.InsuredLocal).Known() {
			t.Fatalf("a confirmed price became unknown: %v", a.Prices)
		}
	})
}

// An instance keeps the catalog in memory until its version moves;
// another instance's change to it (a price, a new profile) is what it
// reads next, and a caller changing its copy changes no one else's.
func TestCatalogKeptInMemorySeesOtherInstances(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if err := db.SaveCatalog(ctx, sampleCatalog(), "test"); err != nil {
			t.Fatal(err)
		}
		other := storagetest.Reopen(t, db)
		c, err := db.Catalog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := c.Package("p")
		p.Prices[storage.InsuredLocal]["resident"] = 1 // the caller's own copy
		c.Packages[0].Name = "changed by a caller"
		c, _ = db.Catalog(ctx)
		if p, _ := c.Package("p"); p.Prices[storage.InsuredLocal]["resident"] == 1 || c.Packages[0].Name == "changed by a caller" {
			t.Fatalf("a caller's change to its copy reached the next caller: %+v, %q", p.Prices, c.Packages[0].Name)
		}
		price := map[storage.Insured]storage.Split{storage.InsuredLocal: {"resident": 4321}}
		if err := other.SetPackagePrice(ctx, "p", price, "admin"); err != nil {
			t.Fatal(err)
		}
		c, _ = db.Catalog(ctx)
		if p, _ := c.Package("p"); !reflect.DeepEqual(p.Prices, price) {
			t.Fatalf("after another instance set p's price: %+v", p.Prices)
		}
		// A change read back inside its own transaction, then rolled back,
		// is never kept for others.
		rolledBack := map[storage.Insured]storage.Split{storage.InsuredLocal: {"resident": 1111}}
		errRollback := errors.New("roll back")
		if err := db.InTx(ctx, func(tx *storage.DB) error {
			if err := tx.SetPackagePrice(ctx, "p", rolledBack, "admin"); err != nil {
				return err
			}
			if _, err := tx.Catalog(ctx); err != nil {
				return err
			}
			return errRollback
		}); !errors.Is(err, errRollback) {
			t.Fatal(err)
		}
		committed := map[storage.Insured]storage.Split{storage.InsuredLocal: {"resident": 2222}}
		if err := other.SetPackagePrice(ctx, "p", committed, "admin"); err != nil {
			t.Fatal(err)
		}
		c, _ = db.Catalog(ctx)
		if p, _ := c.Package("p"); !reflect.DeepEqual(p.Prices, committed) {
			t.Fatalf("after a rolled-back change and another instance's: %+v", p.Prices)
		}
		// Kept, not read each time: a change behind the version's back is
		// read only once the version moves.
		raw := storagetest.SQL(t, db)
		raw.MustExecContext(ctx, `UPDATE package_prices SET fen = 3333 WHERE package_code = 'p'`)
		c, _ = db.Catalog(ctx)
		if p, _ := c.Package("p"); p.Prices[storage.InsuredLocal]["resident"] != 2222 {
			t.Fatalf("read from the tables although the version did not move: %+v", p.Prices)
		}
		raw.MustExecContext(ctx, `UPDATE region_profile SET version = version + 1`)
		c, _ = db.Catalog(ctx)
		if p, _ := c.Package("p"); p.Prices[storage.InsuredLocal]["resident"] != 3333 {
			t.Fatalf("after the version moved: %+v", p.Prices)
		}
		// A begun transaction with no catalog change of its own is served
		// the kept catalog too.
		raw.MustExecContext(ctx, `UPDATE package_prices SET fen = 4444 WHERE package_code = 'p'`)
		if err := db.InTx(ctx, func(tx *storage.DB) error {
			if err := tx.Apply(ctx, userSeen("o_begun")); err != nil { // begins it
				return err
			}
			c, err := tx.Catalog(ctx)
			if p, _ := c.Package("p"); err == nil && p.Prices[storage.InsuredLocal]["resident"] != 3333 {
				t.Errorf("a begun transaction read the tables although the version did not move: %+v", p.Prices)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		raw.MustExecContext(ctx, `UPDATE region_profile SET version = version + 1`)
		changed := sampleCatalog()
		changed.Profile.Name = "另一个"
		changed.Packages = changed.Packages[:1]
		if err := other.SaveCatalog(ctx, changed, "test"); err != nil {
			t.Fatal(err)
		}
		c, _ = db.Catalog(ctx)
		if c.Profile.Name != "另一个" || len(c.Packages) != 1 {
			t.Fatalf("after another instance loaded a profile: %q, %d packages", c.Profile.Name, len(c.Packages))
		}
	})
}
