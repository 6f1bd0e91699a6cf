package admin

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/gin-gonic/gin"
	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

// registerConsole adds the console's pages under /admin.
func (a *API) registerConsole(r gin.IRouter) {
	static, _ := templates.Console.ReadFile("console/console.css")
	r.GET("/admin/static/console.css", func(c *gin.Context) {
		c.Header("Cache-Control", "public, max-age=3600")
		c.Data(http.StatusOK, "text/css; charset=utf-8", static)
	})
	r.GET("/admin", func(c *gin.Context) { c.Redirect(http.StatusMovedPermanently, "/admin/") })
	r.GET("/admin/login", a.signInForm)
	r.POST("/admin/login", a.signIn)
	g := r.Group("/admin")
	for _, p := range a.consoleRoutes() {
		g.Handle(p.method, p.path, a.pageGuard(p.need), p.handle)
	}
}

// consoleRoutes are the console's pages under /admin and the role each
// needs.
func (a *API) consoleRoutes() []route {
	return []route{
		{"GET", "/", toRead, func(c *gin.Context) { c.Redirect(http.StatusSeeOther, "/admin/residents") }},
		{"POST", "/logout", toRead, a.signOut},
		{"GET", "/residents", toRead, a.residentsPage},
		{"POST", "/residents", toRead, a.searchResidentsPage},
		{"GET", "/residents/:id", toRead, a.residentPage},
		{"POST", "/residents/:id/unmask", toCare, a.unmaskPage},
		{"POST", "/residents/:id/due", toCare, a.dueDatePage},
		{"POST", "/residents/:id", toCare, a.updateResidentPage},
		{"POST", "/residents/:id/fees", toManage, a.feePage},
		{"GET", "/sign", toCare, a.deskPage},
		{"POST", "/sign", toCare, a.deskSign},
		{"GET", "/requests", toRead, a.requestsPage},
		{"POST", "/requests/:number", toCare, a.answerPage},
		{"GET", "/communities", toRead, a.communitiesPage},
		{"POST", "/communities", toManage, a.createCommunityPage},
		{"POST", "/communities/:id/population", toManage, a.populationPage},
		{"GET", "/teams", toRead, a.teamsPage},
		{"POST", "/teams", toManage, a.createTeamPage},
		{"POST", "/teams/handover", toManage, a.handoverPage},
		{"GET", "/doctors", toRead, a.doctorsPage},
		{"POST", "/doctors", toManage, a.createDoctorPage},
		{"POST", "/doctors/:id/binding-code", toManage, a.bindingCodePage},
		{"GET", "/doctors/:id/schedule", toRead, a.schedulePage},
		{"POST", "/doctors/:id/schedule", toCare, a.scheduleChange},
		{"GET", "/appointments", toRead, a.appointmentsPage},
		{"POST", "/appointments/:id/visit", toCare, a.markPage},
		{"POST", "/closures", toManage, a.closurePage},
		{"GET", "/packages", toRead, a.packagesPage},
		{"POST", "/packages/:code/price", toManage, a.pricePage},
		{"GET", "/indicators", toRead, a.indicatorsPage},
		{"GET", "/indicators.csv", toRead, a.indicatorsCSV},
		{"GET", "/indicators/:code", toRead, a.membersPage},
		{"GET", "/assessment", toRead, a.assessmentPage},
		{"GET", "/outbox", toRead, a.outboxPage},
		{"GET", "/calendar", toRead, a.calendarPage},
		{"POST", "/calendar", toManage, a.addCalendarPage},
		{"GET", "/calendar/:code", toManage, a.calendarEntryPage},
		{"POST", "/calendar/:code", toManage, a.editCalendarPage},
		{"POST", "/calendar/:code/reset", toManage, a.resetCalendarPage},
		{"GET", "/broadcasts", toRead, a.broadcastsPage},
		{"GET", "/broadcasts/new", toManage, a.composePage},
		{"POST", "/broadcasts/new", toManage, a.composeAction},
		{"GET", "/broadcasts/:id", toRead, a.broadcastPage},
		{"POST", "/broadcasts/:id/cancel", toManage, a.cancelBroadcastPage},
		{"POST", "/outbox/:id/retry", toManage, a.retryPage},
		{"GET", "/audit", toManage, a.auditPage},
		{"GET", "/data-requests", toManage, a.dataRequestsPage},
		{"POST", "/data-requests/:id", toManage, a.answerDataRequestPage},
		{"GET", "/staff", toManage, a.staffPage},
		{"POST", "/staff", toManage, a.createStaffPage},
		{"POST", "/staff/:id", toManage, a.changeStaffPage},
		{"GET", "/import", toRead, a.importPage},
		{"POST", "/import/:what", toManage, a.importFilePage},
		{"GET", "/password", toRead, a.passwordPage},
		{"POST", "/password", toRead, a.changePasswordPage},
	}
}

// residentsPage lists residents by the search in the query string.
func (a *API) residentsPage(c *gin.Context) {
	var s residentSearch
	c.ShouldBindQuery(&s) // a bad ID reads as none: the page shows every resident
	// A whole number is refused here as the API refuses it: the search box
	// posts it.
	if wholeNumber(a.filter(s)) {
		s.Q = ""
		a.showResidents(c, s, http.StatusBadRequest, "完整的身份证号或手机号请在搜索框里输入查找，不要放在网址中。")
		return
	}
	a.showResidents(c, s, http.StatusOK, "")
}

// searchResidentsPage takes the search form, which posts so that a whole
// ID number or phone never lands in a URL: that search is answered here,
// any other goes to the listing's URL, where it can be paged and kept.
func (a *API) searchResidentsPage(c *gin.Context) {
	var s residentSearch
	c.ShouldBind(&s)
	if !wholeNumber(a.filter(s)) {
		q := url.Values{}
		for k, v := range map[string]string{"q": strings.TrimSpace(s.Q), "status": s.Status, "group": s.Group} {
			if v != "" {
				q.Set(k, v)
			}
		}
		if s.Community != 0 {
			q.Set("community", strconv.FormatInt(s.Community, 10))
		}
		c.Redirect(http.StatusSeeOther, "/admin/residents?"+q.Encode())
		return
	}
	a.showResidents(c, s, http.StatusOK, "")
}

func (a *API) showResidents(c *gin.Context, s residentSearch, status int, problem string) {
	ctx, p, pg := c.Request.Context(), caller(c), pageOf(c)
	f := a.filter(s)
	rows, total, err := a.DB.ListResidents(ctx, p.Scope, f, pg)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	communities, _, err := a.DB.ListCommunities(ctx, p.Scope, storage.Page{Limit: 500})
	if err != nil {
		a.pageFail(c, err)
		return
	}
	groups, err := flows.PriorityGroups(ctx, a.DB)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	data := gin.H{"Rows": rows, "Pager": pager(c, pg, total), "Filter": f, "Group": s.Group,
		"Communities": communities, "Groups": groups, "Statuses": []string{"active", "pending", "declined", "cancelled", "expired"}}
	if problem != "" {
		data["Problem"], data["Rows"] = problem, []storage.ResidentRow{}
	}
	a.render(c, status, "residents", data)
}

func (a *API) residentPage(c *gin.Context) {
	a.showResident(c, http.StatusOK, nil, "")
}

// showResident shows a resident's page; secrets, when given, are the
// resident's full ID number and phone, shown once after a stated reason.
func (a *API) showResident(c *gin.Context, status int, secrets gin.H, problem string) {
	ctx, p := c.Request.Context(), caller(c)
	file, err := a.residentFile(c)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	r, contracts, visits := file.Resident, file.Contracts, file.Visits
	communities, _, err := a.DB.ListCommunities(ctx, p.Scope, storage.Page{Limit: 500})
	if err != nil {
		a.pageFail(c, err)
		return
	}
	teams, _, err := a.DB.ListTeams(ctx, storage.Scope{Institution: p.Scope.Institution}, storage.Page{Limit: 500})
	if err != nil {
		a.pageFail(c, err)
		return
	}
	accounts := map[int64]storage.Account{}
	for _, k := range contracts {
		if accounts[k.ID], err = a.DB.ContractAccount(ctx, k.ID); err != nil {
			a.pageFail(c, err)
			return
		}
	}
	ids := make([]int64, len(contracts))
	for i, k := range contracts {
		ids[i] = k.ID
	}
	reasons, err := a.DB.EndReasons(ctx, ids)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	due, _, err := flows.OpenDueDate(a.Sealer, r.DueDateSealed)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	a.render(c, status, "resident", gin.H{"R": r, "Contracts": contracts, "EndReasons": reasons, "Visits": visits, "Referrals": file.Referrals, "Pushes": file.Pushes, "Secrets": secrets, "Problem": problem,
		"Communities": communities, "Teams": teams, "Accounts": accounts, "Methods": flows.PaymentMethods, "Due": dayOrEmpty(due)})
}

func dayOrEmpty(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format("2006-01-02")
}

// residentRefused shows the resident's page again with why a change was refused.
func (a *API) residentRefused(c *gin.Context) func(string) {
	return func(reason string) { a.showResident(c, http.StatusBadRequest, nil, reason) }
}

// dueDatePage records or clears a pregnant resident's expected due date.
func (a *API) dueDatePage(c *gin.Context) {
	p := caller(c)
	said, err := flows.SetDueDate(c.Request.Context(), a.DB, a.Sealer, p.Scope, formID(c.Param("id")), c.PostForm("due"), p.Name, a.now())
	a.finish(c, err, a.residentRefused(c), "/admin/residents/"+c.Param("id"), said)
}

// feePage records a payment or a refund at the counter.
func (a *API) feePage(c *gin.Context) {
	p := caller(c)
	fen, ok := parseYuan(c.PostForm("yuan"))
	if !ok {
		a.showResident(c, http.StatusBadRequest, nil, "金额请写成 50 或 50.5 这样的元数。")
		return
	}
	// The form names the contract; it must be this page's resident's, or
	// the fee would land on someone the staff member is not looking at.
	number := c.PostForm("number")
	k, err := a.DB.ContractByNumber(c.Request.Context(), number)
	if err == nil && k.ResidentID != formID(c.Param("id")) {
		err = storage.ErrNotFound
	}
	if err != nil {
		a.pageFail(c, err)
		return
	}
	_, err = flows.RecordFee(c.Request.Context(), a.DB, p.Scope, number, storage.Payment{Kind: c.PostForm("kind"),
		Fen: fen, Method: c.PostForm("method"), Receipt: c.PostForm("receipt"), RecordedBy: p.Name})
	var refusal *flows.Refusal
	if errors.As(err, &refusal) {
		a.showResident(c, http.StatusBadRequest, nil, refusal.Reason)
		return
	}
	if err != nil {
		a.pageFail(c, err)
		return
	}
	done(c, "/admin/residents/"+c.Param("id"), "已登记"+label(c.PostForm("kind"))+" "+c.PostForm("yuan")+" 元。")
}

// parseYuan reads an amount in yuan with at most two decimals as fen.
func parseYuan(s string) (int64, bool) {
	whole, frac, _ := strings.Cut(strings.TrimSpace(s), ".")
	if len(frac) > 2 || whole == "" {
		return 0, false
	}
	frac += strings.Repeat("0", 2-len(frac))
	y, err1 := strconv.ParseInt(whole, 10, 64)
	f, err2 := strconv.ParseInt(frac, 10, 64)
	if err1 != nil || err2 != nil || y < 0 || y > 1_000_000 {
		return 0, false
	}
	return y*100 + f, true
}

// updateResidentPage records a resident's move or new phone; a contract
// whose team does not serve the new community moves with the new team's
// agreement.
func (a *API) updateResidentPage(c *gin.Context) {
	p := caller(c)
	said, err := flows.UpdateResident(c.Request.Context(), a.DB, a.Sealer, p.Scope, flows.ResidentChange{
		ResidentID: formID(c.Param("id")), Phone: c.PostForm("phone"), CommunityID: formID(c.PostForm("community")),
		TeamID: formID(c.PostForm("team")), Actor: p.Name, Now: a.now()})
	a.finish(c, err, a.residentRefused(c), "/admin/residents/"+c.Param("id"), said)
}

// unmaskPage shows a resident's full ID number and phone to staff who say
// why; the audit log records who, when and why before anything is shown.
func (a *API) unmaskPage(c *gin.Context) {
	reason, ok := unmaskReason(c.PostForm("reason"))
	if !ok {
		a.showResident(c, http.StatusBadRequest, nil, "查看完整信息须填写事由（4 到 200 字）。")
		return
	}
	id, phone, err := a.reveal(c, reason)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	a.showResident(c, http.StatusOK, gin.H{"ID": id, "Phone": phone, "Reason": reason}, "")
}

func (a *API) requestsPage(c *gin.Context) {
	pg := pageOf(c)
	rows, total, err := a.DB.ListContracts(c.Request.Context(), caller(c).Scope, storage.ContractPending, pg)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	changes, _, err := a.DB.ListTeamChanges(c.Request.Context(), caller(c).Scope, storage.Page{Limit: 200})
	if err != nil {
		a.pageFail(c, err)
		return
	}
	a.render(c, http.StatusOK, "requests", gin.H{"Rows": rows, "Pager": pager(c, pg, total), "Changes": changes})
}

// answerPage confirms or declines a sign request in its doctor's name, for
// a doctor who has not bound WeChat; the resident is told as if the doctor
// had answered in chat.
func (a *API) answerPage(c *gin.Context) {
	ctx, p, number := c.Request.Context(), caller(c), c.Param("number")
	if c.PostForm("change") == "yes" {
		a.answerChangePage(c)
		return
	}
	if err := a.DB.Visible(ctx, p.Scope, storage.ThingContract, number); err != nil {
		a.pageFail(c, err)
		return
	}
	contract, err := a.DB.ContractByNumber(ctx, number)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	if c.PostForm("answer") == "member" {
		err := flows.ConfirmMemberAtDesk(ctx, a.DB, p.Scope, number, "staff:"+p.Name, a.now())
		switch {
		case errors.Is(err, storage.ErrNotFound):
			refused(c, "/admin/requests", "签约申请 "+number+" 不在等本人确认。")
		case err != nil:
			a.pageFail(c, err)
		default:
			a.recordOn(c, storage.ThingContract, number, "contract.member_confirmed", number, "")
			done(c, "/admin/requests", "已记录本人到窗口确认，已请医生确认。")
		}
		return
	}
	reason := ""
	if c.PostForm("answer") != "confirm" {
		if reason = strings.TrimSpace(c.PostForm("reason")); reason == "" {
			refused(c, "/admin/requests", "拒绝签约须填写原因，居民会看到它。")
			return
		}
	}
	_, err = flows.AnswerSignRequest(ctx, a.DB, contract, "staff:"+p.Name, reason, a.now())
	if err == nil {
		a.recordOn(c, storage.ThingContract, number, "contract.answer", number, answeredFor(contract.DoctorName, reason))
	}
	switch {
	case errors.Is(err, storage.ErrStatusChanged):
		refused(c, "/admin/requests", "签约申请 "+number+" 已经处理过了。")
	case err != nil:
		a.pageFail(c, err)
	case reason == "":
		done(c, "/admin/requests", "已确认签约 "+number+"，居民会收到通知。")
	default:
		done(c, "/admin/requests", "已拒绝签约 "+number+"，居民会收到通知。")
	}
}

// institutionFor is the institution a new community, doctor or team goes
// to: the caller's own, or for city staff the one they chose.
func (a *API) institutionFor(c *gin.Context) (int64, bool) {
	p := caller(c)
	if p.Scope.Institution != 0 {
		return p.Scope.Institution, true
	}
	id := formID(c.PostForm("institution"))
	if _, err := a.DB.InstitutionByID(c.Request.Context(), id); err != nil {
		refused(c, c.Request.URL.Path, "请选择机构。")
		return 0, false
	}
	return id, true
}

func (a *API) institutions(c *gin.Context) []storage.Institution {
	if !caller(c).Scope.Whole() {
		return nil
	}
	list, err := a.DB.Institutions(c.Request.Context())
	if err != nil {
		a.Log.Error("console: institutions", "err", err)
	}
	return list
}

func (a *API) communitiesPage(c *gin.Context) {
	pg := pageOf(c)
	rows, total, err := a.DB.ListCommunities(c.Request.Context(), caller(c).Scope, pg)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	groups, err := flows.PriorityGroups(c.Request.Context(), a.DB)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	a.render(c, http.StatusOK, "communities", gin.H{"Rows": rows, "Pager": pager(c, pg, total), "Institutions": a.institutions(c),
		"Groups": groups, "Today": a.now().In(flows.Shanghai).Format("2006-01-02")})
}

// populationPage records a community's population and its priority
// groups' counts, the signing rates' denominators.
func (a *API) populationPage(c *gin.Context) {
	p := caller(c)
	population, err := formInt(c.PostForm("population"))
	if err != nil {
		refused(c, "/admin/communities", "常住人口须为整数。")
		return
	}
	groups := map[string]int{}
	for key, values := range c.Request.PostForm {
		code, ok := strings.CutPrefix(key, "group_")
		if !ok || len(values) == 0 || strings.TrimSpace(values[0]) == "" {
			continue
		}
		n, err := formInt(strings.TrimSpace(values[0]))
		if err != nil {
			refused(c, "/admin/communities", "重点人群人数须为整数。")
			return
		}
		groups[code] = n
	}
	err = flows.SetPopulation(c.Request.Context(), a.DB, p.Scope, formID(c.Param("id")), population, groups, c.PostForm("counted_on"),
		a.now(), p.Name)
	var refusal *flows.Refusal
	if errors.As(err, &refusal) {
		refused(c, "/admin/communities", "没有保存："+refusal.Reason)
		return
	}
	if err != nil {
		a.pageFail(c, err)
		return
	}
	done(c, "/admin/communities", "已保存人口数。")
}

func (a *API) createCommunityPage(c *gin.Context) {
	inst, ok := a.institutionFor(c)
	if !ok {
		return
	}
	name, town := strings.TrimSpace(c.PostForm("name")), strings.TrimSpace(c.PostForm("town"))
	population, err := formInt(c.PostForm("population"))
	if name == "" || town == "" || err != nil {
		refused(c, "/admin/communities", "请填写社区名称、所属乡镇/街道，常住人口填写数字。")
		return
	}
	_, err = a.DB.CreateCommunity(c.Request.Context(), storage.Community{InstitutionID: inst, Town: town, Name: name},
		population, caller(c).Name)
	if errors.Is(err, storage.ErrExists) {
		refused(c, "/admin/communities", "本机构已有名为“"+name+"”的社区。")
		return
	}
	if err != nil {
		a.pageFail(c, err)
		return
	}
	done(c, "/admin/communities", "已添加社区："+name)
}

func (a *API) teamsPage(c *gin.Context) {
	ctx, p, pg := c.Request.Context(), caller(c), pageOf(c)
	rows, total, err := a.DB.ListTeams(ctx, p.Scope, pg)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	doctors, _, err := a.DB.ListDoctors(ctx, p.Scope, storage.Page{Limit: 500})
	if err != nil {
		a.pageFail(c, err)
		return
	}
	communities, _, err := a.DB.ListCommunities(ctx, p.Scope, storage.Page{Limit: 500})
	if err != nil {
		a.pageFail(c, err)
		return
	}
	settings, err := flows.Settings(ctx, a.DB)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	a.render(c, http.StatusOK, "teams", gin.H{"Rows": rows, "Pager": pager(c, pg, total), "Doctors": doctors,
		"Communities": communities, "Model": settings.TeamModel})
}

func (a *API) createTeamPage(c *gin.Context) {
	ctx, p := c.Request.Context(), caller(c)
	doctor := formID(c.PostForm("doctor"))
	if err := a.DB.Visible(ctx, p.Scope, storage.ThingDoctor, doctor); err != nil {
		refused(c, "/admin/teams", "请选择团队负责医生。")
		return
	}
	d, err := a.DB.DoctorInstitution(ctx, doctor)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	name := strings.TrimSpace(c.PostForm("name"))
	var communities []int64
	for _, v := range c.PostFormArray("community") {
		communities = append(communities, formID(v))
	}
	if name == "" || len(communities) == 0 {
		refused(c, "/admin/teams", "请填写团队名称，并至少选择一个服务社区。")
		return
	}
	roles, err := flows.TeamRoles(ctx, a.DB)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	// One field per role of the team model, names apart by 、，or spaces.
	var members []storage.Member
	for _, role := range roles {
		for _, who := range strings.FieldsFunc(c.PostForm("member:"+role), func(r rune) bool {
			return r == '、' || r == '，' || r == ',' || r == '；' || r == ';' || unicode.IsSpace(r)
		}) {
			members = append(members, storage.Member{Role: role, Name: who})
		}
	}
	_, err = a.DB.CreateTeam(ctx, d, storage.NewTeam{Name: name, Members: members}, doctor, communities, p.Name)
	if errors.Is(err, storage.ErrExists) {
		refused(c, "/admin/teams", "本机构已有名为“"+name+"”的团队。")
		return
	}
	if errors.Is(err, storage.ErrNotFound) {
		refused(c, "/admin/teams", "所选社区须属于负责医生所在的机构。")
		return
	}
	if err != nil {
		a.pageFail(c, err)
		return
	}
	done(c, "/admin/teams", "已添加团队："+name)
}

func (a *API) doctorsPage(c *gin.Context) {
	a.showDoctors(c, http.StatusOK, nil)
}

func (a *API) showDoctors(c *gin.Context, status int, issued gin.H) {
	pg := pageOf(c)
	rows, total, err := a.DB.ListDoctors(c.Request.Context(), caller(c).Scope, pg)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	a.render(c, status, "doctors", gin.H{"Rows": rows, "Pager": pager(c, pg, total), "Issued": issued, "Institutions": a.institutions(c)})
}

func (a *API) createDoctorPage(c *gin.Context) {
	inst, ok := a.institutionFor(c)
	if !ok {
		return
	}
	name, title := strings.TrimSpace(c.PostForm("name")), strings.TrimSpace(c.PostForm("title"))
	if name == "" {
		refused(c, "/admin/doctors", "请填写医生姓名。")
		return
	}
	if _, err := a.DB.CreateDoctor(c.Request.Context(), storage.Doctor{InstitutionID: inst, Name: name, Title: title}, caller(c).Name); err != nil {
		a.pageFail(c, err)
		return
	}
	done(c, "/admin/doctors", "已添加医生："+name+"。请为其生成绑定码，医生在公众号发送“绑定 绑定码”即可接收通知。")
}

func (a *API) bindingCodePage(c *gin.Context) {
	ctx, p := c.Request.Context(), caller(c)
	id := formID(c.Param("id"))
	if err := a.DB.Visible(ctx, p.Scope, storage.ThingDoctor, id); err != nil {
		a.pageFail(c, err)
		return
	}
	now, ttl := a.now(), a.bindingTTL()
	code, err := flows.IssueBindingCode(ctx, a.DB, a.Sealer, id, now, ttl)
	if errors.Is(err, storage.ErrNotFound) {
		refused(c, "/admin/doctors", "该医生已绑定微信，无需绑定码。")
		return
	}
	if err != nil {
		a.pageFail(c, err)
		return
	}
	a.showDoctors(c, http.StatusOK, gin.H{"Doctor": id, "Code": code, "Expires": now.Add(ttl)})
}

func (a *API) packagesPage(c *gin.Context) {
	cat, err := a.DB.Catalog(c.Request.Context())
	if err != nil {
		a.pageFail(c, err)
		return
	}
	s, err := profile.SettingsOf(cat)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	owns := a.ownsCatalog(c)
	if owns != nil && !errors.Is(owns, errNotCatalogOwner) {
		a.pageFail(c, owns)
		return
	}
	var assumed []string
	for _, name := range s.Assumed {
		assumed = append(assumed, label("setting."+name))
	}
	// The form starts from the local shares already set.
	set := map[string]map[string]int64{}
	for _, p := range cat.Packages {
		set[p.Code] = map[string]int64{}
		for payer, fen := range p.Price(storage.InsuredLocal) {
			if fen > 0 {
				set[p.Code][payer] = fen
			}
		}
	}
	a.render(c, http.StatusOK, "packages", gin.H{"Catalog": cat, "Payers": profile.Words().Payers, "Set": set,
		"OwnsCatalog": owns == nil, "AssumedSettings": assumed})
}

// pricePage sets a package's price from the console form: an amount in
// yuan for each payer that pays a share (blank: none), and for a price
// with an insurance share how residents insured elsewhere are charged.
func (a *API) pricePage(c *gin.Context) {
	if err := a.ownsCatalog(c); errors.Is(err, errNotCatalogOwner) {
		refused(c, "/admin/packages", "服务包目录由全市共用，价格由市级账号设定。")
		return
	} else if err != nil {
		a.pageFail(c, err)
		return
	}
	cat, err := a.DB.Catalog(c.Request.Context())
	if err != nil {
		a.pageFail(c, err)
		return
	}
	pkg, ok := cat.Package(c.Param("code"))
	if !ok {
		a.pageFail(c, storage.ErrNotFound)
		return
	}
	local := storage.Split{}
	for _, payer := range profile.Words().Payers {
		text := strings.TrimSpace(c.PostForm("local_" + payer.Code))
		if _, had := pkg.Price(storage.InsuredLocal)[payer.Code]; text == "" && had {
			// A share the price has, known or not, is not dropped by a
			// field left empty.
			refused(c, "/admin/packages", payer.Name+"的金额请填写（不付费请填0）。")
			return
		}
		if text == "" {
			continue
		}
		fen, ok := parseYuan(text)
		if !ok {
			refused(c, "/admin/packages", payer.Name+"的金额请填写数字（元，最多两位小数）。")
			return
		}
		if fen > 0 {
			local[payer.Code] = fen
		}
	}
	prices := map[storage.Insured]storage.Split{storage.InsuredLocal: local}
	if _, ok := local["insurance"]; ok {
		elsewhere, err := profile.Derive(local, c.PostForm("elsewhere"))
		if err != nil {
			refused(c, "/admin/packages", "有医保支付的价格，请选择非本区参保居民怎么付费。")
			return
		}
		prices[storage.InsuredElsewhere] = elsewhere
	}
	if err := profile.CheckPrice(prices); err != nil {
		refused(c, "/admin/packages", "价格没有保存："+err.Error())
		return
	}
	if err := a.DB.SetPackagePrice(c.Request.Context(), c.Param("code"), prices, caller(c).Name); err != nil {
		a.pageFail(c, err)
		return
	}
	done(c, "/admin/packages", "价格已保存，新签约按新价格计算；已签约的保持签约时的价格。")
}

func (a *API) outboxPage(c *gin.Context) {
	pg, state := pageOf(c), c.DefaultQuery("state", "dead")
	if state != "dead" && state != "pending" && state != "sent" && state != "cancelled" {
		state = "dead"
	}
	rows, total, err := a.DB.ListOutbox(c.Request.Context(), caller(c).Scope, state, pg)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	a.render(c, http.StatusOK, "outbox", gin.H{"Rows": rows, "Pager": pager(c, pg, total), "State": state})
}

func (a *API) retryPage(c *gin.Context) {
	p := caller(c)
	err := a.DB.RetryDead(c.Request.Context(), p.Scope, formID(c.Param("id")), a.now(), p.Name)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	done(c, "/admin/outbox", "已重新发送。")
}

// dataRequestsPage lists residents' deletion requests, open first.
func (a *API) dataRequestsPage(c *gin.Context) {
	pg := pageOf(c)
	rows, total, err := a.DB.DataRequests(c.Request.Context(), caller(c).Scope, pg)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	a.render(c, http.StatusOK, "datarequests", gin.H{"Rows": rows, "Pager": pager(c, pg, total)})
}

// answerDataRequestPage records how a deletion request was handled; the
// resident is told the answer.
func (a *API) answerDataRequestPage(c *gin.Context) {
	p := caller(c)
	err := flows.AnswerDeletion(c.Request.Context(), a.DB, p.Scope, formID(c.Param("id")), p.Name, c.PostForm("answer"), a.now())
	var refusal *flows.Refusal
	if errors.As(err, &refusal) {
		refused(c, "/admin/data-requests", refusal.Reason)
		return
	}
	if err != nil {
		a.pageFail(c, err)
		return
	}
	done(c, "/admin/data-requests", "已记录办理结果，并告知申请人。")
}

func (a *API) auditPage(c *gin.Context) {
	pg := pageOf(c)
	rows, total, err := a.DB.AuditLog(c.Request.Context(), caller(c).Scope, pg)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	a.render(c, http.StatusOK, "audit", gin.H{"Rows": rows, "Pager": pager(c, pg, total)})
}

// handoverPage hands a team's residents to another team in one action.
func (a *API) handoverPage(c *gin.Context) {
	p := caller(c)
	if c.PostForm("confirm") != "yes" {
		refused(c, "/admin/teams", "请勾选确认后再移交。")
		return
	}
	h, err := flows.HandOverTeam(c.Request.Context(), a.DB, p.Scope, formID(c.PostForm("from")), formID(c.PostForm("to")),
		c.PostForm("retire") == "yes", p.Name, a.now())
	var refusal *flows.Refusal
	switch {
	case errors.Is(err, storage.ErrNotFound):
		refused(c, "/admin/teams", "请选择本机构的两个不同团队。")
		return
	case errors.As(err, &refusal):
		refused(c, "/admin/teams", refusal.Reason)
		return
	}
	if err != nil {
		a.pageFail(c, err)
		return
	}
	done(c, "/admin/teams", fmt.Sprintf("已移交 %d 份签约（含待确认的申请）和 %d 次已预约的就诊；居民和接手团队的医生会收到通知。",
		len(h.Contracts), len(h.Appointments)))
}

// answerChangePage confirms or declines a 改签 in the new team's doctor's
// name, for a doctor who has not bound WeChat.
func (a *API) answerChangePage(c *gin.Context) {
	ctx, p, number := c.Request.Context(), caller(c), c.Param("number")
	if err := a.DB.Visible(ctx, p.Scope, storage.ThingTeamChange, number); err != nil {
		a.pageFail(c, err)
		return
	}
	contract, err := a.DB.ContractByNumber(ctx, number)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	team, err := a.DB.TeamByID(ctx, contract.ChangeTeamID.Int64)
	if err != nil {
		a.pageFail(c, err)
		return
	}
	if c.PostForm("answer") == "member" {
		err := flows.ConfirmMemberAtDesk(ctx, a.DB, p.Scope, number, "staff:"+p.Name, a.now())
		switch {
		case errors.Is(err, storage.ErrNotFound):
			refused(c, "/admin/requests", "签约申请 "+number+" 不在等本人确认。")
		case err != nil:
			a.pageFail(c, err)
		default:
			a.recordOn(c, storage.ThingContract, number, "contract.member_confirmed", number, "")
			done(c, "/admin/requests", "已记录本人到窗口确认，已请医生确认。")
		}
		return
	}
	reason := ""
	if c.PostForm("answer") != "confirm" {
		if reason = strings.TrimSpace(c.PostForm("reason")); reason == "" {
			refused(c, "/admin/requests", "拒绝改签须填写原因，居民会看到它。")
			return
		}
	}
	err = flows.AnswerTeamChange(ctx, a.DB, contract, team.DoctorName, "staff:"+p.Name, reason, a.now())
	if err == nil {
		a.record(c, team.InstitutionID, "contract.change_answer", number, answeredFor(team.DoctorName, reason))
	}
	switch {
	case errors.Is(err, storage.ErrStatusChanged):
		refused(c, "/admin/requests", "改签 "+number+" 已经处理过了。")
	case err != nil:
		a.pageFail(c, err)
	case reason == "":
		done(c, "/admin/requests", "已确认改签 "+number+"，签约转到"+team.Name+"，居民和原医生会收到通知。")
	default:
		done(c, "/admin/requests", "已拒绝改签 "+number+"，签约仍在原团队，居民会收到通知。")
	}
}
