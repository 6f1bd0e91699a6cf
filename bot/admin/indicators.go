package admin

import (
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
)

// indicatorReport computes the report a request asks for: ?from= and ?to=
// (YYYY-MM-DD; this year to date without them), ?community=NAME, and for
// city staff ?institution=ID. A *flows.Refusal says what to correct.
func (a *API) indicatorReport(c *gin.Context) (flows.Report, error) {
	return a.indicatorReportFor(c, c.Query("from"), c.Query("to"))
}

// indicatorReportFor is the report of the request's scope over the days
// from and to (YYYY-MM-DD; "" for this year to date).
func (a *API) indicatorReportFor(c *gin.Context, from, to string) (flows.Report, error) {
	period, in, err := a.indicatorQuery(c, from, to)
	if err != nil {
		return flows.Report{}, err
	}
	return flows.Indicators(c.Request.Context(), a.DB, a.Sealer, in, period, a.now())
}

// indicatorQuery reads the period and the scope a request asks for.
func (a *API) indicatorQuery(c *gin.Context, from, to string) (flows.Period, flows.IndicatorScope, error) {
	ctx, p := c.Request.Context(), caller(c)
	in := flows.IndicatorScope{Scope: p.Scope}
	period, err := flows.ParsePeriod(from, to, a.now())
	if err != nil {
		return period, in, err
	}
	if id := c.Query("institution"); id != "" && p.Scope.Whole() {
		inst := formID(id)
		if err := a.DB.Visible(ctx, p.Scope, storage.ThingInstitution, inst); err != nil {
			return period, in, &flows.Refusal{Reason: "没有这个机构"}
		}
		in.Scope.Institution = inst
	}
	if name := c.Query("community"); name != "" {
		found, err := a.DB.CommunitiesNamed(ctx, in.Scope, name)
		switch {
		case err != nil:
			return period, in, err
		case len(found) == 0:
			return period, in, &flows.Refusal{Reason: "没有名为“" + name + "”的社区"}
		case len(found) > 1:
			return period, in, &flows.Refusal{Reason: "有几个机构都有名为“" + name + "”的社区，请先选择机构"}
		}
		in.CommunityID = found[0].ID
	}
	return period, in, nil
}

// MemberRow is a resident behind an indicator, as the console lists them.
type MemberRow struct {
	Resident    storage.ResidentRow `json:"resident"`
	ContractID  int64               `json:"contract_id"`
	Numerator   float64             `json:"numerator"`
	Denominator float64             `json:"denominator"`
}

// indicatorMembers lists a page of the residents behind one indicator
// (:code) in the report's scope or one of its groups (?kind=team&id=3),
// those furthest from counting in the numerator first.
func (a *API) indicatorMembers(c *gin.Context, pg storage.Page) ([]MemberRow, int, error) {
	ctx, p, now := c.Request.Context(), caller(c), a.now()
	period, in, err := a.indicatorQuery(c, c.Query("from"), c.Query("to"))
	if err != nil {
		return nil, 0, err
	}
	kind, id := c.Query("kind"), formID(c.Query("id"))
	if slices.Contains(flows.Breakdowns, kind) { // a group outside the caller's scope is not found, as everywhere
		if err := a.DB.Visible(ctx, in.Scope, storage.Thing(kind), id); err != nil {
			return nil, 0, err
		}
	}
	members, err := flows.IndicatorMembers(ctx, a.DB, a.Sealer, in, period, now, c.Param("code"), kind, id)
	if err != nil {
		return nil, 0, err
	}
	share := func(m flows.Member) float64 {
		if m.Denominator == 0 {
			return m.Numerator
		}
		return m.Numerator / m.Denominator
	}
	slices.SortStableFunc(members, func(x, y flows.Member) int {
		return cmp.Or(cmp.Compare(share(x), share(y)), cmp.Compare(x.ResidentID, y.ResidentID))
	})
	total := len(members)
	members = members[min(pg.Offset, total):min(pg.Offset+pg.Limit, total)]
	ids := make([]int64, len(members))
	for i, m := range members {
		ids[i] = m.ResidentID
	}
	// The members came from facts in the caller's scope; their rows are
	// read in the institution's, so a resident who left the doctor's team
	// in the period is still named.
	rows, err := a.DB.ResidentsByID(ctx, storage.Scope{Institution: p.Scope.Institution}, ids)
	if err != nil {
		return nil, 0, err
	}
	byID := map[int64]storage.ResidentRow{}
	for _, r := range rows {
		byID[r.ID] = r
	}
	out := make([]MemberRow, 0, len(members))
	for _, m := range members {
		if r, ok := byID[m.ResidentID]; ok {
			out = append(out, MemberRow{Resident: r, ContractID: m.ContractID, Numerator: m.Numerator, Denominator: m.Denominator})
		}
	}
	return out, total, nil
}

// members answers GET /admin/api/indicators/:code/members.
func (a *API) members(c *gin.Context) {
	pg, ok := page(c)
	if !ok {
		return
	}
	rows, total, err := a.indicatorMembers(c, pg)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"items": rows, "total": total})
}

// membersPage lists the residents behind one figure of the indicators page.
func (a *API) membersPage(c *gin.Context) {
	pg := pageOf(c)
	rows, total, err := a.indicatorMembers(c, pg)
	var refusal *flows.Refusal
	if errors.As(err, &refusal) {
		a.render(c, http.StatusBadRequest, "problem", gin.H{"Problem": refusal.Reason})
		return
	}
	if err != nil {
		a.pageFail(c, err)
		return
	}
	name := c.Param("code")
	for _, t := range profile.Words().Indicators {
		if t.Code == name {
			name = t.Name
		}
	}
	back := c.Request.URL.Query()
	back.Del("kind")
	back.Del("id")
	back.Del("offset")
	a.render(c, http.StatusOK, "members", gin.H{"Rows": rows, "Pager": pager(c, pg, total), "Name": name, "Code": c.Param("code"),
		"Back": "/admin/indicators?" + back.Encode(), "Population": strings.HasSuffix(c.Param("code"), "coverage")})
}

// indicators answers GET /admin/api/indicators.
func (a *API) indicators(c *gin.Context) {
	r, err := a.indicatorReport(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, r)
}

// indicatorsPage shows the indicators beside their targets, the period's
// activity and one breakdown (?by=).
func (a *API) indicatorsPage(c *gin.Context) {
	p, q := caller(c), c.Request.URL.Query()
	communities, err := a.indicatorCommunities(c)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	data := gin.H{"Query": q, "Communities": communities, "Institutions": a.institutions(c), "Periods": quickPeriods(a.now(), q),
		"Doctor": p.Scope.Doctor != 0}
	r, err := a.indicatorReport(c)
	var refusal *flows.Refusal
	if errors.As(err, &refusal) {
		data["Problem"] = refusal.Reason
		a.render(c, http.StatusBadRequest, "indicators", data)
		return
	}
	if err != nil {
		a.pageFail(c, err)
		return
	}
	by := c.Query("by")
	if by != "institution" && by != "community" && by != "team" && by != "doctor" {
		by = "community"
		if p.Scope.Whole() && c.Query("institution") == "" {
			by = "institution"
		}
	}
	data["R"], data["By"], data["Groups"], data["ByLinks"] = r, by, r.Breakdown[by], byLinks(q)
	data["Terms"], data["CSV"], data["Members"], data["Charts"] = profile.Words().Indicators, csvLink(q), membersLink(q, by), monthCharts(r.Months)
	a.render(c, http.StatusOK, "indicators", data)
}

// membersLink opens one figure of the page to the residents behind it:
// (code) for the whole scope, (code, id) for a group of the breakdown.
func membersLink(q url.Values, by string) func(code string, id ...int64) string {
	return func(code string, id ...int64) string {
		v := url.Values{}
		for _, k := range []string{"from", "to", "community", "institution"} {
			if q.Get(k) != "" {
				v.Set(k, q.Get(k))
			}
		}
		if len(id) > 0 {
			v.Set("kind", by)
			v.Set("id", strconv.FormatInt(id[0], 10))
		}
		return "/admin/indicators/" + url.PathEscape(code) + "?" + v.Encode()
	}
}

// byLinks are the page shown broken down by each kind of group.
func byLinks(q url.Values) []labelledLink {
	var out []labelledLink
	for _, kind := range flows.Breakdowns {
		v := url.Values{}
		for k := range q {
			v.Set(k, q.Get(k))
		}
		v.Set("by", kind)
		out = append(out, labelledLink{kind, "/admin/indicators?" + v.Encode()})
	}
	return out
}

// csvLink is the export of a table of the page shown, ?table=.
func csvLink(q url.Values) func(table string) string {
	return func(table string) string {
		v := url.Values{}
		for _, k := range []string{"from", "to", "community", "institution"} {
			if q.Get(k) != "" {
				v.Set(k, q.Get(k))
			}
		}
		v.Set("table", table)
		return "/admin/indicators.csv?" + v.Encode()
	}
}

type labelledLink struct{ Label, Link string }

// quickPeriods are the periods staff ask for most: this month, last month,
// this quarter, last quarter and this year, keeping the rest of the query.
func quickPeriods(now time.Time, q url.Values) []labelledLink {
	today := flows.StartOfDay(now)
	month := time.Date(today.Year(), today.Month(), 1, 0, 0, 0, 0, flows.Shanghai)
	quarter := time.Date(today.Year(), (today.Month()-1)/3*3+1, 1, 0, 0, 0, 0, flows.Shanghai)
	year := time.Date(today.Year(), 1, 1, 0, 0, 0, 0, flows.Shanghai)
	link := func(from, to time.Time) string {
		v := url.Values{}
		for k := range q {
			v.Set(k, q.Get(k))
		}
		v.Set("from", from.Format("2006-01-02"))
		v.Set("to", to.Format("2006-01-02"))
		return "/admin/indicators?" + v.Encode()
	}
	return []labelledLink{
		{"本月", link(month, today)},
		{"上月", link(month.AddDate(0, -1, 0), month.AddDate(0, 0, -1))},
		{"本季度", link(quarter, today)},
		{"上季度", link(quarter.AddDate(0, -3, 0), quarter.AddDate(0, 0, -1))},
		{"本年", link(year, today)},
	}
}

// indicatorsCSV exports one table of the indicators page (?table=
// indicators, activity, institution, community, team or doctor) for Excel:
// UTF-8 with a byte-order mark.
func (a *API) indicatorsCSV(c *gin.Context) {
	r, err := a.indicatorReport(c)
	var refusal *flows.Refusal
	if errors.As(err, &refusal) {
		c.String(http.StatusBadRequest, refusal.Reason)
		return
	}
	if err != nil {
		a.pageFail(c, err)
		return
	}
	table := c.DefaultQuery("table", "indicators")
	var rows [][]string
	switch table {
	case "indicators":
		rows = indicatorRows(r.Indicators)
	case "activity":
		rows = activityRows(r.Activity)
	case "months":
		rows = [][]string{{"月份", "新签约", "完成就诊", "满意度（%）", "满意度调查答复数"}}
		for _, m := range r.Months {
			rows = append(rows, []string{m.Month, strconv.Itoa(m.Signings), strconv.Itoa(m.Visits), percent(m.Satisfaction), strconv.Itoa(m.Answered)})
		}
	case "institution", "community", "team", "doctor":
		rows = breakdownRows(r.Breakdown[table])
	default:
		c.String(http.StatusBadRequest, "未知的表格")
		return
	}
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="indicators-%s-%s-%s.csv"`, table, r.From, r.To))
	c.Header("Cache-Control", "no-store")
	c.Writer.WriteString("\xef\xbb\xbf")
	w := csv.NewWriter(c.Writer)
	for _, row := range rows {
		for i := range row {
			row[i] = flows.SpreadsheetSafe(row[i])
		}
	}
	w.WriteAll(rows)
}

func percent(v *float64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatFloat(*v, 'f', 1, 64)
}

func target(t *int) string {
	if t == nil {
		return ""
	}
	return strconv.Itoa(*t)
}

func number(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func indicatorRows(inds []flows.Indicator) [][]string {
	rows := [][]string{{"指标", "数值（%）", "目标（%）", "是否低于目标", "分子", "分母"}}
	for _, i := range inds {
		below := ""
		if i.Below {
			below = "低于目标"
		}
		rows = append(rows, []string{i.Name, percent(i.Value), target(i.Target), below, number(i.Numerator), number(i.Denominator)})
	}
	return rows
}

func activityRows(h flows.Happenings) [][]string {
	rows := [][]string{{"项目", "数量"}, {"新签约", strconv.Itoa(h.Signings)}, {"续签", strconv.Itoa(h.Renewals)},
		{"解约", strconv.Itoa(h.Cancellations)}, {"完成就诊", strconv.Itoa(h.Visits)}}
	for _, kind := range []string{"clinic", "home", "checkup", "followup", "referral"} {
		rows = append(rows, []string{"其中" + label(kind), strconv.Itoa(h.VisitsByKind[kind])})
	}
	return append(rows, []string{"爽约", strconv.Itoa(h.NoShows)}, []string{"已发送推送", strconv.Itoa(*cmp.Or(h.Pushes, new(int)))},
		[]string{"群发", strconv.Itoa(h.Broadcasts)})
}

func breakdownRows(groups []flows.Group) [][]string {
	header := []string{"名称"}
	for _, t := range profile.Words().Indicators {
		header = append(header, t.Name+"（%）", t.Name+"分子", t.Name+"分母")
	}
	header = append(header, "新签约", "续签", "解约", "完成就诊", "爽约")
	rows := [][]string{header}
	for _, g := range groups {
		row := []string{g.Name}
		for _, i := range g.Indicators {
			row = append(row, percent(i.Value), number(i.Numerator), number(i.Denominator))
		}
		h := g.Activity
		row = append(row, strconv.Itoa(h.Signings), strconv.Itoa(h.Renewals), strconv.Itoa(h.Cancellations), strconv.Itoa(h.Visits),
			strconv.Itoa(h.NoShows))
		rows = append(rows, row)
	}
	return rows
}

// assessmentPage is the quarterly team assessment (季度考核) sheet, to
// print: each team's indicators that the profile sets targets for, met or
// not, beside its work in the quarter (?quarter=2026-3; the last whole
// quarter by default). Coverage rates are judged by community, not team:
// a team has no population of its own.
func (a *API) assessmentPage(c *gin.Context) {
	now := a.now().In(flows.Shanghai)
	from := time.Date(now.Year(), (now.Month()-1)/3*3+1, 1, 0, 0, 0, 0, flows.Shanghai).AddDate(0, -3, 0)
	if q := c.Query("quarter"); q != "" {
		var year, n int
		if _, err := fmt.Sscanf(q, "%d-%d", &year, &n); err != nil || n < 1 || n > 4 || year < 2000 || year > 2100 {
			a.render(c, http.StatusBadRequest, "problem", gin.H{"Problem": "季度请写成 2026-3 这样"})
			return
		}
		from = time.Date(year, time.Month(3*n-2), 1, 0, 0, 0, 0, flows.Shanghai)
	}
	r, err := a.indicatorReportFor(c, from.Format("2006-01-02"), from.AddDate(0, 3, -1).Format("2006-01-02"))
	var refusal *flows.Refusal
	if errors.As(err, &refusal) { // a quarter still to come, a community unknown
		a.render(c, http.StatusBadRequest, "problem", gin.H{"Problem": refusal.Reason})
		return
	}
	if err != nil {
		a.pageFail(c, err)
		return
	}
	judged, rows := flows.AssessTeams(r)
	prev, next := from.AddDate(0, -3, 0), from.AddDate(0, 3, 0)
	quarter := func(t time.Time) string { return fmt.Sprintf("%d-%d", t.Year(), (int(t.Month())+2)/3) }
	a.render(c, http.StatusOK, "assessment", gin.H{"R": r, "Judged": judged, "Rows": rows, "Quarter": quarter(from),
		"Prev": "/admin/assessment?quarter=" + quarter(prev), "Next": "/admin/assessment?quarter=" + quarter(next)})
}

// indicatorCommunities are the communities the page offers to narrow the
// report to: the caller's, and for a doctor those their teams serve.
func (a *API) indicatorCommunities(c *gin.Context) ([]storage.CommunityRow, error) {
	ctx, p := c.Request.Context(), caller(c)
	communities, _, err := a.DB.ListCommunities(ctx, p.Scope, storage.Page{Limit: 500})
	if err != nil || p.Scope.Doctor == 0 {
		return communities, err
	}
	teams, _, err := a.DB.ListTeams(ctx, p.Scope, storage.Page{Limit: 500})
	if err != nil {
		return nil, err
	}
	served := map[string]bool{}
	for _, t := range teams {
		for _, name := range t.Communities {
			served[name] = true
		}
	}
	return slices.DeleteFunc(communities, func(m storage.CommunityRow) bool { return !served[m.Name] }), nil
}
