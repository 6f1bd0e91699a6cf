package flows

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
)

// The indicators the programmes judge a family-doctor service by. What each
// counts, in one place (the README's "Indicators" section says the same):
//
//   - coverage: residents with a contract in force at the period's end /
//     the population staff recorded for their communities. Only communities
//     with a recorded population count, on both sides of the fraction.
//   - priority_coverage: the same for the profile's priority groups, group by
//     group (a resident in two groups counts in each, as the population
//     counts do); elderly_coverage for the 65+ group alone.
//   - renewal: renewals in the period / renewals and expiries in it.
//   - fulfilment: the service items visits fulfil, delivered / due, each
//     item due pro rata for the days its contract was in force in the
//     period; a visit counts toward every item of its kind, capped at what
//     is due (as a contract's 履约 page counts).
//   - satisfaction: surveys answered in the period scoring 4 or 5 / answered.
//   - chronic_managed: hypertension and diabetes patients signed at the
//     period's end with at least 4 follow-up visits done in its calendar
//     year / those patients.
//   - bp_control, glucose_control: hypertension (diabetes) patients signed
//     at the end whose latest blood pressure (fasting glucose) recorded at
//     a visit this calendar year is controlled (below 140/90; below 7.0) /
//     those patients, measured or not.
//   - paid_share: contracts in force at the end with a personal share /
//     those of residents in a priority group, as Yaoguan counts it:
//     "有偿签约人数占重点人群签约人数的10%左右" (paid signings of anyone over
//     priority-group signings, so it may pass 100 %).
//
// "In force" starts when the doctor confirmed the contract (or on the
// signing day of one signed on paper) and stops when it ends. Figures go
// to the contract's team and doctor now, its team's institution and the
// resident's community.

// Period is the span of days the indicators cover, in Asia/Shanghai: From
// at 00:00 to the end of To's day.
type Period struct {
	From, To time.Time // To is 00:00 of the day after the last
}

// ParsePeriod reads from and to as YYYY-MM-DD, both included; without them
// it is this year to date.
func ParsePeriod(from, to string, now time.Time) (Period, error) {
	today := StartOfDay(now)
	p := Period{From: time.Date(today.Year(), 1, 1, 0, 0, 0, 0, Shanghai), To: today.AddDate(0, 0, 1)}
	if from != "" {
		d, err := time.ParseInLocation("2006-01-02", from, Shanghai)
		if err != nil {
			return p, &Refusal{Reason: "开始日期请写成 2026-01-01 这样"}
		}
		p.From = d
	}
	if to != "" {
		d, err := time.ParseInLocation("2006-01-02", to, Shanghai)
		if err != nil {
			return p, &Refusal{Reason: "结束日期请写成 2026-12-31 这样"}
		}
		p.To = d.AddDate(0, 0, 1)
	}
	switch {
	case !p.From.Before(p.To):
		return p, &Refusal{Reason: "开始日期须不晚于结束日期"}
	case p.From.After(today):
		return p, &Refusal{Reason: "开始日期不能晚于今天：还没有发生的事无从统计"}
	case p.To.Sub(p.From) > 10*366*24*time.Hour:
		return p, &Refusal{Reason: "统计区间最长十年"}
	}
	return p, nil
}

// Indicator is one indicator over a scope, beside the profile's target.
type Indicator struct {
	Code        string   `json:"code"`
	Name        string   `json:"name"`
	Numerator   float64  `json:"numerator"`
	Denominator float64  `json:"denominator"`
	Value       *float64 `json:"value"`  // percent to one decimal; null without a denominator
	Target      *int     `json:"target"` // percent; null where the profile sets none
	Below       bool     `json:"below"`  // under its target
}

// Happenings are what happened in the period.
type Happenings struct {
	Signings      int            `json:"signings"` // contracts that came into force
	Renewals      int            `json:"renewals"`
	Cancellations int            `json:"cancellations"`
	Visits        int            `json:"visits"` // done
	VisitsByKind  map[string]int `json:"visits_by_kind"`
	NoShows       int            `json:"no_shows"`
	Pushes        *int           `json:"pushes,omitempty"` // sent to people in scope; the whole scope only
	Broadcasts    int            `json:"broadcasts"`       // mass sends; none are made yet
}

// Month is what happened in one calendar month of the period (the first
// and last may be partial).
type Month struct {
	Month        string   `json:"month"` // 2026-03
	Signings     int      `json:"signings"`
	Visits       int      `json:"visits"`
	Satisfaction *float64 `json:"satisfaction"` // percent of answered surveys scoring 4 or 5; null with none answered
	Answered     int      `json:"answered"`
}

// Group is the indicators of one institution, community, team or doctor.
type Group struct {
	ID         int64       `json:"id"`
	Name       string      `json:"name"`
	Indicators []Indicator `json:"indicators"`
	Activity   Happenings  `json:"activity"`
}

// Report is the indicators of a scope over a period.
type Report struct {
	From        string                 `json:"from"`
	To          string                 `json:"to"`
	AsOf        time.Time              `json:"as_of"` // the period's end, or now if that is sooner
	Indicators  []Indicator            `json:"indicators"`
	Activity    Happenings             `json:"activity"`
	Breakdown   map[string][]Group     `json:"breakdown"` // institution, community, team, doctor
	Months      []Month                `json:"months"`    // the whole scope month by month
	Communities []storage.CommunityRow `json:"communities"`
}

// Breakdowns are the kinds of group a report is broken down by, in order.
var Breakdowns = []string{"institution", "community", "team", "doctor"}

// IndicatorScope is whose figures a report holds.
type IndicatorScope struct {
	Scope       storage.Scope
	CommunityID int64 // 0: every community in scope
}

// Indicators computes the report of a scope over a period.
func Indicators(ctx context.Context, db *storage.DB, s *storage.Sealer, in IndicatorScope, p Period, now time.Time) (Report, error) {
	c, err := newCounting(ctx, db, s, in, p, now, nil)
	if err != nil {
		return Report{}, err
	}
	r := Report{From: p.From.Format("2006-01-02"), To: p.To.AddDate(0, 0, -1).Format("2006-01-02"), AsOf: c.asOf.In(Shanghai),
		Breakdown: map[string][]Group{}, Communities: c.facts.Communities}
	whole := c.tally(place{})
	whole.activity.Pushes = &c.facts.Pushes
	r.Indicators, r.Activity = whole.indicators(c.settings), whole.activity
	for _, kind := range Breakdowns {
		r.Breakdown[kind] = c.groups(kind)
	}
	r.Months = c.months(p.From)
	return r, nil
}

// months is the whole scope's signings, visits and satisfaction by
// calendar month, from the period's first month to the one holding asOf.
func (c *counting) months(from time.Time) []Month {
	var out []Month
	index := map[string]int{}
	for m := time.Date(from.Year(), from.Month(), 1, 0, 0, 0, 0, Shanghai); m.Before(c.asOf); m = m.AddDate(0, 1, 0) {
		index[m.Format("2006-01")] = len(out)
		out = append(out, Month{Month: m.Format("2006-01")})
	}
	at := func(t time.Time) *Month {
		if i, ok := index[t.In(Shanghai).Format("2006-01")]; ok && !t.Before(c.from) && t.Before(c.to) {
			return &out[i]
		}
		return nil
	}
	for _, k := range c.facts.Contracts {
		if m := at(k.ConfirmedAt); m != nil {
			m.Signings++
		}
	}
	for _, v := range c.facts.Visits {
		if m := at(v.StartsAt); m != nil && v.Status == "done" {
			m.Visits++
		}
	}
	good := map[string]int{}
	for _, s := range c.facts.Surveys {
		if m := at(s.AnsweredAt); m != nil {
			m.Answered++
			if s.Score >= 4 {
				good[m.Month]++
			}
		}
	}
	for i := range out {
		if out[i].Answered > 0 {
			v := round1(100 * float64(good[out[i].Month]) / float64(out[i].Answered))
			out[i].Satisfaction = &v
		}
	}
	return out
}

// IndicatorMembers lists the residents behind one indicator of a report,
// in the whole scope (kind "") or in one of its groups: what each adds to
// the numerator and the denominator. The coverage indicators' denominators
// are populations, so their members are the residents counted signed.
func IndicatorMembers(ctx context.Context, db *storage.DB, s *storage.Sealer, in IndicatorScope, p Period, now time.Time,
	code, kind string, id int64) ([]Member, error) {
	if !slices.ContainsFunc(profile.Words().Indicators, func(t profile.Term) bool { return t.Code == code }) {
		return nil, &Refusal{Reason: "没有这个指标"}
	}
	if kind != "" && !slices.Contains(Breakdowns, kind) {
		return nil, &Refusal{Reason: "没有这种分组"}
	}
	w := &watch{code: code, place: place{kind, id}}
	if kind == "" {
		w.place = place{}
	}
	if _, err := newCounting(ctx, db, s, in, p, now, w); err != nil {
		return nil, err
	}
	return w.members, nil
}

// newCounting reads a period's facts and counts them.
func newCounting(ctx context.Context, db *storage.DB, s *storage.Sealer, in IndicatorScope, p Period, now time.Time, w *watch) (*counting, error) {
	settings, err := Settings(ctx, db)
	if err != nil {
		return nil, err
	}
	cat, err := db.Catalog(ctx)
	if err != nil {
		return nil, err
	}
	asOf := p.To
	if now.Before(asOf) {
		asOf = now
	}
	// The year (and ages) of the period's last moment: a period ending on
	// 31 December has its asOf at the next 1 January.
	year := time.Date(asOf.Add(-time.Nanosecond).In(Shanghai).Year(), 1, 1, 0, 0, 0, 0, Shanghai)
	facts, err := db.IndicatorFacts(ctx, storage.IndicatorQuery{Scope: in.Scope, CommunityID: in.CommunityID,
		From: p.From, To: asOf, VisitsFrom: year, VisitsTo: p.To})
	if err != nil {
		return nil, err
	}
	c := &counting{facts: facts, settings: settings, cat: cat, sealer: s, from: p.From, asOf: asOf, to: p.To, year: year,
		tallies: map[place]*tally{}, byPlace: map[storage.FactPlace]*[5]*tally{}, watch: w, doctorOnly: in.Scope.Doctor != 0}
	c.count()
	return c, c.err
}

// place is a group a figure is totalled in; the zero place is the whole
// scope.
type place struct {
	kind string
	id   int64
}

func placesOf(w storage.FactPlace) []place {
	return []place{{}, {"institution", w.InstitutionID}, {"community", w.CommunityID}, {"team", w.TeamID}, {"doctor", w.DoctorID}}
}

// tally holds one group's numerators and denominators by indicator code.
type tally struct {
	num, den map[string]float64
	activity Happenings
}

func (t *tally) add(code string, num, den float64) {
	t.num[code] += num
	t.den[code] += den
}

// indicators says the tally's figures in the vocabulary's order.
func (t *tally) indicators(s profile.Settings) []Indicator {
	out := []Indicator{}
	for _, term := range profile.Words().Indicators {
		ind := Indicator{Code: term.Code, Name: term.Name, Numerator: round3(t.num[term.Code]), Denominator: round3(t.den[term.Code])}
		if d := t.den[term.Code]; d > 0 {
			v := round1(100 * t.num[term.Code] / d)
			ind.Value = &v
		}
		if target, ok := s.Targets[term.Code]; ok {
			ind.Target = &target
			ind.Below = ind.Value != nil && *ind.Value < float64(target)
		}
		out = append(out, ind)
	}
	return out
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// round3 keeps a pro-rata count (a fraction of a yearly item) readable
// beside a percent computed from the unrounded figures.
func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// counting walks the facts once, totalling every group.
type counting struct {
	facts    storage.IndicatorFacts
	settings profile.Settings
	cat      storage.Catalog
	sealer   *storage.Sealer
	from     time.Time
	asOf     time.Time
	to       time.Time // the period's end: visits marked (on their day) count up to it
	year     time.Time
	tallies  map[place]*tally
	byPlace  map[storage.FactPlace]*[5]*tally // the tallies of each place, once looked up
	groupsAt map[int64]map[string]bool        // each resident's priority groups at the period's end
	watch    *watch
	err      error // the first error met: a sealed reading that does not open
	// doctorOnly: the scope is one doctor's teams, whose signed residents
	// are only part of their communities' (other teams serve them too).
	doctorOnly bool
}

func (c *counting) tally(p place) *tally {
	t, ok := c.tallies[p]
	if !ok {
		t = &tally{num: map[string]float64{}, den: map[string]float64{}, activity: Happenings{VisitsByKind: map[string]int{}}}
		c.tallies[p] = t
	}
	return t
}

// subject is whom a figure counts: a resident and their contract.
type subject struct{ resident, contract int64 }

// Member is one resident behind an indicator: what they add to its
// numerator and denominator.
type Member struct {
	ResidentID  int64   `json:"resident_id"`
	ContractID  int64   `json:"contract_id"`
	Numerator   float64 `json:"numerator"`
	Denominator float64 `json:"denominator"`
}

// watch asks a counting to keep the members of one indicator in one group.
type watch struct {
	code    string
	place   place
	members []Member
}

// add counts a figure in every group it belongs to, keeping its subject
// when that indicator and group are watched.
func (c *counting) add(w storage.FactPlace, code string, num, den float64, who subject) {
	c.each(w, func(t *tally) { t.add(code, num, den) })
	if c.watch != nil && c.watch.code == code && (num != 0 || den != 0) && slices.Contains(placesOf(w), c.watch.place) {
		c.watch.members = append(c.watch.members, Member{ResidentID: who.resident, ContractID: who.contract, Numerator: round3(num),
			Denominator: round3(den)})
	}
}

// watchSigned keeps a resident signed at the end as a member of the
// coverage indicators (whose denominators are populations, not people)
// when their community recorded the population they count against.
func (c *counting) watchSigned(k storage.ContractFact, groups map[string]bool, who subject) {
	if c.watch == nil || c.doctorOnly || !slices.Contains(placesOf(k.FactPlace), c.watch.place) {
		return
	}
	var m storage.CommunityRow
	for _, row := range c.facts.Communities {
		if row.ID == k.CommunityID {
			m = row
		}
	}
	counted := 0 // how many times the figure counts them: once a group for priority coverage
	switch c.watch.code {
	case "coverage":
		counted = int(b2f(m.Residents > 0))
	case "elderly_coverage":
		counted = int(b2f(groups["elderly"] && m.PriorityCounts["elderly"] > 0))
	case "priority_coverage":
		for _, code := range c.settings.PriorityGroups {
			counted += int(b2f(groups[code] && m.PriorityCounts[code] > 0))
		}
	}
	if counted > 0 {
		c.watch.members = append(c.watch.members, Member{ResidentID: who.resident, ContractID: who.contract, Numerator: float64(counted)})
	}
}

// each runs f on the tally of every group a fact belongs to.
func (c *counting) each(w storage.FactPlace, f func(*tally)) {
	ts, ok := c.byPlace[w]
	if !ok { // found once per place: a city has millions of facts and thousands of places
		ts = &[5]*tally{}
		for i, p := range placesOf(w) {
			ts[i] = c.tally(p)
		}
		c.byPlace[w] = ts
	}
	for _, t := range ts {
		f(t)
	}
}

func (c *counting) count() {
	holders := map[int64]storage.ContractFact{}
	for _, k := range c.facts.Contracts {
		holders[k.ResidentID] = k
	}
	c.groupsAt = c.groupsOf(holders) // every resident's groups, once: a city has millions
	c.countActivity()
	c.countFulfilment()
	c.countSigned()
	for _, s := range c.facts.Surveys {
		c.add(s.FactPlace, "satisfaction", b2f(s.Score >= 4), 1, subject{s.ResidentID, s.ContractID})
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *counting) countActivity() {
	for _, k := range c.facts.Contracts {
		if !k.ConfirmedAt.Before(c.from) {
			c.each(k.FactPlace, func(t *tally) { t.activity.Signings++ })
		}
	}
	for _, e := range c.facts.Events {
		switch {
		case e.Reason == "renewed":
			c.each(e.FactPlace, func(t *tally) { t.activity.Renewals++ })
			c.add(e.FactPlace, "renewal", 1, 1, subject{e.ResidentID, e.ContractID})
		case e.To == storage.ContractExpired && e.From != e.To:
			c.add(e.FactPlace, "renewal", 0, 1, subject{e.ResidentID, e.ContractID})
		case e.To == storage.ContractCancelled && e.From != e.To:
			c.each(e.FactPlace, func(t *tally) { t.activity.Cancellations++ })
		}
	}
	for _, v := range c.facts.Visits {
		if v.StartsAt.Before(c.from) {
			continue // read for the year's chronic follow-ups only
		}
		c.each(v.FactPlace, func(t *tally) {
			if v.Status == "done" {
				t.activity.Visits++
				t.activity.VisitsByKind[v.Kind]++
			} else {
				t.activity.NoShows++
			}
		})
	}
}

// countFulfilment totals each contract's items due and delivered over the
// days it was in force in the period.
func (c *counting) countFulfilment() {
	done := map[int64][]storage.VisitFact{}
	for _, v := range c.facts.Visits {
		if v.Status == "done" {
			done[v.ContractID] = append(done[v.ContractID], v)
		}
	}
	packages := map[int64][]string{}
	for _, p := range c.facts.Packages {
		packages[p.ContractID] = append(packages[p.ContractID], p.Code)
	}
	groups := c.groupsAt
	for _, k := range c.facts.Contracts {
		start, end := later(k.ConfirmedAt, c.from), c.asOf
		if k.EndedAt.Valid && k.EndedAt.Time.Before(end) {
			end = k.EndedAt.Time
		}
		if !start.Before(end) {
			continue
		}
		share := end.Sub(start).Hours() / 24 / 365
		// Visits marked done early on the period's last day count too.
		visitsEnd := c.to
		if k.EndedAt.Valid && k.EndedAt.Time.Before(visitsEnd) {
			visitsEnd = k.EndedAt.Time
		}
		var kinds map[string]int // most contracts have no visit in the period
		for _, v := range done[k.ID] {
			if !v.StartsAt.Before(start) && v.StartsAt.Before(visitsEnd) {
				if kinds == nil {
					kinds = map[string]int{}
				}
				kinds[v.Kind]++
			}
		}
		var due, delivered float64
		held := groupList(groups[k.ResidentID])
		for _, code := range packages[k.ID] {
			pkg, ok := c.cat.Package(code)
			if !ok {
				continue
			}
			for _, it := range pkg.Items {
				if it.VisitKind == "" || it.PerYear == 0 || !it.DueFor(held) {
					continue
				}
				d := float64(it.PerYear) * share
				due += d
				delivered += min(float64(kinds[it.VisitKind]), d)
			}
		}
		if due > 0 {
			c.add(k.FactPlace, "fulfilment", delivered, due, subject{k.ResidentID, k.ID})
		}
	}
}

func groupList(g map[string]bool) []string {
	out := make([]string, 0, len(g))
	for code := range g {
		out = append(out, code)
	}
	return out
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// countSigned totals the residents signed at the period's end: coverage
// (against the communities' populations), chronic management and paid
// signings.
func (c *counting) countSigned() {
	signed := map[int64]storage.ContractFact{} // by resident: the contract in force at the end
	for _, k := range c.facts.Contracts {
		if k.ConfirmedAt.Before(c.asOf) && (!k.EndedAt.Valid || !k.EndedAt.Time.Before(c.asOf)) {
			if was, ok := signed[k.ResidentID]; !ok || k.ConfirmedAt.After(was.ConfirmedAt) {
				signed[k.ResidentID] = k
			}
		}
	}
	groups := c.groupsAt
	personal := map[int64]bool{}
	for _, p := range c.facts.Packages {
		personal[p.ContractID] = personal[p.ContractID] || p.Split["resident"] > 0
	}
	followups := map[int64]int{}
	for _, v := range c.facts.Visits {
		if v.Status == "done" && v.Kind == "followup" && !v.StartsAt.Before(c.year) {
			followups[v.ResidentID]++
		}
	}
	latest := c.latestReadings(signed, groups)
	inCommunity := map[int64]map[string]int{} // community -> group ("" all) -> signed residents
	for resident, k := range signed {
		g := groups[resident]
		counts := inCommunity[k.CommunityID]
		if counts == nil {
			counts = map[string]int{}
			inCommunity[k.CommunityID] = counts
		}
		counts[""]++
		for code := range g {
			counts[code]++
		}
		key := false
		for _, code := range c.settings.PriorityGroups {
			key = key || g[code]
		}
		who := subject{resident, k.ID}
		if g["hypertension"] || g["diabetes"] {
			c.add(k.FactPlace, "chronic_managed", b2f(followups[resident] >= 4), 1, who)
		}
		if g["hypertension"] {
			c.add(k.FactPlace, "bp_control", b2f(latest[resident].bp.BPControlled()), 1, who)
		}
		if g["diabetes"] {
			c.add(k.FactPlace, "glucose_control", b2f(latest[resident].glucose.GlucoseControlled()), 1, who)
		}
		c.add(k.FactPlace, "paid_share", b2f(personal[k.ID]), b2f(key), who)
		c.watchSigned(k, g, who)
	}
	c.countPopulation(inCommunity)
}

// measured is a resident's latest readings this year, each with when.
type measured struct {
	bp, glucose     Readings
	bpAt, glucoseAt time.Time
}

// latestReadings opens the readings of this year's visits of hypertension
// and diabetes patients signed at the end, keeping each one's latest.
func (c *counting) latestReadings(signed map[int64]storage.ContractFact, groups map[int64]map[string]bool) map[int64]measured {
	out := map[int64]measured{}
	for _, v := range c.facts.Visits {
		g := groups[v.ResidentID]
		if v.Readings == "" || v.StartsAt.Before(c.year) || !(g["hypertension"] || g["diabetes"]) {
			continue
		}
		if _, ok := signed[v.ResidentID]; !ok {
			continue
		}
		r, err := openReadings(c.sealer, v.Readings)
		if err != nil {
			c.err = cmp.Or(c.err, fmt.Errorf("flows.Indicators: readings of a visit: %w", err))
			continue
		}
		m := out[v.ResidentID]
		if r.Systolic > 0 && !v.StartsAt.Before(m.bpAt) {
			m.bp, m.bpAt = r, v.StartsAt
		}
		if r.Glucose > 0 && !v.StartsAt.Before(m.glucoseAt) {
			m.glucose, m.glucoseAt = r, v.StartsAt
		}
		out[v.ResidentID] = m
	}
	return out
}

// groupsOf is each signed resident's priority groups: declared (by their
// keyed hashes) and derived from age at the period's end.
func (c *counting) groupsOf(signed map[int64]storage.ContractFact) map[int64]map[string]bool {
	byTag := map[string]string{}
	var derived []profile.Term
	for _, term := range profile.Words().PriorityGroups {
		if term.Derived != "" {
			derived = append(derived, term)
		} else {
			byTag[c.sealer.Hash(groupsField, term.Code)] = term.Code
		}
	}
	out := map[int64]map[string]bool{}
	for _, g := range c.facts.Groups {
		if code, ok := byTag[g.Tag]; ok {
			if out[g.ResidentID] == nil {
				out[g.ResidentID] = map[string]bool{}
			}
			out[g.ResidentID][code] = true
		}
	}
	for resident, k := range signed {
		birth, err := time.ParseInLocation("2006-01-02", k.BirthDate, Shanghai)
		if err != nil {
			continue
		}
		age := Age(birth, c.asOf.Add(-time.Nanosecond))
		for _, term := range derived {
			op, bound := term.AgeRule()
			if op == ">=" && age >= bound || op == "<=" && age <= bound {
				if out[resident] == nil {
					out[resident] = map[string]bool{}
				}
				out[resident][term.Code] = true
			}
		}
	}
	return out
}

// countPopulation sets the coverage indicators community by community,
// where staff recorded the population, and rolls them up.
func (c *counting) countPopulation(signed map[int64]map[string]int) {
	for i, m := range c.facts.Communities {
		c.facts.Communities[i].Signed = signed[m.ID][""]
		if c.doctorOnly {
			continue // a team's residents are not a share of the community's population
		}
		w := storage.FactPlace{InstitutionID: m.InstitutionID, CommunityID: m.ID}
		for _, p := range []place{{}, {"institution", w.InstitutionID}, {"community", w.CommunityID}} {
			t := c.tally(p)
			if m.Residents > 0 {
				t.add("coverage", float64(signed[m.ID][""]), float64(m.Residents))
			}
			for _, code := range c.settings.PriorityGroups {
				if n := m.PriorityCounts[code]; n > 0 {
					t.add("priority_coverage", float64(signed[m.ID][code]), float64(n))
				}
			}
			if n := m.PriorityCounts["elderly"]; n > 0 {
				t.add("elderly_coverage", float64(signed[m.ID]["elderly"]), float64(n))
			}
		}
	}
}

// groups is the breakdown by one kind of group: every institution,
// community, team or doctor in scope, by name.
func (c *counting) groups(kind string) []Group {
	names := map[int64]string{}
	if kind == "community" {
		for _, m := range c.facts.Communities {
			names[m.ID] = m.Name
		}
	}
	for _, n := range c.facts.Names {
		if n.Kind == kind {
			names[n.ID] = n.Name
		}
	}
	for p := range c.tallies { // a group in the facts but not named (a community outside the filter)
		if _, ok := names[p.id]; p.kind == kind && !ok {
			names[p.id] = fmt.Sprintf("#%d", p.id)
		}
	}
	out := make([]Group, 0, len(names))
	for id, name := range names {
		t := c.tally(place{kind, id})
		out = append(out, Group{ID: id, Name: name, Indicators: t.indicators(c.settings), Activity: t.activity})
	}
	slices.SortFunc(out, func(a, b Group) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })
	return out
}

// AssessedTeam is one team's line of the quarterly assessment sheet (季度考核).
type AssessedTeam struct {
	Team  Group
	Cells []Indicator // the judged indicators, in order
	Met   int         // how many met their target
}

// AssessTeams picks the indicators a team is judged by (those with a
// target, coverage rates aside: a team has no population of its own) and
// each team's line, met when at or above target.
func AssessTeams(r Report) ([]profile.Term, []AssessedTeam) {
	var judged []profile.Term
	for _, t := range profile.Words().Indicators {
		for _, i := range r.Indicators {
			if i.Code == t.Code && i.Target != nil && !strings.HasSuffix(t.Code, "coverage") {
				judged = append(judged, t)
			}
		}
	}
	var rows []AssessedTeam
	for _, g := range r.Breakdown["team"] {
		line := AssessedTeam{Team: g}
		for _, t := range judged {
			for _, i := range g.Indicators {
				if i.Code == t.Code {
					line.Cells = append(line.Cells, i)
					if i.Value != nil && !i.Below {
						line.Met++
					}
				}
			}
		}
		rows = append(rows, line)
	}
	return judged, rows
}
