package flows

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// Transcripts of residents talking as they do: sentences, voice input with
// its fillers, numbers, days and names as people say them. The clock starts
// on Monday 23 November 2026, 09:00 in China.

func (c *chat) lacks(reply string, not ...string) {
	c.t.Helper()
	for _, n := range not {
		if strings.Contains(reply, n) {
			c.t.Fatalf("reply has %q:\n%s", n, reply)
		}
	}
}

func TestSentencesStartWhatTheyAsk(t *testing.T) {
	e := engineFor(t, "national")
	c := talk(t, e, "o_sentences")
	c.say("我要签约", "请问为谁签约")
	c.say("取消", "已退出")
	c.say("嗯，那个，怎么签家庭医生啊？", "请问为谁签约")
	c.say("算了", "已退出")
	c.say("我的医生是谁", "您还没有签约家庭医生")
	c.say("帮我取消预约", "暂无预约")
	c.say("嗯，帮助。", "您可以回复下面的词")
	c.say("签约要交钱吗", "服务包")
	c.say("嗯，帮助。", "服务包列表") // inside a conversation: its own help
	c.say("不看了", "已退出")
	c.say("你好", "您好！这里是家庭医生签约服务")
	c.say("谢谢", "不客气")
	c.say("我想问一下，你们几点下班", "电话：0000-0000000")
	c.say("我换手机号了", "打电话0000-0000000告诉我们")
	c.say("我想投诉", "12320")
	c.say("嗯。", "有需要随时告诉我")
	c.say("取消", "现在没有正在办理的事")
	c.say("签约家庭医生要花钱吗，我退休工资不高", "服务包")
	c.say("取消")
	c.say("你们不会是骗子吧，会不会要我银行卡号", "不会向您要银行卡号")
	c.say("我手机号换了，新的是13612345678", "打电话0000-0000000告诉我们")
	if !strings.HasPrefix(c.say("血压180/110，头有点晕"), "如果情况紧急，请马上拨打120") {
		t.Fatal("a grade 3 blood pressure is not answered with 120 first")
	}
	c.lacks(c.say("血压135/85，正常吗", "不能给出用药或治疗的建议"), "120。\n")
	c.lacks(c.say("今天天气怎么样啊", "没看懂"), "120")
}

func TestVoiceFillersAndNumbersAsSaid(t *testing.T) {
	e := engineFor(t, "national")
	c := talk(t, e, "o_voice")
	c.say("嗯，签约。", "请问为谁签约")
	c.say("嗯，第一个。", "您的姓名")
	c.say("那个，王秀英。", "单独同意")
	c.say("同意。", "身份证号")
	c.say(synthID("110105", "19550302", "021"), "手机号")
	c.say("13812345678", "请选择所在的村（社区）", "1. 示范街道 幸福社区")
	c.say("幸福社区", "是否属于下面的人群") // by name
	c.say("一和三", "已记录")
	c.in("signing", "team")
	c.say("林静", "请选择服务包") // a doctor's name picks the team
}

func TestDontKnowGetsAHint(t *testing.T) {
	e := engineFor(t, "national")
	c := talk(t, e, "o_dunno")
	for _, s := range []string{"签约", "1", "王秀英", "同意"} {
		c.say(s)
	}
	c.say("不知道", "印在身份证正面最下面一行", "身份证号")
	c.in("signing", "id")
	c.say(synthID("110105", "19550302", "021"))
	c.say("13812345678")
	c.say("1")
	c.say("不清楚", "回复“0”", "是否属于下面的人群")
	c.say("都不是", "已记录")
	c.say("不知道", "选离家近的就行")
	c.in("signing", "team")
}

func TestUrgentWordsComeFirst(t *testing.T) {
	e := engineFor(t, "national")
	c := talk(t, e, "o_urgent_new")
	reply := c.say("我爸胸口疼得厉害，喘不上气", "如果情况紧急，请马上拨打120", "0000-0000000", "回复“签约”")
	if !strings.HasPrefix(reply, "如果情况紧急，请马上拨打120") {
		t.Fatalf("the emergency line is not first:\n%s", reply)
	}
	// Inside a conversation: the emergency first, then its question.
	c.say("签约", "请问为谁签约")
	reply = c.say("中风了怎么办", "请马上拨打120", "0000-0000000", "请问为谁签约")
	if !strings.HasPrefix(reply, "如果情况紧急") {
		t.Fatalf("the emergency line is not first:\n%s", reply)
	}
	c.in("signing", "who")
	c.say("2", "姓名")
	c.say("喘不上气", "请马上拨打120", "姓名") // not taken as the name
	c.in("signing", "name")
	c.say("不想活了", "12356", "姓名")

	// A signed resident is given the doctor's name and the clinic's phone.
	_, _, s := signedResident(t, "o_urgent_signed")
	s.say("老伴晕倒了叫不醒", "请马上拨打120", "林静医生", "0000-0000000")
	for _, m := range []string{"胸闷", "我心口有点疼", "喘不上来气。", "我妈心脏难受得很", "我爸脸色煞白喊他也不太应", "我妈抽过去了", "孩子呛着了", "嗯那个我老头子脸色发紫。", "喝农药了", "吃了一整瓶安眠药", "被狗咬了出了好多血",
		"头痛得要炸开了还吐", "我头好晕要倒了", "活着没意思了"} {
		if reply := s.say(m); !strings.HasPrefix(reply, "如果情况紧急，请马上拨打120") {
			t.Errorf("%q is not answered with 120 first:\n%s", m, reply)
		}
	}
	s.say("我的家庭医生电话是多少", "家庭医生：林静，签约机构电话：0000-0000000")
}

func TestHealthQuestionsGetTheDoctorNotAdvice(t *testing.T) {
	_, _, c := signedResident(t, "o_health")
	for _, q := range []string{"血压高怎么办", "嗯，最近老是睡不着。", "降压药能停吗？"} {
		reply := c.say(q, "林静医生", "0000-0000000", "回复“预约”", "不能给出用药或治疗的建议")
		c.lacks(reply, "没看懂")
	}
	e := engineFor(t, "national")
	talk(t, e, "o_health_new").say("血糖有点高", "0000-0000000", "不能给出")
}

func TestUnheardVoiceIsAskedAgain(t *testing.T) {
	e := engineFor(t, "national")
	out, err := e.Handle(context.Background(), &State{}, Inbound{OpenID: "o_unheard", Kind: Unheard, At: time.Now()})
	if err != nil || out.Reply() != "没听清，请再说一次或打字。" {
		t.Fatalf("reply %q, %v", out.Reply(), err)
	}
}

func TestBookingFromOneSentence(t *testing.T) {
	_, _, c := signedResident(t, "o_sentence_book")
	c.say("我想预约明天上午看病", "为谁预约", "1. 王秀英")
	// The kind, the day and the half were said: the times come next.
	c.say("好", "11月24日 周二上午可以预约的时间", "1. 08:00-08:10", "回复“更多”")
	c.in("booking", "time")
	c.say("更多", "1. 09:20-09:30")
	c.say("九点半", "请确认预约", "11月24日 周二 09:30-09:40", "门诊")
	c.say("确认", "预约成功")

	// 改个时间 with one appointment moves it; 帮我取消预约 asks first.
	c.say("嗯，改个时间。", "给王秀英改约，原来是11月24日 周二 09:30-09:40的门诊", "可以预约的日期")
	c.say("后天", "11月25日 周三上午、下午都有号")
	c.say("下午", "11月25日 周三下午可以预约的时间")
	c.say("取消", "已退出")
	c.say("把预约改到后天下午", "11月25日 周三下午可以预约的时间") // the day and half said are taken
	c.say("取消", "已退出")
	c.say("帮我取消预约", "要取消这个预约吗", "09:30-09:40")
	c.say("不了", "预约保留不变")
}

func TestDaysAndTimesAsSaid(t *testing.T) {
	_, _, c := signedResident(t, "o_days")
	c.say("预约", "为谁预约")
	c.say("一", "预约什么")
	c.say("门诊", "可以预约的日期", "回复“更多”")
	c.say("12月30号", "12月30日 周三没有可以预约的号", "可以预约的日期")
	c.say("下周三", "12月2日 周三上午、下午都有号")
	c.say("返回", "可以预约的日期")
	c.say("周五", "11月27日 周五上午、下午都有号")
	c.say("下午三点", "请确认预约", "11月27日 周五 15:00-15:10")
	c.say("返回", "下午可以预约的时间", "比如“下午3点10分”")
	c.say("18点", "18:00没有可以预约的号", "下午可以预约的时间")
	c.say("上午", "11月27日 周五上午可以预约的时间")
	c.say("更多")
	c.say("更多", "5. 11:20-11:30")
	c.say("更多", "后面没有了，从头再看一遍", "1. 08:00-08:10")
	c.say("返回", "上午、下午都有号")
}

// A resident already signed who types 签约 is told so before anything is
// asked again, and may sign a family member with 2.
func TestSigningAgainSaysYouAreSigned(t *testing.T) {
	_, _, c := signedResident(t, "o_again")
	c.lacks(c.say("我要签约", "您本人已经签约了林静家庭医生团队", "0000-0000000", "回复“2”"), "姓名", "身份证")
	c.say("1", "您本人已经签约了")
	c.in("signing", "who")
	c.say("2", "这位家庭成员的姓名")
}

// Groups a person cannot be in are not offered: no 孕产妇 for a man of 71,
// and the numbers mean the list shown.
func TestGroupsOfferedFitThePerson(t *testing.T) {
	e := engineFor(t, "national")
	man := talk(t, e, "o_man71")
	for _, s := range []string{"签约", "1", "张建国", "同意", synthID("110105", "19550302", "011"), "13812345678"} {
		man.say(s)
	}
	man.lacks(man.say("1", "是否属于下面的人群", "5. 残疾人"), "孕产妇")
	man.say("5", "已记录：残疾人")

	woman := talk(t, e, "o_woman30")
	for _, s := range []string{"签约", "1", "李敏", "同意", synthID("110105", "19960302", "022"), "13812345679"} {
		woman.say(s)
	}
	woman.say("1", "5. 孕产妇", "6. 残疾人")
	woman.say("5", "已记录：孕产妇")
}

// A profile named after the service is not put before 家庭医生服务包.
func TestNoDoubledServiceName(t *testing.T) {
	for _, region := range []string{"national", "township"} {
		c := talk(t, engineFor(t, region), "o_words")
		c.lacks(c.say("服务包", "家庭医生服务包："), "签约服务家庭医生")
	}
	c := talk(t, engineFor(t, "harbin"), "o_words")
	c.say("服务包", "哈尔滨市家庭医生服务包：")
}

// 同意 and 确认 are read in the sentences people answer with; 好 alone is
// not taken for a consent or a commitment.
func TestExplicitAnswersInSentences(t *testing.T) {
	e := engineFor(t, "national")
	c := talk(t, e, "o_consent")
	c.say("签约", "为谁签约")
	c.say("本人", "您的姓名")
	c.say("王秀英", "单独同意")
	c.say("好", "请回复")
	c.in("signing", "consent")
	c.say("嗯，我同意。", "身份证号")

	d := talk(t, e, "o_refuse")
	for _, s := range []string{"签约", "1", "李敏"} {
		d.say(s)
	}
	d.say("我不同意", "不会保存")
	d.in("", "")

	_, _, r := signedResident(t, "o_confirm")
	r.toConfirm("门诊", "明天", "8点")
	r.say("等一下", "请回复“确认”")
	r.say("不对", "请回复“确认”")
	r.say("可以，就这样定了", "预约成功") // a booking takes a plain yes
	r.say("取消预约", "要取消这个预约吗")
	r.say("不取消了", "预约保留不变")
}

// A sentence a question cannot take, which asks for something else, gets
// the word that does it.
func TestAnswerThatAsksForSomethingElse(t *testing.T) {
	_, _, c := signedResident(t, "o_elsewhere")
	c.say("签约", "您本人已经签约了")
	c.say("我想先预约一下看病", "请回复", "如果您是想办别的事，可以回复“预约”")
	c.in("signing", "who")
	c.lacks(c.say("3", "请回复"), "别的事")
}

// A name said in a sentence is the name, not the sentence.
func TestNameSaidInASentence(t *testing.T) {
	e := engineFor(t, "national")
	for said, want := range map[string]string{"嗯，我叫王秀英。": "王秀英", "她的名字叫李敏": "李敏", "姓名：张建国": "张建国", "叶是": "叶是"} {
		c := talk(t, e, "o_name")
		c.say("签约")
		c.say("1")
		c.say(said, "单独同意")
		var d signingData
		plain, _ := e.Sealer.Open(sessionField("o_name"), strings.Trim(string(c.st.Data), `"`))
		if err := json.Unmarshal([]byte(plain), &d); err != nil || d.Name != want {
			t.Errorf("%q: name %q, want %q (%v)", said, d.Name, want, err)
		}
	}
}

// Signing for a family member can be said in one sentence, at the start or
// at the first question.
func TestSigningForFamilyInASentence(t *testing.T) {
	_, _, c := signedResident(t, "o_family_sentence")
	c.say("我想给我老伴也签一个", "这位家庭成员的姓名")
	c.say("取消", "已退出")
	c.say("签约", "您本人已经签约了")
	c.say("帮我妈签", "这位家庭成员的姓名")

	e := engineFor(t, "national")
	n := talk(t, e, "o_self_sentence")
	n.say("签约", "为谁签约")
	n.say("给我自己签。", "您的姓名")
}

// Answers said in sentences at the signing's questions: the ID number and
// phone inside them, groups and packages by name.
func TestSigningAnswersInSentences(t *testing.T) {
	e := engineFor(t, "national")
	c := talk(t, e, "o_sentences_sign")
	c.say("签约")
	c.say("就我自己", "您的姓名")
	c.say("我叫张建国", "单独同意")
	c.say("好的，我同意。", "身份证号")
	c.say("我的身份证号是"+synthID("110105", "19550302", "011")+"。", "手机号")
	c.say("手机号是13812345678", "村（社区）")
	c.say("和平社区")
	c.say("我有高血压，还有糖尿病，没有慢阻肺", "已记录：高血压患者、2型糖尿病患者、65岁以上老年人")
	c.say("林静")
	reply := c.say("不知道", "基础服务包")
	c.in("signing", "packages")
	n := numberOf(t, reply, "慢病")
	c.say(n+"和"+n+"都要", "请核对签约信息", "慢病管理包")
	c.say("返回", "请选择服务包")
	c.say("只要基本的", "请核对签约信息")
	c.say("返回", "请选择服务包")
	c.say("要慢病管理包", "请核对签约信息", "慢病管理包")
}

// 要取消这个预约吗 is answered as people answer it; 不知道 hints name
// whom to ask.
func TestCancelAnsweredPlainlyAndHintsWithPhone(t *testing.T) {
	for _, yes := range []string{"对，取消吧。", "是的", "取消", "确认"} {
		_, _, c := signedResident(t, "o_cancel_yes")
		c.book("门诊", "明天", "8点")
		c.say("帮我取消预约", "要取消这个预约吗")
		c.say(yes, "已取消")
	}
	_, _, c := signedResident(t, "o_kind_hint")
	c.say("预约")
	c.say("1", "预约什么")
	c.lacks(c.say("不知道", "回复“门诊”", "需要帮忙请打电话0000-0000000", "预约什么"), "3. 体检”")
}

// Tried as a new user would: the answers people give at each question.
func TestAnswersPeopleGive(t *testing.T) {
	e := engineFor(t, "national")
	c := talk(t, e, "o_people")
	c.say("签约")
	c.say("1")
	c.lacks(c.say("我是问问能不能上门", "只需要写姓名"), "单独同意")
	c.in("signing", "name")

	// A family member's relation in the words people use.
	f := talk(t, e, "o_people_family")
	for _, s := range []string{"签约", "2", "李敏", "同意", synthID("110105", "19500405", "042")} {
		f.say(s)
	}
	f.in("signing", "relation")
	f.say("她是我妈妈", "手机号")
	// A question at the packages names no package into the contract.
	for _, s := range []string{"13812345679", "1", "0", "1"} {
		f.say(s)
	}
	f.in("signing", "packages")
	f.lacks(f.say("慢病管理包要多少钱啊", "回复“服务包”"), "请核对")
	f.in("signing", "packages")

	// One person to book for: the answer is for them, and tells the rest.
	_, _, r := signedResident(t, "o_people_booking")
	r.say("预约", "为谁预约")
	r.say("给我自己约后天上午的门诊", "11月25日 周三上午可以预约的时间")

	// A question in a menu leaves it and is answered.
	r.say("取消")
	r.say("服务包", "回复数字")
	r.say("慢病管理包要多少钱啊", "慢病管理包")
	r.say("返回")
	r.say("签约要带什么证件", "您本人已经签约了")
	r.in("signing", "who")
}

// An answer not at hand gets the question's hint, with how to come back.
func TestAnswerNotAtHand(t *testing.T) {
	e := engineFor(t, "national")
	c := talk(t, e, "o_not_at_hand")
	for _, s := range []string{"签约", "2", "李敏", "同意"} {
		c.say(s)
	}
	c.say("我手头没有我妈的身份证，回头再找找", "身份证号", "回复“继续”接着填")
	c.in("signing", "id")
}

// A question or a hedge at a question that commits something commits
// nothing.
func TestQuestionsAndHedgesCommitNothing(t *testing.T) {
	e := engineFor(t, "national")
	c := talk(t, e, "o_hedge")
	for _, s := range []string{"签约", "1", "王秀英"} {
		c.say(s)
	}
	c.say("同意什么？", "请回复", "想先问清楚也好", "0000-0000000")
	c.in("signing", "consent")
	c.say("同意？", "请回复")
	c.in("signing", "consent")

	re, _, r := signedResident(t, "o_hedge_booking")
	r.toConfirm("门诊", "明天", "8点")
	r.say("可以改成下午吗", "请回复“确认”")
	r.say("好", "预约成功")
	r.say("帮我取消预约", "要取消这个预约吗")
	r.say("为啥要取消？", "预约保留不变")
	if a, _ := re.DB.UpcomingManagedBy(context.Background(), "o_hedge_booking", r.clock); len(a) != 1 {
		t.Fatalf("the booking after a question about cancelling it: %+v", a)
	}
	r.say("解约", "解约的原因")
	r.say("解约了还能看病吗", "解约的事不着急", "0000-0000000")
	r.in("cancel", "reason")
	r.say("搬家了")
	r.say("我再确认一下", "请回复")
	r.in("cancel", "confirm")
}

// Greetings, thanks and relations are not names; a question is not 本人;
// a day said that has no slot is answered with the list once.
func TestNotNames(t *testing.T) {
	e := engineFor(t, "national")
	c := talk(t, e, "o_not_names")
	c.say("签约")
	c.say("本人吗？", "请回复1或2")
	c.say("2", "姓名")
	for _, s := range []string{"好的", "你好", "谢谢医生", "我妈", "是我老伴", "我自己", "同意吗"} {
		c.say(s, "只需要写姓名")
		c.in("signing", "name")
	}
	_, _, r := signedResident(t, "o_no_double_list")
	r.say("预约")
	reply := r.say("我想约12月30号看病", "12月30日 周三没有可以预约的号")
	if strings.Count(reply, "可以预约的日期") != 1 {
		t.Fatalf("the list of days is shown %d times:\n%s", strings.Count(reply, "可以预约的日期"), reply)
	}
}
