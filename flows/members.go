package flows

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

// Signing another adult is a request, not a contract (杜绝“被签约”): the
// requester is given a code, and the member confirms by sending
// 确认签约 CODE from their own WeChat within MemberCodeValid, or in person at
// the clinic (staff record it in the console). Only then is the doctor
// asked; until then the contract is not active and counts nowhere, and
// unconfirmed it lapses.

// maxCodesPerDay is how many different codes one WeChat user may try a day.
const maxCodesPerDay = 5

// MemberCodeValid is how long a family member has to confirm.
const MemberCodeValid = 7 * 24 * time.Hour

// memberCode is the signing run's code: 8 digits from a keyed hash of the
// run, so a retried 同意 shows the same code and nobody can guess it.
func memberCode(s *storage.Sealer, runKey string) string {
	n, _ := strconv.ParseUint(s.Hash("member_code_of_run", runKey)[:12], 16, 64)
	return fmt.Sprintf("%08d", n%100_000_000)
}

func memberCodeHash(s *storage.Sealer, code string) string { return s.Hash("member_code", code) }

var memberConfirmPattern = regexp.MustCompile(`(?:^|[^不没])确认签约([0-9零〇一二三四五六七八九幺两]{8})(?:[^0-9零〇一二三四五六七八九幺两]|$)`)

// memberCommand takes 确认签约 CODE from the family member's own WeChat,
// typed or said (嗯，确认签约，七五九三一一零三。).
func (e *Engine) memberCommand(ctx context.Context, st *State, said string, in Inbound) ([]string, bool, error) {
	m := memberConfirmPattern.FindStringSubmatch(compact(said))
	if m == nil {
		return nil, false, nil
	}
	m[1] = strings.Map(func(r rune) rune {
		if d, ok := chineseDigits[r]; ok {
			return '0' + rune(d)
		}
		return r
	}, m[1])
	// A few codes a day per WeChat user, as with ID numbers: a code
	// cannot be found by trying.
	hash := memberCodeHash(e.Sealer, m[1])
	day := "code:" + in.At.In(Shanghai).Format("20060102")
	if tried, n, err := e.DB.IDTriedToday(ctx, in.OpenID, day, hash); err != nil {
		return nil, true, err
	} else if !tried && n >= maxCodesPerDay {
		replies, err := say("member_code_limit", nil)
		return replies, true, err
	}
	if _, err := e.DB.TryID(ctx, in.OpenID, day, hash); err != nil {
		return nil, true, err
	}
	c, err := e.DB.AwaitingCode(ctx, hash, in.OpenID, in.At)
	if errors.Is(err, storage.ErrNotFound) {
		replies, err := say("member_code_wrong", nil)
		return replies, true, err
	}
	if err != nil {
		return nil, true, err
	}
	replies, err := e.enter(ctx, st, memberConfirm.name, in, &memberData{Number: c.Number, CodeHash: hash})
	return replies, true, err
}

// memberData is the signing a family member is confirming.
type memberData struct {
	Number   string `json:"number"`
	CodeHash string `json:"code"`
}

type memberTurn = turn[memberData]

// memberConfirm asks the member for their own consent, then for their
// agreement to the contract, before the doctor is asked.
var memberConfirm = declare(&conversation[memberData]{
	about: about{name: "member_confirm", title: "确认签约", help: "member_help", version: 1},
	steps: []step[memberData]{
		{name: "consent", ask: askMemberConsent, take: takeMemberConsent},
		{name: "agree", ask: askMemberAgreement, take: takeMemberAgreement},
	},
})

func memberContract(t *memberTurn) (storage.ContractView, error) {
	c, err := t.e.DB.AwaitingCode(t, t.d.CodeHash, t.in.OpenID, t.in.At)
	if errors.Is(err, storage.ErrNotFound) {
		return c, stopWith("member_code_wrong", nil)
	}
	return c, err
}

func askMemberConsent(t *memberTurn) (string, error) {
	c, err := memberContract(t)
	if err != nil {
		return "", err
	}
	who, err := Processor(t, t.e.DB)
	if err != nil {
		return "", err
	}
	consent, err := templates.Message("consent_"+ConsentVersion, map[string]any{"Family": false, "Processor": who.Name, "Phones": who.Phones})
	if err != nil {
		return "", err
	}
	return templates.Message("member_consent", map[string]any{"Name": c.ResidentName, "Number": c.Number, "Consent": consent})
}

func takeMemberConsent(t *memberTurn, said string) (string, error) {
	switch answerTo(said, "同意") {
	case answeredYes:
		return "", nil
	case answeredNo:
		return "", refuseMember(t)
	}
	return "", reaskWith("sign_consent_reask", nil)
}

func askMemberAgreement(t *memberTurn) (string, error) {
	c, err := memberContract(t)
	if err != nil {
		return "", err
	}
	cat, err := t.catalog()
	if err != nil {
		return "", err
	}
	fees := Fees{Packages: map[string]storage.Split{}, Total: storage.Split{}}
	var codes []string
	for _, p := range c.Packages { // the prices frozen when they were signed
		codes = append(codes, p.Code)
		fees.add(p.Code, p.Split)
	}
	agreement, err := Agreement(t, t.e.DB, cat, c.TeamID, codes, fees, c.TermMonths)
	if err != nil {
		return "", err
	}
	return templates.Message("member_agreement", map[string]any{"Name": c.ResidentName, "Number": c.Number,
		"Price": priceOf(fees.Total), "Agreement": agreement})
}

func takeMemberAgreement(t *memberTurn, said string) (string, error) {
	switch answerTo(said, "同意") {
	case answeredNo:
		return "", refuseMember(t)
	case answeredYes:
	default:
		return "", reaskWith("member_agreement_reask", nil)
	}
	c, err := t.e.DB.ConfirmMember(t, storage.MemberConfirmation{CodeHash: t.d.CodeHash, By: t.in.OpenID,
		Event: "confirmed by the member in WeChat", At: t.in.At, Notify: memberConfirmedPushes(t.in.At),
		ConsentVersion: ConsentVersion, AgreementVersion: AgreementVersion})
	if errors.Is(err, storage.ErrNotFound) {
		return "", stopWith("member_code_wrong", nil)
	}
	if err != nil {
		return "", err
	}
	return "", stopWith("member_confirmed", map[string]any{"Name": c.ResidentName, "Number": c.Number, "Doctor": c.DoctorName})
}

// refuseMember ends the signing the member does not want; nobody else was
// asked, so nobody else is told but the one who signed them.
func refuseMember(t *memberTurn) error {
	c, err := memberContract(t)
	if err != nil {
		return err
	}
	if err := t.e.DB.RefuseMember(t, c.Number, t.in.OpenID, "declined by the member", t.in.At); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	return stopWith("member_declined", c.Number)
}

// ConfirmMemberAtDesk records that the family member confirmed in person at
// the clinic (assisted signing), in a staff member's name.
func ConfirmMemberAtDesk(ctx context.Context, db *storage.DB, scope storage.Scope, number, staff string, at time.Time) error {
	_, err := db.ConfirmMember(ctx, storage.MemberConfirmation{Number: number, Scope: scope, By: staff,
		Event: "confirmed by the member at the clinic", At: at, Notify: memberConfirmedPushes(at)})
	return err
}

// memberConfirmedPushes asks the doctor, as a signing for oneself does, and
// tells the one who signed that the member confirmed.
func memberConfirmedPushes(at time.Time) func(storage.ContractView) []storage.Push {
	return func(c storage.ContractView) []storage.Push {
		return []storage.Push{
			SignRequest{Key: storage.SignRequestKey(c.Number), DoctorID: c.DoctorID, Number: c.Number, Resident: c.ResidentName,
				Community: c.CommunityName, At: at}.Push(),
			MemberConfirmed{OpenID: c.ManagerOpenID, Number: c.Number, Resident: c.ResidentName, Doctor: c.DoctorName}.Push(),
		}
	}
}

// MemberConfirmed tells the one who signed a family member that the member
// confirmed and the doctor is asked now.
type MemberConfirmed struct {
	OpenID, Number, Resident, Doctor string
}

func (p MemberConfirmed) Push() storage.Push {
	return storage.Push{Key: "contract:" + p.Number + ":member-confirmed", Kind: PushMemberConfirmed, Recipient: p.OpenID,
		Priority: PriorityTransactional, Fields: map[string]string{"number": p.Number, "resident": p.Resident, "doctor": p.Doctor}}
}

// LapseMemberRequests ends the signings that waited for their member past
// the code's validity.
func LapseMemberRequests(ctx context.Context, db *storage.DB, now time.Time) (int, error) {
	return db.LapseMemberRequests(ctx, now, "not confirmed by the member in time")
}
