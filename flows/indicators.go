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
	case p.From.After(today):
		return p, &Refusal{Reason: "开始日期不能晚于今天：还没有发生的事无从统计"}
	case !p.From.Before(p.To):
		return p, &Refusal{Reason: "开始日期须不晚于结束日期"}
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
	Broadcasts    int            `json:"broadcasts"`       // broadcasts sent by the scope's institution (city: all)
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
	From string    `json:"from"`
	To   string    `json:"to"`
	AsOf time.Time `json:"as_of"` // the period's end, or now if that is sooner
	// CountedAt: the figures are summed from each team's totals, the
	// oldest counted then (a city's report; see rollups.go). A period still
	// running is as of then; a closed one may have moved since (a visit
	// marked late).
	CountedAt   *time.Time             `json:"counted_at,omitempty"`
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

// Indicators computes the report of a scope over a period: an
// institution's or the city's from the teams' rollups when they are kept
// and fresh (see rollups.go), every other live.
func Indicators(ctx context.Context, db *storage.DB, s *storage.Sealer, in IndicatorScope, p Period, now time.Time) (Report, error) {
	q, settings, err := indicatorQuery(ctx, db, s, in, p, now)
	if err != nil {
		return Report{}, err
	}
	totals, countedAt, rolled, err := fromRollups(ctx, db, in, q, p, now)
	if err != nil {
		return Report{}, err
	}
	if !rolled {
		if totals, err = db.IndicatorTotals(ctx, q); err != nil {
			return Report{}, err
		}
	}
	c := &counting{settings: settings, names: totals.Names, communities: totals.Communities, tallies: map[place]*tally{},
		doctorOnly: in.Scope.Doctor != 0}
	c.count(totals.Totals)
	r := Report{From: p.From.Format("2006-01-02"), To: p.To.AddDate(0, 0, -1).Format("2006-01-02"), AsOf: q.AsOf.In(Shanghai),
		Breakdown: map[string][]Group{}, Communities: c.communities}
	if rolled {
		at := countedAt.In(Shanghai)
		r.CountedAt = &at
		if countedAt.Before(q.AsOf) {
			r.AsOf = at
		}
	}
	whole := c.tally(place{})
	whole.activity.Pushes = &totals.Pushes
	whole.activity.Broadcasts = totals.Broadcasts
	r.Indicators, r.Activity = whole.indicators(c.settings), whole.activity
	for _, kind := range Breakdowns {
		r.Breakdown[kind] = c.groups(kind)
	}
	r.Months = months(p.From, q.AsOf, totals.Totals)
	return r, nil
}

// indicatorQuery is what the database counts for a report: the period's
// moments and the programme's rules, as the comment at the top says.
func indicatorQuery(ctx context.Context, db *storage.DB, s *storage.Sealer, in IndicatorScope, p Period, now time.Time) (
	storage.IndicatorQuery, profile.Settings, error) {
	settings, err := Settings(ctx, db)
	if err != nil {
		return storage.IndicatorQuery{}, settings, err
	}
	cat, err := db.Catalog(ctx)
	if err != nil {
		return storage.IndicatorQuery{}, settings, err
	}
	asOf := p.To
	if now.Before(asOf) {
		asOf = now
	}
	// The year (and ages) of the period's last moment: a period ending on
	// 31 December has its asOf at the next 1 January.
	last := asOf.Add(-time.Nanosecond).In(Shanghai)
	rules := storage.IndicatorRules{Priority: settings.PriorityGroups, Hypertension: "hypertension", Diabetes: "diabetes",
		FollowupKind: "followup", Followups: chronicFollowups, GoodScore: satisfiedScore,
		BPControlled: s.Hash(bpClassField, "controlled"), GlucoseControlled: s.Hash(glucoseClassField, "controlled")}
	rules.Groups = groupRules(s, last)
	for _, pkg := range cat.Packages {
		for _, it := range pkg.Items {
			if it.VisitKind != "" && it.PerYear > 0 {
				rules.Items = append(rules.Items, storage.ItemRule{Package: pkg.Code, VisitKind: it.VisitKind, PerYear: it.PerYear, For: it.For})
			}
		}
	}
	return storage.IndicatorQuery{Scope: in.Scope, CommunityID: in.CommunityID, From: p.From, AsOf: asOf, To: p.To,
		Year: time.Date(last.Year(), 1, 1, 0, 0, 0, 0, Shanghai), Rules: rules}, settings, nil
}

const (
	chronicFollowups = 4 // a year: 规范管理 of a hypertension or diabetes patient
	satisfiedScore   = 4 // of 5: satisfied
)

// lastBirthday is the latest birth date (YYYY-MM-DD) of someone aged at
// least age on the day of t.
// groupRules say, for the database, who is in each priority group at t:
// those who declared it (by its keyed hash) or those an age puts in it.
func groupRules(s *storage.Sealer, t time.Time) []storage.GroupRule {
	var rules []storage.GroupRule
	for _, term := range profile.Words().PriorityGroups {
		g := storage.GroupRule{Code: term.Code}
		switch op, bound := term.AgeRule(); op {
		case ">=":
			g.BornOnOrBefore = lastBirthday(bound, t)
		case "<=":
			g.BornAfter = lastBirthday(bound+1, t)
		default:
			g.Tag = s.Hash(groupsField, term.Code)
		}
		rules = append(rules, g)
	}
	return rules
}

func lastBirthday(age int, t time.Time) string {
	d := time.Date(t.Year()-age, t.Month(), t.Day(), 0, 0, 0, 0, Shanghai)
	for Age(d, t) < age {
		d = d.AddDate(0, 0, -1)
	}
	for Age(d.AddDate(0, 0, 1), t) >= age {
		d = d.AddDate(0, 0, 1)
	}
	return d.Format("2006-01-02")
}

// months is the whole scope's signings, visits and satisfaction by
// calendar month, from the period's first month to the one holding asOf,
// from the totals' month codes (month:signings:2026-03, …).
func months(from, asOf time.Time, totals []storage.PlaceTotal) []Month {
	var out []Month
	index := map[string]int{}
	for m := time.Date(from.Year(), from.Month(), 1, 0, 0, 0, 0, Shanghai); m.Before(asOf); m = m.AddDate(0, 1, 0) {
		index[m.Format("2006-01")] = len(out)
		out = append(out, Month{Month: m.Format("2006-01")})
	}
	good := map[string]float64{}
	for _, t := range totals {
		what, month, ok := strings.Cut(strings.TrimPrefix(t.Code, "month:"), ":")
		i, known := index[month]
		if !ok || !known || !strings.HasPrefix(t.Code, "month:") {
			continue
		}
		switch n := int(math.Round(t.Numerator)); what {
		case "signings":
			out[i].Signings += n
		case "visits":
			out[i].Visits += n
		case "survey":
			good[month] += t.Numerator
			out[i].Answered += int(math.Round(t.Denominator))
		}
	}
	for i := range out {
		if out[i].Answered > 0 {
			v := round1(100 * good[out[i].Month] / float64(out[i].Answered))
			out[i].Satisfaction = &v
		}
	}
	return out
}

// Member is one resident behind an indicator: what they add to its
// numerator and denominator.
type Member struct {
	ResidentID  int64   `json:"resident_id"`
	ContractID  int64   `json:"contract_id"`
	Numerator   float64 `json:"numerator"`
	Denominator float64 `json:"denominator"`
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
	var at storage.FactPlace
	switch kind {
	case "":
	case "institution":
		at.InstitutionID = id
	case "community":
		at.CommunityID = id
	case "team":
		at.TeamID = id
	case "doctor":
		at.DoctorID = id
	default:
		return nil, &Refusal{Reason: "没有这种分组"}
	}
	q, settings, err := indicatorQuery(ctx, db, s, in, p, now)
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(code, "coverage") {
		return coverageMembers(ctx, db, q, settings, code, at, in.Scope.Doctor != 0)
	}
	rows, err := db.IndicatorSubjects(ctx, q, []string{code}, at)
	if err != nil {
		return nil, err
	}
	out := []Member{}
	for _, r := range rows {
		if r.Code == code {
			out = append(out, Member{ResidentID: r.ResidentID, ContractID: r.ContractID, Numerator: round3(r.Numerator),
				Denominator: round3(r.Denominator)})
		}
	}
	return out, nil
}

// coverageMembers are the residents signed at the end counted by a
// coverage indicator: those whose community recorded the population they
// count against, counted once a group for priority coverage. A doctor's
// teams have no population of their own, so none.
func coverageMembers(ctx context.Context, db *storage.DB, q storage.IndicatorQuery, settings profile.Settings, code string,
	at storage.FactPlace, doctorOnly bool) ([]Member, error) {
	out := []Member{}
	if doctorOnly {
		return out, nil
	}
	communities, err := db.IndicatorCommunities(ctx, q)
	if err != nil {
		return nil, err
	}
	population := map[int64]storage.CommunityRow{}
	for _, m := range communities {
		population[m.ID] = m
	}
	rows, err := db.IndicatorSubjects(ctx, q, []string{"signed"}, at)
	if err != nil {
		return nil, err
	}
	counted := map[storage.Subject]int{} // by resident and contract, place and code cleared
	var order []storage.Subject
	for _, r := range rows {
		m, group := population[r.CommunityID], strings.TrimPrefix(r.Code, "signed:")
		n := 0
		switch {
		case code == "coverage" && r.Code == "signed":
			n = int(b2f(m.Residents > 0))
		case code == "elderly_coverage" && group == "elderly":
			n = int(b2f(m.PriorityCounts["elderly"] > 0))
		case code == "priority_coverage" && r.Code != "signed" && slices.Contains(settings.PriorityGroups, group):
			n = int(b2f(m.PriorityCounts[group] > 0))
		}
		who := storage.Subject{ResidentID: r.ResidentID, ContractID: r.ContractID}
		if n > 0 {
			if _, seen := counted[who]; !seen {
				order = append(order, who)
			}
			counted[who] += n
		}
	}
	for _, who := range order {
		out = append(out, Member{ResidentID: who.ResidentID, ContractID: who.ContractID, Numerator: float64(counted[who])})
	}
	return out, nil
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
		// Judged on the denominator as shown: a sliver of a pro-rata share
		// rounds to 0, and 0 of 0 is no figure, not 0 %.
		if d := t.den[term.Code]; ind.Denominator > 0 {
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

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// counting rolls the database's totals by place up into every group.
type counting struct {
	settings    profile.Settings
	names       []storage.NameFact
	communities []storage.CommunityRow
	tallies     map[place]*tally
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

// count adds each place's totals to the groups it belongs to.
func (c *counting) count(totals []storage.PlaceTotal) {
	signed := map[int64]map[string]int{} // community -> group ("" all) -> residents signed at the end
	for _, t := range totals {
		n := int(math.Round(t.Numerator))
		for _, p := range placesOf(t.FactPlace) {
			g, a := c.tally(p), &c.tally(p).activity
			switch kind, ok := strings.CutPrefix(t.Code, "visit:"); {
			case ok:
				a.Visits += n
				a.VisitsByKind[kind] += n
			case t.Code == "no_show":
				a.NoShows += n
			case t.Code == "signings":
				a.Signings += n
			case t.Code == "cancellations":
				a.Cancellations += n
			case t.Code == "signed" || strings.HasPrefix(t.Code, "signed:") || strings.HasPrefix(t.Code, "month:"):
			default:
				g.add(t.Code, t.Numerator, t.Denominator)
				if t.Code == "renewal" {
					a.Renewals += n
				}
			}
		}
		if group, ok := strings.CutPrefix(t.Code, "signed:"); ok || t.Code == "signed" {
			if !ok {
				group = ""
			}
			if signed[t.CommunityID] == nil {
				signed[t.CommunityID] = map[string]int{}
			}
			signed[t.CommunityID][group] += n
		}
	}
	c.countPopulation(signed)
}

// countPopulation sets the coverage indicators community by community,
// where staff recorded the population, and rolls them up.
func (c *counting) countPopulation(signed map[int64]map[string]int) {
	for i, m := range c.communities {
		c.communities[i].Signed = signed[m.ID][""]
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
		for _, m := range c.communities {
			names[m.ID] = m.Name
		}
	}
	for _, n := range c.names {
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
