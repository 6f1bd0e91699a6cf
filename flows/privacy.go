package flows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

// The rights the consent text promises (PIPL Art. 44-47): 我的数据 shows
// what is held about everyone the user manages; 撤回同意 ends their live
// contracts and the processing beyond what the law keeps; 删除我的数据 sends
// a deletion request to the institution's admins, who answer it under the
// retention rules. The last two ask which resident, then for 确认.

// myData shows what is held about each resident the user manages: the
// record (ID number and phone masked), the declared priority groups, how
// many records of each kind, and the consent given.
func (e *Engine) myData(ctx context.Context, in Inbound) ([]string, error) {
	cs, err := e.DB.ContractsManagedBy(ctx, in.OpenID)
	if err != nil {
		return nil, err
	}
	type person struct {
		Name, MaskedID, MaskedPhone, Birth, Sex, Community, Groups, Due string
		Held                                                            storage.HeldData
		ConsentedAt, WithdrawnAt                                        string
	}
	seen := map[int64]bool{}
	var people []person
	for _, c := range cs {
		if seen[c.ResidentID] || len(people) == maxContractsShown {
			continue
		}
		seen[c.ResidentID] = true
		r, err := e.DB.Resident(ctx, storage.Scope{}, c.ResidentID)
		if err != nil {
			return nil, err
		}
		groups, err := ResidentGroups(e.Sealer, c.Groups, c.BirthDate, in.At)
		if err != nil {
			return nil, err
		}
		held, err := e.DB.ResidentHeld(ctx, c.ResidentID)
		if err != nil {
			return nil, err
		}
		p := person{Name: r.Name, MaskedID: r.IDMasked, MaskedPhone: r.PhoneMasked, Birth: r.BirthDate,
			Sex: r.Sex, Community: r.Community, Groups: groupNames(groups), Held: held}
		if due, ok, err := OpenDueDate(e.Sealer, c.DueDate); err != nil {
			return nil, err
		} else if ok {
			p.Due = due.Format("2006-01-02")
		}
		if held.ConsentedAt.Valid {
			p.ConsentedAt = held.ConsentedAt.Time.In(Shanghai).Format("2006-01-02")
		}
		if held.WithdrawnAt.Valid {
			p.WithdrawnAt = held.WithdrawnAt.Time.In(Shanghai).Format("2006-01-02")
		}
		people = append(people, p)
	}
	return say("my_data", people)
}

// privacyData is what 撤回同意 and 删除我的数据 have been told.
type privacyData struct {
	Kind     string `json:"kind"` // withdraw, erase
	Resident int64  `json:"resident,omitempty"`
	Name     string `json:"name,omitempty"`
}

type privacyTurn = turn[privacyData]

var (
	_ = declare(privacyConversation("withdraw", "撤回同意"))
	_ = declare(privacyConversation("erase", "删除我的数据"))
)

func privacyConversation(kind, title string) *conversation[privacyData] {
	return &conversation[privacyData]{
		about: about{name: kind, title: title, keywords: []string{title}, help: "privacy_help", version: 1},
		begin: func(t *privacyTurn) error { t.d.Kind = kind; return beginPrivacy(t) },
		steps: []step[privacyData]{
			{name: "who", applies: func(t *privacyTurn) (bool, error) { return t.d.Resident == 0, nil }, ask: askPrivacyWho, take: takePrivacyWho},
			{name: "confirm", ask: askPrivacyConfirm, take: takePrivacyConfirm},
		},
	}
}

func privacyResidents(t *privacyTurn) ([]storage.ManagedResident, error) {
	rs, err := t.e.DB.ManagedResidents(t, t.in.OpenID)
	return rs[:min(len(rs), maxListed)], err
}

func beginPrivacy(t *privacyTurn) error {
	rs, err := privacyResidents(t)
	if err != nil {
		return err
	}
	switch len(rs) {
	case 0:
		return stopWith("privacy_none", nil)
	case 1:
		t.d.Resident, t.d.Name = rs[0].ID, rs[0].Name
	}
	return nil
}

func askPrivacyWho(t *privacyTurn) (string, error) {
	rs, err := privacyResidents(t)
	if err != nil {
		return "", err
	}
	return templates.Message("privacy_who", map[string]any{"Kind": t.d.Kind, "People": rs})
}

func takePrivacyWho(t *privacyTurn, said string) (string, error) {
	rs, err := privacyResidents(t)
	if err != nil {
		return "", err
	}
	r, err := pickNamed(rs, said, "privacy_who_reask", func(r storage.ManagedResident) []string { return itself(r.Name) })
	if err != nil {
		return "", err
	}
	t.d.Resident, t.d.Name = r.ID, r.Name
	return "", nil
}

func askPrivacyConfirm(t *privacyTurn) (string, error) {
	return templates.Message("privacy_confirm_"+t.d.Kind, t.d.Name)
}

func takePrivacyConfirm(t *privacyTurn, said string) (string, error) {
	if answerTo(said, "确认") != answeredYes {
		return "", reaskWith("privacy_confirm_reask", nil)
	}
	if t.d.Resident == 0 {
		return "", missing(t.st.Flow, "resident")
	}
	if t.d.Kind == "erase" {
		created, err := t.e.DB.RequestDeletion(t, t.d.Resident, t.in.OpenID, t.in.At)
		if err != nil {
			return "", err
		}
		return "", stopWith("privacy_erase_done", map[string]any{"Name": t.d.Name, "Again": !created})
	}
	ended, err := WithdrawConsent(t, t.e.DB, t.d.Resident, t.in.OpenID, t.in.At)
	if err != nil {
		return "", err
	}
	return "", stopWith("privacy_withdraw_done", map[string]any{"Name": t.d.Name, "Ended": ended})
}

// WithdrawConsent ends a resident's live contracts (their visits still to
// come cancelled, the doctor told) and records the withdrawal. It returns
// how many contracts ended.
func WithdrawConsent(ctx context.Context, db *storage.DB, residentID int64, actor string, at time.Time) (int, error) {
	cs, err := db.ContractsOfResident(ctx, residentID)
	if err != nil {
		return 0, err
	}
	reason := mustMessage("privacy_withdraw_reason", nil)
	ended := 0
	for _, c := range cs {
		if c.Status != storage.ContractPending && c.Status != storage.ContractActive {
			continue
		}
		key := fmt.Sprintf("contract:%s:withdraw:%d", c.Number, at.Unix())
		change := storage.StatusChange{Number: c.Number, From: c.Status, To: storage.ContractCancelled,
			Actor: actor, Reason: reason, At: at, VisitsEnded: visitsCancelledWith}
		if !c.AwaitingMember { // a doctor never asked is not told
			change.Notify = []storage.Push{ContractEnded{Key: key, DoctorID: c.DoctorID, Number: c.Number, Resident: c.ResidentName, Reason: reason}.Push()}
		}
		err := db.ChangeStatus(ctx, change)
		if errors.Is(err, storage.ErrStatusChanged) {
			continue // it ended meanwhile
		}
		if err != nil {
			return ended, err
		}
		ended++
	}
	return ended, db.ConsentWithdrawn(ctx, residentID, actor, at)
}

// AnswerDeletion records staff's answer to a deletion request and tells
// the user who asked.
func AnswerDeletion(ctx context.Context, db *storage.DB, scope storage.Scope, id int64, actor, answer string, at time.Time) error {
	answer = strings.TrimSpace(answer)
	if answer == "" || len([]rune(answer)) > maxReasonRunes {
		return &Refusal{Reason: mustMessage("privacy_answer_length", maxReasonRunes)}
	}
	return db.AnswerDataRequest(ctx, scope, id, actor, answer, at, func(openID, resident string) []storage.Push {
		return []storage.Push{DeletionAnswer{Request: id, OpenID: openID, Resident: resident, Answer: answer}.Push()}
	})
}

// DeletionAnswer tells the user who asked how their deletion request was
// handled.
type DeletionAnswer struct {
	Request  int64
	OpenID   string
	Resident string
	Answer   string
}

func (p DeletionAnswer) Push() storage.Push {
	return storage.Push{Key: fmt.Sprintf("data-request:%d:answered", p.Request), Kind: PushDataRequestAnswered, Recipient: p.OpenID,
		Priority: PriorityTransactional, Fields: map[string]string{"resident": p.Resident, "answer": p.Answer}}
}
