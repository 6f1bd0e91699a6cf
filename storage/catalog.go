package storage

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
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
// …), in fen. A share may be Unknown.
type Split map[string]int64

// Unknown is a share the programme gives no amount for: residents are told
// the institution's published price applies until an admin sets it.
const Unknown int64 = -1

// Total is the sum of the known shares.
func (s Split) Total() int64 {
	var t int64
	for _, fen := range s {
		if fen > 0 {
			t += fen
		}
	}
	return t
}

// Known reports whether every share has an amount.
func (s Split) Known() bool {
	for _, fen := range s {
		if fen == Unknown {
			return false
		}
	}
	return true
}

// Resident is the resident's own share (0 when the split has none) and
// whether its amount is known.
func (s Split) Resident() (int64, bool) {
	fen := s["resident"]
	return max(fen, 0), fen != Unknown
}

// Item is one service a package provides, PerYear times a year (0: as
// needed); completed visits of VisitKind count toward it (履约).
type Item struct {
	Name      string
	PerYear   int
	VisitKind string
	For       []string // priority groups it is due for, any of them; none: every holder
}

// DueFor reports whether the item is due for a resident in these priority
// groups (declared and derived).
func (it Item) DueFor(groups []string) bool {
	if len(it.For) == 0 {
		return true
	}
	for _, g := range it.For {
		if slices.Contains(groups, g) {
			return true
		}
	}
	return false
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
	Assumed        bool              // the programme does not name it; the profile does
}

// Price is what the package costs a resident insured where given. A local
// price with an insurance share always comes with an elsewhere price (the
// profile and the admin API insist), so falling back to the local price
// only happens where the two cannot differ.
func (p Package) Price(where Insured) Split {
	if s, ok := p.Prices[where]; ok {
		return s
	}
	return p.Prices[InsuredLocal]
}

// PriceUnknown reports whether some share of its price awaits the
// institution's published amount.
func (p Package) PriceUnknown() bool {
	for _, s := range p.Prices {
		if !s.Known() {
			return true
		}
	}
	return false
}

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
	err := db.get(ctx, "ProfileCode", &code, `SELECT code FROM region_profile WHERE id = 1`)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	return code, err
}

// SaveCatalog makes the database hold this profile and catalog, in one
// transaction: packages are inserted or replaced, those no longer listed are
// deactivated, and the change is audited.
func (db *DB) SaveCatalog(ctx context.Context, c Catalog, actor string) error {
	const op = "SaveCatalog"
	return db.inTx(ctx, op, func(tx *DB) error {
		now := db.now()
		if _, err := tx.exec(ctx, op+": profile", `
INSERT INTO region_profile (id, code, name, settings, loaded_at) VALUES (1, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET code = excluded.code, name = excluded.name,
    settings = excluded.settings, loaded_at = excluded.loaded_at, version = region_profile.version + 1`,
			c.Profile.Code, c.Profile.Name, string(c.Profile.Settings), now); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, op, `UPDATE packages SET active = FALSE`); err != nil {
			return err
		}
		for i, p := range c.Packages {
			if err := tx.savePackage(ctx, op+": package "+p.Code, i, p); err != nil {
				return err
			}
		}
		return tx.audit(ctx, op, actor, "catalog.load", c.Profile.Code, fmt.Sprintf("%d packages", len(c.Packages)))
	})
}

func (db *DB) savePackage(ctx context.Context, op string, order int, p Package) error {
	groups, _ := json.Marshal(nonNil(p.Groups))
	requires, _ := json.Marshal(nonNil(p.Requires))
	// price_assumed and price_confirmed_at belong to guessed prices, which
	// migration 0031 turned into unknown shares; they stay FALSE and NULL.
	if _, err := db.exec(ctx, op, `
INSERT INTO packages (code, name, kind, is_default, sort_order, summary, term_months, min_age, max_age,
    eligible_groups, requires, assumed, price_assumed, price_confirmed_at, active)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, FALSE, NULL, TRUE)
ON CONFLICT (code) DO UPDATE SET name = excluded.name, kind = excluded.kind,
    is_default = excluded.is_default, sort_order = excluded.sort_order, summary = excluded.summary,
    term_months = excluded.term_months, min_age = excluded.min_age, max_age = excluded.max_age,
    eligible_groups = excluded.eligible_groups, requires = excluded.requires, assumed = excluded.assumed,
    price_assumed = FALSE, price_confirmed_at = NULL, active = TRUE`,
		p.Code, p.Name, string(p.Kind), p.Default, order, p.Summary, p.TermMonths, p.MinAge, p.MaxAge,
		string(groups), string(requires), p.Assumed); err != nil {
		return err
	}
	for _, table := range []string{"package_items", "package_prices"} {
		if _, err := db.exec(ctx, op, `DELETE FROM `+table+` WHERE package_code = ?`, p.Code); err != nil {
			return err
		}
	}
	items := make([][]any, len(p.Items))
	for i, it := range p.Items {
		forGroups, _ := json.Marshal(append([]string{}, it.For...))
		items[i] = []any{p.Code, i, it.Name, it.PerYear, it.VisitKind, string(forGroups)}
	}
	if _, err := db.insertMany(ctx, op, `INSERT INTO package_items (package_code, sort_order, name, per_year, visit_kind, for_groups)
VALUES`, "", items); err != nil {
		return err
	}
	return db.insertPrices(ctx, op, p.Code, p.Prices)
}

func (db *DB) insertPrices(ctx context.Context, op, code string, prices map[Insured]Split) error {
	var rows [][]any
	for where, split := range prices {
		for payer, fen := range split {
			rows = append(rows, []any{code, string(where), payer, max(fen, 0), fen != Unknown})
		}
	}
	_, err := db.insertMany(ctx, op, `INSERT INTO package_prices (package_code, insured, payer, fen, known) VALUES`, "", rows)
	return err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

type packageRow struct {
	Code       string        `db:"code"`
	Name       string        `db:"name"`
	Kind       string        `db:"kind"`
	Default    bool          `db:"is_default"`
	Summary    string        `db:"summary"`
	TermMonths int           `db:"term_months"`
	MinAge     sql.NullInt64 `db:"min_age"`
	MaxAge     sql.NullInt64 `db:"max_age"`
	Groups     string        `db:"eligible_groups"`
	Requires   string        `db:"requires"`
	Assumed    bool          `db:"assumed"`
}

// catalogCache is the catalog as last read, with its version (see
// migration 0048): every turn that prices or lists packages needs it, and
// it changes a few times a year.
type catalogCache struct {
	mu      sync.Mutex
	version int64
	catalog *Catalog // nil until read
}

// Catalog reads the profile and its active packages: from memory when the
// database's catalog version is the one last read, else from the tables.
// Each caller gets a copy of its own.
func (db *DB) Catalog(ctx context.Context) (Catalog, error) {
	const op = "Catalog"
	// Read outside a transaction not yet begun, as the doctor lookup: a
	// turn that only prices begins none, and a signing's own transaction
	// is then the turn's first work.
	db = db.unbegun()
	var version int64
	err := db.get(ctx, op, &version, `SELECT version FROM region_profile WHERE id = 1`)
	if errors.Is(err, ErrNotFound) {
		return Catalog{}, fail(op, fmt.Errorf("no profile loaded: %w", ErrNotFound))
	}
	if err != nil {
		return Catalog{}, err
	}
	cache := &db.shared.catalog
	cache.mu.Lock()
	if cache.catalog != nil && cache.version == version {
		c := cache.catalog.clone()
		cache.mu.Unlock()
		return c, nil
	}
	cache.mu.Unlock()
	// Read after the version: what is read is at least as new as it. A
	// change committed in between is cached under the older version and
	// read again at the next call, which finds the newer one.
	c, err := db.readCatalog(ctx, op)
	if err != nil {
		return Catalog{}, err
	}
	if db.tx != nil {
		// Read inside a begun transaction: it may hold its own changes,
		// uncommitted, which must not be kept for everyone. (Those raised
		// the version it read past the kept one, so the kept one was not
		// served above; one with no change of its own is served the kept.)
		return c, nil
	}
	cache.mu.Lock()
	cache.version, cache.catalog = version, &c
	cache.mu.Unlock()
	return c.clone(), nil
}

// clone copies the catalog down to its maps and slices.
func (c Catalog) clone() Catalog {
	out := Catalog{Profile: c.Profile, Packages: make([]Package, len(c.Packages))}
	out.Profile.Settings = slices.Clone(c.Profile.Settings)
	for i, p := range c.Packages {
		p.Groups, p.Requires = slices.Clone(p.Groups), slices.Clone(p.Requires)
		if p.MinAge != nil {
			v := *p.MinAge
			p.MinAge = &v
		}
		if p.MaxAge != nil {
			v := *p.MaxAge
			p.MaxAge = &v
		}
		items := make([]Item, len(p.Items))
		for j, it := range p.Items {
			it.For = slices.Clone(it.For)
			items[j] = it
		}
		if p.Items == nil {
			items = nil
		}
		p.Items = items
		prices := make(map[Insured]Split, len(p.Prices))
		for where, split := range p.Prices {
			prices[where] = maps.Clone(split)
		}
		p.Prices = prices
		out.Packages[i] = p
	}
	return out
}

// readCatalog reads the catalog from its tables.
func (db *DB) readCatalog(ctx context.Context, op string) (Catalog, error) {
	var c Catalog
	var profile struct {
		Code     string `db:"code"`
		Name     string `db:"name"`
		Settings string `db:"settings"`
	}
	if err := db.get(ctx, op, &profile, `SELECT code, name, settings FROM region_profile WHERE id = 1`); err != nil {
		return c, err
	}
	c.Profile = Profile{Code: profile.Code, Name: profile.Name, Settings: json.RawMessage(profile.Settings)}
	var rows []packageRow
	if err := db.sel(ctx, op, &rows, `SELECT code, name, kind, is_default, summary, term_months,
		min_age, max_age, eligible_groups, requires, assumed
		FROM packages WHERE active ORDER BY sort_order`); err != nil {
		return c, err
	}
	index := map[string]int{}
	for i, r := range rows {
		p := Package{Code: r.Code, Name: r.Name, Kind: PackageKind(r.Kind), Default: r.Default, Summary: r.Summary,
			TermMonths: r.TermMonths, Assumed: r.Assumed,
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
			return c, fail(op, fmt.Errorf("%s groups: %w", r.Code, err))
		}
		if err := json.Unmarshal([]byte(r.Requires), &p.Requires); err != nil {
			return c, fail(op, fmt.Errorf("%s requires: %w", r.Code, err))
		}
		index[r.Code] = i
		c.Packages = append(c.Packages, p)
	}
	var items []struct {
		Code      string `db:"package_code"`
		Name      string `db:"name"`
		PerYear   int    `db:"per_year"`
		VisitKind string `db:"visit_kind"`
		For       string `db:"for_groups"`
	}
	if err := db.sel(ctx, op+": items", &items, `SELECT i.package_code, i.name, i.per_year, i.visit_kind, i.for_groups FROM package_items i
		JOIN packages p ON p.code = i.package_code WHERE p.active ORDER BY i.package_code, i.sort_order`); err != nil {
		return c, err
	}
	for _, it := range items {
		p := &c.Packages[index[it.Code]]
		item := Item{Name: it.Name, PerYear: it.PerYear, VisitKind: it.VisitKind}
		if err := json.Unmarshal([]byte(it.For), &item.For); err != nil {
			return c, fail(op, fmt.Errorf("package %s item %s: %w", it.Code, it.Name, err))
		}
		if len(item.For) == 0 {
			item.For = nil // every holder
		}
		p.Items = append(p.Items, item)
	}
	var prices []struct {
		Code    string `db:"package_code"`
		Insured string `db:"insured"`
		Payer   string `db:"payer"`
		Fen     int64  `db:"fen"`
		Known   bool   `db:"known"`
	}
	if err := db.sel(ctx, op+": prices", &prices, `SELECT pp.package_code, pp.insured, pp.payer, pp.fen, pp.known FROM package_prices pp
		JOIN packages p ON p.code = pp.package_code WHERE p.active`); err != nil {
		return c, err
	}
	for _, pr := range prices {
		p := &c.Packages[index[pr.Code]]
		where := Insured(pr.Insured)
		if p.Prices[where] == nil {
			p.Prices[where] = Split{}
		}
		p.Prices[where][pr.Payer] = pr.Fen
		if !pr.Known {
			p.Prices[where][pr.Payer] = Unknown
		}
	}
	for i := range c.Packages {
		if c.Packages[i].Prices[InsuredLocal] == nil {
			c.Packages[i].Prices[InsuredLocal] = Split{}
		}
	}
	return c, nil
}

// SetPackagePrice replaces a package's price split. Contracts already
// signed keep the split they froze at signing. The audit log keeps who set
// it, when, and the amounts.
func (db *DB) SetPackagePrice(ctx context.Context, code string, prices map[Insured]Split, actor string) error {
	const op = "SetPackagePrice"
	return db.inTx(ctx, op, func(tx *DB) error {
		var n int
		if err := tx.get(ctx, op, &n, `SELECT COUNT(*) FROM packages WHERE code = ? AND active`, code); err != nil {
			return err
		}
		if n == 0 {
			return fail(op, fmt.Errorf("%s: %w", code, ErrNotFound))
		}
		if _, err := tx.exec(ctx, op, `DELETE FROM package_prices WHERE package_code = ?`, code); err != nil {
			return err
		}
		if err := tx.insertPrices(ctx, op, code, prices); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, op, `UPDATE region_profile SET version = version + 1 WHERE id = 1`); err != nil {
			return err
		}
		detail, _ := json.Marshal(prices)
		return tx.audit(ctx, op, actor, "package.price", code, string(detail))
	})
}

// audit records a deployment-wide change (the catalog, prices).
func (db *DB) audit(ctx context.Context, op, actor, action, subject, detail string) error {
	return db.auditIn(ctx, op, actor, sql.NullInt64{}, action, subject, detail)
}

// auditIn records a change that concerns one institution, so its own admins
// read it; a NULL institution is deployment-wide.
func (db *DB) auditIn(ctx context.Context, op, actor string, institution sql.NullInt64, action, subject, detail string) error {
	_, err := db.exec(ctx, op, `INSERT INTO audit_log (at, actor, institution_id, action, subject, detail)
		VALUES (?, ?, ?, ?, ?, ?)`, db.now(), actor, institution, action, subject, detail)
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

// AuditLog returns a page of the entries a scope may read, newest first,
// with their total. An institution's staff read their institution's
// entries and the catalog's (its prices are theirs too); other
// deployment-wide ones only city staff do.
func (db *DB) AuditLog(ctx context.Context, scope Scope, page Page) ([]AuditEntry, int, error) {
	const op = "AuditLog"
	page = page.clamp()
	cond, args := scope.where("institution_id", "")
	cond = "(" + cond + " OR institution_id IS NULL AND (action = 'catalog.load' OR action LIKE 'package.%'))"
	var total int
	if err := db.get(ctx, op, &total, `SELECT COUNT(*) FROM audit_log WHERE `+cond, args...); err != nil {
		return nil, 0, err
	}
	out := []AuditEntry{}
	if err := db.sel(ctx, op, &out, `SELECT at, actor, action, subject, detail FROM audit_log WHERE `+cond+`
		ORDER BY id DESC LIMIT ? OFFSET ?`, append(args, page.Limit, page.Offset)...); err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

// Audit records what a staff member did that the change itself does not
// name them for (a signing at the desk, an answer in a doctor's name, an
// import, a schedule change).
func (db *DB) Audit(ctx context.Context, institution int64, actor, action, subject, detail string) error {
	return db.auditIn(ctx, "Audit", actor, nullID(institution), action, subject, detail)
}
