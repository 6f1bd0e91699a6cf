package profile

import (
	"fmt"
	"regexp"

	"github.com/jiayi-health/jiayi/storage"
)

var codePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// check applies the rules every profile must keep and returns each breach.
func check(f file) []error {
	v := Words()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if !codePattern.MatchString(f.Code) || f.Name == "" {
		bad("profile needs a code (lowercase letters, digits, _) and a name")
	}
	if f.TeamModel.Label == "" || len(f.TeamModel.Roles) == 0 {
		bad("team_model needs a label and roles")
	}
	if h := f.PartnerHospitals; h != nil && (len(h.District) == 0 || len(h.Tertiary) == 0) {
		bad("partner_hospitals needs both district and tertiary hospitals")
	}
	for _, g := range f.PriorityGroups {
		if _, ok := find(v.PriorityGroups, g); !ok {
			bad("priority_groups: unknown priority group %q", g)
		}
	}
	for _, g := range f.Appointments.HomeVisitGroups {
		if _, ok := find(v.PriorityGroups, g); !ok {
			bad("appointments: unknown priority group %q", g)
		}
	}
	if f.Appointments.MinVisitMinutes < 5 || f.Appointments.MinVisitMinutes > 120 {
		bad("appointments: min_visit_minutes must be 5 to 120")
	}
	if f.Appointments.MaxUpcoming < 0 || f.Appointments.MaxUpcoming > 20 || f.Appointments.CancelBeforeHours < 0 || f.Appointments.CancelBeforeHours > 72 {
		bad("appointments: max_upcoming must be 0 (default 3) to 20, cancel_before_hours 0 (default 2) to 72")
	}
	if q := f.QuietHours; q != nil && (q.From < 0 || q.From > 23 || q.To < 0 || q.To > 23 || q.From == q.To) {
		bad("quiet_hours: from and to must be different hours, 0 to 23")
	}
	for ind, pct := range f.Targets {
		if _, ok := find(v.Indicators, ind); !ok {
			bad("targets: unknown indicator %q", ind)
		}
		if pct < 0 || pct > 100 {
			bad("targets: %s must be a percentage, 0 to 100", ind)
		}
	}

	codes := map[string]string{} // code -> kind
	for _, p := range f.Packages {
		if _, dup := codes[p.Code]; dup {
			bad("package %s: listed twice", p.Code)
		}
		codes[p.Code] = p.Kind
	}
	if f.PersonalisedMax < 0 || f.PersonalisedMax > 20 {
		bad("personalised_max must be 0 (any number) to 20")
	}
	var basics, defaults, personalised int
	for _, p := range f.Packages {
		errs = append(errs, checkPackage(p, codes, v)...)
		switch p.Kind {
		case "basic":
			basics++
			if p.Default {
				defaults++
			}
		case "personalised":
			personalised++
		}
	}
	if basics == 0 || personalised < 3 {
		bad("a profile offers at least one basic and three personalised packages (has %d and %d)", basics, personalised)
	}
	if defaults != 1 {
		bad("exactly one basic package must be marked default (%d are)", defaults)
	}
	return errs
}

func checkPackage(p filePackage, codes map[string]string, v Vocabulary) []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("package %s: "+format, append([]any{p.Code}, args...)...))
	}
	if !codePattern.MatchString(p.Code) {
		bad("code must be lowercase letters, digits and _")
	}
	if p.Name == "" || p.Summary == "" {
		bad("needs a name and a summary")
	}
	if _, ok := find(v.PackageKinds, p.Kind); !ok {
		bad("unknown kind %q (basic, personalised or addon)", p.Kind)
	}
	if p.Default && p.Kind != "basic" {
		bad("only a basic package can be the default")
	}
	if p.TermMonths < 0 || p.TermMonths > 60 {
		bad("term_months must be 1 to 60")
	}
	e := p.Eligibility
	if (e.MinAge != nil && (*e.MinAge < 0 || *e.MinAge > 150)) || (e.MaxAge != nil && (*e.MaxAge < 0 || *e.MaxAge > 150)) {
		bad("ages must be 0 to 150")
	}
	if e.MinAge != nil && e.MaxAge != nil && *e.MinAge > *e.MaxAge {
		bad("min_age is above max_age")
	}
	for _, g := range e.Groups {
		if _, ok := find(v.PriorityGroups, g); !ok {
			bad("unknown priority group %q", g)
		}
	}
	for _, r := range e.Requires {
		kind, ok := codes[r]
		switch {
		case !ok:
			bad("prerequisite names missing package %q", r)
		case r == p.Code:
			bad("requires itself")
		case kind == "addon":
			bad("prerequisite %q is an add-on; it must be a basic or personalised package", r)
		}
	}
	if p.Kind == "addon" && len(e.Requires) == 0 {
		bad("an add-on must name the packages it goes on (eligibility.requires)")
	}
	if p.Kind == "basic" && len(e.Requires) > 0 {
		bad("a basic package cannot require another package")
	}
	if len(p.Items) == 0 {
		bad("lists no service items")
	}
	for _, it := range p.Items {
		if it.Name == "" || it.PerYear < 0 || it.PerYear > 366 {
			bad("item %q: needs a name and per_year 0 (as needed) to 366", it.Name)
		}
		switch it.Visit {
		case "", "clinic", "home", "checkup", "followup", "referral":
		default:
			bad("item %q: visit %q is not clinic, home, checkup, followup or referral", it.Name, it.Visit)
		}
		for _, g := range it.For {
			if _, ok := find(v.PriorityGroups, g); !ok {
				bad("item %q: for %q is not a priority group of the vocabulary", it.Name, g)
			}
		}
	}
	if p.Price.Local == nil {
		bad("price.local is missing (write {} for free, unknown for an amount the document does not give)")
	}
	if _, ok := p.Price.Local["insurance"]; ok && !p.Price.Elsewhere.stated() {
		bad("price: an insurance share needs the price for residents insured elsewhere: a split, %s or %s", InsuranceToResident, WithoutInsurance)
	}
	if d := p.Price.Elsewhere.Derived; d != "" {
		if _, err := Derive(storage.Split(p.Price.Local), d); err != nil {
			bad("price.%v", err)
		}
	}
	for where, s := range map[string]amounts{"local": p.Price.Local, "elsewhere": p.Price.Elsewhere.Given} {
		for payer := range s {
			if _, ok := find(v.Payers, payer); !ok {
				bad("price.%s: unknown payer %q", where, payer)
			}
		}
	}
	return errs
}

// CheckPrice checks a price an admin sets: a local split, known payers,
// amounts of 0 or more, and an elsewhere split wherever the local one has
// an insurance share.
func CheckPrice(prices map[storage.Insured]storage.Split) error {
	local, ok := prices[storage.InsuredLocal]
	if !ok {
		return fmt.Errorf("a price needs a local split (write {} for free)")
	}
	if _, ins := local["insurance"]; ins {
		if _, ok := prices[storage.InsuredElsewhere]; !ok {
			return fmt.Errorf("a local price with an insurance share needs the price for residents insured elsewhere")
		}
	}
	for where, split := range prices {
		if where != storage.InsuredLocal && where != storage.InsuredElsewhere {
			return fmt.Errorf("unknown insurance place %q (local or elsewhere)", where)
		}
		for payer, fen := range split {
			if _, ok := find(Words().Payers, payer); !ok {
				return fmt.Errorf("%s: unknown payer %q", where, payer)
			}
			if fen < 0 {
				return fmt.Errorf("%s: negative amount for %s", where, payer)
			}
		}
	}
	return nil
}
