package flows

import (
	"context"
	"github.com/jiayi-health/jiayi/flows/profile"
	"strings"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
)

// bindFirstDoctor binds the first demo doctor to o_doc and returns them.
func bindFirstDoctor(t *testing.T, e *Engine) *chat {
	t.Helper()
	docs, _ := e.DB.Doctors(context.Background())
	code, err := IssueBindingCode(context.Background(), e.DB, e.Sealer, docs[0].ID, time.Now(), BindingCodeTTL)
	if err != nil {
		t.Fatal(err)
	}
	doc := talk(t, e, "o_doc")
	doc.say("绑定 "+code, "绑定成功")
	return doc
}

func TestCancelAContract(t *testing.T) {
	e := engineFor(t, "national")
	number := signed(t, e, "o_c", synthID("110105", "19550302", "021"))
	c := talk(t, e, "o_c")
	c.say("解约", "解约的原因")
	c.say("好", "解约的原因")
	c.say("住院做透析了", "请确认：解约王秀英的签约（编号"+number, "原因：住院做透析了", "回复“确认”办理")
	c.say("嗯", "请回复“确认”办理解约")
	c.say("确认", "已解约（编号"+number)
	cs := contractsOf(t, e, "o_c")
	if cs[0].Status != storage.ContractCancelled {
		t.Fatalf("status %s", cs[0].Status)
	}
	rows, _ := e.DB.OutboxFor(context.Background(), DoctorRecipient(cs[0].DoctorID))
	if len(rows) != 2 || rows[1].Kind != PushContractCancelled {
		t.Fatalf("doctor told %+v", rows)
	}
	// The resident's own words may name a condition: the template message
	// leaves them out; staff read them on the resident's page.
	if strings.Contains(rows[1].Payload, "透析") {
		t.Fatalf("the doctor's notice carries the reason: %s", rows[1].Payload)
	}
	if reasons, err := e.DB.EndReasons(context.Background(), []int64{cs[0].ID}); err != nil || reasons[cs[0].ID] != "住院做透析了" {
		t.Fatalf("the reason kept for staff: %v %v", reasons, err)
	}
	c.say("解约", "没有可以解约的签约")
	// The same person can sign again now.
	signed(t, e, "o_c", synthID("110105", "19550302", "021"))
}

func TestRenewFromThirtyDaysBeforeTheEnd(t *testing.T) {
	e := engineFor(t, "national")
	doc := bindFirstDoctor(t, e)
	number := signed(t, e, "o_r", synthID("110105", "19550302", "021"))
	doc.say("确认 "+number, "服务期到2027-11-22")
	c := talk(t, e, "o_r")
	c.say("续签", "续签从服务期结束前30天开始办理", "服务期至2027-11-22")
	c.clock = time.Date(2027, 10, 25, 9, 0, 0, 0, Shanghai)
	c.say("续签", "请核对续签", "续签后服务期至：2028-11-22", "服务包：", "费用：", "签约协议", "退费规定", "12320", "回复“同意”续签")
	c.say("确认", "请回复“同意”续签")
	// A price set meanwhile does not change what the resident agreed to.
	if err := e.DB.SetPackagePrice(context.Background(), "basic", map[storage.Insured]storage.Split{storage.InsuredLocal: {"resident": 1000}}, "admin"); err != nil {
		t.Fatal(err)
	}
	c.say("同意", "已续签（编号"+number+"），服务期延长至2028-11-22")
	if cs := contractsOf(t, e, "o_r"); len(cs[0].Packages) != 1 || len(cs[0].Packages[0].Split) != 0 {
		t.Fatalf("the renewed term holds %+v, not the free package shown", cs[0].Packages)
	}
	if cs := contractsOf(t, e, "o_r"); cs[0].TermEnd.String != "2028-11-22" || cs[0].Status != storage.ContractActive {
		t.Fatalf("after renewal: %+v", cs[0])
	}
}

// A renewal re-checks the packages for the new term: a child who turned 7
// no longer fits the 0-6 package, and a contract from before Linzi's
// one-personalised-package rule keeps one.
func TestRenewalRechecksThePackages(t *testing.T) {
	c, err := profile.Load("linzi")
	if err != nil {
		t.Fatal(err)
	}
	held := func(codes ...string) []storage.ContractPackage {
		var out []storage.ContractPackage
		for _, code := range codes {
			p, _ := c.Package(code)
			out = append(out, storage.ContractPackage{Code: code, Name: p.Name, Kind: string(p.Kind)})
		}
		return out
	}
	codes := func(ps []storage.ContractPackage) string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Code)
		}
		return strings.Join(out, ",")
	}
	plan := PlanRenewal(c, held("basic", "child"), Applicant{Age: 7})
	if codes(plan.Packages) != "basic" || len(plan.Dropped) != 1 || !strings.Contains(plan.Dropped[0].Reason, "6岁及以下") {
		t.Fatalf("a child of 7: %+v", plan)
	}
	if plan.Packages[0].Split["public_health"] != storage.Unknown {
		t.Fatalf("the basic package is priced at today's catalog: %v", plan.Packages[0].Split)
	}
	plan = PlanRenewal(c, held("basic", "hypertension", "elderly"), Applicant{Age: 70, Groups: []string{"hypertension"}})
	if codes(plan.Packages) != "basic,hypertension" || len(plan.Dropped) != 1 || !strings.Contains(plan.Dropped[0].Reason, "只能选一种") {
		t.Fatalf("two personalised packages at renewal: %+v", plan)
	}
	plan = PlanRenewal(c, held("gone", "hypertension"), Applicant{Age: 70, Groups: []string{"hypertension"}})
	if codes(plan.Packages) != "basic,hypertension" || len(plan.Dropped) != 1 || !strings.Contains(plan.Dropped[0].Reason, "不再提供") {
		t.Fatalf("a basic package no longer offered: %+v", plan)
	}
}

func TestChangeTeam(t *testing.T) {
	e := engineFor(t, "national")
	// Community 2 (和平社区) is served by both demo teams.
	c := talk(t, e, "o_ch")
	for _, s := range []string{"签约", "1", "王秀英", "同意", synthID("110105", "19550302", "021"), "13812345678", "2", "0", "1", "0"} {
		c.say(s)
	}
	c.say("同意", "合同编号")
	c.say("改签", "请选择家庭医生团队", "1. 郭建华家庭医生团队")
	c.say("1", "改签到：郭建华家庭医生团队")
	c.say("确认", "已提交改签", "待郭建华医生确认")
	cs := contractsOf(t, e, "o_ch")
	if cs[0].DoctorName != "郭建华" || cs[0].Status != storage.ContractPending {
		t.Fatalf("after change: %+v", cs[0])
	}
	rows, _ := e.DB.OutboxFor(context.Background(), DoctorRecipient(cs[0].DoctorID))
	if len(rows) != 1 || rows[0].Kind != PushSignRequest {
		t.Fatalf("new doctor told %+v", rows)
	}
	if countKind(t, e, DoctorRecipient(1), PushTeamChanged, "pending") != 1 {
		t.Fatal("the doctor who had the request was not told it moved")
	}
	// The request still unsent to that doctor is withdrawn: it is no
	// longer theirs to answer.
	if countKind(t, e, DoctorRecipient(1), PushSignRequest, "pending") != 0 || countKind(t, e, DoctorRecipient(1), PushSignRequest, "cancelled") != 1 {
		t.Fatal("the doctor who had the request is still asked to answer it")
	}
	// The request reads as a new signing's does, in the real words, and
	// names no package (a package can name a condition).
	fields, _ := rows[0].Fields()
	text, err := PushText(rows[0].Kind, fields)
	if err != nil || !strings.Contains(text, "王秀英（和平社区）") || strings.Contains(text, "基本公共卫生服务包") {
		t.Fatalf("the new doctor's request reads %q (%v)", text, err)
	}
}

func TestPickAmongSeveralContracts(t *testing.T) {
	e := engineFor(t, "national")
	signed(t, e, "o_fam", synthID("110105", "19550302", "021"))
	c := talk(t, e, "o_fam")
	for _, s := range []string{"签约", "2", "王小花", "同意", synthID("110105", "19580101", "022"), "1", "13812345679", "1", "0", "1", "0"} {
		c.say(s)
	}
	c.say("同意", "待本人确认")
	c.say("解约", "要解约哪一份签约", "1. 王小花", "2. 王秀英")
	c.say("3", "请回复1到2之间的数字")
	c.say("1", "解约的原因")
	c.say("返回", "要解约哪一份签约")
	c.say("取消", "已退出")
}

// A contract that ends keeps no bookings: its visits to come are cancelled
// with it, their places freed, their reminders withdrawn, the doctor told.
func TestCancellingAContractCancelsItsVisits(t *testing.T) {
	e, doc, c := signedResident(t, "o_cv")
	c.book("1", "2", "1")
	// A second booking waits at its confirmation while the contract ends.
	for _, s := range []string{"预约", "1", "1", "3", "上午", "1"} {
		c.say(s)
	}
	c.in("booking", "confirm")
	c.say("解约", "回复“继续”回到刚才的预约")
	c.say("搬家了")
	c.say("确认", "已解约", "还没到的1个预约也一并取消了")
	c.say("继续", "请确认预约")
	c.say("确认", "这份签约刚刚有了变化")
	c.say("我的预约", "暂无预约")
	if countKind(t, e, "o_cv", PushAppointmentReminder, "pending") != 0 {
		t.Fatalf("reminders of a cancelled visit are still due: %v", outboxStates(t, e, "o_cv"))
	}
	if countKind(t, e, DoctorRecipient(1), PushBookingCancelled, "pending") != 1 {
		t.Fatal("the doctor was not told the visit is off")
	}
	// The place is free again for someone else.
	activeFor(t, e, doc, "o_cw", synthID("110105", "19560303", "022"))
	w := talk(t, e, "o_cw")
	for _, s := range []string{"预约", "1", "1", "2"} {
		w.say(s)
	}
	w.say("1", "08:00-08:10")
}

// 改签 of a confirmed contract is a request: until the new team's doctor
// confirms, the contract stays with its team; a decline leaves it as it
// was, a confirmation moves it and tells the former doctor.
func TestChangeOfAnActiveContractWaitsForTheNewDoctor(t *testing.T) {
	e := engineFor(t, "national")
	ctx := context.Background()
	docs, _ := e.DB.Doctors(ctx)
	first := bindFirstDoctor(t, e)
	code, err := IssueBindingCode(ctx, e.DB, e.Sealer, docs[1].ID, time.Now(), BindingCodeTTL)
	if err != nil {
		t.Fatal(err)
	}
	second := talk(t, e, "o_doc2")
	second.say("绑定 "+code, "绑定成功")
	// Community 2 (和平社区) is served by both demo teams.
	c := talk(t, e, "o_act")
	for _, s := range []string{"签约", "1", "王秀英", "同意", synthID("110105", "19550302", "021"), "13812345678", "2", "0", "1", "0"} {
		c.say(s)
	}
	reply := c.say("同意", "合同编号")
	number := reply[strings.Index(reply, "QY") : strings.Index(reply, "QY")+12]
	first.say("确认 "+number, "已确认")
	told := func(kind string) string {
		t.Helper()
		rows, _ := e.DB.OutboxFor(ctx, "o_act")
		for i := len(rows) - 1; i >= 0; i-- {
			if rows[i].Kind == kind {
				f, _ := rows[i].Fields()
				text, err := PushText(kind, f)
				if err != nil {
					t.Fatal(err)
				}
				return text
			}
		}
		return ""
	}

	c.say("改签", "1. 郭建华家庭医生团队")
	c.say("1")
	c.say("确认", "待郭建华医生确认", "确认之前，仍由林静家庭医生团队为您服务")
	c.say("改签", "改签到郭建华家庭医生团队的申请还在等医生确认")
	c.say("我的签约", "团队：林静家庭医生团队", "改签到郭建华家庭医生团队：待医生确认")
	if cs := contractsOf(t, e, "o_act"); cs[0].Status != storage.ContractActive || cs[0].DoctorName != "林静" {
		t.Fatalf("while the change waits: %+v", cs[0])
	}
	first.say("确认 "+number, "已经处理过了") // the former doctor cannot answer for the new team
	second.say("拒绝 "+number+" 不在服务范围", "已拒绝")
	if cs := contractsOf(t, e, "o_act"); cs[0].Status != storage.ContractActive || cs[0].DoctorName != "林静" || cs[0].ChangeTeamID.Valid {
		t.Fatalf("after the decline: %+v", cs[0])
	}
	if text := told(PushTeamChangeDeclined); !strings.Contains(text, "仍由林静家庭医生团队服务") {
		t.Fatalf("the resident was told %q", text)
	}

	c.say("改签")
	c.say("1")
	c.say("确认", "待郭建华医生确认")
	second.say("确认 "+number, "已确认")
	cs := contractsOf(t, e, "o_act")
	if cs[0].Status != storage.ContractActive || cs[0].DoctorName != "郭建华" || cs[0].TermEnd.String == "" {
		t.Fatalf("after the confirmation: %+v", cs[0])
	}
	if text := told(PushTeamChangeConfirmed); !strings.Contains(text, "今后由郭建华家庭医生团队为王秀英服务") {
		t.Fatalf("the resident was told %q", text)
	}
	if countKind(t, e, DoctorRecipient(docs[0].ID), PushTeamChanged, "pending") != 1 {
		t.Fatal("the former doctor was not told")
	}

	// Ending the contract while a change waits withdraws the request and
	// tells the team that was asked.
	c.say("改签", "1. 林静家庭医生团队")
	c.say("1")
	c.say("确认", "待林静医生确认")
	c.say("解约")
	c.say("搬家了")
	c.say("确认", "已解约")
	withdrawn := 0
	for key, state := range outboxStates(t, e, DoctorRecipient(docs[0].ID)) {
		if strings.Contains(key, ":change:") && state == "cancelled" {
			withdrawn++
		}
	}
	if withdrawn != 1 || countKind(t, e, DoctorRecipient(docs[0].ID), PushContractCancelled, "pending") != 1 {
		t.Fatalf("the team asked: %v", outboxStates(t, e, DoctorRecipient(docs[0].ID)))
	}
	c.say("我的签约", "已解约")
}

// Free text is kept short: an answer past the limit is asked again with the
// limit, and nothing of it is stored or pushed.
func TestFreeTextIsKeptShort(t *testing.T) {
	e := engineFor(t, "national")
	doc := bindFirstDoctor(t, e)
	number := signed(t, e, "o_long", synthID("110105", "19550302", "021"))
	long := strings.Repeat("很", 101)
	doc.say("拒绝 "+number+" "+strings.Repeat("不", 51), "请控制在50个字以内")
	c := talk(t, e, "o_long")
	c.say("解约", "解约的原因")
	c.say(long, "请控制在100个字以内")
	c.in("cancel", "reason")
	c.say(long[:len("很")*100], "原因："+long[:len("很")*100])
	if cs := contractsOf(t, e, "o_long"); cs[0].Status != storage.ContractPending {
		t.Fatalf("a refused decline changed the contract: %+v", cs[0])
	}
}
