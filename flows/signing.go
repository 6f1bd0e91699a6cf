package flows

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

// Versions of the texts a resident agrees to; the files are
// templates/messages/consent_VERSION.txt and agreement_VERSION.txt.
const (
	ConsentVersion   = "2026-12"
	AgreementVersion = "2026-12"
)

// The 签约 conversation's states are drawn in signing.md. The order of the
// steps is part of the contract with clinics' training material.

// signingData is what the 签约 conversation has been told so far. The ID
// number and phone are sealed.
type signingData struct {
	Who           string    `json:"who,omitempty"` // self, family
	Name          string    `json:"name,omitempty"`
	ConsentedAt   time.Time `json:"consented_at,omitzero"`
	IDSealed      string    `json:"id,omitempty"`
	IDHash        string    `json:"id_hash,omitempty"`
	Birth         string    `json:"birth,omitempty"`
	Sex           string    `json:"sex,omitempty"`
	Age           int       `json:"age,omitempty"`
	PhoneSealed   string    `json:"phone,omitempty"`
	PhoneHash     string    `json:"phone_hash,omitempty"`
	CommunityID   int64     `json:"community,omitempty"`
	CommunityName string    `json:"community_name,omitempty"`
	Groups        []string  `json:"groups,omitempty"` // declared; age-derived ones are added on their own
	DueSealed     string    `json:"due,omitempty"`    // a pregnancy's expected due date, sealed
	chosenTeam
	District        string   `json:"district,omitempty"`
	Tertiary        string   `json:"tertiary,omitempty"`
	Insured         string   `json:"insured,omitempty"`
	Packages        []string `json:"packages,omitempty"`
	PreferredDoctor int64    `json:"preferred_doctor,omitempty"` // from a doctor's QR code
	Relation        string   `json:"relation,omitempty"`         // what the user is to the family member
	// Ahead holds what the sentence that started the signing already said
	// ("给我老伴签一个": for a family member).
	Ahead map[string]string `json:"ahead,omitempty"`
}

type signTurn = turn[signingData]

// signing is the 签约 conversation.
var signing = declare(&conversation[signingData]{
	about: about{name: "signing", title: "签约", keywords: []string{"签约"}, pauses: true, help: "sign_help", version: 1},
	begin: signingOpen,
	ahead: func(d *signingData) map[string]string { return d.Ahead },
	steps: []step[signingData]{
		{name: "who", ask: askWho, take: takeWho},
		{name: "name", ask: askName, take: takeName},
		{name: "consent", ask: askConsent, take: takeConsent},
		{name: "id", ask: askID, take: takeID},
		{name: "relation", applies: func(t *signTurn) (bool, error) { return signFamily(t), nil }, ask: askRelation, take: takeRelation},
		{name: "phone", ask: askPhone, take: takePhone},
		{name: "community", ask: askCommunity, take: takeCommunity},
		{name: "groups", ask: askGroups, take: takeGroups},
		{name: "due", applies: expecting, ask: askDue, take: takeDue},
		{name: "team", ask: askTeam, take: takeTeam},
		{name: "district", applies: hasPartners, ask: askHospital("district"), take: takeHospital("district")},
		{name: "tertiary", applies: hasPartners, ask: askHospital("tertiary"), take: takeHospital("tertiary")},
		{name: "insured", applies: insuredMatters, ask: askInsured, take: takeInsured},
		{name: "packages", ask: askPackages, take: takePackages},
		{name: "confirm", ask: askConfirm, take: takeConfirm},
	},
})

func signFamily(t *signTurn) bool { return t.d.Who == "family" }

func signApplicant(t *signTurn) Applicant {
	return Applicant{Age: t.d.Age, Groups: t.d.Groups, Insured: storage.Insured(cmp.Or(t.d.Insured, string(storage.InsuredLocal))),
		MinorAlone: !signFamily(t) && t.d.Age < adultAge}
}

// choice reads one number from 1 to n, as people type or say it (numbers.go);
// a list of one also takes 好 or 是.
func choice(said string, n int) (int, bool) {
	if n == 1 && yesWords[compact(said)] {
		return 1, true
	}
	v, ok := listNumber(said)
	return v, ok && v >= 1 && v <= n
}

// pickOne takes the numbered line of a list a question showed, or re-asks
// with reaskMessage (given the list's length).
func pickOne[T any](list []T, said, reaskMessage string) (T, error) {
	n, ok := choice(said, len(list))
	if !ok {
		var none T
		return none, reaskWith(reaskMessage, len(list))
	}
	return list[n-1], nil
}

// pickNamed is pickOne for a list whose lines have names: typing a line's
// name, or a part of it that no other line shares ("幸福", a doctor's
// surname and given name), picks it as its number does.
func pickNamed[T any](list []T, said, reaskMessage string, names func(T) []string) (T, error) {
	if _, ok := listNumber(said); ok || len(list) == 1 && yesWords[compact(said)] || isQuestion(said) {
		return pickOne(list, said, reaskMessage)
	}
	key := compact(said)
	var found []int
	for i, item := range list {
		for _, name := range names(item) {
			name = compact(name)
			if name == key {
				return item, nil
			}
			if name != "" && utf8.RuneCountInString(key) >= 2 && (strings.Contains(name, key) || strings.Contains(key, name)) {
				found = append(found, i)
				break
			}
		}
	}
	if len(found) == 1 {
		return list[found[0]], nil
	}
	return pickOne(list, said, reaskMessage)
}

func itself(s string) []string { return []string{s} }

// pickMany reads several lines of a list: their numbers ("1 3", "一和三",
// "二和三都要") or their names said in a sentence ("我有高血压，还有糖尿病"
// picks 高血压患者 and 2型糖尿病患者; "没有高血压" does not).
func pickMany(said string, names []string) ([]int, bool) {
	trimmed := strings.TrimRight(Normalize(said), "吧啊呀")
	for _, tail := range []string{"都要", "都选", "都是", "都有", "两个", "这几个"} {
		trimmed = strings.TrimSuffix(trimmed, tail)
	}
	if picked, ok := numbersIn(trimmed); ok {
		return picked, true
	}
	if isQuestion(said) {
		return nil, false
	}
	c := compact(said)
	var picked []int
	for i, name := range names {
		for _, key := range nameKeys(name) {
			at := strings.Index(c, key)
			if at < 0 {
				continue
			}
			before := c[:at]
			if strings.HasSuffix(before, "没有") || strings.HasSuffix(before, "没") || strings.HasSuffix(before, "不是") || strings.HasSuffix(before, "无") {
				continue
			}
			picked = append(picked, i+1)
			break
		}
	}
	return picked, len(picked) > 0
}

// onlyDefault says the default package alone is wanted: 只要基本的, 不加了.
func onlyDefault(said string) bool {
	c := compact(said)
	return !isQuestion(said) && slices.ContainsFunc([]string{"只要基本", "只要默认", "只要基础", "不加", "不用加", "不要别的", "就要基本", "就要默认", "都不要"},
		func(w string) bool { return strings.Contains(c, w) })
}

// nameKeys are the words a list line is known by: its name without the
// words around it people leave out (患者, 人员, 服务包, 2型), each part of a
// name written "A/B".
func nameKeys(name string) []string {
	var keys []string
	for _, part := range strings.FieldsFunc(name, func(r rune) bool { return r == '/' || r == '、' || r == '（' || r == '(' }) {
		k := strings.TrimPrefix(compact(part), "2型")
		for _, suffix := range []string{"患者", "人员", "人口", "服务包", "包", "家庭"} {
			k = strings.TrimSuffix(k, suffix)
		}
		if utf8.RuneCountInString(k) >= 2 {
			keys = append(keys, k)
		}
	}
	return keys
}

func teamNames(tm storage.Team) []string { return []string{tm.Name, tm.DoctorName} }

// chosenTeam is the team a resident picked (签约, 改签) and its doctor.
type chosenTeam struct {
	TeamID     int64  `json:"team,omitempty"`
	TeamName   string `json:"team_name,omitempty"`
	DoctorID   int64  `json:"doctor,omitempty"`
	DoctorName string `json:"doctor_name,omitempty"`
}

func teamChosen(tm storage.Team) chosenTeam {
	return chosenTeam{TeamID: tm.ID, TeamName: tm.Name, DoctorID: tm.DoctorID, DoctorName: tm.DoctorName}
}

// --- the steps ---

// signingOpen ends a signing before its first question while the centre
// has not opened signing.
func signingOpen(t *signTurn) error {
	opening, err := t.e.DB.SigningOpening(t)
	if err != nil {
		return err
	}
	if !opening.Open() {
		return stopWith("sign_opening", strings.Join(opening.Phones, "、"))
	}
	return nil
}

// familyWords name someone else in the family; selfWords the one typing.
var (
	familyWords = []string{"老伴", "爱人", "老婆", "老公", "丈夫", "妻子", "媳妇", "爸", "妈", "父亲", "母亲", "孩子", "儿子",
		"女儿", "孙子", "孙女", "外孙", "家人", "家里人", "家庭成员", "婆婆", "公公", "岳父", "岳母", "奶奶", "爷爷", "姥姥", "姥爷", "外公", "外婆",
		"宝宝", "小孩", "父母", "亲戚"}
	selfWords = []string{"本人", "自己", "给我签", "帮我签", "我签"}
)

// whoIn says for whom a sentence asks to sign: family, self, or "".
func whoIn(said string) string {
	c := compact(said)
	if slices.ContainsFunc(familyWords, func(w string) bool { return strings.Contains(c, w) }) {
		return "family"
	}
	if slices.ContainsFunc(selfWords, func(w string) bool { return strings.Contains(c, w) }) {
		return "self"
	}
	return ""
}

func askWho(t *signTurn) (string, error) {
	if signed, err := ownSigning(t); err != nil {
		return "", err
	} else if signed != nil {
		return signed.message, nil
	}
	members, err := t.e.DB.ManagedResidents(t, t.in.OpenID)
	if err != nil {
		return "", err
	}
	var names []string
	for _, m := range members {
		if m.Relation == "family" {
			names = append(names, m.Name)
		}
	}
	return templates.Message("sign_who", strings.Join(names, "、"))
}

// alreadySigned is the user's own signing that is active or waits for
// the doctor, and what the user is told of it.
type alreadySigned struct{ message string }

// ownSigning finds the user's own live contract: they are told at once,
// with the team and its phone, and may still sign a family member.
func ownSigning(t *signTurn) (*alreadySigned, error) {
	cs, err := t.e.DB.ContractsManagedBy(t, t.in.OpenID)
	if err != nil {
		return nil, err
	}
	members, err := t.e.DB.ManagedResidents(t, t.in.OpenID)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		own := slices.ContainsFunc(members, func(m storage.ManagedResident) bool { return m.ID == c.ResidentID && m.Relation == "self" })
		if !own || (c.Status != storage.ContractActive && c.Status != storage.ContractPending) {
			continue
		}
		phone, err := t.e.teamPhone(t, c.TeamID)
		if err != nil {
			return nil, err
		}
		text, err := templates.Message("sign_who_signed", map[string]any{"Team": c.TeamName, "Doctor": c.DoctorName, "Phone": phone,
			"Pending": c.Status == storage.ContractPending})
		return &alreadySigned{text}, err
	}
	return nil, nil
}

func takeWho(t *signTurn, said string) (string, error) {
	if isQuestion(said) { // 本人吗？
		return "", reaskWith("sign_who_reask", nil)
	}
	switch asNumber(said) {
	case "1", "本人", "自己", "我自己", "给我自己", "我", "给我":
		if signed, err := ownSigning(t); err != nil {
			return "", err
		} else if signed != nil {
			return "", reask{signed.message}
		}
		t.d.Who = "self"
	case "2", "家庭成员", "家人", "给家人", "帮家人", "家里人", "给家里人":
		t.d.Who = "family"
	default:
		if who := whoIn(said); who != "" {
			return takeWho(t, map[string]string{"family": "2", "self": "1"}[who])
		}
		return "", reaskWith("sign_who_reask", nil)
	}
	return "", nil
}

func askName(t *signTurn) (string, error) { return templates.Message("sign_name", signFamily(t)) }

var (
	namePattern = regexp.MustCompile(`^[\p{Han}A-Za-z·]+$`)
	// "我叫王秀英", "她的名字是李敏", "姓名：张建国": the name is what follows.
	nameSaidPattern = regexp.MustCompile(`^(?:(?:我|他|她|本人|老人|我(?:妈|爸|母亲|父亲|老伴|爱人|儿子|女儿|孙子|孙女))的?)?(?:名字|姓名)?(?:叫做|叫|是|:)`)
)

func takeName(t *signTurn, said string) (string, error) {
	name := strings.ReplaceAll(said, " ", "")
	if rest := nameSaidPattern.ReplaceAllString(strings.ReplaceAll(name, "：", ":"), ""); rest != name && utf8.RuneCountInString(rest) >= 2 {
		name = strings.TrimRight(rest, "。，,.！!")
	}
	if n := utf8.RuneCountInString(name); n < 2 || n > 20 || !namePattern.MatchString(name) {
		return "", reaskWith("sign_name_reask", nil)
	}
	// Nor is a greeting, a thank-you, 我自己 or 我妈.
	who := name
	for _, p := range []string{"是我的", "是我", "我的", "我", "是"} {
		who = strings.TrimPrefix(who, p)
	}
	if m := Understand(name).Intent; isQuestion(said) || m == intentGreeting || m == intentThanks || m == intentAck ||
		slices.Contains(familyWords, who) || slices.Contains(selfWords, who) {
		return "", reaskWith("sign_name_sentence", nil)
	}
	// A sentence is not a name: 我是问问能不能上门 has words no name of
	// five characters or more holds (names that long are written with ·).
	if utf8.RuneCountInString(name) > 4 && !strings.Contains(name, "·") && strings.ContainsAny(name, "我你他她吗呢吧能问想要的了给帮怎么") {
		return "", reaskWith("sign_name_sentence", nil)
	}
	t.d.Name = name
	return "", nil
}

func askConsent(t *signTurn) (string, error) {
	who, err := Processor(t, t.e.DB)
	if err != nil {
		return "", err
	}
	return templates.Message("consent_"+ConsentVersion, map[string]any{"Family": signFamily(t), "Processor": who.Name, "Phones": who.Phones})
}

func takeConsent(t *signTurn, said string) (string, error) {
	switch answerTo(said, "同意") {
	case answeredYes:
		t.d.ConsentedAt = t.in.At.UTC()
		return "", nil
	case answeredNo:
		return "", stopWith("sign_consent_declined", nil)
	}
	return "", reaskWith("sign_consent_reask", nil)
}

func askID(t *signTurn) (string, error) { return templates.Message("sign_id", signFamily(t)) }

var idProblems = map[error]string{ErrIDFormat: "sign_id_format", ErrIDChecksum: "sign_id_checksum",
	ErrIDBirth: "sign_id_birth", ErrIDFuture: "sign_id_future"}

// maxIDsPerDay caps how many different ID numbers one WeChat user may try a
// day, so nobody can find out who is signed by trying numbers.
const maxIDsPerDay = 3

// idInSentence finds an ID number said in a sentence ("我的身份证号是…").
var idInSentence = regexp.MustCompile(`(?:^|[^0-9])([0-9]{17}[0-9X])(?:[^0-9X]|$)`)

func takeID(t *signTurn, said string) (string, error) {
	id := NormalizeID(said)
	if found := idInSentence.FindAllStringSubmatch(id, -1); len(found) == 1 && found[0][1] != id {
		id = found[0][1]
	}
	person, err := ParseID(id, t.in.At)
	if err != nil {
		return "", reaskWith(idProblems[err], nil)
	}
	age := Age(person.Birth, t.in.At)
	if !signFamily(t) && age < guardianAge {
		return "", stopWith("sign_id_child_self", nil)
	}
	hash := t.e.Sealer.Hash("id_number", id)
	day := t.in.At.In(Shanghai).Format("20060102")
	tried, n, err := t.e.DB.IDTriedToday(t, t.in.OpenID, day, hash)
	if err != nil {
		return "", err
	}
	if !tried && n >= maxIDsPerDay {
		return "", stopWith("sign_id_limit", nil)
	}
	if _, err := t.e.DB.TryID(t, t.in.OpenID, day, hash); err != nil {
		return "", err
	}
	if live, awaiting, err := t.e.DB.LiveContractOf(t, hash); err != nil {
		return "", err
	} else if awaiting && !signFamily(t) {
		return "", stopWith("sign_id_awaiting_member", nil)
	} else if live {
		// A mistyped number may be someone's who signed: the resident keeps
		// their place and types it again (tries a day stay limited above).
		return "", reaskWith("sign_id_taken", nil)
	}
	sealed, err := t.e.Sealer.Seal("id_number", id)
	if err != nil {
		return "", err
	}
	t.d.IDSealed, t.d.IDHash = sealed, hash
	t.d.Birth, t.d.Sex, t.d.Age = person.Birth.Format("2006-01-02"), person.sex(), age
	return templates.Message("sign_id_ok", MaskID(id))
}

// Ages that change who may consent: under 14 a guardian consents (PIPL
// Art. 31); under 18 a minor signing alone takes no paid package; from 18
// the member confirms a signing made for them themselves.
const (
	guardianAge = 14
	adultAge    = 18
)

// relations are what the family member may be to the user who signs them,
// by whether the member is a minor (the user is their guardian) or an
// adult.
var relations = map[bool][]string{
	true:  {"子女", "孙子女或外孙子女", "由我监护的其他未成年人"},
	false: {"配偶", "子女", "父母", "其他亲属"},
}

// relationWords are the words people use for each relation: 她是我妈妈 is 父母.
func relationWords(r string) []string {
	return append([]string{r}, map[string][]string{
		"配偶":          {"老伴", "爱人", "丈夫", "妻子", "老公", "老婆", "媳妇"},
		"子女":          {"儿子", "女儿", "闺女", "孩子"},
		"父母":          {"妈妈", "爸爸", "母亲", "父亲", "我妈", "我爸", "老娘", "老爹"},
		"孙子女或外孙子女":    {"孙子", "孙女", "外孙", "外孙女"},
		"其他亲属":        {"亲戚", "兄弟", "姐妹", "哥哥", "姐姐", "弟弟", "妹妹", "叔叔", "阿姨", "舅舅", "姑姑"},
		"由我监护的其他未成年人": {"监护"},
	}[r]...)
}

func askRelation(t *signTurn) (string, error) {
	return templates.Message("sign_relation", map[string]any{"Minor": t.d.Age < adultAge, "Relations": relations[t.d.Age < adultAge]})
}

func takeRelation(t *signTurn, said string) (string, error) {
	r, err := pickNamed(relations[t.d.Age < adultAge], said, "sign_relation_reask", relationWords)
	if err != nil {
		return "", err
	}
	t.d.Relation = r
	return "", nil
}

func askPhone(t *signTurn) (string, error) { return templates.Message("sign_phone", signFamily(t)) }

var mobilePattern = regexp.MustCompile(`^1[3-9][0-9]{9}$`)

// mobileInSentence finds a mobile number said in a sentence ("手机号是…").
var mobileInSentence = regexp.MustCompile(`(?:^|[^0-9])(1[3-9][0-9]{9})(?:[^0-9]|$)`)

func takePhone(t *signTurn, said string) (string, error) {
	phone := strings.NewReplacer(" ", "", "-", "").Replace(said)
	if found := mobileInSentence.FindAllStringSubmatch(phone, -1); len(found) == 1 {
		phone = found[0][1]
	}
	if !mobilePattern.MatchString(phone) {
		return "", reaskWith("sign_phone_reask", nil)
	}
	sealed, err := t.e.Sealer.Seal("phone", phone)
	if err != nil {
		return "", err
	}
	t.d.PhoneSealed, t.d.PhoneHash = sealed, t.e.Sealer.Hash("phone", phone)
	return "", nil
}

// maxListed is the longest numbered list one question shows.
const maxListed = 9

func askCommunity(t *signTurn) (string, error) {
	cs, err := t.e.DB.Communities(t)
	if err != nil {
		return "", err
	}
	if len(cs) > maxListed {
		return templates.Message("sign_community_search", nil)
	}
	return templates.Message("sign_community", cs)
}

func takeCommunity(t *signTurn, said string) (string, error) {
	cs, err := t.e.DB.Communities(t)
	if err != nil {
		return "", err
	}
	var chosen *storage.Community
	if len(cs) <= maxListed {
		c, err := pickNamed(cs, said, "sign_community_reask", func(c storage.Community) []string { return []string{c.Name, c.Town + c.Name} })
		if err != nil {
			return "", err
		}
		chosen = &c
	} else {
		var found []storage.Community
		for _, c := range cs {
			if strings.Contains(c.Town+c.Name, said) {
				found = append(found, c)
			}
		}
		switch {
		case len(found) == 0:
			return "", reaskWith("sign_community_none", nil)
		case len(found) > 1:
			var names []string
			for _, c := range found[:min(len(found), maxListed)] {
				names = append(names, c.Name)
			}
			return "", reaskWith("sign_community_many", strings.Join(names, "、"))
		}
		chosen = &found[0]
	}
	t.d.CommunityID, t.d.CommunityName = chosen.ID, chosen.Name
	return "", nil
}

// declarableGroups are the profile's priority groups a resident declares;
// those that follow from age are added on their own.
func signDeclarableGroups(t *signTurn) ([]string, error) {
	s, err := t.settings()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, g := range declarableGroups(s) {
		if term, _ := findTerm(g); term.Fits(t.d.Sex, t.d.Age) {
			out = append(out, g)
		}
	}
	return out, nil
}

// declarableGroups are the programme's priority groups a resident declares
// (health status), not those that follow from age.
func declarableGroups(s profile.Settings) []string {
	var out []string
	for _, g := range s.PriorityGroups {
		if term, _ := findTerm(g); term.Derived == "" {
			out = append(out, g)
		}
	}
	return out
}

// DeclarableGroups lists the priority groups a resident may declare, for
// forms that sign residents: code and name.
func DeclarableGroups(ctx context.Context, db *storage.DB) ([]profile.Term, error) {
	s, err := Settings(ctx, db)
	if err != nil {
		return nil, err
	}
	var out []profile.Term
	for _, g := range declarableGroups(s) {
		term, _ := findTerm(g)
		out = append(out, term)
	}
	return out, nil
}

func findTerm(code string) (profile.Term, bool) {
	for _, g := range profile.Words().PriorityGroups {
		if g.Code == code {
			return g, true
		}
	}
	return profile.Term{}, false
}

func askGroups(t *signTurn) (string, error) {
	codes, err := signDeclarableGroups(t)
	if err != nil {
		return "", err
	}
	return templates.Message("sign_groups", map[string]any{
		"Groups": strings.Split(groupNames(codes), "、"), "Family": signFamily(t), "Auto": groupNames(profile.Words().DerivedGroups(signApplicant(t).Age))})
}

func takeGroups(t *signTurn, said string) (string, error) {
	codes, err := signDeclarableGroups(t)
	if err != nil {
		return "", err
	}
	if noneWords[compact(said)] {
		said = "0"
	}
	picked, ok := pickMany(said, strings.Split(groupNames(codes), "、"))
	if !ok {
		return "", reaskWith("sign_groups_reask", len(codes))
	}
	var chosen []string
	for _, n := range picked {
		switch {
		case n == 0 && len(picked) == 1:
		case n >= 1 && n <= len(codes):
			if !slices.Contains(chosen, codes[n-1]) {
				chosen = append(chosen, codes[n-1])
			}
		default:
			return "", reaskWith("sign_groups_reask", len(codes))
		}
	}
	t.d.Groups = chosen
	all := append(slices.Clone(chosen), profile.Words().DerivedGroups(signApplicant(t).Age)...)
	return templates.Message("sign_groups_ok", groupNames(all))
}

// expecting: a resident who declared 孕产妇 is asked her expected due date,
// which starts her antenatal and postnatal reminders.
func expecting(t *signTurn) (bool, error) { return slices.Contains(t.d.Groups, "maternal"), nil }

func askDue(t *signTurn) (string, error) { return templates.Message("sign_due", nil) }

// skipWords put a question off for later.
var skipWords = map[string]bool{"跳过": true, "不填": true, "以后再说": true, "以后": true, "0": true, "先不填": true}

func takeDue(t *signTurn, said string) (string, error) {
	if skipWords[compact(said)] {
		t.d.DueSealed = ""
		return templates.Message("sign_due_skipped", nil)
	}
	due, ok := parseDueDate(said, t.in.At)
	if !ok {
		return "", reaskWith("sign_due_reask", nil)
	}
	if !CheckDueDate(due, t.in.At) {
		return "", reaskWith("sign_due_range", nil)
	}
	// Signed before with a due date: a correction keeps that pregnancy's
	// anchor, so no visit is reminded of twice.
	was, err := t.e.DB.DueDateByIDHash(t, t.d.IDHash)
	if err != nil {
		return "", err
	}
	sealed, err := ResealDueDate(t.e.Sealer, was, due.Format("2006-01-02"))
	if err != nil {
		return "", err
	}
	t.d.DueSealed = sealed
	return templates.Message("sign_due_ok", due.Format("2006年1月2日"))
}

func signTeams(t *signTurn) ([]storage.Team, error) {
	if t.d.CommunityID == 0 {
		return nil, missing(t.st.Flow, "community")
	}
	return t.e.DB.TeamsServing(t, t.d.CommunityID)
}

// teamsOffered lists the teams serving the community, the team of the
// doctor whose QR code started the signing first.
func signTeamsOffered(t *signTurn) ([]storage.Team, bool, error) {
	teams, err := signTeams(t)
	if err != nil {
		return nil, false, err
	}
	preferred := false
	if want := t.d.PreferredDoctor; want != 0 {
		for i, tm := range teams {
			if tm.DoctorID == want {
				teams[0], teams[i] = teams[i], teams[0]
				preferred = true
				break
			}
		}
	}
	return teams[:min(len(teams), maxListed)], preferred, nil
}

func askTeam(t *signTurn) (string, error) {
	teams, preferred, err := signTeamsOffered(t)
	if err != nil {
		return "", err
	}
	if len(teams) == 0 {
		return "", stopWith("sign_no_team", nil)
	}
	return templates.Message("sign_team", map[string]any{"Teams": teams, "Preferred": preferred})
}

func takeTeam(t *signTurn, said string) (string, error) {
	teams, preferred, err := signTeamsOffered(t)
	if err != nil {
		return "", err
	}
	if asNumber(said) == "0" && preferred {
		said = "1"
	}
	tm, err := pickNamed(teams, said, "sign_team_reask", teamNames)
	if err != nil {
		return "", err
	}
	t.d.chosenTeam = teamChosen(tm)
	return "", nil
}

func hasPartners(t *signTurn) (bool, error) {
	s, err := t.settings()
	return err == nil && s.PartnerHospitals != nil, err
}

func signHospitals(t *signTurn, level string) ([]string, string, error) {
	s, err := t.settings()
	if err != nil || s.PartnerHospitals == nil {
		return nil, "", err
	}
	if level == "district" {
		return s.PartnerHospitals.District, "区级医院", nil
	}
	return s.PartnerHospitals.Tertiary, "三级医院", nil
}

func askHospital(level string) func(t *signTurn) (string, error) {
	return func(t *signTurn) (string, error) {
		list, name, err := signHospitals(t, level)
		if err != nil {
			return "", err
		}
		return templates.Message("sign_hospital", map[string]any{"Level": name, "Hospitals": list})
	}
}

func takeHospital(level string) func(t *signTurn, said string) (string, error) {
	return func(t *signTurn, said string) (string, error) {
		list, _, err := signHospitals(t, level)
		if err != nil {
			return "", err
		}
		hospital, err := pickNamed(list, said, "sign_hospital_reask", itself)
		if err != nil {
			return "", err
		}
		if level == "district" {
			t.d.District = hospital
		} else {
			t.d.Tertiary = hospital
		}
		return "", nil
	}
}

func insuredMatters(t *signTurn) (bool, error) {
	c, err := t.catalog()
	return err == nil && profile.InsuredMatters(c), err
}

func askInsured(t *signTurn) (string, error) { return templates.Message("sign_insured", signFamily(t)) }

func takeInsured(t *signTurn, said string) (string, error) {
	switch asNumber(said) {
	case "1":
		t.d.Insured = string(storage.InsuredLocal)
	case "2":
		t.d.Insured = string(storage.InsuredElsewhere)
	default:
		return "", reaskWith("sign_insured_reask", nil)
	}
	return "", nil
}

// offered lists what the resident may pick: every basic tier, and the
// personalised and add-on packages they are eligible for, in browse order.
func signOffered(t *signTurn) ([]storage.Package, storage.Package, error) {
	c, err := t.catalog()
	if err != nil {
		return nil, storage.Package{}, err
	}
	a := signApplicant(t)
	var out []storage.Package
	var def storage.Package
	for _, p := range browseOrder(c) {
		if p.Default {
			def = p
		}
		if p.Kind == storage.Basic || Eligible(p, a) == nil {
			out = append(out, p)
		}
	}
	return out, def, nil
}

func askPackages(t *signTurn) (string, error) {
	offered, def, err := signOffered(t)
	if err != nil {
		return "", err
	}
	a := signApplicant(t)
	type line struct {
		N       int
		Name    string
		Pays    residentShare
		Default bool
	}
	var lines []line
	basics := 0
	for i, p := range offered {
		if p.Kind == storage.Basic {
			basics++
		}
		lines = append(lines, line{N: i + 1, Name: p.Name, Pays: shareOf(p.Price(a.Insured)), Default: p.Code == def.Code})
	}
	example := strconv.Itoa(len(offered))
	if len(offered) > 2 {
		example = fmt.Sprintf("%d %d", len(offered)-1, len(offered))
	}
	settings, err := t.settings()
	if err != nil {
		return "", err
	}
	return templates.Message("sign_packages", map[string]any{"Lines": lines, "Example": example,
		"DefaultName": def.Name, "MultiBasic": basics > 1, "PersonalisedMax": settings.PersonalisedMax})
}

func takePackages(t *signTurn, said string) (string, error) {
	offered, def, err := signOffered(t)
	if err != nil {
		return "", err
	}
	var names []string
	for _, p := range offered {
		names = append(names, p.Name)
	}
	if onlyDefault(said) {
		said = "0"
	}
	picked, ok := pickMany(said, names)
	if !ok && isQuestion(said) {
		return "", reaskWith("sign_packages_question", nil)
	}
	if !ok {
		return "", reaskWith("sign_packages_reask", len(offered))
	}
	var codes []string
	basicPicked := false
	for _, n := range picked {
		switch {
		case n == 0 && len(picked) == 1:
		case n >= 1 && n <= len(offered):
			p := offered[n-1]
			basicPicked = basicPicked || p.Kind == storage.Basic
			if !slices.Contains(codes, p.Code) {
				codes = append(codes, p.Code)
			}
		default:
			return "", reaskWith("sign_packages_reask", len(offered))
		}
	}
	if !basicPicked {
		codes = append([]string{def.Code}, codes...)
	}
	c, err := t.catalog()
	if err != nil {
		return "", err
	}
	var refusal *Refusal
	if err := CheckChoice(c, signApplicant(t), codes); errors.As(err, &refusal) {
		return "", reaskWith("sign_packages_refused", refusal.Reason)
	} else if err != nil {
		return "", err
	}
	t.d.Packages = codes
	return "", nil
}

func signChosenPackages(t *signTurn) []string { return t.d.Packages }

func askConfirm(t *signTurn) (string, error) {
	c, err := t.catalog()
	if err != nil {
		return "", err
	}
	id, err := t.e.Sealer.Open("id_number", t.d.IDSealed)
	if err != nil {
		return "", err
	}
	phone, err := t.e.Sealer.Open("phone", t.d.PhoneSealed)
	if err != nil {
		return "", err
	}
	codes := signChosenPackages(t)
	fees := Price(c, signApplicant(t), codes)
	var names []string
	for _, code := range codes {
		p, _ := c.Package(code)
		names = append(names, p.Name)
	}
	agreement, err := Agreement(t, t.e.DB, c, t.d.TeamID, codes, fees, 12)
	if err != nil {
		return "", err
	}
	hospitals := joinNonEmptyWith("、", t.d.District, t.d.Tertiary)
	return templates.Message("sign_confirm", map[string]any{
		"Name": t.d.Name, "MaskedID": MaskID(id), "MaskedPhone": MaskPhone(phone),
		"Community": t.d.CommunityName, "Team": t.d.TeamName, "Doctor": t.d.DoctorName,
		"Hospitals": hospitals, "Packages": strings.Join(names, "、"), "Price": priceOf(fees.Total),
		"Agreement": agreement,
	})
}

func takeConfirm(t *signTurn, said string) (string, error) {
	if answerTo(said, "同意") != answeredYes {
		return "", reaskWith("sign_confirm_reask", nil)
	}
	nc, err := signNewContract(t)
	if err != nil {
		return "", err
	}
	code := ""
	if signFamily(t) && t.d.Age >= adultAge {
		code = memberCode(t.e.Sealer, t.st.RunKey)
		nc.MemberCode, nc.MemberCodeExpires = memberCodeHash(t.e.Sealer, code), t.in.At.Add(MemberCodeValid)
	}
	number, _, err := t.e.DB.CreateContract(t, nc)
	if errors.Is(err, storage.ErrLiveContract) {
		return "", stopWith("sign_id_taken", nil)
	}
	if err != nil {
		return "", err
	}
	if code != "" {
		return "", stopWith("sign_done_member", map[string]any{"Number": number, "Name": t.d.Name, "Code": code,
			"Days": int(MemberCodeValid.Hours() / 24), "Doctor": t.d.DoctorName})
	}
	return "", stopWith("sign_done", map[string]any{"Number": number, "Doctor": t.d.DoctorName})
}

func signNewContract(t *signTurn) (storage.NewContract, error) {
	c, err := t.catalog()
	if err != nil {
		return storage.NewContract{}, err
	}
	d := t.d
	a := signApplicant(t)
	if d.CommunityID == 0 || d.TeamID == 0 || d.DoctorID == 0 || d.IDSealed == "" {
		return storage.NewContract{}, missing(t.st.Flow, "community, team or ID number")
	}
	codes := signChosenPackages(t)
	fees := Price(c, a, codes)
	var pkgs []storage.ContractPackage
	for _, code := range codes {
		p, _ := c.Package(code)
		pkgs = append(pkgs, storage.ContractPackage{Code: code, Name: p.Name, Kind: string(p.Kind), Split: fees.Packages[code]})
	}
	relation := "self"
	if signFamily(t) {
		relation = "family"
	}
	groups, err := SealGroups(t.e.Sealer, a.Groups)
	if err != nil {
		return storage.NewContract{}, err
	}
	idMasked, phoneMasked, err := maskedOf(t.e.Sealer, d.IDSealed, d.PhoneSealed)
	if err != nil {
		return storage.NewContract{}, err
	}
	name, communityName, doctor := d.Name, d.CommunityName, d.DoctorID
	at := t.in.At
	return storage.NewContract{
		RequestKey: t.st.RunKey, Day: at.In(Shanghai).Format("060102"),
		Resident: storage.NewResident{ManagerOpenID: t.in.OpenID, Relation: relation, FamilyRelation: d.Relation, Name: name,
			IDSealed: d.IDSealed, IDHash: d.IDHash, PhoneSealed: d.PhoneSealed, PhoneHash: d.PhoneHash,
			BirthDate: d.Birth, Sex: d.Sex, CommunityID: d.CommunityID, GroupsSealed: groups, GroupTags: GroupTags(t.e.Sealer, a.Groups),
			IDMasked: idMasked, PhoneMasked: phoneMasked, DueDateSealed: d.DueSealed},
		TeamID: d.TeamID, DoctorID: doctor, Insured: a.Insured, TermMonths: 12,
		PartnerDistrict: d.District, PartnerTertiary: d.Tertiary,
		AgreementVersion: AgreementVersion, AgreedAt: at, ConsentVersion: ConsentVersion, ConsentedAt: d.ConsentedAt,
		ConsentBy: t.in.OpenID, Packages: pkgs,
		Notify: func(number string) storage.Push {
			return SignRequest{Key: storage.SignRequestKey(number), DoctorID: doctor, Number: number, Resident: name,
				Community: communityName, At: at}.Push()
		},
	}, nil
}
