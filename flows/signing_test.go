package flows

import (
	"context"
	"encoding/json"
	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage/storagetest"
	"github.com/jiayi-health/jiayi/templates"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
)

// chat plays turns for one WeChat user against one state.
type chat struct {
	t     *testing.T
	e     *Engine
	st    State
	open  string
	clock time.Time
}

func talk(t *testing.T, e *Engine, openID string) *chat {
	return &chat{t: t, e: e, open: openID, clock: time.Date(2026, 11, 23, 9, 0, 0, 0, Shanghai)}
}

// say sends one message a minute after the last and checks the reply.
func (c *chat) say(said string, contains ...string) string {
	c.t.Helper()
	c.clock = c.clock.Add(time.Minute)
	out, err := c.e.Handle(context.Background(), &c.st, Inbound{OpenID: c.open, Kind: Text, Text: said, At: c.clock})
	if err != nil {
		c.t.Fatalf("%q: %v", said, err)
	}
	reply := out.Reply()
	if len(out.Replies) != 1 || len(reply) > 2048 || strings.Contains(reply, templates.ClinicPhone) {
		c.t.Fatalf("%q: %d replies, %d bytes, or a clinic phone left out:\n%s", said, len(out.Replies), len(reply), reply)
	}
	for _, want := range contains {
		if !strings.Contains(reply, want) {
			c.t.Fatalf("%q: reply lacks %q:\n%s", said, want, reply)
		}
	}
	return reply
}

func (c *chat) in(flow, step string) {
	c.t.Helper()
	if c.st.Flow != flow || c.st.Step != step {
		c.t.Fatalf("at %s/%s, want %s/%s", c.st.Flow, c.st.Step, flow, step)
	}
}

func contractsOf(t *testing.T, e *Engine, openID string) []storage.ContractView {
	t.Helper()
	cs, err := e.DB.ContractsManagedBy(context.Background(), openID)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func TestSigningForOneself(t *testing.T) {
	e := engineFor(t, "national")
	id := synthID("110105", "19550302", "021")
	c := talk(t, e, "o_wang")
	c.say("签约", "请问为谁签约", "1. 本人", "2. 家庭成员")
	c.say("3", "请回复1或2")
	c.say("1", "请告诉我您的姓名")
	c.say("返回", "好的，回到上一步", "请问为谁签约")
	c.say("本人", "您的姓名")
	c.say("A", "姓名需要2到20个字")
	// The consent names the processor and how to reach it, each kind of
	// data and why, WeChat as the channel, the retention period and the
	// resident's rights, each of which exists (tested with 我的数据 etc.).
	c.say("王秀英", "单独同意", "敏感个人信息", "处理者：示范社区卫生服务中心（演示）", "身份证号（及其中的出生日期、性别）",
		"手机号：联系您", "住址", "健康状况", "微信（腾讯公司）", "保存期限", "“我的数据”", "“撤回同意”", "“删除我的数据”", "回复“同意”继续")
	c.in("signing", "consent")
	c.say("好的", "请回复“同意”继续")
	c.say("同意", "18位身份证号码")
	c.say("12345", "身份证号码是18位")
	c.say(id[:17]+map[bool]string{true: "1", false: "2"}[id[17] != '1'], "校验位不对")
	c.say(synthID("110105", "19550230", "021"), "出生日期不存在")
	c.say(synthID("110105", "20270101", "021"), "出生日期还没到")
	c.say(strings.ToLower(id), "已核对身份证号："+MaskID(id), "11位手机号码")
	c.say("1381234", "手机号码是11位")
	c.say("138 1234 5678", "请选择所在的村（社区）", "1. 示范街道 幸福社区")
	c.say("5", "请回复1到3之间的数字")
	c.say("1", "按年龄已自动加入：65岁以上老年人", "1. 高血压患者", "0. 都不是")
	c.say("1 x", "请回复1到")
	c.say("1，3", "已记录：高血压患者、脑卒中患者、65岁以上老年人", "请选择家庭医生团队",
		"1. 林静家庭医生团队（家庭医生：林静；成员：公共卫生人员许成、护士韩雪）")
	c.say("1", "请选择服务包", "1. 基本公共卫生服务包（免费）【已默认选择】", "2. 老年人健康管理包（费用以签约机构公示为准）",
		"3. 慢病管理包（费用以签约机构公示为准）")
	c.say("9", "请回复1到3之间的数字")
	confirm := c.say("2 3", "请核对签约信息", "王秀英（"+MaskID(id)+"，138****5678）", "幸福社区", "林静家庭医生团队",
		"  基本公共卫生服务包：", "  慢病管理包：", "费用：以签约机构公示为准",
		"签约协议（2026-12版）", "签约机构：示范社区卫生服务中心（演示），林静家庭医生团队（家庭医生：林静）", "服务期：1年",
		"老年人健康管理包：体检增项、中医体质辨识；费用以签约机构公示为准", "收费窗口缴纳", "最多退还已缴金额", "12320",
		"回复“同意”提交签约")
	if strings.Contains(confirm, id) || strings.Contains(confirm, "13812345678") {
		t.Fatal("the summary shows personal data unmasked")
	}
	c.say("好", "请回复“同意”提交签约")
	c.say("返回", "请选择服务包")
	c.say("0", "  基本公共卫生服务包：", "费用：免费")
	c.say("帮助", "正在签约家庭医生")
	c.say("同意", "签约申请已提交", "合同编号：QY2611230001", "待医生确认", "林静医生确认后")
	c.in("", "")
	// Completing twice has no second effect.
	c.say("同意", "没看懂")
	cs := contractsOf(t, e, "o_wang")
	if len(cs) != 1 || cs[0].Status != storage.ContractPending || cs[0].ResidentName != "王秀英" || len(cs[0].Packages) != 1 {
		t.Fatalf("contracts = %+v", cs)
	}
	rows, _ := e.DB.OutboxFor(context.Background(), DoctorRecipient(cs[0].DoctorID))
	if len(rows) != 1 || rows[0].Kind != PushSignRequest {
		t.Fatalf("doctor notification = %+v", rows)
	}
	// The same person cannot be signed again, by anyone.
	other := talk(t, e, "o_other")
	for _, s := range []string{"签约", "1", "王秀英", "同意"} {
		other.say(s)
	}
	other.say(id, "不能在线重复签约", "请重新输入", "需要帮忙请打电话0000-0000000")
	// A mistyped number: the right one, typed again, goes on.
	other.say(synthID("110105", "19620405", "027"), "已核对身份证号", "11位手机号")
}

func TestSigningAChildAsGuardian(t *testing.T) {
	e := engineFor(t, "national")
	child := synthID("110105", "20220815", "042")
	c := talk(t, e, "o_mum")
	c.say("签约")
	c.say("2", "这位家庭成员的姓名")
	c.say("李小宝", "这位家庭成员", "由您作为监护人同意")
	c.say("同意")
	c.say(child, "已核对身份证号", "这位家庭成员是您的", "请确认您是其监护人", "1. 子女")
	c.say("1", "手机号")
	c.say("13912345678")
	c.say("2", "按年龄已自动加入：0-6岁儿童")
	c.say("0", "已记录：0-6岁儿童")
	c.say("1", "母婴健康包")
	c.say("2", "母婴健康包")
	c.say("同意", "合同编号：QY2611230001")
	// A child cannot be signed on the "本人" path.
	kid := talk(t, e, "o_kid")
	for _, s := range []string{"签约", "1", "张小明", "同意"} {
		kid.say(s)
	}
	kid.say(synthID("110105", "20150101", "011"), "需要由监护人签约", "家庭成员")
	kid.in("", "")
	// The family member is listed next time.
	c.say("签约", "已添加的家庭成员：李小宝")
}

func TestSigningEndsPolitelyWithoutConsent(t *testing.T) {
	c := talk(t, engineFor(t, "national"), "o_no")
	c.say("签约")
	c.say("1")
	c.say("赵大爷")
	c.say("不同意", "已结束签约", "不会保存")
	c.in("", "")
}

func TestSigningCapsIDNumbersPerDay(t *testing.T) {
	c := talk(t, engineFor(t, "national"), "o_probe")
	for _, s := range []string{"签约", "1", "钱多多", "同意"} {
		c.say(s)
	}
	for i, birth := range []string{"19600101", "19600102", "19600103"} {
		c.say(synthID("110105", birth, "011"), "已核对身份证号")
		c.say("返回", "身份证号码")
		if i == 0 { // the same number again does not count
			c.say(synthID("110105", birth, "011"), "已核对身份证号")
			c.say("返回")
		}
	}
	c.say(synthID("110105", "19600104", "011"), "今天已经输入过多个不同的身份证号码")
	c.in("", "")
}

func TestSigningExpiresAndResumes(t *testing.T) {
	e := engineFor(t, "national")
	c := talk(t, e, "o_pause")
	c.say("签约")
	c.say("1")
	c.say("孙悟空", "单独同意")
	// An interruption is answered; 继续 comes back to the same question.
	c.say("我的签约", "还没有签约家庭医生", "回复“继续”回到刚才的签约")
	c.in("signing", "consent")
	c.say("预约", "预约需要先签约家庭医生", "回复“继续”回到刚才的签约")
	c.say("继续", "单独同意")
	c.in("signing", "consent")
	c.say("服务包", "家庭医生服务包", "回复“继续”回到刚才的签约")
	c.in("packages", "list")
	c.say("继续", "单独同意")
	c.in("signing", "consent")
	c.say("签约", "单独同意") // already signing: the question again
	c.clock = c.clock.Add(31 * time.Minute)
	// Left unanswered, it waits with its answers for a day.
	c.say("同意", "已经超过30分钟没有回复，先为您暂停", "回复“继续”接着办")
	c.in("", "")
	c.say("继续", "单独同意")
	c.in("signing", "consent")
	c.say("同意", "身份证号")
	c.clock = c.clock.Add(25 * time.Hour)
	c.say("1", "已经超过30分钟没有回复，已自动结束")
	c.in("", "")
	c.say("继续", "现在没有进行中的办理")
}

func TestSigningInYaoguanAsksWhereInsured(t *testing.T) {
	e := engineFor(t, "yaoguan")
	c := talk(t, e, "o_yg")
	for _, s := range []string{"签约", "1", "周建华", "同意", synthID("320412", "19700315", "031"), "13712345678", "1"} {
		c.say(s)
	}
	c.say("2", "已记录：2型糖尿病患者", "请选择家庭医生团队")
	c.say("1", "医保在哪里参保", "1. 本区参保", "2. 非本区参保")
	c.say("3", "请回复1（本区参保）或2")
	c.say("2", "1. 基本公共卫生服务包（免费）【已默认选择】", "2. 基本医疗服务包（个人付100元）", "3. 健康管理服务包（个人付100元）",
		"选其他基础服务包会替换默认的那个", "糖尿病增值包（个人付360元）")
	c.say("2 3", "基础服务包只能选一个", "请重新选择")
	c.say("3 6", "需要同时签约基本公共卫生服务包或基本医疗服务包")
	c.say("2 6", "  基本医疗服务包：预约就诊、用药指导、转诊协助等4项；个人付100元", "  糖尿病增值包：", "费用：基本公共卫生经费50元，个人支付460元")
	c.say("同意", "合同编号：QY2611230001")
	cs := contractsOf(t, e, "o_yg")
	if len(cs) != 1 || len(cs[0].Packages) != 2 {
		t.Fatalf("contract = %+v", cs)
	}
	for _, p := range cs[0].Packages {
		if p.Code == "basic_medical" && (p.Split["resident"] != 10000 || p.Split["public_health"] != 5000 || len(p.Split) != 2) {
			t.Fatalf("frozen split for the insured-elsewhere tier = %v", p.Split)
		}
	}
}

func TestSigningInHarbinChoosesPartnerHospitals(t *testing.T) {
	e := engineFor(t, "harbin")
	c := talk(t, e, "o_hrb")
	for _, s := range []string{"签约", "1", "于长海", "同意", synthID("230102", "19580606", "051"), "13612345678", "1", "0"} {
		c.say(s)
	}
	c.say("7", "请回复“1”选择这个团队")
	// The hospitals are the ones the programme names: 市老年医院 is its
	// secondary hospital, 市一院 leads it.
	c.say("1", "请选择签约的区级医院", "1. 哈尔滨市老年医院")
	c.say("2", "请回复“1”选择医院")
	c.say("老年", "请选择签约的三级医院", "1. 哈尔滨市第一医院") // by a part of its name
	c.say("好", "请选择服务包")                     // a list of one takes 好
	c.say("0", "合作医院：哈尔滨市老年医院、哈尔滨市第一医院")
	c.say("同意", "合同编号")
	if cs := contractsOf(t, e, "o_hrb"); cs[0].District != "哈尔滨市老年医院" || cs[0].Tertiary != "哈尔滨市第一医院" {
		t.Fatalf("partners = %q %q", cs[0].District, cs[0].Tertiary)
	}
}

// The session holds nothing personal in clear: not the ID number or phone,
// nor the name or the priority groups (health status).
func TestSigningStateHoldsNoClearPersonalData(t *testing.T) {
	e := engineFor(t, "national")
	id := synthID("110105", "19550302", "021")
	c := talk(t, e, "o_sealed")
	for _, s := range []string{"签约", "1", "王秀英", "同意", id, "13812345678", "1", "1"} {
		c.say(s)
	}
	c.in("signing", "team")
	saved, err := json.Marshal(c.st)
	if err != nil {
		t.Fatal(err)
	}
	for _, clear := range []string{id, "13812345678", id[6:14] + id[14:17], "王秀英", "hypertension", "1955-03-02"} {
		if strings.Contains(string(saved), clear) {
			t.Fatalf("the saved state holds %q in clear:\n%s", clear, saved)
		}
	}
	// And it still carries the conversation on.
	c.say("1", "请选择服务包")
}

// With more than nine communities, the resident types part of the name.
func TestSigningFindsACommunityByName(t *testing.T) {
	e := engineFor(t, "national")
	var many []storage.Community
	for _, name := range []string{"东湖村", "西湖村", "南山村", "北山村", "前进村", "红旗村", "新华村", "和平村", "团结村", "永安村"} {
		many = append(many, storage.Community{Town: "城关镇", Name: name})
	}
	if _, err := e.DB.CreateInstitution(context.Background(), storage.Institution{Code: "chengguan", Name: "城关镇卫生院", Kind: "township_centre"}, many,
		[]storage.NewTeam{{Name: "周医生团队", Doctor: storage.Doctor{Name: "周医生"}, Communities: []int{9}}}); err != nil {
		t.Fatal(err)
	}
	c := talk(t, e, "o_search")
	for _, s := range []string{"签约", "1", "钱大妈", "同意", synthID("110105", "19550302", "021")} {
		c.say(s)
	}
	reply := c.say("13812345678", "请输入所在村（社区）名称里的几个字")
	if strings.Contains(reply, "1. ") {
		t.Fatalf("a list of more than nine was shown:\n%s", reply)
	}
	c.say("湖", "找到多个", "东湖村", "西湖村")
	c.say("月亮", "没有找到这个村")
	c.say("永安", "是否属于下面的人群") // found: the groups step follows
	c.say("0")
	c.in("signing", "team")
	c.say("1", "请选择服务包")
	c.say("0", "村（社区）：永安村", "周医生团队")
}

// The priority groups a resident declares are health status: the consent
// text promises them encrypted, so the database holds them only sealed, and
// groups stored in clear by an earlier version are sealed at start.
func TestDeclaredGroupsAreSealedAtRest(t *testing.T) {
	e := engineFor(t, "national")
	ctx := context.Background()
	c := talk(t, e, "o_groups")
	for _, s := range []string{"签约", "1", "王秀英", "同意", synthID("110105", "19550302", "021"), "13812345678", "1", "1 2", "1", "0"} {
		c.say(s)
	}
	c.say("同意", "合同编号")
	raw := storagetest.SQL(t, e.DB)
	var stored string
	if err := raw.GetContext(ctx, &stored, `SELECT priority_groups FROM residents`); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stored, "hypertension") || strings.Contains(stored, "diabetes") || !strings.HasPrefix(stored, "v1:") {
		t.Fatalf("priority groups at rest: %q", stored)
	}
	cs := contractsOf(t, e, "o_groups")
	if groups, err := ResidentGroups(e.Sealer, cs[0].Groups, cs[0].BirthDate, c.clock); err != nil ||
		!slices.Contains(groups, "hypertension") || !slices.Contains(groups, "diabetes") || !slices.Contains(groups, "elderly") {
		t.Fatalf("groups read back: %v %v", groups, err)
	}
	// As an earlier version stored them.
	if _, err := raw.ExecContext(ctx, `UPDATE residents SET priority_groups = '["hypertension"]'`); err != nil {
		t.Fatal(err)
	}
	if n, err := SealLegacyGroups(ctx, e.DB, e.Sealer); err != nil || n != 1 {
		t.Fatalf("sealed %d, %v", n, err)
	}
	raw.GetContext(ctx, &stored, `SELECT priority_groups FROM residents`)
	cs = contractsOf(t, e, "o_groups")
	groups, err := ResidentGroups(e.Sealer, cs[0].Groups, cs[0].BirthDate, c.clock)
	if strings.Contains(stored, "hypertension") || err != nil || !slices.Contains(groups, "hypertension") {
		t.Fatalf("after sealing the old row: %q %v %v", stored, groups, err)
	}
}

// The summary before 同意 carries the whole agreement and still fits one
// reply (2,048 bytes) for the largest choice each programme allows.
func TestTheAgreementFitsOneReplyForTheLargestChoice(t *testing.T) {
	for _, region := range templates.ProfileCodes() {
		e := engineFor(t, region)
		ctx := context.Background()
		c, _ := e.DB.Catalog(ctx)
		var all []string
		for _, g := range profile.Words().PriorityGroups {
			all = append(all, g.Code)
		}
		a := Applicant{Age: 70, Groups: all, Insured: storage.InsuredLocal}
		var codes []string
		for _, p := range browseOrder(c) {
			if p.Default {
				codes = append(codes, p.Code)
			}
		}
		for _, p := range browseOrder(c) {
			if p.Kind != storage.Basic && CheckChoice(c, a, append(codes, p.Code)) == nil {
				codes = append(codes, p.Code)
			}
		}
		teams, _, _ := e.DB.ListTeams(ctx, storage.Scope{}, storage.Page{})
		fees := Price(c, a, codes)
		agreement, err := Agreement(ctx, e.DB, c, teams[0].ID, codes, fees, 12)
		if err != nil {
			t.Fatal(err)
		}
		text, err := templates.Message("sign_confirm", map[string]any{"Name": "欧阳秀英", "MaskedID": "1101**********0211",
			"MaskedPhone": "138****5678", "Community": "示范街道幸福社区", "Team": teams[0].Name, "Doctor": teams[0].DoctorName,
			"Hospitals": "哈尔滨市老年医院、哈尔滨市第一医院", "Price": priceOf(fees.Total),
			"Agreement": agreement})
		if err != nil || len(text) > 2048 {
			t.Errorf("%s: %d packages, %d bytes (%v):\n%s", region, len(codes), len(text), err, text)
		}
	}
}

// A resident who declares 孕产妇 is asked her expected due date; it is kept
// sealed, in the conversation's state and at rest, and 我的数据 shows it.
func TestSigningAPregnantWomanRecordsHerDueDate(t *testing.T) {
	e := engineFor(t, "national")
	ctx := context.Background()
	c := talk(t, e, "o_due")
	for _, s := range []string{"签约", "1", "陈晓燕", "同意", synthID("110105", "19980610", "022"), "13812345679"} {
		c.say(s)
	}
	groups := c.say("1", "孕产妇")
	number := ""
	for _, line := range strings.Split(groups, "\n") {
		if strings.Contains(line, "孕产妇") {
			number, _, _ = strings.Cut(line, ".")
		}
	}
	c.say(number, "已记录：孕产妇", "预产期是哪天")
	c.in("signing", "due")
	c.say("下个月吧", "没看懂这个日期")
	c.say("2028年3月1日", "不像预产期")
	c.say("不知道", "母子健康手册", "预产期是哪天")
	c.say("5月20日", "预产期记为2027年5月20日", "请选择家庭医生团队")
	saved, _ := json.Marshal(c.st)
	if strings.Contains(string(saved), "2027-05-20") || strings.Contains(string(saved), "05-20") {
		t.Fatalf("the saved state holds the due date in clear:\n%s", saved)
	}
	c.say("返回", "预产期是哪天") // going back asks again
	c.say("2027-05-21", "预产期记为2027年5月21日")
	c.say("1", "请选择服务包")
	c.say("0", "请核对签约信息")
	c.say("同意", "合同编号")
	var stored string
	if err := storagetest.SQL(t, e.DB).GetContext(ctx, &stored, `SELECT due_date_sealed FROM residents`); err != nil {
		t.Fatal(err)
	}
	cs := contractsOf(t, e, "o_due")
	due, ok, err := OpenDueDate(e.Sealer, cs[0].DueDate)
	if strings.Contains(stored, "2027") || !strings.HasPrefix(stored, "v1:") || !ok || err != nil || due.Format("2006-01-02") != "2027-05-21" {
		t.Fatalf("due date at rest %q, read back %v %v %v", stored, due, ok, err)
	}
	c.say("我的数据", "预产期：2027-05-21")
}

// A due date said without a year is the one that makes it a due date: a
// month ago is a birth just past, not a pregnancy of 11 months.
func TestParseDueDate(t *testing.T) {
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, Shanghai)
	for said, want := range map[string]string{
		"5月20日": "2027-05-20", "2027年5月20号": "2027-05-20", "2027.5.20": "2027-05-20", "２０２７－０５－２０": "2027-05-20",
		"11月20日": "2026-11-20", "12月25日": "2026-12-25", "9.1": "2027-09-01",
	} {
		got, ok := parseDueDate(said, now)
		if !ok || got.Format("2006-01-02") != want {
			t.Errorf("%q: %v %v, want %s", said, got, ok, want)
		}
	}
	for _, said := range []string{"下个月", "2027年2月30日", "2027年13月1日", "好"} {
		if got, ok := parseDueDate(said, now); ok {
			t.Errorf("%q read as %v", said, got)
		}
	}
}
