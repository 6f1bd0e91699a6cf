package flows

import (
	"fmt"
	"strings"
	"testing"
)

// A bound doctor asks in chat as residents do: 帮助 lists the commands, 确认
// alone what waits, 确认 一 answers its line, 明日预约 and 周三预约 a day's
// visits, 我的居民 the residents by group.
func TestDoctorsInChat(t *testing.T) {
	e := engineFor(t, "national")
	doc := bindFirstDoctor(t, e)
	doc.say("帮助", "林静医生，您可以回复", "我的居民", "明日预约")
	doc.say("确认", "现在没有等您确认的申请")

	first := signed(t, e, "o_dc1", synthID("110105", "19550302", "021"))
	// The second declares hypertension (1) and diabetes (2); born 1990, not elderly.
	c := talk(t, e, "o_dc2")
	for _, s := range []string{"签约", "1", "李敏", "同意", synthID("110105", "19900405", "032"), "13812345679", "1", "1 2", "1", "0"} {
		c.say(s)
	}
	second := numberIn(c.say("同意", "合同编号"))
	doc.say("确认", "1. "+first+" 王秀英，幸福社区，签约申请", "2. "+second+" 李敏", "回复“确认 序号”")
	doc.say("确认 第三个", "等您确认的申请里没有第3个")
	doc.say("拒绝 2", "请写上拒绝的原因")
	doc.say("确认 一", "已确认签约 "+first)
	doc.say("确认 2", "已确认签约 "+second) // the line the doctor saw, not the list now
	doc.say("确认", "现在没有等您确认的申请")

	doc.say("我的居民", "共2人", "65岁以上老年人 1人", "高血压患者 1人", "2型糖尿病患者 1人")

	// Visits tomorrow (Tuesday 24 November) and on Wednesday.
	r := talk(t, e, "o_dc1")
	r.toConfirm("门诊", "明天", "8点")
	r.say("确认", "预约成功")
	doc.say("明日预约", "11月24日 周二的预约", "1. 08:00-08:10 门诊 王秀英")
	doc.say("周三预约", "11月25日 周三没有预约")
	doc.say("帮我看看明天有几个人约了", "11月24日 周二的预约", "1. 08:00-08:10 门诊 王秀英")
	doc.say("今日预约", "今天没有预约")
	doc.say("未到 一", "今天的预约里没有第1个")
}

// Residents' own words are not taken as a doctor's: 明天预约 books.
func TestDoctorWordsAreOnlyDoctors(t *testing.T) {
	_, _, c := signedResident(t, "o_not_doc")
	c.say("明天预约", "为谁预约")
	c.say("1", "预约什么")
	c.say("门诊", "11月24日 周二上午、下午都有号")
	c.say("取消", "已退出")
	c.lacks(c.say("我的居民", "1. 我的签约"), "共") // read as 我的
	c.say("取消", "已退出")
	c.say("帮助", "您可以回复下面的词")
}

func numberIn(reply string) string {
	i := strings.Index(reply, "QY")
	return reply[i : i+12]
}

// A waiting list too long for one reply lists the lines that fit and
// counts the rest as waiting.
func TestWaitingListFitsOneReply(t *testing.T) {
	long := strings.Repeat("长", 20)
	lines := make([]waitingLine, 20)
	for i := range lines {
		lines[i] = waitingLine{Number: fmt.Sprintf("QY26112300%02d", i+1), Name: "王秀英", Community: long + "社区", Change: long + "家庭医生团队"}
	}
	replies, shown, err := waitingReply(lines, 23)
	if err != nil {
		t.Fatal(err)
	}
	reply := strings.Join(replies, "\n\n")
	if len(reply) > maxReplyBytes || shown >= 20 || shown < 5 {
		t.Fatalf("%d lines shown in %d bytes", shown, len(reply))
	}
	if !strings.Contains(reply, fmt.Sprintf("另有%d份", 23-shown)) || strings.Contains(reply, lines[shown].Number) {
		t.Fatalf("the reply does not count what it left out:\n%s", reply)
	}
	if _, shown, _ := waitingReply(lines[:3], 3); shown != 3 {
		t.Fatalf("a short list lost lines: %d shown of 3", shown)
	}
}
