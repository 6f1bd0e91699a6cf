package flows

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMyContracts(t *testing.T) {
	e := engineFor(t, "national")
	id := synthID("110105", "19550302", "021")
	number := signed(t, e, "o_me", id)
	c := talk(t, e, "o_me")
	list := c.say("我的签约", "您办理的签约", "1. 王秀英（"+MaskID(id)+"）", "编号："+number+"，状态：待医生确认",
		"团队：林静家庭医生团队（家庭医生：林静，签约机构电话：0000-0000000）", "服务包：基本公共卫生服务包", "医生确认后开始计算")
	if strings.Contains(list, id) {
		t.Fatal("the list shows the ID number unmasked")
	}
	c.say("我的", "1. 我的签约", "2. 我的预约")
	c.in("mine", "menu")
	c.say("1", number)
	c.in("", "")
	c.say("我的")
	c.say("2", "暂无预约")
	// Someone else sees only their own.
	talk(t, e, "o_stranger").say("我的签约", "您还没有签约家庭医生")
	// Mid-signing, 我的签约 is answered and signing waits.
	s := talk(t, e, "o_me")
	s.say("签约")
	s.say("2")
	s.say("我的签约", number, "回复“继续”回到刚才的签约")
	s.in("signing", "name")
	s.say("继续", "这位家庭成员的姓名")
}

// 返回 at every step goes back to the step before, and the conversation
// goes on from there.
func TestBackAtEveryStep(t *testing.T) {
	e := engineFor(t, "yaoguan")
	c := talk(t, e, "o_back")
	answers := []struct{ step, said, question string }{
		{"who", "1", "请问为谁签约"},
		{"name", "周建华", "您的姓名"},
		{"consent", "同意", "单独同意"},
		{"id", synthID("320412", "19700315", "031"), "身份证号码"},
		{"phone", "13712345678", "手机号码"},
		{"community", "1", "请选择所在的村"},
		{"groups", "2", "是否属于下面的人群"},
		{"team", "1", "请选择家庭医生团队"},
		{"insured", "1", "医保在哪里参保"},
		{"packages", "0", "请选择服务包"},
	}
	c.say("签约", answers[0].question)
	for i, a := range answers {
		c.in("signing", a.step)
		if i > 0 {
			c.say("返回", "回到上一步", answers[i-1].question)
			c.in("signing", answers[i-1].step)
			c.say(answers[i-1].said)
			c.in("signing", a.step)
		}
		c.say(a.said)
	}
	c.in("signing", "confirm")
	c.say("返回", "请选择服务包")
	c.say("0", "请核对签约信息")
	c.say("同意", "合同编号")
}

func TestDoctorQRCodePreselectsTheTeam(t *testing.T) {
	e := engineFor(t, "national")
	docs, _ := e.DB.Doctors(context.Background())
	second := docs[1] // 郭建华, serving communities 2 and 3
	var st State
	out, err := e.Handle(context.Background(), &st, Inbound{OpenID: "o_qr", Kind: Subscribe,
		Scene: "doctor_" + strconv.FormatInt(second.ID, 10), At: time.Date(2026, 11, 23, 9, 0, 0, 0, Shanghai)})
	if err != nil || !strings.Contains(out.Reply(), "欢迎关注") || !strings.Contains(out.Reply(), "请问为谁签约") || len(out.Reply()) > 2048 {
		t.Fatalf("follow through a doctor's QR code: %q %v", out.Replies, err)
	}
	c := talk(t, e, "o_qr")
	c.st = st
	for _, s := range []string{"1", "吴桂兰", "同意", synthID("110105", "19480808", "062"), "13512345678", "2", "0"} {
		c.say(s)
	}
	c.in("signing", "team")
	reply := c.say("继续", "1. 郭建华家庭医生团队", "已为您选好")
	if !strings.Contains(reply, "2. 林静家庭医生团队") {
		t.Fatalf("the other team is still offered:\n%s", reply)
	}
	c.say("0", "请选择服务包")
	c.say("0")
	c.say("同意", "郭建华医生确认后")
}
