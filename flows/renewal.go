package flows

import (
	"errors"
	"slices"
	"time"

	"github.com/jiayi-health/jiayi/storage"
)

// A renewal is a new term agreed again: the packages the resident holds are
// checked against the programme's rules as they stand at the new term's
// start (a child who turned 7 no longer fits the 0-6 package), priced at
// today's catalog, and the agreement is shown again before 同意.

// RenewalPlan is what a contract's next term would hold.
type RenewalPlan struct {
	Packages []storage.ContractPackage // kept, with today's prices
	Dropped  []Refusal                 // each package that no longer fits, with why
	Fees     Fees
}

// PlanRenewal re-checks a contract's packages for a term starting at
// start. A basic package no longer offered gives way to the default one.
func PlanRenewal(c storage.Catalog, held []storage.ContractPackage, a Applicant) RenewalPlan {
	var plan RenewalPlan
	var codes []string
	hasBasic := false
	for _, h := range held {
		p, ok := c.Package(h.Code)
		if !ok {
			plan.Dropped = append(plan.Dropped, Refusal{Package: h.Code, Reason: mustMessage("renew_withdrawn", h.Name)})
			continue
		}
		if err := Eligible(p, a); err != nil {
			var r *Refusal
			if errors.As(err, &r) {
				plan.Dropped = append(plan.Dropped, *r)
			}
			continue
		}
		codes = append(codes, p.Code)
		hasBasic = hasBasic || p.Kind == storage.Basic
	}
	if !hasBasic {
		for _, p := range c.Packages {
			if p.Default {
				codes = append([]string{p.Code}, codes...)
			}
		}
	}
	// Add-ons whose base went, or a programme limit now broken: drop the
	// package the rules name until the choice stands.
	for len(codes) > 0 {
		err := CheckChoice(c, a, codes)
		var r *Refusal
		if err == nil || !errors.As(err, &r) || r.Package == "" {
			break
		}
		plan.Dropped = append(plan.Dropped, *r)
		codes = slices.DeleteFunc(codes, func(c string) bool { return c == r.Package })
	}
	plan.Fees = Price(c, a, codes)
	for _, code := range codes {
		p, _ := c.Package(code)
		plan.Packages = append(plan.Packages, storage.ContractPackage{Code: code, Name: p.Name, Kind: string(p.Kind), Split: plan.Fees.Packages[code]})
	}
	return plan
}

// renewalStart is the first day of a contract's next term.
func renewalStart(c storage.ContractView) time.Time {
	end, _ := time.ParseInLocation("2006-01-02", c.TermEnd.String, Shanghai)
	return end.AddDate(0, 0, 1)
}
