package flows

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jiayi-health/jiayi/storage"
)

// The rights the consent text names exist: 我的数据 shows what is held
// (ID number and phone masked), 删除我的数据 reaches the institution's
// admins, whose answer reaches the resident, and 撤回同意 ends the contract,
// its visits and the reminders.
func TestTheConsentsRightsExist(t *testing.T) {
	e, _, c := signedResident(t, "o_pd")
	ctx := context.Background()
	id := synthID("110105", "19550302", "021")
	c.book("1", "2", "1")
	mine := c.say("我的数据", "我们为您保存的信息", "王秀英", MaskID(id), "出生日期：1955-03-02", "性别：男", "重点人群：65岁以上老年人",
		"138****5678", "签约记录1份，预约和就诊记录1条（含已取消的", "同意个人信息处理：", "（2026-12版）", "“撤回同意”", "“删除我的数据”")
	if strings.Contains(mine, id) || strings.Contains(mine, "13812345678") {
		t.Fatalf("我的数据 shows the ID number or phone in full:\n%s", mine)
	}
	c.say("我的", "4. 我的数据")
	c.say("4", "我们为您保存的信息")

	c.say("删除我的数据", "申请删除王秀英的个人信息", "依法办理后答复您", "回复“确认”提交申请")
	c.say("好", "请回复“确认”")
	c.say("确认", "已提交王秀英的删除申请")
	c.say("删除我的数据")
	c.say("确认", "删除申请已经提交过了")
	reqs, total, err := e.DB.DataRequests(ctx, storage.Scope{}, storage.Page{Limit: 10})
	if err != nil || total != 1 || reqs[0].ResidentName != "王秀英" || reqs[0].HandledAt.Valid {
		t.Fatalf("deletion requests: %+v %d %v", reqs, total, err)
	}
	if err := AnswerDeletion(ctx, e.DB, storage.Scope{}, reqs[0].ID, "admin", " ", c.clock); err == nil {
		t.Fatal("an empty answer was recorded")
	}
	if err := AnswerDeletion(ctx, e.DB, storage.Scope{}, reqs[0].ID, "admin", "已删除手机号，病历依法保存", c.clock); err != nil {
		t.Fatal(err)
	}
	if n := countKind(t, e, "o_pd", PushDataRequestAnswered, "pending"); n != 1 {
		t.Fatalf("the answer reaches the resident %d times", n)
	}

	c.say("撤回同意", "签约随之解除", "不再发送提醒", "回复“确认”撤回")
	c.say("确认", "已撤回王秀英的个人信息处理同意", "签约已解除")
	cs := contractsOf(t, e, "o_pd")
	if cs[0].Status != storage.ContractCancelled {
		t.Fatalf("the contract after withdrawal: %s", cs[0].Status)
	}
	if a, _ := e.DB.UpcomingManagedBy(ctx, "o_pd", c.clock); len(a) != 0 {
		t.Fatalf("visits kept after withdrawal: %+v", a)
	}
	if n := countKind(t, e, "o_pd", PushAppointmentReminder, "pending"); n != 0 {
		t.Fatalf("%d reminders still due after withdrawal", n)
	}
	if n := countKind(t, e, DoctorRecipient(cs[0].DoctorID), PushContractCancelled, "pending"); n != 1 {
		t.Fatalf("the doctor is told %d times", n)
	}
	c.say("我的数据", "已于"+c.clock.In(Shanghai).Format("2006-01-02")+"撤回")
}

// The consent names the institution that processes the data; a city's
// deployment of many names its region and where to find the one chosen.
func TestTheConsentNamesTheProcessor(t *testing.T) {
	e := engineFor(t, "kunming")
	ctx := context.Background()
	one, err := Processor(ctx, e.DB)
	if err != nil || !strings.Contains(one.Name, "（演示）") {
		t.Fatalf("one institution: %+v %v", one, err)
	}
	for i := range 3 {
		if _, err := e.DB.CreateInstitution(ctx, storage.Institution{Code: fmt.Sprintf("c%d", i), Name: fmt.Sprintf("第%d社区卫生服务中心", i),
			Kind: "community_centre", Phone: "0871-6000000"}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	city, err := Processor(ctx, e.DB)
	if err != nil || !strings.HasPrefix(city.Name, "昆明市各签约的卫生院") || city.Phones != "" {
		t.Fatalf("a city's deployment: %+v %v", city, err)
	}
}
