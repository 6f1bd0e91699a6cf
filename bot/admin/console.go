package admin

import (
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

// The console: server-rendered pages in Chinese, plain HTML forms that work
// with JavaScript off, every asset from the binary. Each page passes the
// same admit check as the API, and reads and writes through the same
// scoped storage and flows calls.

var labels = map[string]string{
	"admin": "管理员", "doctor": "医生", "viewer": "只读", "city": "市级",
	"pending": "待确认", "active": "生效中", "declined": "已拒绝", "cancelled": "已解约", "expired": "已到期",
	"booked": "已预约", "done": "已完成", "no_show": "未到",
	"clinic": "门诊", "home": "上门", "checkup": "体检", "followup": "随访", "referral": "转诊",
	"male": "男", "female": "女", "dead": "发送失败", "sent": "已发送",
	"basic": "基础包", "personalised": "个性化包", "addon": "附加包",
	"resident": "个人", "insurance": "医保", "public_health": "公共卫生经费", "local": "本地参保", "elsewhere": "异地参保",
	"sign_request": "签约申请", "sign_confirmed": "签约确认", "sign_declined": "签约被拒", "sign_reminder": "签约提醒医生",
	"sign_waiting": "签约等待告知", "contract_cancelled": "解约", "contract_renewed": "续签", "team_change_confirmed": "改签确认",
	"team_change_declined": "改签被拒", "team_changed": "改签转出", "team_handover": "团队移交", "handover_received": "移交接收",
	"referral_request": "转诊申请", "booking_created": "新预约", "booking_changed": "改约", "booking_cancelled": "取消预约", "booking_doctor_leave": "医生停诊",
	"appointment_reminder": "就诊提醒", "satisfaction": "满意度", "satisfaction_survey": "满意度调查", "doctor_agenda": "医生日程", "seasonal": "季节提醒", "seasonal_reminder": "季节提醒", "personal_reminder": "个人提醒",
	"personal": "个人提醒", "late_reply": "延迟回复",
	"payment": "收费", "refund": "退费",
	"resident.unmask": "查看完整身份信息", "resident.update": "修改居民信息", "resident.due_date": "修改预产期", "calendar.edit": "修改健康日历", "contract.desk_sign": "代签约",
	"contract.answer": "代医生答复签约", "contract.change_answer": "代医生答复改签", "contract.payment": "登记收费",
	"contract.refund": "登记退费", "team.handover": "团队移交", "team.create": "添加团队", "doctor.create": "添加医生",
	"community.create": "添加社区", "community.population": "登记人口数", "staff.create": "创建账号",
	"staff.password": "重置密码", "staff.disable": "停用账号", "staff.enable": "启用账号", "outbox.retry": "重新发送推送",
	"import.residents": "导入居民", "import.organisation": "导入机构", "institution.import": "导入机构",
	"schedule.weekly": "添加门诊时间", "schedule.leave": "登记请假", "schedule.extra": "登记加诊", "schedule.closure": "全机构停诊", "schedule.remove": "删除门诊时间",
	"package.price": "设定价格", "resident.consent_withdrawn": "撤回个人信息处理同意", "contract.member_confirmed": "本人到窗口确认签约",
	"member_confirmed":            "本人确认签约",
	"resident.deletion_requested": "申请删除个人信息", "resident.deletion_answered": "答复删除申请", "data_request_answered": "删除申请答复", "package.confirm": "确认价格",
	"setting.team_model": "团队组成", "setting.partner_hospitals": "合作医院", "setting.min_visit_minutes": "单次就诊时长",
	"setting.home_visit_groups": "可预约上门的人群", "setting.max_upcoming": "同时可有的预约数",
	"setting.cancel_before_hours": "在线取消的截止时间", "setting.quiet_hours": "夜间免打扰时段", "catalog.load": "载入服务包目录", "cash": "现金", "card": "银行卡", "wechat_pay": "微信支付（窗口）", "other": "其他",
	// Why a push was withdrawn (outbox.last_error of cancelled rows).
	"contract ended": "签约已结束", "team change answered": "改签已答复", "request moved to another team": "申请已转给其他团队",
	"sign request answered": "签约申请已答复", "appointment changed": "预约已变更", "reminders turned off": "居民关闭了提醒", "switched off in the calendar": "健康日历中已停发",
	"recipient unsubscribed": "对方已取消关注", "moment passed": "时间已过，不再发送",
	// Seasonal tips and the digest (storage/digest.go).
	"held for the digest": "48小时内未留言，等每月1日、16日的汇总群发", "in the digest": "已并入汇总群发，等发出", "sent in the digest": "已随汇总群发发出",
	"held: no one else has these tips": "群发须两人以上，等居民留言或下次汇总", "monthly mass messages used up": "本月4次群发已用完",
	"held for the digest; moment passed": "等汇总群发时已过时", "held: no one else has these tips; moment passed": "群发须两人以上，没有等到居民留言，已过时",
	// Broadcasts: the outbox kinds, the audit actions, and where one is.
	"broadcast": "群发", "broadcast_preview": "群发预览", "broadcast.create": "群发健康知识", "broadcast.cancel": "撤回群发",
	"broadcast cancelled": "群发已撤回", "bc_scheduled": "定时待发", "bc_sending": "发送中", "bc_submitted": "已交微信，等结果",
	"bc_done": "已完成", "bc_failed": "发送失败", "bc_cancelled": "已撤回",
}

func label(s string) string {
	if l, ok := labels[s]; ok {
		return l
	}
	return s
}

// parsePages reads the console's pages; now is the clock waiting times
// are counted on (the sandbox's, whose times the database stamps).
func parsePages(now func() time.Time) (map[string]*template.Template, error) {
	funcs := pageFuncs(now)
	names, err := fs.Glob(templates.Console, "console/pages/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		t, err := template.New("").Funcs(funcs).ParseFS(templates.Console, "console/layout.html", n)
		if err != nil {
			return nil, err
		}
		pages[n[len("console/pages/"):len(n)-len(".html")]] = t
	}
	return pages, nil
}

// pageFuncs are the functions the pages call.
func pageFuncs(now func() time.Time) template.FuncMap {
	return template.FuncMap{
		"label": label,
		"list":  func(s ...string) []string { return s },
		"pct":   percent,
		"tgt":   target,
		"num":   number,
		"when": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.In(flows.Shanghai).Format("2006-01-02 15:04")
		},
		"yuan":    templates.Yuan,
		"date":    func(t time.Time) string { return t.In(flows.Shanghai).Format("1月2日") },
		"lastDay": func(t time.Time) string { return t.In(flows.Shanghai).AddDate(0, 0, -1).Format("1月2日") },
		// waited is how many whole days have passed since a moment.
		"waited":  func(t time.Time) int { return int(now().Sub(t) / (24 * time.Hour)) },
		"overdue": func(t time.Time) bool { return now().Sub(t) >= flows.EscalateAfter },
		"has":     func(list []string, v string) bool { return slices.Contains(list, v) },
	}
}

// navItem is one link of the console's menu; need hides it from roles
// that may not use it.
type navItem struct {
	Path, Label string
	need        need
	On          bool
}

var nav = []navItem{
	{Path: "/admin/residents", Label: "居民", need: toRead},
	{Path: "/admin/sign", Label: "代签约", need: toCare},
	{Path: "/admin/requests", Label: "签约申请", need: toRead},
	{Path: "/admin/appointments", Label: "预约", need: toRead},
	{Path: "/admin/communities", Label: "社区", need: toRead},
	{Path: "/admin/teams", Label: "团队", need: toRead},
	{Path: "/admin/doctors", Label: "医生", need: toRead},
	{Path: "/admin/packages", Label: "服务包", need: toRead},
	{Path: "/admin/indicators", Label: "指标", need: toRead},
	{Path: "/admin/outbox", Label: "推送", need: toRead},
	{Path: "/admin/calendar", Label: "健康日历", need: toRead},
	{Path: "/admin/broadcasts", Label: "群发", need: toRead},
	{Path: "/admin/import", Label: "导入导出", need: toRead},
	{Path: "/admin/data-requests", Label: "信息删除申请", need: toManage},
	{Path: "/admin/audit", Label: "审计日志", need: toManage},
	{Path: "/admin/staff", Label: "员工账号", need: toManage},
	{Path: "/admin/password", Label: "修改密码", need: toRead},
}

type me struct {
	Name, RoleLabel, Institution string
}

// render writes a page with the layout's data: who is signed in, the menu
// for their role, and a flash message left by the last write.
func (a *API) render(c *gin.Context, status int, page string, data gin.H) {
	t, ok := a.pages[page]
	if !ok {
		a.pageFail(c, errors.New("no console page "+page))
		return
	}
	if v, ok := c.Get(principalKey); ok {
		p := v.(principal)
		data["CSRF"] = p.CSRF
		m := me{Name: p.Name, RoleLabel: label(string(p.Role))}
		if p.Scope.Institution != 0 {
			if in, err := a.DB.InstitutionByID(c.Request.Context(), p.Scope.Institution); err == nil {
				m.Institution = in.Name
			}
		}
		data["Me"] = m
		data["Can"] = gin.H{"care": may(p.Role, toCare), "manage": may(p.Role, toManage), "city": may(p.Role, toRunCity)}
		var items []navItem
		for _, n := range nav {
			if may(p.Role, n.need) {
				n.On = c.Request.URL.Path == n.Path || len(c.Request.URL.Path) > len(n.Path) && c.Request.URL.Path[:len(n.Path)+1] == n.Path+"/"
				items = append(items, n)
			}
		}
		data["Nav"] = items
	}
	if f, err := c.Cookie(flashCookie); err == nil && f != "" {
		if text, err := url.QueryUnescape(f); err == nil {
			if problem, ok := strings.CutPrefix(text, problemMark); ok {
				data["Problem"] = problem
			} else {
				data["Flash"] = text
			}
		}
		setCookie(c, flashCookie, "", -1)
	}
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Header("Cache-Control", "no-store")
	c.Header("X-Frame-Options", "DENY")
	c.Header("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'")
	c.Status(status)
	if err := t.ExecuteTemplate(c.Writer, "layout", data); err != nil {
		a.Log.Error("console page failed", "page", page, "err", err)
	}
}

const flashCookie = "jiayi_flash"

// finish ends a form's action: a *flows.Refusal shows the form's page again
// with the reason (show), another error fails the page, and success goes
// on to a page with a message.
func (a *API) finish(c *gin.Context, err error, show func(reason string), to, message string) {
	var refusal *flows.Refusal
	switch {
	case errors.As(err, &refusal):
		show(refusal.Reason)
	case err != nil:
		a.pageFail(c, err)
	default:
		done(c, to, message)
	}
}

// done leaves a message for the next page and sends the browser there
// (post, redirect, get: a reload does not post twice).
func done(c *gin.Context, to, message string) {
	setCookie(c, flashCookie, url.QueryEscape(message), time.Minute)
	c.Redirect(http.StatusSeeOther, to)
}

// refused is done for a write that did not happen: the next page shows
// the message as a problem, not as news.
func refused(c *gin.Context, to, message string) {
	done(c, to, problemMark+message)
}

// problemMark starts a flash message that reports a refusal.
const problemMark = "!"

// pageFail shows a failure: not found for what is missing or out of scope,
// else a plain error page (the log has the cause).
func (a *API) pageFail(c *gin.Context, err error) {
	if errors.Is(err, storage.ErrNotFound) {
		a.render(c, http.StatusNotFound, "problem", gin.H{"Problem": "没有找到，或不在您的权限范围内。"})
		return
	}
	a.Log.Error("console failed", "route", c.FullPath(), "err", err)
	a.render(c, http.StatusInternalServerError, "problem", gin.H{"Problem": "出错了，请稍后再试；若一直如此请联系运维人员。"})
}

// pageGuard admits console pages: signed out goes to the sign-in page,
// refusals get a page saying so.
func (a *API) pageGuard(n need) gin.HandlerFunc {
	return func(c *gin.Context) {
		_, status, err := a.admit(c, n)
		switch status {
		case 0:
			c.Next()
			return
		case http.StatusUnauthorized:
			next := ""
			if c.Request.Method == http.MethodGet {
				next = "?next=" + url.QueryEscape(c.Request.URL.RequestURI())
			}
			c.Redirect(http.StatusSeeOther, "/admin/login"+next)
		case http.StatusForbidden:
			a.render(c, status, "problem", gin.H{"Problem": "您的账号没有这项权限，或页面已过期，请返回重试。"})
		default:
			a.pageFail(c, err)
		}
		c.Abort()
	}
}

// formID reads a numeric form or path value.
func formID(s string) int64 {
	id, _ := strconv.ParseInt(s, 10, 64)
	return id
}

// pageOf reads ?page= (from 1) into a storage page of 50, and the links
// to the pages before and after.
func pageOf(c *gin.Context) storage.Page {
	n, _ := strconv.Atoi(c.DefaultQuery("page", "1"))
	n = max(n, 1)
	return storage.Page{Limit: 50, Offset: (n - 1) * 50}
}

func pager(c *gin.Context, pg storage.Page, total int) gin.H {
	q := c.Request.URL.Query()
	link := func(n int) string {
		q.Set("page", strconv.Itoa(n))
		return c.Request.URL.Path + "?" + q.Encode()
	}
	out := gin.H{"Total": total}
	n := pg.Offset/pg.Limit + 1
	if n > 1 {
		out["Prev"] = link(n - 1)
	}
	if pg.Offset+pg.Limit < total {
		out["Next"] = link(n + 1)
	}
	return out
}
