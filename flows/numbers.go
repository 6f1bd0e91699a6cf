package flows

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Numbers, days and times as residents type or say them: "一", "第一个",
// "1号", "两", "明天", "下周三", "12月2号", "九点半".

var chineseDigits = map[rune]int{'零': 0, '〇': 0, '一': 1, '幺': 1, '二': 2, '两': 2, '三': 3, '四': 4, '五': 5,
	'六': 6, '七': 7, '八': 8, '九': 9}

// smallNumber reads a number written in digits, or from 0 to 99 in Chinese
// numerals ("十二", "二十", "两").
func smallNumber(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(s); err == nil {
		return n, n >= 0
	}
	r := []rune(s)
	digit := func(i int) (int, bool) {
		if i >= len(r) {
			return 0, false
		}
		d, ok := chineseDigits[r[i]]
		return d, ok
	}
	switch {
	case len(r) == 1 && r[0] == '十':
		return 10, true
	case len(r) == 1:
		return digit(0)
	case len(r) == 2 && r[0] == '十': // 十二
		d, ok := digit(1)
		return 10 + d, ok && d > 0
	case len(r) == 2 && r[1] == '十': // 二十
		d, ok := digit(0)
		return 10 * d, ok && d > 1
	case len(r) == 3 && r[1] == '十': // 二十三
		t, ok1 := digit(0)
		d, ok2 := digit(2)
		return 10*t + d, ok1 && ok2 && t > 1 && d > 0
	}
	return 0, false
}

// listNumber reads the number of a line in a list: "2", "二", "第二个",
// "2号", "第2项", "选2", "就2吧".
func listNumber(said string) (int, bool) {
	s := strings.TrimSuffix(strings.ReplaceAll(Normalize(said), " ", ""), "？")
	for _, p := range []string{"我选", "我要", "选", "要", "就", "是"} {
		if rest, ok := strings.CutPrefix(s, p); ok && rest != "" {
			s = rest
			break
		}
	}
	s = strings.TrimPrefix(s, "第")
	for _, suffix := range []string{"吧", "的", "个", "号", "项", "条", "位", "种", "家", "分", "个吧"} {
		s = strings.TrimSuffix(s, suffix)
	}
	return smallNumber(s)
}

// asNumber is a message that names a list's line as its digits ("第二个"
// is "2"); anything else is left as it is, for the names a menu takes.
func asNumber(said string) string {
	if n, ok := listNumber(said); ok {
		return strconv.Itoa(n)
	}
	return said
}

// yesWords answer a list of one as well as its number does.
var yesWords = map[string]bool{"好": true, "好的": true, "是": true, "是的": true, "对": true, "对的": true, "行": true,
	"可以": true, "嗯": true, "就这个": true, "这个": true, "ok": true}

// Explicit answers to "回复‘同意’" or "回复‘确认’".
const (
	answeredYes = "yes"
	answeredNo  = "no"
)

// answerTo reads an answer to a question that asks for a word (同意,
// 确认): yes only when the message is that word, said as people say it
// (我同意, 好的，确认。, 确认解约), no when it is a refusal (不同意, 我不愿意),
// "" for anything else. A sentence that only contains the word (同意什么？,
// 我再确认一下, 儿子说了同意就行，我不懂) is asked again: these answers commit
// a consent, a contract or a withdrawal.
func answerTo(said, word string) string {
	return answerWith(said, word, nil)
}

// answerWith is answerTo where more short answers also mean yes (for a
// booking or a cancellation, undone as easily as made: 好, 是的, 对，取消吧).
func answerWith(said, word string, alsoYes []string) string {
	if isQuestion(said) { // 同意？, 对吧？, 取消？: asked, not answered
		return ""
	}
	c := strings.TrimSuffix(strings.TrimSuffix(core(said), "了"), "的")
	for _, no := range []string{"不" + word, "没" + word, "我不" + word, "不愿意", "我不愿意", "拒绝", "我拒绝", "不要", "不用了"} {
		if c == no {
			return answeredNo
		}
	}
	c = withoutYesWords(c)
	yes := append([]string{word}, alsoYes...)
	if word == "确认" {
		yes = append(yes, "确定", "确认无误")
	}
	for _, w := range yes {
		if c == w || strings.HasPrefix(c, w) && slices.Contains(answerObjects, strings.TrimPrefix(c, w)) {
			return answeredYes
		}
	}
	return ""
}

// answerObjects may follow the word: 同意签约, 确认解约.
var answerObjects = []string{"签约", "解约", "续签", "改签", "撤回", "删除", "预约", "取消", "提交"}

// withoutYesWords drops the words people put before an answer (好的，我同意;
// 对，取消), as long as something is left.
func withoutYesWords(c string) string {
	for trimmed := true; trimmed; {
		trimmed = false
		for _, w := range []string{"好的", "是的", "对的", "可以", "那就", "好", "是", "对", "嗯", "行", "就", "我"} {
			if rest, ok := strings.CutPrefix(c, w); ok && rest != "" {
				c, trimmed = rest, true
			}
		}
	}
	return c
}

// questionWords make a message a question (慢病管理包要多少钱啊), which a
// list does not take as a choice even when it names a line.
var questionWords = []string{"吗", "多少", "什么", "怎么", "能不能", "可不可以", "是不是", "啥", "?", "？", "几块", "几次", "多久",
	"好不好", "行不行", "会不会", "有没有", "要不要", "对不对", "哪个", "哪家", "哪里", "为啥", "为什么"}

func isQuestion(said string) bool {
	return slices.ContainsFunc(questionWords, func(w string) bool { return strings.Contains(said, w) })
}

// noneWords answer "which of these?" with none of them.
var noneWords = map[string]bool{"都不是": true, "都没有": true, "没有": true, "无": true, "不是": true, "没": true, "都不": true}

// numbersIn reads several numbers of a list: "1 3", "1,3", "1、3", "一和三",
// "1跟3".
func numbersIn(said string) ([]int, bool) {
	s := foldWidth(said)
	for _, sep := range []string{"还有", "以及", "和", "跟", "与", "及", "加"} {
		s = strings.ReplaceAll(s, sep, ",")
	}
	fields := strings.FieldsFunc(s, func(r rune) bool {
		return r == ' ' || r == ',' || r == '，' || r == '、' || r == '.' || r == '。' || r == ';' || r == '；'
	})
	var out []int
	for _, f := range fields {
		n, ok := listNumber(f)
		if !ok {
			return nil, false
		}
		out = append(out, n)
	}
	return out, len(out) > 0
}

var (
	monthDayPattern = regexp.MustCompile(`^(?:([0-9一二三四五六七八九十]{1,3})月)?([0-9一二三四五六七八九十]{1,3})(?:号|日)$`)
	slashDayPattern = regexp.MustCompile(`^([0-9]{1,2})[./-]([0-9]{1,2})$`)
	weekdayPattern  = regexp.MustCompile(`^(下下|下|这|本)?(?:个)?(?:周|星期|礼拜)([一二三四五六日天七1-7])$`)
	weekdayNumbers  = map[string]int{"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "日": 0, "天": 0, "七": 0,
		"1": 1, "2": 2, "3": 3, "4": 4, "5": 5, "6": 6, "7": 0}
	relativeDays = map[string]int{"今天": 0, "今日": 0, "明天": 1, "明日": 1, "后天": 2, "大后天": 3}
)

// dayWordPattern finds the words that name a day inside a sentence ("明天
// 上午看病" names 明天). 12.8 names a day only as the whole message: inside
// a sentence it is as likely a time (明天9.30).
var dayWordPattern = regexp.MustCompile(`(大后天|今天|今日|明天|明日|后天|(?:下下|下|这|本)?个?(?:周|星期|礼拜)[一二三四五六日天七1-7]|(?:[0-9一二三四五六七八九十]{1,3}月)?[0-9一二三四五六七八九十]{1,3}(?:号|日))`)

// notADay follows a number that names a place, not a day: 3号楼, 5号床.
const notADay = "楼房院床线车室单栋门"

// lastDayWord is the last word naming a day in s, or "".
func lastDayWord(s string) string {
	last := ""
	for _, at := range dayWordPattern.FindAllStringIndex(s, -1) {
		if r, _ := utf8.DecodeRuneInString(s[at[1]:]); !strings.ContainsRune(notADay, r) || at[1] == len(s) {
			last = s[at[0]:at[1]]
		}
	}
	return last
}

// parseDay reads the day a resident names, relative to now in China's time:
// 今天, 明天, 后天, 大后天; 周三, 星期三, 下周三 (Monday starts a week); 12月2号,
// 2号 (this month, or next month once it has passed), 12.2. ok is false
// for anything else, or a day that does not exist.
func parseDay(said string, now time.Time) (time.Time, bool) {
	s := strings.ReplaceAll(Normalize(said), " ", "")
	// The last day named is the one meant: 明天有事，改到后天; 不是明天，是后天.
	if w := lastDayWord(s); w != "" {
		s = w
	}
	today := now.In(Shanghai)
	today = time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, Shanghai)
	if n, ok := relativeDays[s]; ok {
		return today.AddDate(0, 0, n), true
	}
	if m := weekdayPattern.FindStringSubmatch(s); m != nil {
		want := weekdayNumbers[m[2]]
		// Days since this week's Monday, Sunday being the week's last.
		index := func(wd int) int { return (wd + 6) % 7 }
		monday := today.AddDate(0, 0, -index(int(today.Weekday())))
		day := monday.AddDate(0, 0, index(want))
		switch m[1] {
		case "下":
			day = day.AddDate(0, 0, 7)
		case "下下":
			day = day.AddDate(0, 0, 14)
		case "":
			if day.Before(today) { // 周一 said on a Wednesday: the coming one
				day = day.AddDate(0, 0, 7)
			}
		}
		return day, true
	}
	month, dayOfMonth := 0, 0
	if m := monthDayPattern.FindStringSubmatch(s); m != nil {
		month, _ = smallNumber(m[1])
		dayOfMonth, _ = smallNumber(m[2])
	} else if m := slashDayPattern.FindStringSubmatch(s); m != nil {
		month, _ = strconv.Atoi(m[1])
		dayOfMonth, _ = strconv.Atoi(m[2])
	} else {
		return time.Time{}, false
	}
	year := today.Year()
	if month > 12 {
		return time.Time{}, false
	}
	if month == 0 {
		month = int(today.Month())
		if dayOfMonth < today.Day() {
			month++
		}
	} else if month < int(today.Month()) {
		year++ // 1月5号 said in December
	}
	day := time.Date(year, time.Month(month), dayOfMonth, 0, 0, 0, 0, Shanghai)
	if day.Day() != dayOfMonth || dayOfMonth < 1 { // 2月30号
		return time.Time{}, false
	}
	return day, true
}

// Halves of a day.
const (
	morning   = "am"
	afternoon = "pm"
)

// parseHalf reads 上午 or 下午 (and the ways people say them) in a message.
func parseHalf(said string) string {
	s := compact(said)
	for _, w := range []string{"上午", "早上", "早晨", "上半天", "一早"} {
		if strings.Contains(s, w) {
			return morning
		}
	}
	for _, w := range []string{"下午", "下半天", "中午以后", "午后", "傍晚", "晚上"} {
		if strings.Contains(s, w) {
			return afternoon
		}
	}
	return ""
}

var clockPattern = regexp.MustCompile(`([0-9一二两三四五六七八九十]{1,3})(?:点|:|：|时)(半|一刻|三刻|[0-9一二三四五六七八九十]{1,3}分?)?`)

// parseClock reads a time of day: "9点", "九点半", "9:30", "下午3点"
// (15:00), "两点一刻". An hour from 1 to 6 without 上午 is taken as the
// afternoon, when clinics see people.
func parseClock(said string) (hour, minute int, ok bool) {
	s := foldWidth(said)
	var m []string
	for _, at := range clockPattern.FindAllStringSubmatchIndex(s, -1) {
		// 早一点, 晚一点, 差一点, 多一点 say how, not when.
		if before, _ := utf8.DecodeLastRuneInString(s[:at[0]]); !strings.ContainsRune("早晚差多有快慢", before) {
			m = make([]string, 3)
			for i := range m {
				if at[2*i] >= 0 {
					m[i] = s[at[2*i]:at[2*i+1]]
				}
			}
			break
		}
	}
	if m == nil {
		return 0, 0, false
	}
	hour, ok = smallNumber(m[1])
	if !ok || hour > 23 {
		return 0, 0, false
	}
	switch rest := strings.TrimSuffix(m[2], "分"); rest {
	case "":
	case "半":
		minute = 30
	case "一刻":
		minute = 15
	case "三刻":
		minute = 45
	default:
		if minute, ok = smallNumber(rest); !ok || minute > 59 {
			return 0, 0, false
		}
	}
	half := parseHalf(said)
	if hour < 12 && (half == afternoon || (half == "" && hour >= 1 && hour <= 6)) {
		hour += 12
	}
	return hour, minute, true
}
