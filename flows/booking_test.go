package flows

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"
)

// activeFor signs a resident and has the first demo doctor confirm.
func activeFor(t *testing.T, e *Engine, doc *chat, openID, id string) {
	t.Helper()
	number := signed(t, e, openID, id)
	doc.say("确认 "+number, "已确认")
}

func outboxStates(t *testing.T, e *Engine, to string) map[string]string {
	t.Helper()
	rows, err := e.DB.OutboxFor(context.Background(), to)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rows {
		out[r.Key] = r.State
	}
	return out
}

func countKind(t *testing.T, e *Engine, to, kind, state string) int {
	t.Helper()
	rows, _ := e.DB.OutboxFor(context.Background(), to)
	n := 0
	for _, r := range rows {
		if r.Kind == kind && r.State == state {
			n++
		}
	}
	return n
}

func TestBookRescheduleAndCancel(t *testing.T) {
	e := engineFor(t, "national")
	doc := bindFirstDoctor(t, e)
	activeFor(t, e, doc, "o_b", synthID("110105", "19550302", "021"))
	doctorTo := DoctorRecipient(1)
	c := talk(t, e, "o_b")
	c.say("预约", "为谁预约", "1. 王秀英（林静医生）")
	// Home visits are not offered to her: the list says why once.
	c.lacks(c.say("1", "预约什么", "1. 门诊", "4. 转诊", "上门服务只面向残疾人、失能/半失能人员、失智人员，或签约了上门服务包的居民"), "上门\n")
	c.say("上门", "上门服务只面向残疾人", "4. 转诊")
	c.say("9", "请回复1到4之间的数字")
	c.say("门诊", "林静医生可以预约的日期", "1. 11月23日 周一", "2. 11月24日 周二（余", "7. 11月29日 周日", "回复“更多”")
	c.say("更多", "1. 11月30日 周一", "7. 12月6日 周日")
	c.say("更多", "1. 11月23日 周一")
	c.say("20", "请回复1到7")
	c.say("2", "11月24日 周二上午、下午都有号", "1. 上午（余")
	c.say("上午", "11月24日 周二上午可以预约的时间", "1. 08:00-08:10", "2. 08:10-08:20")
	c.say("x", "请回复1到")
	c.say("返回", "上午、下午都有号")
	c.say("1", "1. 08:00-08:10")
	c.say("1", "请确认预约", "王秀英，门诊，林静医生", "时间：11月24日 周二 08:00-08:10")
	c.say("等一下", "请回复“确认”")
	c.say("确认", "预约成功", "11月24日 周二 08:00-08:10，门诊，林静医生", "我们会在前一天晚上提醒您。", "取消 序号")
	c.in("", "")
	if countKind(t, e, doctorTo, PushBookingCreated, "pending") != 1 {
		t.Fatal("the doctor was not told of the booking")
	}
	// Reminders: the day before at 18:00; 06:00 (2 hours before) is in quiet hours.
	if countKind(t, e, "o_b", PushAppointmentReminder, "pending") != 1 {
		t.Fatalf("reminders: %v", outboxStates(t, e, "o_b"))
	}
	c.say("我的预约", "1. 11月24日 周二 08:00-08:10 门诊 林静医生（王秀英）", "改约 序号")
	c.say("改约 5", "没有第5个预约")
	c.say("改约 1", "可以预约的日期")
	c.say("2", "上午、下午都有号")
	c.say("上午", "1. 08:10-08:20") // 08:00 stays held by this appointment until the move
	c.say("2", "请确认改约", "08:20-08:30")
	c.say("确认", "改约成功，新的时间是11月24日 周二 08:20-08:30")
	c.say("我的预约", "08:20-08:30")
	if countKind(t, e, "o_b", PushAppointmentReminder, "cancelled") != 1 || countKind(t, e, "o_b", PushAppointmentReminder, "pending") != 1 {
		t.Fatalf("reminders after the move: %v", outboxStates(t, e, "o_b"))
	}
	if countKind(t, e, doctorTo, PushBookingChanged, "pending") != 1 {
		t.Fatal("the doctor was not told of the move")
	}
	rows, _ := e.DB.OutboxFor(context.Background(), doctorTo)
	for _, r := range rows {
		if f, _ := r.Fields(); r.Kind == PushBookingChanged && (f["was"] != "2026-11-24 08:00" || f["time"] != "2026-11-24 08:20") {
			t.Fatalf("the doctor's notice of the move does not show both times: %v", f)
		}
	}
	c.say("取消 1", "要取消这个预约吗", "08:20-08:30")
	c.say("不了", "预约保留不变")
	c.say("取消 1", "要取消这个预约吗")
	c.say("确认", "已取消")
	c.say("我的预约", "暂无预约")
	if countKind(t, e, "o_b", PushAppointmentReminder, "pending") != 0 || countKind(t, e, doctorTo, PushBookingCancelled, "pending") != 1 {
		t.Fatalf("after cancelling: %v", outboxStates(t, e, "o_b"))
	}
}

func TestBookingTypesAndLimits(t *testing.T) {
	e, _, c := signedResident(t, "o_t")
	// A referral asks for the reason, and takes no visit.
	for _, s := range []string{"预约", "1", "转诊"} {
		c.say(s)
	}
	c.in("booking", "reason")
	c.say("血压", "请简单写一下转诊的原因")
	c.say("血压控制不好想看心内科", "转诊原因：血压控制不好想看心内科")
	c.say("确认", "转诊申请已提交")
	// A clinic visit, then a check-up and a follow-up; a fourth upcoming
	// one is refused.
	for _, s := range []string{"预约", "1", "1", "2", "上午", "1"} {
		c.say(s)
	}
	c.say("确认", "预约成功", "门诊")
	for _, kind := range []string{"体检", "随访"} {
		for _, s := range []string{"预约", "1", kind, "3", "上午", "1"} {
			c.say(s)
		}
		c.say("确认", "预约成功")
	}
	for _, s := range []string{"预约", "1", "1", "4", "上午", "1"} {
		c.say(s)
	}
	c.say("确认", "最多同时有3个待就诊的预约")
	// Cancelling less than 2 hours before is refused.
	c.say("我的预约")
	late := talk(t, e, "o_t")
	late.clock = time.Date(2026, 11, 24, 7, 0, 0, 0, Shanghai)
	late.say("取消 1", "不到2小时")
}

func TestHomeVisitsForThoseWhoQualify(t *testing.T) {
	e := engineFor(t, "national")
	doc := bindFirstDoctor(t, e)
	c := talk(t, e, "o_h")
	for _, s := range []string{"签约", "1", "刘大爷", "同意", synthID("110105", "19400101", "081"), "13812345670", "1"} {
		c.say(s)
	}
	c.say("5", "已记录：残疾人") // declared groups: 1 hypertension … 5 disabled (no 孕产妇 for a man of 86)
	c.say("1")
	c.say("0")
	number := c.say("同意", "合同编号")
	doc.say("确认 "+number[strings.Index(number, "QY"):strings.Index(number, "QY")+12], "已确认")
	for _, s := range []string{"预约", "1", "2", "2", "上午", "1"} {
		c.say(s)
	}
	c.in("booking", "address")
	c.say("3号楼", "地址太短了")
	c.say(strings.Repeat("幸福社区", 16), "请控制在60个字以内")
	c.say("幸福社区3号楼2单元101", "地址：幸福社区3号楼2单元101")
	c.say("确认", "预约成功", "上门")
	a, _ := e.DB.UpcomingManagedBy(context.Background(), "o_h", c.clock)
	if len(a) != 1 || strings.Contains(a[0].AddressSealed, "3号楼") {
		t.Fatalf("the address is not sealed at rest: %+v", a)
	}
	// The next home visit offers the same address.
	for _, s := range []string{"预约", "1", "2", "3", "上午"} {
		c.say(s)
	}
	c.say("1", "上次上门的地址：幸福社区3号楼2单元101", "回复“1”沿用")
	c.say("1", "地址：幸福社区3号楼2单元101")
	c.say("取消", "已退出")

	// 改约 moves the visit in time only: the address is not asked again, and
	// the one shown is the one kept.
	c.say("改约 1", "可以预约的日期")
	c.say("3", "上午、下午都有号")
	c.say("上午", "可以预约的时间")
	c.say("1", "请确认改约", "地址：幸福社区3号楼2单元101")
	c.in("booking", "confirm")
	c.say("确认", "改约成功")
	a, _ = e.DB.UpcomingManagedBy(context.Background(), "o_h", c.clock)
	if len(a) != 1 || a[0].AddressSealed == "" {
		t.Fatalf("after 改约: %+v", a)
	}
	if address, err := e.Sealer.Open("address", a[0].AddressSealed); err != nil || address != "幸福社区3号楼2单元101" {
		t.Fatalf("the visit's address after 改约 is %q (%v)", address, err)
	}
}

// 取消 N typed in the middle of signing pauses the signing like any other
// interruption: once the cancellation is answered, 继续 goes back to the
// question it stopped at, with the answers given so far.
func TestCancellingAVisitMidSigningPausesTheSigning(t *testing.T) {
	_, _, c := signedResident(t, "o_p2")
	c.book("1", "2", "1")
	// Now signing a family member.
	c.say("签约", "您本人已经签约了")
	c.say("2", "姓名")
	c.say("王小明")
	c.in("signing", "consent")
	c.say("取消 1", "要取消这个预约吗", "回复“继续”回到刚才的签约")
	c.in("cancel_booking", "confirm")
	c.say("确认", "回复“继续”回到刚才的签约")
	c.say("继续", "单独同意")
	c.in("signing", "consent")
	c.say("返回", "姓名")
	c.in("signing", "name")
	// 签约 typed while the signing waits carries on with it too.
	c.say("我的预约", "回复“继续”回到刚才的签约")
	c.say("服务包", "回复“继续”回到刚才的签约")
	c.say("取消", "已退出")
	c.say("签约", "姓名")
	c.in("signing", "name")
	// Booking while signing, then 签约 again: the signing carries on and the
	// booking waits in its place; neither is lost.
	c.say("预约", "为谁预约", "回复“继续”回到刚才的签约")
	c.say("签约", "姓名", "回复“继续”回到刚才的预约")
	c.in("signing", "name")
	c.say("继续", "为谁预约", "回复“继续”回到刚才的签约")
	c.in("booking", "who")
	c.say("继续", "姓名")
	c.in("signing", "name")
}

// Two residents choose the same 10-minute slot; the slower one is offered
// the times again.
func TestSlotTakenMeanwhile(t *testing.T) {
	e := engineFor(t, "national")
	doc := bindFirstDoctor(t, e)
	activeFor(t, e, doc, "o_x", synthID("110105", "19550302", "021"))
	activeFor(t, e, doc, "o_y", synthID("110105", "19560303", "022"))
	x, y := talk(t, e, "o_x"), talk(t, e, "o_y")
	for _, s := range []string{"预约", "1", "1", "2", "上午", "1"} {
		x.say(s)
		y.say(s)
	}
	x.say("确认", "预约成功")
	y.say("确认", "刚刚被别人约了", "11月24日 周二上午可以预约的时间", "1. 08:10-08:20")
	y.in("booking", "time")
	y.say("1", "08:10-08:20")
	y.say("确认", "预约成功")
}

func TestBookingNeedsAnActiveContract(t *testing.T) {
	e := engineFor(t, "national")
	signed(t, e, "o_p", synthID("110105", "19550302", "021")) // pending
	talk(t, e, "o_p").say("预约", "预约需要先签约家庭医生", "等医生确认后")
}

// A referral is a request the family doctor passes to the hospital, which
// arranges the specialist's time: it takes none of the family doctor's
// slots, and the resident is told what happens next.
func TestHarbinReferralGoesByTheGreenChannel(t *testing.T) {
	e := engineFor(t, "harbin")
	ctx := context.Background()
	doc := bindFirstDoctor(t, e)
	c := talk(t, e, "o_hr")
	for _, s := range []string{"签约", "1", "于长海", "同意", synthID("230102", "19580606", "051"), "13612345678", "1", "0", "1", "1", "1", "0"} {
		c.say(s)
	}
	number := c.say("同意", "合同编号")
	doc.say("确认 "+number[strings.Index(number, "QY"):strings.Index(number, "QY")+12], "已确认")
	c.say("预约")
	c.say("1")
	reply := c.say("转诊", "转诊到哪家医院", "绿色通道", "1. 哈尔滨市老年医院", "2. 哈尔滨市第一医院")
	if strings.Contains(reply, "专家号") {
		t.Fatalf("the chat promises a specialist booking it cannot make:\n%s", reply)
	}
	c.say("3", "请回复1到2")
	c.say("2", "为什么需要转诊")
	c.say(strings.Repeat("心慌", 51), "请控制在100个字以内")
	c.say("心慌胸闷想看心内科", "请确认转诊申请", "转往哈尔滨市第一医院（签约医院，绿色通道）", "心慌胸闷想看心内科")
	done := c.say("确认", "转诊申请已提交", "医院安排好专科号后会打电话", "不占用家庭医生的门诊号")
	if strings.Contains(done, "预约成功") {
		t.Fatalf("a referral reads as a booked visit:\n%s", done)
	}
	if a, _ := e.DB.UpcomingManagedBy(ctx, "o_hr", c.clock); len(a) != 0 {
		t.Fatalf("the referral booked the family doctor's time: %+v", a)
	}
	cs := contractsOf(t, e, "o_hr")
	refs, err := e.DB.ReferralsOf(ctx, cs[0].ResidentID)
	if err != nil || len(refs) != 1 || refs[0].Hospital != "哈尔滨市第一医院" || !refs[0].GreenChannel || strings.Contains(refs[0].ReasonSealed, "心慌") {
		t.Fatalf("referral = %+v %v (the reason must be sealed at rest)", refs, err)
	}
	if reason, err := openReason(e.Sealer, refs[0].ReasonSealed); err != nil || reason != "心慌胸闷想看心内科" {
		t.Fatalf("the reason reads back as %q (%v)", reason, err)
	}
	// The doctor hears of it without the condition.
	notices, _ := e.DB.OutboxFor(ctx, DoctorRecipient(refs[0].DoctorID))
	found := false
	for _, n := range notices {
		if n.Kind == PushReferralRequest {
			found = true
			if strings.Contains(n.Payload, "心慌") || !strings.Contains(n.Payload, "哈尔滨市第一医院") {
				t.Fatalf("the doctor's notice: %s", n.Payload)
			}
		}
	}
	if !found {
		t.Fatalf("no notice to the doctor: %+v", notices)
	}
}

// Where the programme names no hospital, the doctor chooses it.
func TestReferralWithoutPartnerHospitals(t *testing.T) {
	e, _, c := signedResident(t, "o_ref")
	c.say("预约")
	c.say("1")
	c.say("转诊", "为什么需要转诊")
	c.say("血糖一直控制不好", "转往上级医院（由")
	c.say("确认", "转诊申请已提交", "合适的上级医院")
	c.say("我的预约", "暂无预约", "近一个月的转诊申请", "王秀英，转往医生选定的上级医院")
	if a, _ := e.DB.UpcomingManagedBy(context.Background(), "o_ref", c.clock); len(a) != 0 {
		t.Fatalf("the referral booked a visit: %+v", a)
	}
}

// Interrupted twice, both conversations wait: a third does not push the
// older one out, and each comes back by 继续 or by its own keyword.
func TestTwoConversationsWait(t *testing.T) {
	_, _, c := signedResident(t, "o_two")
	c.say("签约", "您本人已经签约了")
	c.say("2")
	c.say("王小明", "单独同意")
	c.say("预约", "为谁预约", "回复“继续”回到刚才的签约")
	c.say("服务包", "服务包", "回复“继续”回到刚才的预约")
	c.say("签约", "单独同意", "回复“继续”回到刚才的预约")
	c.in("signing", "consent")
	c.say("继续", "为谁预约", "回复“继续”回到刚才的签约")
	c.in("booking", "who")
	c.say("继续", "单独同意")
	c.in("signing", "consent")
}

// signedResident is the national demo with its first doctor bound and a
// resident born in 1955 under a confirmed contract, ready to talk.
func signedResident(t *testing.T, openID string) (*Engine, *chat, *chat) {
	t.Helper()
	e := engineFor(t, "national")
	doc := bindFirstDoctor(t, e)
	activeFor(t, e, doc, openID, synthID("110105", "19550302", "021"))
	return e, doc, talk(t, e, openID)
}

// book books a visit for the first person listed, typing the numbers of
// the kind, the day and the time, and returns the confirmation, which must
// hold what contains says.
func (c *chat) book(kind, day, time string, contains ...string) string {
	c.t.Helper()
	c.toConfirm(kind, day, time)
	return c.say("确认", append([]string{"预约成功"}, contains...)...)
}

// toConfirm books for the first person listed up to the confirmation, in
// the morning (the test days have both halves).
func (c *chat) toConfirm(kind, day, time string) {
	c.t.Helper()
	for _, s := range []string{"预约", "1", kind, day, "上午", time} {
		c.say(s)
	}
	c.in("booking", "confirm")
}

// numberOf finds the number a list reply gives a line holding name.
func numberOf(t *testing.T, reply, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^([0-9]+)\. [^\n]*` + regexp.QuoteMeta(name)).FindStringSubmatch(reply)
	if m == nil {
		t.Fatalf("no line with %q in:\n%s", name, reply)
	}
	return m[1]
}

// A paid package that promises home visits can book them (Linzi's
// postnatal visits); a resident who holds none and is in no home-visit
// group is told which packages and groups have them.
func TestAPackagePromisingHomeVisitsCanBookThem(t *testing.T) {
	e := engineFor(t, "linzi")
	doc := bindFirstDoctor(t, e)
	sign := func(openID, name, id, group, pkg string) {
		c := talk(t, e, openID)
		for _, s := range []string{"签约", "1", name, "同意", id, "13812345672"} {
			c.say(s)
		}
		groups := c.say("1", "人群")
		if group == "孕产妇" {
			c.say(numberOf(t, groups, group), "预产期是哪天")
			c.say("跳过", "先不填")
		} else if group != "" {
			c.say(numberOf(t, groups, group))
		} else {
			c.say("0")
		}
		packages := c.say("1", "请选择服务包")
		c.say(numberOf(t, packages, pkg), "签约协议")
		number := c.say("同意", "合同编号")
		doc.say("确认 "+number[strings.Index(number, "QY"):strings.Index(number, "QY")+12], "已确认")
	}
	sign("o_new_mum", "李芳", synthID("370305", "19960101", "022"), "孕产妇", "孕产妇服务包")
	mum := talk(t, e, "o_new_mum")
	mum.say("预约")
	mum.say("1")
	mum.say("2", "可以预约的日期")
	sign("o_tcm", "赵强", synthID("370305", "19800101", "031"), "", "中医药服务包")
	other := talk(t, e, "o_tcm")
	other.say("预约")
	other.say("1")
	other.say("上门", "上门服务只面向", "孕产妇服务包")
}
