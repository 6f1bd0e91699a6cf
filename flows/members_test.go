package flows

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// Signing another adult is a request (杜绝“被签约”): it waits for them to
// confirm from their own WeChat with the code, only then is the doctor
// asked, and unconfirmed it lapses.
func TestSigningAnAdultFamilyMemberWaitsForThem(t *testing.T) {
	e := engineFor(t, "national")
	ctx := context.Background()
	doc := bindFirstDoctor(t, e)
	son := talk(t, e, "o_son")
	for _, s := range []string{"签约", "2", "王小花", "同意", synthID("110105", "19580101", "022")} {
		son.say(s)
	}
	son.say("9", "请回复1到4之间的数字")
	son.say("2", "手机号")
	for _, s := range []string{"13812345679", "1", "0", "1", "0"} {
		son.say(s)
	}
	done := son.say("同意", "待本人确认", "确认签约 ", "7天内", "本人带身份证到签约机构窗口确认", "确认前签约不生效")
	code := regexp.MustCompile(`确认签约 ([0-9]{8})`).FindStringSubmatch(done)[1]
	number := done[strings.Index(done, "QY") : strings.Index(done, "QY")+12]
	if n := countKind(t, e, DoctorRecipient(1), PushSignRequest, "pending"); n != 0 {
		t.Fatalf("the doctor is asked before the member confirmed: %d", n)
	}
	doc.say("确认 "+number, "还在等本人确认")
	son.say("我的签约", "状态：待本人确认")
	son.say("改签", "没有可以改签的签约") // no doctor is asked before the member
	if _, err := RecordFee(ctx, e.DB, storage.Scope{}, number, storage.Payment{Kind: "payment", Fen: 100, Method: "cash",
		Receipt: "M1", RecordedBy: "wang"}); err == nil {
		t.Fatal("money taken for a signing its member has not confirmed")
	}
	if cs := contractsOf(t, e, "o_son"); cs[0].Status != storage.ContractPending || !cs[0].AwaitingMember {
		t.Fatalf("before the member confirms: %+v", cs[0])
	}
	// The member signing themselves meanwhile is pointed to the code.
	own := talk(t, e, "o_mum_own")
	for _, s := range []string{"签约", "1", "王小花", "同意"} {
		own.say(s)
	}
	own.say(synthID("110105", "19580101", "022"), "正在等本人确认", "确认签约 确认码")
	// Not from the WeChat that signed them, not with a wrong code.
	son.say("确认签约 "+code, "不能用为您签约的那个微信确认")
	mum := talk(t, e, "o_mum_own")
	mum.say("确认签约 12345678", "确认码不对或已过期")
	// The member gives their own consent and agreement.
	spoken := strings.NewReplacer("0", "零", "1", "一", "2", "二", "3", "三", "4", "四", "5", "五", "6", "六", "7", "七", "8", "八", "9", "九").Replace(code)
	mum.say("嗯，确认签约，"+spoken+"。", "您的家人为您（王小花）提交了家庭医生签约申请", "敏感个人信息", "回复“同意”继续") // said
	mum.say("同意", "签约协议", "服务期", "回复“同意”确认签约")
	if n := countKind(t, e, DoctorRecipient(1), PushSignRequest, "pending"); n != 0 {
		t.Fatalf("the doctor is asked before the member agreed: %d", n)
	}
	mum.say("同意", "已确认王小花的签约", "由林静医生确认")
	mum.say("确认签约 "+code, "确认码不对或已过期") // once
	// The member manages their contract from their own WeChat from now on.
	mum.say("我的签约", "王小花", "待医生确认")
	var by string
	if err := storagetest.SQL(t, e.DB).Get(&by, `SELECT consent_by FROM contracts WHERE number = '`+number+`'`); err != nil || by != "o_mum_own" {
		t.Fatalf("the consent on record is %q's (%v), not the member's", by, err)
	}
	if n := countKind(t, e, DoctorRecipient(1), PushSignRequest, "pending"); n != 1 {
		t.Fatalf("the doctor's request after the member confirmed: %d", n)
	}
	if n := countKind(t, e, "o_son", PushMemberConfirmed, "pending"); n != 1 {
		t.Fatalf("the son is told %d times", n)
	}
	doc.say("确认 "+number, "已确认")
	if cs := contractsOf(t, e, "o_mum_own"); len(cs) != 1 || cs[0].Status != storage.ContractActive {
		t.Fatalf("after the doctor: %+v", cs)
	}
	if n := countKind(t, e, "o_mum_own", PushSignConfirmed, "pending"); n != 1 {
		t.Fatalf("the member is told of the doctor's answer %d times", n)
	}

	// A member who does not want it ends it; no doctor hears of it.
	aunt := synthID("110105", "19620101", "042")
	for _, s := range []string{"签约", "2", "王小云", "同意", aunt, "4", "13812345673", "1", "0", "1", "0"} {
		son.say(s)
	}
	refusedCode := regexp.MustCompile(`确认签约 ([0-9]{8})`).FindStringSubmatch(son.say("同意", "待本人确认"))[1]
	auntChat := talk(t, e, "o_aunt")
	auntChat.say("确认签约 "+refusedCode, "提交了家庭医生签约申请")
	auntChat.say("不同意", "已作废", "不会为您签约")
	for _, c := range contractsOf(t, e, "o_son") {
		if c.ResidentName == "王小云" && c.Status != storage.ContractCancelled {
			t.Fatalf("a signing its member refused: %s", c.Status)
		}
	}

	// Unconfirmed for 7 days, it lapses and the member can be signed again.
	dad := synthID("110105", "19560101", "031")
	for _, s := range []string{"签约", "2", "王大山", "同意", dad, "1", "13812345670", "1", "0", "1", "0"} {
		son.say(s)
	}
	son.say("同意", "待本人确认")
	if n, err := LapseMemberRequests(ctx, e.DB, son.clock.Add(6*24*time.Hour)); err != nil || n != 0 {
		t.Fatalf("lapsed early: %d %v", n, err)
	}
	if n, err := LapseMemberRequests(ctx, e.DB, son.clock.Add(MemberCodeValid+time.Minute)); err != nil || n != 1 {
		t.Fatalf("lapsed: %d %v", n, err)
	}
	for _, c := range contractsOf(t, e, "o_son") {
		if c.ResidentName == "王大山" && c.Status != storage.ContractCancelled {
			t.Fatalf("an unconfirmed signing after 7 days: %s", c.Status)
		}
	}
}

// A child is signed by a guardian, who is not asked for the child's
// confirmation; a 14-17-year-old signing alone takes no paid package.
func TestMinorsAndGuardians(t *testing.T) {
	e := engineFor(t, "national")
	teen := talk(t, e, "o_teen")
	for _, s := range []string{"签约", "1", "张小明", "同意", synthID("110105", "20100101", "011"), "13812345671", "1", "0"} {
		teen.say(s)
	}
	list := teen.say("1", "1. 基本公共卫生服务包（免费）")
	if strings.Contains(list, "母婴健康包") || strings.Contains(list, "2. ") {
		t.Fatalf("a 16-year-old alone is offered paid packages:\n%s", list)
	}
	teen.say("0")
	teen.say("同意", "合同编号")
	c, _ := e.DB.Catalog(context.Background())
	err := CheckChoice(c, Applicant{Age: 16, Groups: []string{"maternal"}, MinorAlone: true}, []string{"basic", "maternal_child"})
	if err == nil || !strings.Contains(err.Error(), "未满18周岁请由父母或其他监护人为您签约") {
		t.Fatalf("a paid package for a minor alone: %v", err)
	}
	if err := CheckChoice(c, Applicant{Age: 16, Groups: []string{"maternal"}}, []string{"basic", "maternal_child"}); err != nil {
		t.Fatalf("the same package signed by a guardian: %v", err)
	}
	// Where the basic package's amount is not given (Kunming), a minor
	// alone still signs it, and is kept from the personalised ones.
	km, _ := profile.Load("kunming")
	if err := CheckChoice(km, Applicant{Age: 16, MinorAlone: true}, []string{"basic"}); err != nil {
		t.Fatalf("Kunming's basic package for a minor alone: %v", err)
	}
	if err := CheckChoice(km, Applicant{Age: 16, MinorAlone: true}, []string{"basic", "tcm"}); err == nil || !strings.Contains(err.Error(), "可能需要个人付费") {
		t.Fatalf("an unknown-priced personalised package for a minor alone: %v", err)
	}
}
