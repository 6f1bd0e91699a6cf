package flows

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
)

// signed runs a whole signing and returns the contract number.
func signed(t *testing.T, e *Engine, openID, id string) string {
	t.Helper()
	c := talk(t, e, openID)
	for _, s := range []string{"签约", "1", "王秀英", "同意", id, "13812345678", "1", "0", "1", "0"} {
		c.say(s)
	}
	reply := c.say("同意", "合同编号：")
	return reply[strings.Index(reply, "QY") : strings.Index(reply, "QY")+12]
}

func TestDoctorBindsAndAnswersSignRequests(t *testing.T) {
	e := engineFor(t, "national")
	ctx := context.Background()
	docs, _ := e.DB.Doctors(ctx)
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, Shanghai)
	code, err := IssueBindingCode(ctx, e.DB, e.Sealer, docs[0].ID, now, BindingCodeTTL)
	if err != nil {
		t.Fatal(err)
	}
	expired, _ := IssueBindingCode(ctx, e.DB, e.Sealer, docs[1].ID, now.Add(-73*time.Hour), BindingCodeTTL)

	first := signed(t, e, "o_res1", synthID("110105", "19550302", "021"))
	second := signed(t, e, "o_res2", synthID("110105", "19560405", "031"))

	// A number's digits alone are a doctor's words only: from anyone else
	// they are theirs (a phone number, a member's code).
	res := talk(t, e, "o_notdoc")
	res.lacks(res.say("确认 "+strings.TrimPrefix(first, "QY")), "医生身份", "合同编号")
	res.lacks(res.say("拒绝 13812345678 不想签"), "医生身份", "合同编号")
	res.lacks(res.say("确认 75931103"), "医生身份", "合同编号")

	doc := talk(t, e, "o_doc")
	doc.say("确认 "+first, "还没有绑定医生身份")
	doc.say("绑定 "+expired, "绑定码不对，或已经用过、已过期")
	doc.say("绑定 "+strings.ToLower(code), "绑定成功", docs[0].Name)
	talk(t, e, "o_thief").say("绑定 "+code, "绑定码不对") // used
	// What waited for the doctor to bind is due again at once.
	rows, _ := e.DB.OutboxFor(ctx, DoctorRecipient(docs[0].ID))
	if len(rows) != 2 {
		t.Fatalf("sign requests to the doctor = %+v", rows)
	}
	doc.say("确认 QY2611239999", "没有找到您负责的签约")
	doc.say("确认 QY26112310000", "没有找到您负责的签约") // a day's 10,000th number has eleven digits
	doc.say("拒绝 QY26112310000 不在服务范围", "没有找到您负责的签约")
	doc.say("确认 QY123", "合同编号是QY加10位数字")
	doc.say("确认 QY261123100000", "没有找到您负责的签约") // the 100,000th: twelve
	doc.say("确认 QY2611231000000", "合同编号是QY加10位数字")
	doc.say("qwerty", "没看懂", "常用的有：确认、今日预约", "回复“帮助”看全部") // the doctors' words, not the residents'
	talk(t, e, "o_res1").say("qwerty", "常用的有：签约、预约")
	doc.say("拒绝 qy26112 不对", "合同编号是QY加10位数字")
	doc.say("拒绝 "+second+"1 不对", "没有找到您负责的签约 "+second+"1") // a digit more: not the request it begins with
	doc.say("拒绝 "+second+"123 不对", "合同编号是QY加10位数字")
	doc.say("确认 "+strings.TrimPrefix(first, "QY"), "已确认签约 "+first, "王秀英", "服务期到2027-11-22") // the digits alone
	doc.say("确认 "+strings.ToLower(first), "已经处理过了")
	doc.say("确认 26112300", "合同编号是QY加10位数字") // not a line of a list either
	doc.say("拒绝 "+second, "请写上拒绝的原因")
	doc.say("拒绝 "+strings.TrimPrefix(second, "QY"), "请写上拒绝的原因", "拒绝 "+second+" ")
	doc.say("拒绝 "+second+" 不在本团队服务范围", "已拒绝签约 "+second)

	mine := contractsOf(t, e, "o_res1")
	if mine[0].Status != storage.ContractActive || mine[0].TermEnd.String != "2027-11-22" {
		t.Fatalf("first contract = %+v", mine[0])
	}
	if c := contractsOf(t, e, "o_res2"); c[0].Status != storage.ContractDeclined {
		t.Fatalf("second contract = %+v", c[0])
	}
	talk(t, e, "o_res2").say("我的签约", "（医生说明：不在本团队服务范围）")
	declined, _ := e.DB.OutboxFor(ctx, "o_res2") // one row, checked above
	if f, _ := declined[0].Fields(); f["phone"] != "0000-0000000" {
		t.Fatalf("the decline does not say whom to ask: %v", f)
	}
	for openID, kind := range map[string]string{"o_res1": PushSignConfirmed, "o_res2": PushSignDeclined} {
		rows, _ := e.DB.OutboxFor(ctx, openID)
		if len(rows) != 1 || rows[0].Kind != kind {
			t.Fatalf("%s was told %+v, want %s", openID, rows, kind)
		}
	}
	// Another doctor cannot answer for this one.
	code2, _ := IssueBindingCode(ctx, e.DB, e.Sealer, docs[1].ID, now, BindingCodeTTL)
	other := talk(t, e, "o_doc2")
	other.say("绑定 "+code2, "绑定成功")
	third := signed(t, e, "o_res3", synthID("110105", "19570506", "041"))
	other.say("确认 "+third, "没有找到您负责的签约")
}

// A code issued in sandbox mode is, in production, answered word for word
// as an unknown code is, and binds no one; a production code binds.
func TestSandboxBindingCodeIsUnknownInProduction(t *testing.T) {
	e := engineFor(t, "national")
	ctx := context.Background()
	docs, _ := e.DB.Doctors(ctx)
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, Shanghai)
	e.DB.SetSandbox(true)
	sandboxCode, err := IssueBindingCode(ctx, e.DB, e.Sealer, docs[0].ID, now, BindingCodeTTL)
	if err != nil {
		t.Fatal(err)
	}
	e.DB.SetSandbox(false)
	code, err := IssueBindingCode(ctx, e.DB, e.Sealer, docs[1].ID, now, BindingCodeTTL)
	if err != nil {
		t.Fatal(err)
	}
	refused := talk(t, e, "o_stranger").say("绑定 "+sandboxCode, "绑定码不对")
	if unknown := talk(t, e, "o_guess").say("绑定 AAAAAAAA"); refused != unknown {
		t.Fatalf("a sandbox code is answered %q, an unknown one %q", refused, unknown)
	}
	if _, bound, _ := e.DB.DoctorOpenID(ctx, docs[0].ID); bound {
		t.Fatal("a sandbox code bound a doctor in production")
	}
	talk(t, e, "o_doc").say("绑定 "+code, "绑定成功", docs[1].Name)
}

func TestWrongBindingCodesAreLimited(t *testing.T) {
	c := talk(t, engineFor(t, "national"), "o_guess")
	for range maxBindingFailures {
		c.say("绑定 AAAAAAAA", "绑定码不对")
	}
	c.say("绑定 BBBBBBBB", "输错次数太多")
}
