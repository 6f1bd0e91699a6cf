package flows

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

func TestDoctorMarksVisitsAndResidentsScoreOnce(t *testing.T) {
	e := engineFor(t, "national")
	doc := bindFirstDoctor(t, e)
	activeFor(t, e, doc, "o_v1", synthID("110105", "19550302", "021"))
	activeFor(t, e, doc, "o_v2", synthID("110105", "19560303", "022"))
	for _, who := range []string{"o_v1", "o_v2"} {
		c := talk(t, e, who)
		for _, s := range []string{"预约", "1", "1", "2", "上午", "1"} {
			c.say(s)
		}
		c.say("确认", "预约成功")
	}
	doc.clock = time.Date(2026, 11, 24, 9, 0, 0, 0, Shanghai)
	doc.say("今日预约", "1. 08:00-08:10 门诊 王秀英", "2. 08:10-08:20 门诊 王秀英", "完成 序号")
	doc.say("完成 3", "没有第3个")
	doc.say("完成 1", "已把第1个（王秀英）标记为完成")
	doc.say("完成 1", "已经标记过了")
	doc.say("未到 2", "标记为未到")
	doc.say("今日预约", "（已完成）", "（未到）")
	if countKind(t, e, "o_v1", PushSatisfaction, "pending") != 1 || countKind(t, e, "o_v2", PushSatisfaction, "pending") != 0 {
		t.Fatal("the survey goes to the resident seen, and only to them")
	}
	r := talk(t, e, "o_v1")
	r.clock = time.Date(2026, 11, 24, 10, 0, 0, 0, Shanghai)
	r.say("那个林医生挺好的，给五分吧", "谢谢您的评价（5分）", "跳过") // a score said in a sentence
	r.say("医生很耐心，头晕好多了", "收到，谢谢您")
	// A comment may tell of health: it is sealed at rest.
	sql := storagetest.SQL(t, e.DB)
	var stored string
	if err := sql.Get(&stored, `SELECT comment FROM surveys WHERE comment <> ''`); err != nil || strings.Contains(stored, "头晕") {
		t.Fatalf("the comment is stored as %q (%v)", stored, err)
	}
	if opened, err := e.Sealer.Open(commentField, stored); err != nil || opened != "医生很耐心,头晕好多了" {
		t.Fatalf("the comment opens as %q (%v)", opened, err)
	}
	// One stored in clear before comments were sealed is sealed at start.
	sql.MustExec(`UPDATE surveys SET comment = '血压稳定了' WHERE comment <> ''`)
	if n, err := SealLegacyComments(context.Background(), e.DB, e.Sealer); err != nil || n != 1 {
		t.Fatalf("sealed %d legacy comments: %v", n, err)
	}
	if left, _ := e.DB.ClearComments(context.Background()); len(left) != 0 {
		t.Fatalf("comments still in clear: %+v", left)
	}
	r.say("4", "没看懂") // a second answer is no answer
	talk(t, e, "o_v2").say("3", "没看懂")
	scores, _ := e.DB.SurveyScores(context.Background())
	if len(scores) != 1 || scores[0] != 5 {
		t.Fatalf("scores = %v", scores)
	}
	talk(t, e, "o_nobody").say("今日预约", "还没有绑定医生身份")
}

func TestAgendaOncePerDoctorAndDayFrom0730(t *testing.T) {
	e, _, c := signedResident(t, "o_ag")
	ctx := context.Background()
	c.book("1", "2", "1")
	early := time.Date(2026, 11, 24, 7, 29, 0, 0, Shanghai)
	if p, _ := AgendaPushes(ctx, e.DB, early); len(p) != 0 {
		t.Fatalf("before 07:30: %+v", p)
	}
	for range 3 { // three instances, or three ticks
		p, err := AgendaPushes(ctx, e.DB, early.Add(time.Minute))
		if err != nil || len(p) != 1 || p[0].Fields["count"] != "1" || p[0].Fields["first"] != "08:00" {
			t.Fatalf("at 07:30: %+v %v", p, err)
		}
		if err := e.DB.Apply(ctx, storage.Changes{Pushes: p}); err != nil {
			t.Fatal(err)
		}
	}
	if n := countKind(t, e, "o_doc", PushDoctorAgenda, "pending"); n != 1 {
		t.Fatalf("%d agendas", n)
	}
	// The day after has no visits: no agenda.
	if p, _ := AgendaPushes(ctx, e.DB, early.AddDate(0, 0, 1).Add(time.Hour)); len(p) != 0 {
		t.Fatalf("a day without visits: %+v", p)
	}
}

func TestFulfilmentCountsCompletedVisits(t *testing.T) {
	e := engineFor(t, "township")
	ctx := context.Background()
	doc := bindFirstDoctor(t, e)
	// A hypertensive 71-year-old on the free basic package, which carries
	// the key groups' services: 4 follow-ups and a check-up a year for a
	// chronic patient, a check-up for the elderly.
	c := talk(t, e, "o_f")
	for _, s := range []string{"签约", "1", "王秀英", "同意", synthID("110105", "19550302", "021"), "13812345678", "1", "1", "1"} {
		c.say(s)
	}
	c.say("0", "  基础服务包：", "费用：免费")
	number := c.say("同意", "合同编号")
	number = number[strings.Index(number, "QY") : strings.Index(number, "QY")+12]
	doc.say("确认 "+number, "已确认")
	for _, kind := range []string{"随访", "随访", "体检"} {
		for _, s := range []string{"预约", "1", kind, "2", "上午", "1"} {
			c.say(s)
		}
		c.say("确认", "预约成功")
	}
	doc.clock = time.Date(2026, 11, 24, 12, 0, 0, 0, Shanghai)
	doc.say("完成 1")
	doc.say("完成 2")
	doc.say("未到 3")
	contract, _ := e.DB.ContractByNumber(ctx, number)
	got, err := Fulfilment(ctx, e.DB, e.Sealer, contract, doc.clock)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]int{"慢性病患者面对面随访": {4, 2}, "慢性病患者年度健康体检": {1, 0}, "老年人健康体检（含中医体质辨识）": {1, 0}}
	for _, f := range got {
		if w, ok := want[f.Item]; ok && (f.Required != w[0] || f.Done != w[1]) {
			t.Errorf("%s/%s: %d of %d, want %d of %d", f.Package, f.Item, f.Done, f.Required, w[1], w[0])
		}
		delete(want, f.Item)
	}
	if len(want) != 0 {
		t.Fatalf("items missing: %v (got %+v)", want, got)
	}
}

// A visit is marked done or missed on its day, not before, and its
// reminders are withdrawn then; a resident who turned personal reminders
// off gets none for a new booking, and is promised none.
func TestMarkingAVisitAndRemindersOff(t *testing.T) {
	e, _, c := signedResident(t, "o_mk")
	ctx := context.Background()
	c.book("1", "2", "1", "我们会在前一天晚上提醒您") // tomorrow 08:00
	a, _ := e.DB.UpcomingManagedBy(ctx, "o_mk", c.clock)
	if err := MarkVisit(ctx, e.DB, e.Sealer, a[0], "done", Readings{}, c.clock); !errors.Is(err, ErrVisitAhead) {
		t.Fatalf("marked a visit of tomorrow today: %v", err)
	}
	if err := MarkVisit(ctx, e.DB, e.Sealer, a[0], "done", Readings{}, a[0].StartsAt.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n := countKind(t, e, "o_mk", PushAppointmentReminder, "pending"); n != 0 {
		t.Fatalf("%d reminders of a visit already done are still due", n)
	}
	c.say("提醒设置")
	c.say("2", "已关闭个人健康提醒")
	c.say("取消")
	if done := c.book("1", "3", "1"); strings.Contains(done, "提醒您") {
		t.Fatalf("a resident who turned reminders off is promised one:\n%s", done)
	}
	if n := countKind(t, e, "o_mk", PushAppointmentReminder, "pending"); n != 0 {
		t.Fatalf("%d reminders queued for a resident who turned them off", n)
	}
}

// A doctor finishing a visit may say what they measured; the readings are
// sealed, and a reading no living person has is refused before anything
// is marked.
func TestDoctorRecordsReadingsAtAVisit(t *testing.T) {
	e := engineFor(t, "national")
	doc := bindFirstDoctor(t, e)
	activeFor(t, e, doc, "o_rd", synthID("110105", "19550302", "021"))
	c := talk(t, e, "o_rd")
	for _, s := range []string{"预约", "1", "1", "2", "上午", "1"} {
		c.say(s)
	}
	c.say("确认", "预约成功")
	doc.clock = time.Date(2026, 11, 24, 9, 0, 0, 0, Shanghai)
	doc.say("完成 1 血压 300/85", "血压读数不在合理范围", "还没有标记")
	doc.say("完成 1 心情不错", "读数请写成", "还没有标记")
	doc.say("今日预约", "1. 08:00-08:10 门诊 王秀英")
	// The reply names no value: a late one waits in the outbox in clear.
	if got := doc.say("完成 1 血压 135/85 血糖 6.8", "标记为完成，已记下读数"); strings.Contains(got, "135") {
		t.Fatalf("the reply repeats the reading: %s", got)
	}
	sql := storagetest.SQL(t, e.DB)
	var sealed string
	if err := sql.Get(&sealed, `SELECT readings_sealed FROM appointments WHERE status = 'done'`); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "135") || strings.Contains(sealed, "6.8") {
		t.Fatalf("readings stored in clear: %s", sealed)
	}
	if r, err := openReadings(e.Sealer, sealed); err != nil || r != (Readings{Systolic: 135, Diastolic: 85, Glucose: 6.8}) ||
		!r.BPControlled() || !r.GlucoseControlled() {
		t.Fatalf("readings: %+v %v", r, err)
	}
}

func TestParseReadings(t *testing.T) {
	for text, want := range map[string]Readings{
		"":                      {},
		"血压135/85":              {Systolic: 135, Diastolic: 85},
		"血压：150／95 mmHg":        {Systolic: 150, Diastolic: 95},
		"血糖 7":                  {Glucose: 7},
		"血糖6.8mmol/L，血压 120/80": {Systolic: 120, Diastolic: 80, Glucose: 6.8},
	} {
		if got, err := ParseReadings(text); err != nil || got != want {
			t.Errorf("%q: %+v %v, want %+v", text, got, err, want)
		}
	}
	for _, bad := range []string{"血压 85/135", "血糖 60", "血压 135", "体温 37"} {
		if _, err := ParseReadings(bad); err == nil {
			t.Errorf("%q was taken", bad)
		}
	}
	if (Readings{Systolic: 140, Diastolic: 80}).BPControlled() || !(Readings{Glucose: 6.9}).GlucoseControlled() {
		t.Error("control is below 140/90 and below 7.0")
	}
}

// The basic package's chronic follow-ups are due for chronic patients and
// its check-up for the 65+, not for every resident who holds it.
func TestFulfilmentCountsOnlyItemsDueForTheResident(t *testing.T) {
	e := engineFor(t, "national")
	ctx := context.Background()
	place, _ := e.DB.Communities(ctx)
	teams, _ := e.DB.TeamsServing(ctx, place[0].ID)
	items := func(key, born string, groups ...string) string {
		t.Helper()
		sealed, _ := SealGroups(e.Sealer, groups)
		number, _, err := e.DB.CreateContract(ctx, storage.NewContract{RequestKey: key, Day: "261201",
			Resident: storage.NewResident{ManagerOpenID: "o_" + key, Relation: "self", Name: "居民", IDSealed: "s", IDHash: key,
				PhoneSealed: "s", PhoneHash: key, BirthDate: born, Sex: "female", CommunityID: place[0].ID, GroupsSealed: sealed,
				GroupTags: GroupTags(e.Sealer, groups)},
			TeamID: teams[0].ID, DoctorID: teams[0].DoctorID, Insured: storage.InsuredLocal, TermMonths: 12, AgreementVersion: "paper",
			AgreedAt: time.Now(), ConsentVersion: "paper", ConsentedAt: time.Now(), ConsentBy: "staff",
			Packages: []storage.ContractPackage{{Code: "basic", Name: "基本", Kind: "basic"}}, Active: true, TermEnd: "2099-12-31"})
		if err != nil {
			t.Fatal(err)
		}
		k, _ := e.DB.ContractByNumber(ctx, number)
		got, err := Fulfilment(ctx, e.DB, e.Sealer, k, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range got {
			names = append(names, f.Item)
		}
		return strings.Join(names, ",")
	}
	if got := items("young", "1990-01-01"); got != "" {
		t.Errorf("a 36-year-old with no chronic disease is due %s", got)
	}
	if got := items("hyp", "1980-01-01", "hypertension"); got != "慢病患者面对面随访" {
		t.Errorf("a hypertension patient is due %q", got)
	}
	if got := items("old", "1950-01-01", "diabetes"); got != "慢病患者面对面随访,65岁以上老年人健康体检" {
		t.Errorf("a 76-year-old diabetes patient is due %q", got)
	}
}
