package profile

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

// Ensure makes the database hold the region's catalog: the profile file
// seeds an empty database; after that the database is the truth, and a
// database seeded from another profile is refused.
func Ensure(ctx context.Context, db *storage.DB, region string) error {
	c, err := Load(region)
	if err != nil {
		return err
	}
	have, err := db.ProfileCode(ctx)
	switch {
	case err != nil:
		return err
	case have == "":
		return db.SaveCatalog(ctx, c, "seed:"+templates.ProfilePath(region))
	case have != region:
		return fmt.Errorf("the database holds the %q profile but JIAYI_REGION is %q: "+
			"run `jiayi profile load` to replace its catalog, or set JIAYI_REGION=%s", have, region, have)
	}
	return nil
}

// Diff lists what loading next over the database's current catalog would
// change, one line each; nothing when they agree.
func Diff(current, next storage.Catalog) []string {
	var out []string
	if current.Profile.Code != next.Profile.Code || current.Profile.Name != next.Profile.Name {
		out = append(out, fmt.Sprintf("profile: %s (%s) -> %s (%s)", cmp.Or(current.Profile.Code, "none"),
			current.Profile.Name, next.Profile.Code, next.Profile.Name))
	} else if string(current.Profile.Settings) != string(next.Profile.Settings) {
		out = append(out, "profile settings: team model, partner hospitals, groups, appointment rules or targets change")
	}
	for _, n := range next.Packages {
		c, ok := current.Package(n.Code)
		if !ok {
			out = append(out, fmt.Sprintf("+ %s %s: %s", n.Code, n.Name, describePrice(n)))
			continue
		}
		if describe(c) != describe(n) {
			out = append(out, fmt.Sprintf("~ %s %s: %s -> %s", n.Code, n.Name, describe(c), describe(n)))
		}
		if describePrice(c) != describePrice(n) {
			out = append(out, fmt.Sprintf("~ %s %s: price %s -> %s", n.Code, n.Name, describePrice(c), describePrice(n)))
		}
	}
	for _, c := range current.Packages {
		if _, ok := next.Package(c.Code); !ok {
			out = append(out, fmt.Sprintf("- %s %s (kept for contracts that hold it, no longer offered)", c.Code, c.Name))
		}
	}
	return out
}

// describe is a package's terms apart from its price, as one comparable line.
func describe(p storage.Package) string {
	age := func(a *int) string {
		if a == nil {
			return "-"
		}
		return fmt.Sprint(*a)
	}
	items := make([]string, len(p.Items))
	for i, it := range p.Items {
		items[i] = fmt.Sprintf("%s×%d", it.Name, it.PerYear)
		if it.VisitKind != "" {
			items[i] += "@" + it.VisitKind
		}
		if len(it.For) > 0 {
			items[i] += "(for " + strings.Join(it.For, ",") + ")"
		}
	}
	return fmt.Sprintf("%s %s default=%v term=%dm age=%s..%s groups=%v requires=%v items=[%s] summary=%q",
		p.Name, p.Kind, p.Default, p.TermMonths, age(p.MinAge), age(p.MaxAge), p.Groups, p.Requires,
		strings.Join(items, ", "), p.Summary)
}

// describePrice is a package's price as one comparable line, in fen.
func describePrice(p storage.Package) string {
	var parts []string
	for _, where := range []storage.Insured{storage.InsuredLocal, storage.InsuredElsewhere} {
		s, ok := p.Prices[where]
		if !ok {
			continue
		}
		var payers []string
		for _, payer := range slices.Sorted(maps.Keys(s)) {
			if s[payer] == storage.Unknown {
				payers = append(payers, payer+"=unknown")
				continue
			}
			payers = append(payers, fmt.Sprintf("%s=%d", payer, s[payer]))
		}
		parts = append(parts, fmt.Sprintf("%s{%s}", where, strings.Join(payers, " ")))
	}
	return strings.Join(parts, " ")
}
