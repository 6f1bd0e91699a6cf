package flows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

// Fuzz targets for what residents type: the ID number and mobile phone
// checks of signing, and every step of every conversation. `go test` runs
// their seeds; `go test -run '^$' -fuzz '^FuzzX$' ./flows` searches further
// (.ci/run does, briefly, for each).

// fuzzToday is the day the ID number targets check birth dates against.
var fuzzToday = time.Date(2026, 11, 23, 10, 0, 0, 0, Shanghai)

// checkDigit is the GB 11643 check character of 17 digits, computed from
// the standard's definition (weights 2^(17-i) mod 11), not from the code
// under test.
func checkDigit(body string) byte {
	sum, w := 0, 1
	for i := 16; i >= 0; i-- {
		w = w * 2 % 11
		sum += int(body[i]-'0') * w
	}
	return "10X98765432"[sum%11]
}

// idSeeds are synthetic ID numbers, valid and not: made up for the tests,
// no real person's.
func idSeeds() []string {
	valid := []string{synthID("110105", "19491231", "001"), synthID("320412", "20230601", "002"),
		synthID("230102", "19580606", "051"), synthID("110105", "20261123", "009"), synthID("110105", "19000101", "000"),
		synthID("440300", "20000229", "123")}
	var out []string
	for _, id := range valid {
		out = append(out, id, strings.ToLower(id), " "+id[:6]+" "+id[6:14]+" "+id[14:]+" ", id[:17], id+"0", foldWidthBack(id))
		wrong := "0123456789X"[(indexOf(id[17])+1)%11]
		out = append(out, id[:17]+string(wrong))
	}
	return append(out, "", "X", "12345", synthID("110105", "19490231", "001"), synthID("110105", "18991231", "001"),
		synthID("110105", "20261124", "001"), synthID("110105", "99991231", "001"), "11010519491231001Y",
		"110105194912310０1", "x10105194912310011", "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
		"11010519491231001\xff", "１１０１０５１９４９１２３１００１X", strings.Repeat("9", 18), strings.Repeat("0", 17)+"X")
}

// foldWidthBack writes ASCII digits as full-width ones, as some keyboards type them.
func foldWidthBack(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' {
			return r - '!' + '！'
		}
		return r
	}, s)
}

// An ID number is accepted only with 17 digits, the right check character
// and a real birth date between 1900 and today; what it says of its holder
// is what its digits say; normalising is idempotent and changes nothing of
// an accepted number; masking it hides everything but the first and last
// four characters.
func FuzzParseID(f *testing.F) {
	for _, s := range idSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := NormalizeID(s)
		if NormalizeID(n) != n {
			t.Fatalf("NormalizeID is not idempotent: %q → %q → %q", s, n, NormalizeID(n))
		}
		for _, id := range []string{s, n} {
			p, err := ParseID(id, fuzzToday)
			if err != nil {
				if !errors.Is(err, ErrIDFormat) && !errors.Is(err, ErrIDChecksum) && !errors.Is(err, ErrIDBirth) && !errors.Is(err, ErrIDFuture) {
					t.Fatalf("ParseID(%q): unexpected error %v", id, err)
				}
				if p != (Person{}) {
					t.Fatalf("ParseID(%q) refused but returned %+v", id, p)
				}
				continue
			}
			checkAcceptedID(t, id, p, fuzzToday)
			if NormalizeID(id) != id {
				t.Fatalf("accepted %q, which normalises to %q", id, NormalizeID(id))
			}
			// Typed in lower case, with spaces around, it reads the same.
			again, err := ParseID(NormalizeID(" "+strings.ToLower(id)+" "), fuzzToday)
			if err != nil || again != p {
				t.Fatalf("%q typed in lower case with spaces: %+v %v, want %+v", id, again, err, p)
			}
		}
	})
}

func checkAcceptedID(t *testing.T, id string, p Person, today time.Time) {
	t.Helper()
	if len(id) != 18 || strings.Trim(id[:17], "0123456789") != "" {
		t.Fatalf("accepted %q: not 17 digits and a check character", id)
	}
	if checkDigit(id[:17]) != id[17] {
		t.Fatalf("accepted %q: its check character should be %c", id, checkDigit(id[:17]))
	}
	y, m, d := int(id[6]-'0')*1000+int(id[7]-'0')*100+int(id[8]-'0')*10+int(id[9]-'0'),
		time.Month(int(id[10]-'0')*10+int(id[11]-'0')), int(id[12]-'0')*10+int(id[13]-'0')
	birth := time.Date(y, m, d, 0, 0, 0, 0, Shanghai)
	if birth.Year() != y || birth.Month() != m || birth.Day() != d {
		t.Fatalf("accepted %q: %s is no calendar date", id, id[6:14])
	}
	if y < 1900 || birth.After(today) || !p.Birth.Equal(birth) {
		t.Fatalf("accepted %q: birth %v (read as %v) is not between 1900 and %v", id, birth, p.Birth, today)
	}
	if age := Age(p.Birth, today); age < 0 || age > today.Year()-1900 {
		t.Fatalf("accepted %q: age %d", id, age)
	}
	if p.Male != ((id[16]-'0')%2 == 1) {
		t.Fatalf("accepted %q: male %v", id, p.Male)
	}
	masked := MaskID(id)
	if len(masked) != 18 || masked[:4] != id[:4] || masked[14:] != id[14:] || masked[4:14] != strings.Repeat("*", 10) {
		t.Fatalf("MaskID(%q) = %q", id, masked)
	}
}

// mobileSeeds are synthetic mobile numbers, valid and not, alone and in
// sentences.
var mobileSeeds = []string{"13812345678", "138 1234 5678", "138-1234-5678", "手机号是13812345678", "我的手机号13612345678，谢谢",
	"19912345678", "12345678901", "1381234567", "138123456789", "23812345678", "13812345678 13912345678",
	"１３８１２３４５６７８", "+86 13812345678", "8613812345678", "0531-88886666", "053188886666", "",
	"138\x001234\x005678", "1381234567８", "13812345678\xff", "一三八一二三四五六七八", "138１２３４５６７８"}

// A mobile number is taken only as 11 digits starting 13-19, found alone
// or once in a sentence; it is kept sealed and hashed as itself, reads the
// same however it is spaced, and its mask never shows the middle four
// digits. staffPhone (the console's imports) keeps to the same rule for
// mobiles and masks landlines as well.
func FuzzMobile(f *testing.F) {
	for _, s := range mobileSeeds {
		f.Add(s)
	}
	sealer := fuzzSealer(f)
	take := func(said string) (string, error) {
		st := &signTurn{Context: context.Background(), e: &Engine{Sealer: sealer}, st: &State{}, d: &signingData{}}
		if _, err := takePhone(st, said); err != nil {
			if st.d.PhoneSealed != "" || st.d.PhoneHash != "" {
				return "", errors.New("a refused phone was kept")
			}
			return "", err
		}
		phone, err := sealer.Open("phone", st.d.PhoneSealed)
		if err != nil {
			return "", err
		}
		if st.d.PhoneHash != sealer.Hash("phone", phone) {
			return "", errors.New("the hash is not the phone's")
		}
		return phone, nil
	}
	f.Fuzz(func(t *testing.T, said string) {
		phone, err := take(said)
		var r reask
		switch {
		case errors.As(err, &r):
			if r.msg == "" {
				t.Fatalf("%q: refused with no words", said)
			}
		case err != nil:
			t.Fatalf("%q: %v", said, err)
		default:
			checkMobile(t, said, phone)
			if !strings.Contains(strings.NewReplacer(" ", "", "-", "").Replace(said), phone) {
				t.Fatalf("%q: took %q, which it does not hold", said, phone)
			}
			for _, typed := range []string{phone, phone[:3] + " " + phone[3:7] + " " + phone[7:], phone[:3] + "-" + phone[3:7] + "-" + phone[7:], "手机号是" + phone + "。"} {
				if again, err := take(typed); err != nil || again != phone {
					t.Fatalf("%q (taken from %q) typed as %q reads %q %v", phone, said, typed, again, err)
				}
			}
		}
		staff, ok := staffPhone(said)
		if !ok || staff == "" {
			return
		}
		if strings.Trim(staff, "0123456789") != "" {
			t.Fatalf("staffPhone(%q) kept %q", said, staff)
		}
		switch {
		case staff[0] == '1':
			checkMobile(t, said, staff)
		case staff[0] == '0' && len(staff) >= 10 && len(staff) <= 12:
			masked := MaskPhone(staff)
			if len(masked) != len(staff) || masked[:3] != staff[:3] || masked[len(masked)-4:] != staff[len(staff)-4:] ||
				strings.Trim(masked[3:len(masked)-4], "*") != "" {
				t.Fatalf("MaskPhone(%q) = %q", staff, masked)
			}
		default:
			t.Fatalf("staffPhone(%q) took %q, neither a mobile nor a landline with its area code", said, staff)
		}
	})
}

func checkMobile(t *testing.T, said, phone string) {
	t.Helper()
	if len(phone) != 11 || phone[0] != '1' || phone[1] < '3' || phone[1] > '9' || strings.Trim(phone, "0123456789") != "" {
		t.Fatalf("%q: took %q, not a mainland mobile number", said, phone)
	}
	if masked := MaskPhone(phone); masked != phone[:3]+"****"+phone[7:] {
		t.Fatalf("MaskPhone(%q) = %q", phone, masked)
	}
}

func fuzzSealer(tb testing.TB) *storage.Sealer {
	s, err := storage.NewSealer([]byte("fuzz-sealer-key-fuzz-sealer-key!"))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// stepPosition is a place a conversation can be at, waiting for the
// resident's next message: the state as the session keeps it (JSON), on a
// database prepared for it.
type stepPosition struct {
	name      string
	e         *Engine
	openID    string
	state     []byte
	at        time.Time // when the next message comes
	noSession bool      // the session was lost (Redis restarted empty)
}

// fuzzChat plays turns for one user while the positions are prepared.
type fuzzChat struct {
	tb    testing.TB
	e     *Engine
	open  string
	st    State
	clock time.Time
	// answers records, if not nil, the message that answered each
	// position (by name) as it was prepared: a seed for it.
	answers map[string]string
	waiting []string // positions waiting for their answer
}

func fuzzTalk(tb testing.TB, e *Engine, openID string) *fuzzChat {
	return &fuzzChat{tb: tb, e: e, open: openID, clock: time.Date(2026, 11, 23, 9, 0, 0, 0, Shanghai)}
}

func (c *fuzzChat) say(said string, contains ...string) string {
	c.tb.Helper()
	for _, name := range c.waiting {
		if c.answers != nil {
			c.answers[name] = said
		}
	}
	c.waiting = nil
	c.clock = c.clock.Add(time.Minute)
	out, err := c.e.Handle(context.Background(), &c.st, Inbound{OpenID: c.open, Kind: Text, Text: said, At: c.clock})
	if err != nil {
		c.tb.Fatalf("%s %q: %v", c.open, said, err)
	}
	for _, want := range contains {
		if !strings.Contains(out.Reply(), want) {
			c.tb.Fatalf("%s %q: reply lacks %q:\n%s", c.open, said, want, out.Reply())
		}
	}
	return out.Reply()
}

func (c *fuzzChat) sayAll(said ...string) {
	c.tb.Helper()
	for _, s := range said {
		c.say(s)
	}
}

// at checks the conversation is at flow/step ("" for none) and returns
// the position, the next message a minute later.
func (c *fuzzChat) at(name, flow, step string) stepPosition {
	c.tb.Helper()
	if c.st.Flow != flow || c.st.Step != step {
		c.tb.Fatalf("%s: %s at %s/%s, want %s/%s", name, c.open, c.st.Flow, c.st.Step, flow, step)
	}
	state, err := json.Marshal(c.st)
	if err != nil {
		c.tb.Fatal(err)
	}
	c.waiting = append(c.waiting, name)
	return stepPosition{name: name, e: c.e, openID: c.open, state: state, at: c.clock.Add(time.Minute)}
}

var contractNumber = regexp.MustCompile(`QY[0-9A-Z]{10}`)

// bindDoctor binds the n-th demo doctor to openID.
func bindDoctor(tb testing.TB, e *Engine, n int, openID string) *fuzzChat {
	tb.Helper()
	docs, err := e.DB.Doctors(context.Background())
	if err != nil || len(docs) <= n {
		tb.Fatalf("doctors: %v %v", docs, err)
	}
	doc := fuzzTalk(tb, e, openID)
	code, err := IssueBindingCode(context.Background(), e.DB, e.Sealer, docs[n].ID, doc.clock, BindingCodeTTL)
	if err != nil {
		tb.Fatal(err)
	}
	doc.say("绑定 "+code, "绑定成功")
	return doc
}

// stepPositions prepares, on two demo regions (Harbin has partner
// hospitals, Yaoguan asks where one is insured), every step of every
// conversation, and the places outside one: a new user, a signed
// resident, a doctor, a conversation that waits, one left idle, one whose
// session was lost. It also returns the message that answered each
// position as it was prepared, and the contract numbers it made.
func stepPositions(tb testing.TB) ([]stepPosition, map[string]string, []string) {
	tb.Helper()
	var ps []stepPosition
	add := func(p stepPosition) { ps = append(ps, p) }
	answers := map[string]string{}
	talk := func(e *Engine, openID string) *fuzzChat {
		c := fuzzTalk(tb, e, openID)
		c.answers = answers
		return c
	}
	h := engineFor(tb, "harbin")
	// The consent names up to three institutions with their phones, the
	// longest it gets: a district's deployment with realistic names.
	for i, name := range []string{"哈尔滨市道里区新阳路街道社区卫生服务中心", "哈尔滨市道里区兆麟街道社区卫生服务中心"} {
		if _, err := h.DB.CreateInstitution(context.Background(), storage.Institution{Code: fmt.Sprintf("daoli%d", i), Name: name,
			Kind: "community_centre", Phone: fmt.Sprintf("0451-8466123%d", i)}, nil, nil); err != nil {
			tb.Fatal(err)
		}
	}
	doc := bindDoctor(tb, h, 0, "o_doc")
	var numbers []string
	confirm := func(reply string) {
		tb.Helper()
		number := contractNumber.FindString(reply)
		doc.say("确认 "+number, "已确认")
		numbers = append(numbers, number)
	}

	add(talk(h, "o_new").at("new user", "", ""))

	// Signing oneself, every step; the answers are Harbin's.
	s := talk(h, "o_sign")
	s.say("签约")
	add(s.at("signing/who", "signing", "who"))
	s.say("1")
	add(s.at("signing/name", "signing", "name"))
	s.say("于长海")
	add(s.at("signing/consent", "signing", "consent"))
	idle := s.at("signing/consent, 2 hours later", "signing", "consent")
	idle.at = idle.at.Add(2 * time.Hour)
	add(idle)
	s.say("同意")
	add(s.at("signing/id", "signing", "id"))
	s.say(synthID("230102", "19580606", "051"))
	add(s.at("signing/phone", "signing", "phone"))
	s.say("13612345678")
	add(s.at("signing/community", "signing", "community"))
	s.say("1")
	add(s.at("signing/groups", "signing", "groups"))
	s.say("0")
	add(s.at("signing/team", "signing", "team"))
	s.say("1")
	add(s.at("signing/district", "signing", "district"))
	s.say("1")
	add(s.at("signing/tertiary", "signing", "tertiary"))
	s.say("1")
	add(s.at("signing/packages", "signing", "packages"))
	s.say("0")
	add(s.at("signing/confirm", "signing", "confirm"))

	// A session lost mid-signing.
	lost := talk(h, "o_lost")
	lost.sayAll("签约", "1")
	p := lost.at("signing lost", "signing", "name")
	p.state, p.noSession = []byte("{}"), true
	add(p)

	// A signed resident of 兆麟社区, which both teams serve.
	r := talk(h, "o_res")
	r.sayAll("签约", "1", "王秀英", "同意", synthID("230102", "19550302", "021"), "13812345678", "2", "0", "1", "1", "1", "0")
	confirm(r.say("同意", "合同编号"))
	add(r.at("signed resident", "", ""))
	r.say("预约")
	add(r.at("booking/who", "booking", "who"))
	r.say("1")
	add(r.at("booking/kind", "booking", "kind"))
	r.say("1")
	add(r.at("booking/date", "booking", "date"))
	r.say("2")
	add(r.at("booking/half", "booking", "half"))
	r.say("上午")
	add(r.at("booking/time", "booking", "time"))
	idle = r.at("booking/time, 2 days later", "booking", "time")
	idle.at = idle.at.Add(48 * time.Hour)
	add(idle)
	r.say("1")
	add(r.at("booking/confirm", "booking", "confirm"))
	r.say("签约", "您本人已经签约了")
	r.say("2")
	add(r.at("signing/name, booking waiting", "signing", "name"))
	r.sayAll("取消", "继续", "取消")
	r.at("signed resident", "", "")
	r.sayAll("预约", "1", "转诊")
	add(r.at("booking/hospital", "booking", "hospital"))
	r.say("2")
	add(r.at("booking/reason", "booking", "reason"))
	r.say("取消")
	r.say("改签")
	add(r.at("change/team", "change", "team"))
	r.say("1")
	add(r.at("change/confirm", "change", "confirm"))
	r.say("取消")
	r.say("解约")
	add(r.at("cancel/reason", "cancel", "reason"))
	r.say("搬家了")
	add(r.at("cancel/confirm", "cancel", "confirm"))
	r.say("取消")
	r.say("撤回同意")
	add(r.at("withdraw/confirm", "withdraw", "confirm"))
	r.say("取消")
	r.say("删除我的数据")
	add(r.at("erase/confirm", "erase", "confirm"))
	r.say("取消")
	r.say("我的")
	add(r.at("mine/menu", "mine", "menu"))
	r.say("3")
	add(r.at("reminders/toggle", "reminders", "toggle"))
	r.say("服务包")
	add(r.at("packages/list", "packages", "list"))
	r.say("1")
	add(r.at("packages/detail", "packages", "detail"))
	r.say("取消")
	// A visit booked, then moved or cancelled.
	r.sayAll("预约", "1", "1", "3", "上午", "1")
	r.say("确认", "预约成功")
	r.say("改约 1")
	add(r.at("booking/date, moving a visit", "booking", "date"))
	r.say("取消")
	r.say("取消 1", "要取消这个预约吗")
	add(r.at("cancel_booking/confirm", "cancel_booking", "confirm"))
	// Renewal, a month before the term ends.
	renew := talk(h, "o_res")
	renew.clock = time.Date(2027, 10, 25, 9, 0, 0, 0, Shanghai)
	renew.say("续签", "请核对续签")
	add(renew.at("renew/confirm", "renew", "confirm"))

	// A home visit, for a resident who declared a disability.
	home := talk(h, "o_home")
	home.sayAll("签约", "1", "刘大爷", "同意", synthID("230102", "19400101", "081"), "13812345670")
	groups := home.say("1")
	home.say(lineNumber(tb, groups, "残疾"), "残疾")
	home.sayAll("1", "1", "1", "0")
	confirm(home.say("同意", "合同编号"))
	home.sayAll("预约", "1", "上门", "2", "上午", "1")
	add(home.at("booking/address", "booking", "address"))

	// A done visit, scored: its comment.
	v := talk(h, "o_visit")
	v.sayAll("签约", "1", "赵秀兰", "同意", synthID("230102", "19560303", "022"), "13812345671", "1", "0", "1", "1", "1", "0")
	confirm(v.say("同意", "合同编号"))
	v.sayAll("预约", "1", "1", "2", "上午", "1")
	v.say("确认", "预约成功")
	doc.clock = time.Date(2026, 11, 24, 9, 0, 0, 0, Shanghai)
	doc.say("完成 1", "标记为完成")
	v.clock = time.Date(2026, 11, 24, 10, 0, 0, 0, Shanghai)
	v.say("5", "谢谢您的评价")
	add(v.at("survey/comment", "survey", "comment"))
	add(doc.at("doctor", "", "")) // on a day with visits

	// A family: oneself and a child, both confirmed; every choice of a
	// contract or a person is asked.
	fam := talk(h, "o_fam")
	fam.sayAll("签约", "1", "李国强", "同意", synthID("230102", "19800808", "031"), "13812345672", "1", "0", "1", "1", "1", "0")
	confirm(fam.say("同意", "合同编号"))
	fam.sayAll("签约", "2", "李小宝", "同意", synthID("230102", "20200601", "032"))
	add(fam.at("signing/relation", "signing", "relation"))
	fam.sayAll("1", "13812345672", "1", "0", "1", "1", "1", "0")
	confirm(fam.say("同意", "合同编号"))
	for _, pick := range []struct{ said, flow, step string }{
		{"解约", "cancel", "pick"}, {"改签", "change", "pick"}, {"撤回同意", "withdraw", "who"}, {"删除我的数据", "erase", "who"},
	} {
		fam.say(pick.said)
		add(fam.at(pick.flow+"/"+pick.step, pick.flow, pick.step))
		fam.say("取消")
	}
	fam.clock = time.Date(2027, 10, 25, 9, 0, 0, 0, Shanghai)
	fam.say("续签")
	add(fam.at("renew/pick", "renew", "pick"))

	// An adult family member confirms a signing made for them; she has a
	// family doctor already (her grandchild's), and the longest name.
	mum := talk(h, "o_mum")
	mum.sayAll("签约", "2", "张小乐", "同意", synthID("230102", "20190303", "052"), "2", "13812345673", "1", "0", "1", "1", "1", "0")
	confirm(mum.say("同意", "合同编号"))
	son := talk(h, "o_son")
	son.sayAll("签约", "2", longestName, "同意", synthID("230102", "19580101", "042"), "2", "13812345679", "1", "0", "1", "1", "1", "0")
	reply := son.say("同意", "待本人确认")
	code := regexp.MustCompile(`确认签约 ([0-9]{8})`).FindStringSubmatch(reply)
	if code == nil {
		tb.Fatal("no member code")
	}
	numbers = append(numbers, contractNumber.FindString(reply))
	mum.say("确认签约 "+code[1], longestName)
	add(mum.at("member_confirm/consent", "member_confirm", "consent"))
	mum.say("同意")
	add(mum.at("member_confirm/agree", "member_confirm", "agree"))

	// Yaoguan asks where one is insured; with more than nine villages, the
	// village is searched by name.
	y := engineFor(tb, "yaoguan")
	ins := talk(y, "o_ins")
	ins.sayAll("签约", "1", "周建华", "同意", synthID("320412", "19700315", "031"), "13712345678", "1", "2", "1")
	add(ins.at("signing/insured", "signing", "insured"))
	var villages []storage.Community
	for _, name := range []string{"东湖村", "西湖村", "南山村", "北山村", "前进村", "红旗村", "新华村", "和平村", "团结村", "永安村"} {
		villages = append(villages, storage.Community{Town: "城关镇", Name: name})
	}
	if _, err := y.DB.CreateInstitution(context.Background(), storage.Institution{Code: "chengguan", Name: "城关镇卫生院", Kind: "township_centre"}, villages,
		[]storage.NewTeam{{Name: "周医生团队", Doctor: storage.Doctor{Name: "周医生"}, Communities: []int{9}}}); err != nil {
		tb.Fatal(err)
	}
	search := talk(y, "o_search")
	search.sayAll("签约", "1", "钱大妈", "同意", synthID("320412", "19550302", "021"))
	search.say("13812345678", "名称里的几个字")
	add(search.at("signing/community, searched", "signing", "community"))
	return ps, answers, numbers
}

// longestName is a name of the most characters a signing takes (20).
const longestName = "阿卜杜热合曼买买提艾力江阿不都热依木江克"

// lineNumber is the number of the line of a list reply that holds name.
func lineNumber(tb testing.TB, reply, name string) string {
	tb.Helper()
	m := regexp.MustCompile(`(?m)^([0-9]+)\. [^\n]*` + regexp.QuoteMeta(name)).FindStringSubmatch(reply)
	if m == nil {
		tb.Fatalf("no line with %q in:\n%s", name, reply)
	}
	return m[1]
}

// tuneUtterances are the messages of the tuning corpus (label, tab, message).
func tuneUtterances(tb testing.TB) []string {
	b, err := os.ReadFile(filepath.Join("testdata", "utterances", "tune.tsv"))
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if _, message, ok := strings.Cut(line, "\t"); ok && !strings.HasPrefix(line, "#") {
			out = append(out, message)
		}
	}
	if len(out) < 100 {
		tb.Fatalf("tune.tsv holds %d messages", len(out))
	}
	return out
}

// Seeds of FuzzStepInput besides the tuning corpus and each step's own
// answer: a few messages at every step (an urgent one repeats any
// question, 不知道 adds a hint to it), very long messages where words are
// taken as they are, and the other oddities each at two steps.
var (
	seedsEverywhere = []string{"", "\x00\x01\x1b[31m\x7f\xff", "我想死", "不知道"}
	seedsLong       = []string{strings.Repeat("很", 10000), strings.Repeat("1", 10000)}
	longAt          = []string{"new user", "doctor", "signing/name", "signing/community, searched", "booking/reason",
		"booking/address", "cancel/reason", "survey/comment"}
	stepOddities = []string{" ", "　", "\n\t", "\xff\xfe\xfd", "1\xff", "１２３", "第１个", "😀👍🏻", "1️⃣", "\u200b1\u200b",
		"\u202e同意", "<![CDATA[]]></Content>", "%s%d{{.}}", "-1", "0", "1", "2", "9", "同意", "确认", "99999999999999999999", "一百", "十", "上午",
		"明天", "下周三", "12月2号", "九点半", "帮助", "返回", "取消", "继续", "不同意", "？", "同意？", "好", "跳过",
		"胸口疼", "180/110", "确认 QY0000000000", "拒绝 QY0000000000 不在服务范围", "完成 1", "今日预约",
		"确认签约 12345678", "改约 1", "取消 1", "取消 99", "我的签约", "我的数据", "我的预约", "签约", "预约", "服务包",
		"王秀英", "幸福社区3号楼2单元101", synthID("230102", "19580606", "051"), "13812345678", strings.Repeat("很", 101)}
)

// stepRegressions are inputs that once failed FuzzStepInput, kept as seeds.
var stepRegressions = []struct{ at, said string }{
	// The crisis answer before the member's consent, which names three
	// institutions and the longest name: 2165 bytes, past WeChat's limit.
	{"member_confirm/consent", "我想死"},
}

// fuzzSecrets are the ID numbers and phones the positions were prepared
// with: no reply shows one whole unless the message itself holds it.
var fuzzSecrets = []string{synthID("230102", "19580606", "051"), synthID("230102", "19550302", "021"),
	synthID("230102", "19400101", "081"), synthID("230102", "19560303", "022"), synthID("230102", "19800808", "031"),
	synthID("230102", "20200601", "032"), synthID("230102", "19580101", "042"), synthID("230102", "20190303", "052"), synthID("320412", "19700315", "031"),
	synthID("320412", "19550302", "021"), "13612345678", "13812345678", "13812345670", "13812345671", "13812345672",
	"13812345679", "13812345673", "13712345678"}

// maxWebhookBody is the largest push the webhook takes (wechat.MaxBody):
// no resident's message is longer.
const maxWebhookBody = 64 << 10

// errRollback ends a fuzzed turn's transaction: every input starts from
// the same database.
var errRollback = errors.New("rolled back")

// Whatever a resident types at any step, the turn succeeds with one reply
// that fits WeChat's 2048 bytes, shows no ID number or phone it was not
// just given, and leaves a state the engine carries on from: 帮助 after it
// is answered without starting the conversation over. Each input runs in a
// transaction rolled back after it, so every input meets the same database.
func FuzzStepInput(f *testing.F) {
	ps, answers, numbers := stepPositions(f)
	byName := map[string]stepPosition{}
	for _, p := range ps {
		if _, dup := byName[p.name]; dup {
			f.Fatalf("position %q twice", p.name)
		}
		byName[p.name] = p
	}
	for _, p := range ps {
		for _, s := range seedsEverywhere {
			f.Add(p.name, s)
		}
		if a, ok := answers[p.name]; ok { // the answer that moved it on
			f.Add(p.name, a)
		}
	}
	for _, name := range longAt {
		if _, ok := byName[name]; !ok {
			f.Fatalf("no position %q", name)
		}
		for _, s := range seedsLong {
			f.Add(name, s)
		}
	}
	for i, s := range stepOddities {
		f.Add(ps[i%len(ps)].name, s)
		f.Add(ps[(i+len(ps)/2)%len(ps)].name, s)
	}
	for _, r := range stepRegressions {
		if _, ok := byName[r.at]; !ok {
			f.Fatalf("no position %q", r.at)
		}
		f.Add(r.at, r.said)
	}
	for _, n := range numbers { // a doctor answering real requests, with a reason too long or not
		for _, s := range []string{"确认 " + n, "拒绝 " + n + " 不在服务范围", "拒绝 " + n + " " + strings.Repeat("不", 51)} {
			f.Add("doctor", s)
		}
	}
	for i, u := range tuneUtterances(f) {
		f.Add(ps[i%len(ps)].name, u)
	}
	f.Fuzz(func(t *testing.T, at, said string) {
		if len(said) > maxWebhookBody { // the webhook refuses a longer push
			said = said[:maxWebhookBody]
		}
		p, ok := byName[at]
		if !ok { // a name the fuzzer made up still picks a position
			h := fnv.New32a()
			h.Write([]byte(at))
			p = ps[h.Sum32()%uint32(len(ps))]
		}
		ctx := context.Background()
		err := p.e.DB.InTx(ctx, func(tx *storage.DB) error {
			e := *p.e
			e.DB, e.Log = tx, slog.New(slog.DiscardHandler)
			var st State
			if err := json.Unmarshal(p.state, &st); err != nil {
				t.Fatal(err)
			}
			out, err := e.Handle(ctx, &st, Inbound{OpenID: p.openID, Kind: Text, Text: said, At: p.at, NoSession: p.noSession})
			if err != nil {
				t.Fatalf("%s, %q: %v", p.name, said, err)
			}
			checkStepReply(t, p.name, said, out)
			checkTaken(t, &e, p, said, out.Reply(), st)
			// The state as the session keeps it carries on: 帮助 is answered
			// by the conversation left open, not by starting afresh.
			saved, err := json.Marshal(st)
			if err != nil {
				t.Fatalf("%s, %q: state does not encode: %v", p.name, said, err)
			}
			var next State
			if err := json.Unmarshal(saved, &next); err != nil {
				t.Fatalf("%s, %q: state does not decode: %v", p.name, said, err)
			}
			for w := &next; w != nil; w = w.Paused {
				if conv, ok := conversations[w.Flow]; w.Flow != "" && (!ok || conv.check(&e, w, p.openID) != nil) {
					t.Fatalf("%s, %q: left %s/%s, which cannot be carried on", p.name, said, w.Flow, w.Step)
				}
			}
			flow, step := next.Flow, next.Step
			out, err = e.Handle(ctx, &next, Inbound{OpenID: p.openID, Kind: Text, Text: "帮助", At: p.at.Add(time.Minute)})
			if err != nil {
				t.Fatalf("%s, %q, then 帮助: %v", p.name, said, err)
			}
			checkStepReply(t, p.name, "帮助", out)
			if next.Flow != flow || next.Step != step || strings.Contains(out.Reply(), mustMessage("flow_reset", nil)) {
				t.Fatalf("%s, %q: 帮助 at %s/%s went to %s/%s:\n%s", p.name, said, flow, step, next.Flow, next.Step, out.Reply())
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatalf("%s, %q: %v", p.name, said, err)
		}
	})
}

// checkTaken checks what the ID number and phone steps took from a message:
// a valid ID number or mobile the message holds, shown only masked.
func checkTaken(t *testing.T, e *Engine, p stepPosition, said, reply string, st State) {
	t.Helper()
	if p.name != "signing/id" && p.name != "signing/phone" || st.Flow != "signing" || "signing/"+st.Step == p.name {
		return
	}
	turn, err := signing.load(context.Background(), e, &st, Inbound{OpenID: p.openID})
	if err != nil {
		t.Fatalf("%s, %q: %v", p.name, said, err)
	}
	typed := strings.NewReplacer(" ", "", "-", "").Replace(NormalizeID(Normalize(said)))
	field, sealed, masked := "id_number", turn.d.IDSealed, MaskID
	if p.name == "signing/phone" {
		field, sealed, masked = "phone", turn.d.PhoneSealed, MaskPhone
	}
	if sealed == "" {
		return // gone back a step
	}
	value, err := e.Sealer.Open(field, sealed)
	if err != nil {
		t.Fatalf("%s, %q: %v", p.name, said, err)
	}
	if field == "id_number" {
		if person, err := ParseID(value, p.at); err != nil {
			t.Fatalf("%s, %q: took %q: %v", p.name, said, value, err)
		} else {
			checkAcceptedID(t, value, person, p.at)
		}
	} else {
		checkMobile(t, said, value)
	}
	if !strings.Contains(typed, value) {
		t.Fatalf("%s, %q: took %q, which the message does not hold", p.name, said, value)
	}
	if strings.Contains(reply, value) || field == "id_number" && !strings.Contains(reply, masked(value)) {
		t.Fatalf("%s, %q: took %q; the reply does not show it masked:\n%s", p.name, said, value, reply)
	}
}

func checkStepReply(t *testing.T, where, said string, out Outcome) {
	t.Helper()
	reply := out.Reply()
	switch {
	case len(out.Replies) != 1 || strings.TrimSpace(reply) == "":
		t.Fatalf("%s, %q: %d replies, want one:\n%q", where, said, len(out.Replies), out.Replies)
	case len(reply) > 2048:
		t.Fatalf("%s, %q: the reply is %d bytes, more than WeChat's 2048:\n%s", where, said, len(reply), reply)
	case strings.Contains(reply, templates.ClinicPhone) || strings.Contains(reply, "<no value>"):
		t.Fatalf("%s, %q: the reply is not filled in:\n%s", where, said, reply)
	case utf8.ValidString(said) && !utf8.ValidString(reply):
		t.Fatalf("%s, %q: the reply is not UTF-8:\n%q", where, said, reply)
	}
	given := NormalizeID(foldWidth(said))
	for _, secret := range fuzzSecrets {
		if strings.Contains(reply, secret) && !strings.Contains(given, secret) && !strings.Contains(said, secret) {
			t.Fatalf("%s, %q: the reply shows %s whole:\n%s", where, said, secret, reply)
		}
	}
}
