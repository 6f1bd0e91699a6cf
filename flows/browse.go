package flows

import (
	"slices"
	"strings"

	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

// browseData is the package a resident is looking at (its number in the
// list), 0 for the list.
type browseData struct {
	N int `json:"n,omitempty"`
}

type browseTurn = turn[browseData]

// browse is the 服务包 conversation: the region's packages in one numbered
// list, a number shows one package (another number another), 返回 goes
// back to the list. States: see browse.md.
var _ = declare(&conversation[browseData]{
	about: about{name: "packages", title: "服务包浏览", keywords: []string{"服务包"}, help: "packages_help", version: 1, menu: true},
	steps: []step[browseData]{
		{name: "list", ask: askPackageList, take: takePackageNumber},
		{name: "detail", ask: askPackageDetail, take: takePackageNumber},
	},
})

func askPackageList(t *browseTurn) (string, error) {
	c, err := t.catalog()
	if err != nil {
		return "", err
	}
	t.d.N = 0
	return templates.Message("packages_list", listView(c))
}

func takePackageNumber(t *browseTurn, said string) (string, error) {
	c, err := t.catalog()
	if err != nil {
		return "", err
	}
	ordered := browseOrder(c)
	n, ok := choice(said, len(ordered))
	if !ok { // by its name, asked about or not: 慢病管理包要多少钱
		var named []int
		for i, p := range ordered {
			if slices.ContainsFunc(nameKeys(p.Name), func(k string) bool { return strings.Contains(compact(said), k) }) {
				named = append(named, i+1)
			}
		}
		if len(named) == 1 {
			n, ok = named[0], true
		}
	}
	if !ok {
		return "", reaskWith("packages_reask", len(ordered))
	}
	t.d.N = n
	return "", nil
}

func askPackageDetail(t *browseTurn) (string, error) {
	c, err := t.catalog()
	if err != nil {
		return "", err
	}
	ordered := browseOrder(c)
	if t.d.N < 1 || t.d.N > len(ordered) { // the catalog shrank meanwhile
		t.st.Step = "list"
		return askPackageList(t)
	}
	return templates.Message("package_detail", detailView(c, ordered[t.d.N-1], t.d.N))
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
	N    int
	Name string
	Pays residentShare
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
		g.Lines = append(g.Lines, listLine{N: i + 1, Name: p.Name, Pays: shareOf(p.Price(storage.InsuredLocal))})
	}
	return map[string]any{"Region": regionPlace(c.Profile), "Groups": groups}
}

// residentShare is what a resident pays of a price, as a list line says
// it: an amount, nothing, or the institution's published price.
type residentShare struct {
	Fen   int64
	Known bool
}

func shareOf(s storage.Split) residentShare {
	fen, known := s.Resident()
	return residentShare{Fen: fen, Known: known}
}

type payerAmount struct {
	Name  string
	Fen   int64
	Known bool
}

// priceView is a price split as residents read it (template _price).
type priceView struct {
	Payers        []payerAmount // other than the resident, in vocabulary order
	ResidentPays  int64
	ResidentKnown bool
	AllUnknown    bool // no share has an amount: 费用以签约机构公示为准
}

func priceOf(s storage.Split) priceView {
	v := priceView{AllUnknown: len(s) > 0}
	v.ResidentPays, v.ResidentKnown = s.Resident()
	for _, payer := range profile.Words().Payers {
		fen, ok := s[payer.Code]
		if ok && fen != storage.Unknown {
			v.AllUnknown = false
		}
		if !ok || payer.Code == "resident" || fen == 0 {
			continue
		}
		v.Payers = append(v.Payers, payerAmount{Name: payer.Name, Fen: max(fen, 0), Known: fen != storage.Unknown})
	}
	if _, ok := s["resident"]; !ok {
		v.AllUnknown = false // the resident's share is known: nothing
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
		"Local": priceOf(p.Price(storage.InsuredLocal)), "Elsewhere": nil,
	}
	if s, ok := p.Prices[storage.InsuredElsewhere]; ok {
		view["Elsewhere"] = priceOf(s)
	}
	return view
}
