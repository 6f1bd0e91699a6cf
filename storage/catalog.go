package storage

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// PackageKind says what role a package plays in a contract.
type PackageKind string

const (
	Basic        PackageKind = "basic"        // exactly one per contract
	Personalised PackageKind = "personalised" // on top of a basic package
	AddOn        PackageKind = "addon"        // on top of a named package
)

// Insured says where a resident's medical insurance is, which some
// programmes price differently.
type Insured string

const (
	InsuredLocal     Insured = "local"
	InsuredElsewhere Insured = "elsewhere"
)

// Split is a price divided among payers (public_health, insurance, resident,
// …), in fen.
type Split map[string]int64

// Total is the whole price.
func (s Split) Total() int64 {
	var t int64
	for _, fen := range s {
		t += fen
	}
	return t
}

// Item is one service a package provides, PerYear times a year (0: as
// needed); completed visits of VisitKind count toward it (履约).
type Item struct {
	Name      string
	PerYear   int
	VisitKind string
}

// Package is one entry of the catalog.
type Package struct {
	Code, Name     string
	Kind           PackageKind
	Default        bool // the basic package preselected when signing
	Summary        string
	TermMonths     int
	MinAge, MaxAge *int     // inclusive, in whole years; nil: no bound
	Groups         []string // any of these priority groups qualifies; empty: anyone
	Requires       []string // one of these packages must be held; empty: none
	Items          []Item
	Prices         map[Insured]Split // InsuredLocal always; InsuredElsewhere where priced apart
	PriceAssumed   bool              // the seed gave no number; jiayi chose one
	PriceConfirmed bool              // an admin has confirmed or set the price
}

// Price is what the package costs a resident insured where given, falling
// back to the local price.
func (p Package) Price(where Insured) Split {
	if s, ok := p.Prices[where]; ok {
		return s
	}
	return p.Prices[InsuredLocal]
}

// Unconfirmed reports whether residents must be told the price is
// provisional.
func (p Package) Unconfirmed() bool { return p.PriceAssumed && !p.PriceConfirmed }

// Profile is the region profile a database was seeded from. Settings are
// the profile's rules as JSON; flows reads them.
type Profile struct {
	Code, Name string
	Settings   json.RawMessage
}

// Catalog is the profile and its active packages, in display order.
type Catalog struct {
	Profile  Profile
	Packages []Package
}

// Package finds an active package by code.
func (c Catalog) Package(code string) (Package, bool) {
	for _, p := range c.Packages {
		if p.Code == code {
			return p, true
		}
	}
	return Package{}, false
}

// ProfileCode names the profile the database was seeded from, "" if none.
func (db *DB) ProfileCode(ctx context.Context) (string, error) {
	var code string
	err := db.GetContext(ctx, &code, `SELECT code FROM region_profile WHERE id = 1`)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("storage.ProfileCode: %w", err)
	}
	return code, nil
}

// SaveCatalog makes the database hold this profile and catalog, in one
// transaction: packages are inserted or replaced, those no longer listed are
// deactivated, and the change is audited.
func (db *DB) SaveCatalog(ctx context.Context, c Catalog, actor string) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("storage.SaveCatalog: %w", err)
	}
	defer tx.Rollback()
	now := time.Now().UTC()
	if _, err := tx.ExecContext(ctx, db.Rebind(`
INSERT INTO region_profile (id, code, name, settings, loaded_at) VALUES (1, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET code = excluded.code, name = excluded.name,
    settings = excluded.settings, loaded_at = excluded.loaded_at`),
		c.Profile.Code, c.Profile.Name, string(c.Profile.Settings), now); err != nil {
		return fmt.Errorf("storage.SaveCatalog: profile: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE packages SET active = FALSE`); err != nil {
		return fmt.Errorf("storage.SaveCatalog: %w", err)
	}
	for i, p := range c.Packages {
		if err := savePackage(ctx, tx, db, i, p); err != nil {
			return fmt.Errorf("storage.SaveCatalog: package %s: %w", p.Code, err)
		}
	}
	if err := audit(ctx, tx, db, actor, "catalog.load", c.Profile.Code,
		fmt.Sprintf("%d packages", len(c.Packages))); err != nil {
		return fmt.Errorf("storage.SaveCatalog: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("storage.SaveCatalog: %w", err)
	}
	return nil
}

func savePackage(ctx context.Context, tx execer, db *DB, order int, p Package) error {
	groups, _ := json.Marshal(nonNil(p.Groups))
	requires, _ := json.Marshal(nonNil(p.Requires))
	var confirmedAt any
	if p.PriceConfirmed {
		confirmedAt = time.Now().UTC()
	}
	if _, err := tx.ExecContext(ctx, db.Rebind(`
INSERT INTO packages (code, name, kind, is_default, sort_order, summary, term_months, min_age, max_age,
    eligible_groups, requires, price_assumed, price_confirmed_at, active)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, TRUE)
ON CONFLICT (code) DO UPDATE SET name = excluded.name, kind = excluded.kind,
    is_default = excluded.is_default, sort_order = excluded.sort_order, summary = excluded.summary,
    term_months = excluded.term_months, min_age = excluded.min_age, max_age = excluded.max_age,
    eligible_groups = excluded.eligible_groups, requires = excluded.requires,
    price_assumed = excluded.price_assumed, price_confirmed_at = excluded.price_confirmed_at,
    active = TRUE`),
		p.Code, p.Name, string(p.Kind), p.Default, order, p.Summary, p.TermMonths, p.MinAge, p.MaxAge,
		string(groups), string(requires), p.PriceAssumed, confirmedAt); err != nil {
		return err
	}
	for _, table := range []string{"package_items", "package_prices"} {
		if _, err := tx.ExecContext(ctx, db.Rebind(`DELETE FROM `+table+` WHERE package_code = ?`), p.Code); err != nil {
			return err
		}
	}
	for i, it := range p.Items {
		if _, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO package_items (package_code, sort_order, name, per_year, visit_kind)
VALUES (?, ?, ?, ?, ?)`), p.Code, i, it.Name, it.PerYear, it.VisitKind); err != nil {
			return err
		}
	}
	return insertPrices(ctx, tx, db, p.Code, p.Prices)
}

func insertPrices(ctx context.Context, tx execer, db *DB, code string, prices map[Insured]Split) error {
	for where, split := range prices {
		for payer, fen := range split {
			if _, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO package_prices (package_code, insured, payer, fen)
VALUES (?, ?, ?, ?)`), code, string(where), payer, fen); err != nil {
				return err
			}
		}
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

type packageRow struct {
	Code        string        `db:"code"`
	Name        string        `db:"name"`
	Kind        string        `db:"kind"`
	Default     bool          `db:"is_default"`
	Summary     string        `db:"summary"`
	TermMonths  int           `db:"term_months"`
	MinAge      sql.NullInt64 `db:"min_age"`
	MaxAge      sql.NullInt64 `db:"max_age"`
	Groups      string        `db:"eligible_groups"`
	Requires    string        `db:"requires"`
	Assumed     bool          `db:"price_assumed"`
	ConfirmedAt sql.NullTime  `db:"price_confirmed_at"`
}

// Catalog reads the profile and its active packages.
func (db *DB) Catalog(ctx context.Context) (Catalog, error) {
	var c Catalog
	var settings string
	err := db.QueryRowxContext(ctx, `SELECT code, name, settings FROM region_profile WHERE id = 1`).
		Scan(&c.Profile.Code, &c.Profile.Name, &settings)
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("storage.Catalog: no profile loaded: %w", ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("storage.Catalog: %w", err)
	}
	c.Profile.Settings = json.RawMessage(settings)
	var rows []packageRow
	if err := db.SelectContext(ctx, &rows, `SELECT code, name, kind, is_default, summary, term_months,
		min_age, max_age, eligible_groups, requires, price_assumed, price_confirmed_at
		FROM packages WHERE active ORDER BY sort_order`); err != nil {
		return c, fmt.Errorf("storage.Catalog: %w", err)
	}
	index := map[string]int{}
	for i, r := range rows {
		p := Package{Code: r.Code, Name: r.Name, Kind: PackageKind(r.Kind), Default: r.Default, Summary: r.Summary,
			TermMonths: r.TermMonths, PriceAssumed: r.Assumed, PriceConfirmed: r.ConfirmedAt.Valid,
			Prices: map[Insured]Split{}}
		if r.MinAge.Valid {
			v := int(r.MinAge.Int64)
			p.MinAge = &v
		}
		if r.MaxAge.Valid {
			v := int(r.MaxAge.Int64)
			p.MaxAge = &v
		}
		if err := json.Unmarshal([]byte(r.Groups), &p.Groups); err != nil {
			return c, fmt.Errorf("storage.Catalog: %s groups: %w", r.Code, err)
		}
		if err := json.Unmarshal([]byte(r.Requires), &p.Requires); err != nil {
			return c, fmt.Errorf("storage.Catalog: %s requires: %w", r.Code, err)
		}
		index[r.Code] = i
		c.Packages = append(c.Packages, p)
	}
	var items []struct {
		Code      string `db:"package_code"`
		Name      string `db:"name"`
		PerYear   int    `db:"per_year"`
		VisitKind string `db:"visit_kind"`
	}
	if err := db.SelectContext(ctx, &items, `SELECT i.package_code, i.name, i.per_year, i.visit_kind FROM package_items i
		JOIN packages p ON p.code = i.package_code WHERE p.active ORDER BY i.package_code, i.sort_order`); err != nil {
		return c, fmt.Errorf("storage.Catalog: items: %w", err)
	}
	for _, it := range items {
		p := &c.Packages[index[it.Code]]
		p.Items = append(p.Items, Item{Name: it.Name, PerYear: it.PerYear, VisitKind: it.VisitKind})
	}
	var prices []struct {
		Code    string `db:"package_code"`
		Insured string `db:"insured"`
		Payer   string `db:"payer"`
		Fen     int64  `db:"fen"`
	}
	if err := db.SelectContext(ctx, &prices, `SELECT pp.package_code, pp.insured, pp.payer, pp.fen FROM package_prices pp
		JOIN packages p ON p.code = pp.package_code WHERE p.active`); err != nil {
		return c, fmt.Errorf("storage.Catalog: prices: %w", err)
	}
	for _, pr := range prices {
		p := &c.Packages[index[pr.Code]]
		where := Insured(pr.Insured)
		if p.Prices[where] == nil {
			p.Prices[where] = Split{}
		}
		p.Prices[where][pr.Payer] = pr.Fen
	}
	for i := range c.Packages {
		if c.Packages[i].Prices[InsuredLocal] == nil {
			c.Packages[i].Prices[InsuredLocal] = Split{}
		}
	}
	return c, nil
}

// SetPackagePrice replaces a package's price split; the price counts as
// confirmed from then on. Contracts already signed keep the split they
// froze at signing.
func (db *DB) SetPackagePrice(ctx context.Context, code string, prices map[Insured]Split, actor string) error {
	return db.changePackage(ctx, code, actor, "package.price", func(tx execer) error {
		if _, err := tx.ExecContext(ctx, db.Rebind(`DELETE FROM package_prices WHERE package_code = ?`), code); err != nil {
			return err
		}
		if err := insertPrices(ctx, tx, db, code, prices); err != nil {
			return err
		}
		detail, _ := json.Marshal(prices)
		return audit(ctx, tx, db, actor, "package.price", code, string(detail))
	})
}

// ConfirmPackagePrice records that an admin has checked an assumed price.
func (db *DB) ConfirmPackagePrice(ctx context.Context, code, actor string) error {
	return db.changePackage(ctx, code, actor, "package.confirm", func(tx execer) error {
		return audit(ctx, tx, db, actor, "package.confirm", code, "")
	})
}

func (db *DB) changePackage(ctx context.Context, code, actor, op string, change func(execer) error) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("storage.%s: %w", op, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, db.Rebind(`UPDATE packages SET price_confirmed_at = ? WHERE code = ? AND active`),
		time.Now().UTC(), code)
	if err != nil {
		return fmt.Errorf("storage.%s: %w", op, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("storage.%s %s: %w", op, code, ErrNotFound)
	}
	if err := change(tx); err != nil {
		return fmt.Errorf("storage.%s: %w", op, err)
	}
	return tx.Commit()
}

func audit(ctx context.Context, tx execer, db *DB, actor, action, subject, detail string) error {
	_, err := tx.ExecContext(ctx, db.Rebind(`INSERT INTO audit_log (at, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)`),
		time.Now().UTC(), actor, action, subject, detail)
	return err
}

// AuditEntry is one row of the audit log.
type AuditEntry struct {
	At      time.Time `db:"at" json:"at"`
	Actor   string    `db:"actor" json:"actor"`
	Action  string    `db:"action" json:"action"`
	Subject string    `db:"subject" json:"subject"`
	Detail  string    `db:"detail" json:"detail"`
}

// AuditLog returns the newest entries first.
func (db *DB) AuditLog(ctx context.Context, limit int) ([]AuditEntry, error) {
	var out []AuditEntry
	err := db.SelectContext(ctx, &out, db.Rebind(`SELECT at, actor, action, subject, detail FROM audit_log
		ORDER BY id DESC LIMIT ?`), limit)
	if err != nil {
		return nil, fmt.Errorf("storage.AuditLog: %w", err)
	}
	return out, nil
}
