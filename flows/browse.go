package flows

import (
	"context"
	"strconv"
	"strings"

	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

// browse is the 服务包 conversation: the region's packages in one numbered
// list, a number shows one package, 返回 goes back to the list.
//
// States (see browse.md): list -> detail -> list ...
type browse struct{}

func (browse) title() string { return "服务包浏览" }

func (b browse) start(ctx context.Context, e *Engine, st *State, _ Inbound) ([]string, error) {
	c, err := e.DB.Catalog(ctx)
	if err != nil {
		return nil, err
	}
	st.Step = "list"
	return say("packages_list", listView(c))
}

func (b browse) answer(ctx context.Context, e *Engine, st *State, said string, _ Inbound) ([]string, error) {
	c, err := e.DB.Catalog(ctx)
	if err != nil {
		return nil, err
	}
	ordered := browseOrder(c)
	if said == "返回" || said == "" {
		st.Step = "list"
		return say("packages_list", listView(c))
	}
	n, err := strconv.Atoi(said)
	if err != nil || n < 1 || n > len(ordered) {
		return say("packages_reask", len(ordered))
	}
	st.Step = "detail"
	return say("package_detail", detailView(c, ordered[n-1], n))
}

func (browse) help(st *State) (string, error) {
	return templates.Message("packages_help", st.Step)
}

// browseOrder numbers packages continuously across the groups: basic, then
// personalised, then add-ons, each in catalog order.
func browseOrder(c storage.Catalog) []storage.Package {
	var out []storage.Package
	for _, kind := range []storage.PackageKind{storage.Basic, storage.Personalised, storage.AddOn} {
		for _, p := range c.Packages {
			if p.Kind == kind {
				out = append(out, p)
			}
		}
	}
	return out
}

type listLine struct {
	N            int
	Name         string
	ResidentPays int64
	Unconfirmed  bool
}

type listGroup struct {
	Heading string
	Lines   []listLine
}

func listView(c storage.Catalog) map[string]any {
	var groups []listGroup
	for i, p := range browseOrder(c) {
		heading := profile.Name(profile.Words().PackageKinds, string(p.Kind))
		if len(groups) == 0 || groups[len(groups)-1].Heading != heading {
			groups = append(groups, listGroup{Heading: heading})
		}
		g := &groups[len(groups)-1]
		g.Lines = append(g.Lines, listLine{N: i + 1, Name: p.Name,
			ResidentPays: p.Price(storage.InsuredLocal)["resident"], Unconfirmed: p.Unconfirmed()})
	}
	return map[string]any{"Region": c.Profile.Name, "Groups": groups}
}

type payerAmount struct {
	Name string
	Fen  int64
}

type priceView struct {
	Payers       []payerAmount // in vocabulary order
	ResidentPays int64
}

func priceOf(s storage.Split) priceView {
	v := priceView{ResidentPays: s["resident"]}
	for _, payer := range profile.Words().Payers {
		if fen := s[payer.Code]; fen > 0 {
			v.Payers = append(v.Payers, payerAmount{Name: payer.Name, Fen: fen})
		}
	}
	return v
}

func detailView(c storage.Catalog, p storage.Package, n int) map[string]any {
	words := profile.Words()
	var requires []string
	for _, r := range p.Requires {
		if rp, ok := c.Package(r); ok {
			requires = append(requires, rp.Name)
		}
	}
	view := map[string]any{
		"N": n, "Name": p.Name, "Kind": profile.Name(words.PackageKinds, string(p.Kind)), "Summary": p.Summary,
		"Items": p.Items, "MinAge": p.MinAge, "MaxAge": p.MaxAge, "Groups": groupNames(p.Groups),
		"Requires": strings.Join(requires, "或"), "TermMonths": p.TermMonths,
		"Local": priceOf(p.Price(storage.InsuredLocal)), "Elsewhere": nil, "Unconfirmed": p.Unconfirmed(),
	}
	if s, ok := p.Prices[storage.InsuredElsewhere]; ok {
		view["Elsewhere"] = priceOf(s)
	}
	return view
}
