package flows

import (
	"slices"
	"testing"
	"time"
)

func TestListNumber(t *testing.T) {
	for said, want := range map[string]int{"1": 1, "１": 1, "一": 1, "第一个": 1, "1号": 1, "两": 2, "二": 2, "第2项": 2,
		"选3": 3, "就3吧": 3, "十": 10, "十二": 12, "二十三": 23, "0": 0, "零": 0, "五分": 5, " ３ ": 3} {
		if got, ok := listNumber(said); !ok || got != want {
			t.Errorf("listNumber(%q) = %d, %v; want %d", said, got, ok, want)
		}
	}
	for _, said := range []string{"", "好", "一二", "十十", "第", "三百", "-1", "1.5", "张三"} {
		if got, ok := listNumber(said); ok {
			t.Errorf("listNumber(%q) = %d; want no number", said, got)
		}
	}
}

func TestChoiceOfOne(t *testing.T) {
	for _, said := range []string{"1", "一", "好", "是的", "对"} {
		if n, ok := choice(said, 1); !ok || n != 1 {
			t.Errorf("choice(%q, 1) = %d, %v", said, n, ok)
		}
	}
	if _, ok := choice("好", 2); ok {
		t.Error("好 picked from a list of two")
	}
	if _, ok := choice("3", 2); ok {
		t.Error("3 picked from a list of two")
	}
}

func TestNumbersIn(t *testing.T) {
	for said, want := range map[string][]int{"1 3": {1, 3}, "1,3": {1, 3}, "1，3": {1, 3}, "1、3": {1, 3},
		"一和三": {1, 3}, "第一个跟第三个": {1, 3}, "2": {2}, "１２": {12}} {
		if got, ok := numbersIn(said); !ok || !slices.Equal(got, want) {
			t.Errorf("numbersIn(%q) = %v, %v; want %v", said, got, ok, want)
		}
	}
	if got, ok := numbersIn("高血压"); ok {
		t.Errorf("numbersIn(高血压) = %v", got)
	}
}

func TestParseDay(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, Shanghai) // a Wednesday
	day := func(m time.Month, d int) string {
		return time.Date(2026, m, d, 0, 0, 0, 0, Shanghai).Format("2006-01-02")
	}
	for said, want := range map[string]string{
		"今天": day(12, 2), "明天": day(12, 3), "后天": day(12, 4), "大后天": day(12, 5),
		"周三": day(12, 2), "星期五": day(12, 4), "周一": day(12, 7), "礼拜天": day(12, 6), "周日": day(12, 6),
		"下周三": day(12, 9), "下个星期一": day(12, 7), "这周五": day(12, 4),
		"12月2号": day(12, 2), "12月10日": day(12, 10), "十二月三号": day(12, 3), "5号": day(12, 5), "2号": day(12, 2),
		"1号": "2027-01-01", "1月5号": "2027-01-05", "12.8": day(12, 8), "明天上午": day(12, 3), "嗯，后天。": day(12, 4),
		"明天9.30": day(12, 3), "我家3号楼，明天来": day(12, 3), "明天有事，改到后天": day(12, 4),
	} {
		got, ok := parseDay(said, now)
		if !ok || got.Format("2006-01-02") != want {
			t.Errorf("parseDay(%q) = %s, %v; want %s", said, got.Format("2006-01-02"), ok, want)
		}
	}
	for _, said := range []string{"", "上午", "2月30号", "13月1号", "32号", "随便", "1", "我家3号楼"} {
		if got, ok := parseDay(said, now); ok {
			t.Errorf("parseDay(%q) = %s; want no day", said, got.Format("2006-01-02"))
		}
	}
}

func TestParseClockAndHalf(t *testing.T) {
	for said, want := range map[string][2]int{"9点": {9, 0}, "九点半": {9, 30}, "9:30": {9, 30}, "９：３０": {9, 30},
		"下午3点": {15, 0}, "3点": {15, 0}, "晚上7点": {19, 0}, "早一点，9点吧": {9, 0}, "上午10点": {10, 0}, "两点一刻": {14, 15}, "14点": {14, 0}, "八点二十": {8, 20}} {
		h, m, ok := parseClock(said)
		if !ok || h != want[0] || m != want[1] {
			t.Errorf("parseClock(%q) = %d:%d %v; want %d:%d", said, h, m, ok, want[0], want[1])
		}
	}
	for _, said := range []string{"上午", "25点", "明天", "早一点", "差一点就忘了"} {
		if h, m, ok := parseClock(said); ok {
			t.Errorf("parseClock(%q) = %d:%d", said, h, m)
		}
	}
	for said, want := range map[string]string{"上午": morning, "早上去": morning, "下午吧": afternoon, "明天": ""} {
		if got := parseHalf(said); got != want {
			t.Errorf("parseHalf(%q) = %q; want %q", said, got, want)
		}
	}
}

func TestNormalizeDropsVoiceFillers(t *testing.T) {
	for said, want := range map[string]string{"嗯，1。": "1", "那个，同意。": "同意", "嗯嗯 预约": "预约", "呃，就是，王小明": "王小明",
		"那个人": "那个人", "就是说": "就是说", "嗯": "嗯", "ＡＢＣ！": "ABC", "  本人  ": "本人", "同意？？": "同意？", "确认?!": "确认？"} {
		if got := Normalize(said); got != want {
			t.Errorf("Normalize(%q) = %q; want %q", said, got, want)
		}
	}
}

func TestUnderstandExplains(t *testing.T) {
	for said, want := range map[string]Meaning{
		"预约":          {Intent: "book", Says: "预约", Phrase: "~预约", Whole: true},
		"嗯，那个，预约。":    {Intent: "book", Says: "预约", Phrase: "~预约", Whole: true},
		"签约要交钱吗":      {Intent: "packages", Says: "服务包", Phrase: "交钱"},
		"胸口疼，想预约":     {Intent: "urgent", Phrase: "胸口疼"},
		"血压高怎么办":      {Intent: "health", Phrase: "血压"},
		"今天天气不错啊，出去玩": {},
	} {
		if got := Understand(said); got != want {
			t.Errorf("Understand(%q) = %+v; want %+v", said, got, want)
		}
	}
}

func TestPhrasesRejectWhatCannotMatch(t *testing.T) {
	for _, bad := range []string{
		"intents: [{name: x, phrases: [预约 一下]}]",
		"intents: [{name: x, phrases: [预约。]}]",
		"intents: [{name: x, phrases: [=~预约]}]",
		"intents: [{name: x, phrases: [a…b…c]}]",
		"intents: [{name: x, phrases: [预约]}, {name: y, phrases: [预约]}]",
		"intents: [{name: x, phrases: []}]",
		"intent: []",
	} {
		if _, err := loadPhrases([]byte(bad)); err == nil {
			t.Errorf("loadPhrases(%s) took it", bad)
		}
	}
}

// Only an answer that is the word commits; a sentence that contains it is
// asked again.
func TestAnswerTo(t *testing.T) {
	for said, want := range map[string]string{
		"同意": answeredYes, "我同意": answeredYes, "好的，我同意。": answeredYes, "嗯，同意吧": answeredYes, "同意签约": answeredYes,
		"不同意": answeredNo, "我不同意": answeredNo, "我不愿意": answeredNo,
		"同意什么？": "", "儿子说了同意就行，我不懂": "", "同意了会不会收钱": "", "老伴同意了，我还没想好": "", "我不太懂这个同意": "",
		"同意，不过慢病包我不想要了": "", "你们觉得好就同意": "", "同意要不要带身份证": "", "好": "",
		"同意？": "", "同意？？": "", "同意了吧？": "", "同意啊？": "",
	} {
		if got := answerTo(said, "同意"); got != want {
			t.Errorf("answerTo(%q, 同意) = %q, want %q", said, got, want)
		}
	}
	for said, want := range map[string]string{
		"确认": answeredYes, "确定": answeredYes, "好的，确认": answeredYes, "确认解约": answeredYes,
		"我想确认医生以后还来随访": "", "确认下解约后医生还会不会打电话": "", "我再确认一下": "", "确认下删了以后会不会影响我看病": "",
		"确认解约？": "", "确认吧？": "", "确认？！": "", "确认了？": "",
	} {
		if got := answerTo(said, "确认"); got != want {
			t.Errorf("answerTo(%q, 确认) = %q, want %q", said, got, want)
		}
	}
	for said, want := range map[string]bool{"对，取消吧": true, "是的": true, "嗯": true, "取消": true,
		"我想确认下是哪天的": false, "下雨的话就取消": false, "为啥要取消？": false, "不取消了": false, "取消？": false} {
		if got := cancelMeant(said); got != want {
			t.Errorf("cancelMeant(%q) = %v, want %v", said, got, want)
		}
	}
	for said, want := range map[string]bool{"好": true, "可以，就这样定了": true, "好的，确认": true,
		"我也确定不了，到时候看身体": false, "可以改成下午吗": false, "对吧？": false} {
		if got := bookConfirmed(said); got != want {
			t.Errorf("bookConfirmed(%q) = %v, want %v", said, got, want)
		}
	}
}
