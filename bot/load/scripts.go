package load

import (
	"fmt"
	"time"

	"github.com/jiayi-health/jiayi/bot/wechat"
)

// Scripts are the conversations `jiayi load` knows, by name.
var Scripts = map[string]struct {
	About  string
	Script Script
	Cycle  bool // residents start again when all have had it
	// Ready, when set, brings each resident (new people, from salt) to
	// where Script starts, untimed, before the timed run.
	Ready func(salt int) Script
}{
	"help":    {"each resident asks for help once a round: a reply that needs only Redis", Help, true, nil},
	"signing": {"each resident follows and signs with the first team, ending with the committing 同意", Signing(0), false, nil},
	"browse":  {"each resident looks around: help, the packages and one of them, 我的; nothing changes but the conversation", Browse, true, nil},
	"open":    {"each resident starts signing and stops at the name, leaving the conversation open", Open, false, nil},
	"agree":   {"each resident is first brought, untimed, to the check before signing; then only the committing 同意 is timed", Agree, false, ReadyToAgree},
}

// Agree is the committing step of a signing alone, for residents
// ReadyToAgree brought to it.
func Agree(int) []Step {
	return []Step{{Name: "agree", Action: text("同意"), Expect: "合同编号：QY"}}
}

// ReadyToAgree is Signing up to the check before the committing 同意.
func ReadyToAgree(salt int) Script {
	return func(i int) []Step {
		steps := Signing(salt)(i)
		return steps[:len(steps)-1]
	}
}

// Open starts a signing for oneself and leaves it waiting for the name: a
// conversation the server keeps (in Redis) for a day.
func Open(int) []Step {
	return []Step{
		{Name: "sign", Action: text("签约"), Expect: "请问为谁签约"},
		{Name: "for_self", Action: text("1"), Expect: "请告诉我您的姓名"},
	}
}

func text(s string) wechat.Action { return wechat.Action{Kind: "text", Text: s} }

// Help is one message a round, 帮助, answered from the help text.
func Help(int) []Step {
	return []Step{{Name: "help", Action: text("帮助"), Expect: "帮助 —— 再看一次这份说明"}}
}

// EchoHelp is Help as the bare echo answers it: the words sent, back.
func EchoHelp(int) []Step {
	return []Step{{Name: "help", Action: text("帮助"), Expect: "帮助"}}
}

// Browse looks around without changing anything.
func Browse(int) []Step {
	return []Step{
		{Name: "help", Action: text("帮助"), Expect: "帮助 —— 再看一次这份说明"},
		{Name: "packages", Action: text("服务包"), Expect: "家庭医生服务包"},
		{Name: "package", Action: text("1"), Expect: "基本公共卫生服务包"},
		{Name: "cancel", Action: text("取消"), Expect: "已退出"},
		{Name: "mine", Action: text("我的"), Expect: "1. 我的签约"},
		{Name: "cancel", Action: text("取消"), Expect: "已退出"},
	}
}

// Signing follows the account and signs resident i with the first team of
// the first community, as the sandbox's demo organisation has them: each
// resident a made-up person with an ID number and a phone of their own.
// Different salts make different people, for another run against the same
// database.
func Signing(salt int) Script {
	return func(i int) []Step {
		id, phone := IDNumber(salt+i), Phone(salt+i)
		return []Step{
			{Name: "follow", Action: wechat.Action{Kind: "follow"}, Expect: "欢迎关注"},
			{Name: "sign", Action: text("签约"), Expect: "请问为谁签约"},
			{Name: "for_self", Action: text("1"), Expect: "请告诉我您的姓名"},
			{Name: "name", Action: text(Name(salt + i)), Expect: "需要您单独同意"},
			{Name: "consent", Action: text("同意"), Expect: "身份证号码"},
			{Name: "id_number", Action: text(id), Expect: "手机号码"},
			{Name: "phone", Action: text(phone), Expect: "所在的村"},
			{Name: "community", Action: text("1"), Expect: "都不是请回复"},
			{Name: "groups", Action: text("0"), Expect: "请选择家庭医生团队"},
			{Name: "team", Action: text("1"), Expect: "请选择服务包"},
			{Name: "packages", Action: text("0"), Expect: "请核对签约信息"},
			{Name: "agree", Action: text("同意"), Expect: "合同编号：QY"},
		}
	}
}

// People is how many made-up people there are: IDNumber gives each n
// below it a number of their own.
const People = 18262 * 1000

// IDNumber is a made-up but valid resident ID number for person n: born
// between 1940 and 1989 (adults who sign for themselves), registered in
// Beijing's Chaoyang district, with the check digit right.
func IDNumber(n int) string {
	born := time.Date(1940, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, (n/1000)%18262)
	body := fmt.Sprintf("110105%s%03d", born.Format("20060102"), n%1000)
	weights := []int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for k, w := range weights {
		sum += int(body[k]-'0') * w
	}
	return body + string("10X98765432"[sum%11])
}

// Phone is a made-up mobile number for person n.
func Phone(n int) string { return fmt.Sprintf("139%08d", n%100000000) }

// Name is a made-up name for person n.
func Name(n int) string {
	family := []rune("王李张刘陈杨赵黄周吴")
	given := []rune("秀英明华丽军芳强敏静")
	return string([]rune{family[n%10], given[(n/10)%10], given[(n/100)%10]})
}

// Echoed is a script as the bare echo answers it: each text step's words
// back; what has no words (following) it does not answer, and is left out.
func Echoed(steps []Step) []Step {
	var out []Step
	for _, s := range steps {
		if s.Action.Kind == "text" {
			s.Expect = s.Action.Text
			out = append(out, s)
		}
	}
	return out
}
