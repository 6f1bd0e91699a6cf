package flows

import (
	"context"
	"fmt"
	"strings"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

// The agreement and the consent are versioned texts in templates/messages
// (agreement_VERSION.txt, consent_VERSION.txt); a contract records the
// versions given. Older versions stay, as contracts point to them.

// ProcessorInfo is who processes a resident's personal information, as the
// consent names it: the deployment's institution, or where a city runs one
// deployment for many, the institutions that sign residents.
type ProcessorInfo struct {
	Name   string
	Phones string
}

// maxNamedProcessors is how many institutions the consent names; a city's
// deployment names its region instead.
const maxNamedProcessors = 3

// itemsShown is how many services the agreement names a package; the rest
// are counted, and 服务包 lists them all (a reply holds 2,048 bytes).
const itemsShown = 3

func itemsInBrief(items []storage.Item) string {
	var names []string
	for _, it := range items[:min(len(items), itemsShown)] {
		names = append(names, it.Name)
	}
	text := strings.Join(names, "、")
	if len(items) > itemsShown {
		text = mustMessage("items_more", map[string]any{"Items": text, "Count": len(items)})
	}
	return text
}

// Processor reads who processes the residents' information.
func Processor(ctx context.Context, db *storage.DB) (ProcessorInfo, error) {
	insts, err := db.Institutions(ctx)
	if err != nil {
		return ProcessorInfo{}, err
	}
	var names, phones []string
	for _, in := range insts {
		names = append(names, in.Name)
		if in.Phone != "" && len(phones) < maxNamedProcessors {
			phones = append(phones, in.Phone)
		}
	}
	if len(names) > maxNamedProcessors {
		cat, err := db.Catalog(ctx)
		if err != nil {
			return ProcessorInfo{}, err
		}
		return ProcessorInfo{Name: mustMessage("processor_region", regionPlace(cat.Profile))}, nil
	}
	return ProcessorInfo{Name: strings.Join(names, "、"), Phones: strings.Join(phones, "、")}, nil
}

// Agreement is the agreement as the resident reads it before 同意: the
// institution and team, the term, each package with its services and the
// resident's own payment, where to pay, the refund on 解约, and where to
// complain.
func Agreement(ctx context.Context, db *storage.DB, c storage.Catalog, teamID int64, codes []string, fees Fees, termMonths int) (string, error) {
	team, err := db.TeamByID(ctx, teamID)
	if err != nil {
		return "", fmt.Errorf("agreement: team %d: %w", teamID, err)
	}
	inst, err := db.InstitutionByID(ctx, team.InstitutionID)
	if err != nil {
		return "", fmt.Errorf("agreement: institution of team %d: %w", teamID, err)
	}
	type pkg struct {
		Name, Items string
		Pays        residentShare
	}
	var pkgs []pkg
	for _, code := range codes {
		p, ok := c.Package(code)
		if !ok {
			continue
		}
		pkgs = append(pkgs, pkg{Name: p.Name, Items: itemsInBrief(p.Items), Pays: shareOf(fees.Packages[code])})
	}
	term := fmt.Sprintf("%d个月", termMonths)
	if termMonths == 12 {
		term = "1年"
	}
	return templates.Message("agreement_"+AgreementVersion, map[string]any{"Version": AgreementVersion,
		"Institution": inst.Name, "Phone": inst.Phone, "Team": team.Name, "Doctor": team.DoctorName,
		"Term": term, "Packages": pkgs})
}
