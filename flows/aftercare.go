package flows

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

// After signing, a resident can 解约 (end a contract, with a reason), 续签
// (renew it, from 30 days before its end) and 改签 (move to another team
// serving their community, which that team's doctor confirms). Each picks
// the contract first (skipped when there is one) and confirms before
// anything changes. States are drawn in aftercare.md.

// aftercareData is what an after-care conversation has been told so far.
type aftercareData struct {
	Kind   string `json:"kind"`             // cancel, renew, change
	Number string `json:"number,omitempty"` // the contract
	Reason string `json:"reason,omitempty"` // 解约
	// Renewal is the next term as shown before 同意 (续签): what the
	// resident agrees to is what is recorded, whatever changes meanwhile.
	Renewal    []storage.ContractPackage `json:"renewal,omitempty"`
	chosenTeam                           // 改签: the new team
}

type careTurn = turn[aftercareData]

// The three share their steps; each declares itself.
var (
	_ = declare(aftercare("cancel", "解约"))
	_ = declare(aftercare("renew", "续签"))
	_ = declare(aftercare("change", "改签"))
)

func aftercare(kind, title string) *conversation[aftercareData] {
	return &conversation[aftercareData]{
		about: about{name: kind, title: title, keywords: []string{title}, help: "aftercare_help", version: 1},
		begin: func(t *careTurn) error { t.d.Kind = kind; return beginAftercare(t) },
		steps: []step[aftercareData]{
			{name: "pick", applies: func(t *careTurn) (bool, error) { return t.d.Number == "", nil }, ask: askPickContract, take: takePickContract},
			{name: "reason", applies: kindOf("cancel"), ask: askCancelReason, take: takeCancelReason},
			{name: "team", applies: kindOf("change"), ask: askNewTeam, take: takeNewTeam},
			{name: "confirm", ask: askAftercareConfirm, take: takeAftercareConfirm},
		},
	}
}

func kindOf(kind string) func(t *careTurn) (bool, error) {
	return func(t *careTurn) (bool, error) { return t.d.Kind == kind, nil }
}

func careTitle(t *careTurn) string {
	return map[string]string{"cancel": "解约", "renew": "续签", "change": "改签"}[t.d.Kind]
}

// renewWindow is how long before the end a contract may be renewed.
const renewWindow = 30 * 24 * time.Hour

// fits says whether a contract can take this action at a moment.
func fits(kind string, c storage.ContractView, at time.Time) bool {
	live := c.Status == storage.ContractPending || c.Status == storage.ContractActive
	switch kind {
	case "cancel":
		return live
	case "change": // one 改签 at a time; none before the member confirmed
		return live && !c.ChangeTeamID.Valid && !c.AwaitingMember
	}
	if c.Status != storage.ContractActive || !c.TermEnd.Valid {
		return false
	}
	end, err := time.ParseInLocation("2006-01-02", c.TermEnd.String, Shanghai)
	return err == nil && end.Sub(at) <= renewWindow && !end.AddDate(0, 0, 1).Before(at)
}

// candidates are the contracts the user manages that fit, and all of them.
func careCandidates(t *careTurn) ([]storage.ContractView, []storage.ContractView, error) {
	all, err := t.e.DB.ContractsManagedBy(t, t.in.OpenID)
	if err != nil {
		return nil, nil, err
	}
	var fit []storage.ContractView
	for _, c := range all {
		if fits(t.d.Kind, c, t.in.At) {
			fit = append(fit, c)
		}
	}
	return fit[:min(len(fit), maxListed)], all, nil
}

// contract is the chosen contract as it is now; the conversation ends if it
// no longer fits (the doctor declined, it expired).
func careContract(t *careTurn) (storage.ContractView, error) {
	fit, _, err := careCandidates(t)
	if err != nil {
		return storage.ContractView{}, err
	}
	for _, c := range fit {
		if c.Number == t.d.Number {
			return c, nil
		}
	}
	return storage.ContractView{}, stopWith("aftercare_none", careTitle(t))
}

func beginAftercare(t *careTurn) error {
	fit, all, err := careCandidates(t)
	if err != nil {
		return err
	}
	if len(fit) == 0 {
		if t.d.Kind == "renew" && len(all) > 0 && all[0].Status == storage.ContractActive {
			return stopWith("renew_too_early", map[string]any{"Number": all[0].Number, "End": all[0].TermEnd.String})
		}
		for _, c := range all {
			if t.d.Kind == "change" && c.Status == storage.ContractActive && c.ChangeTeamName.Valid {
				return stopWith("change_waiting", map[string]any{"Number": c.Number, "Team": c.ChangeTeamName.String})
			}
		}
		return stopWith("aftercare_none", careTitle(t))
	}
	if len(fit) == 1 {
		t.d.Number = fit[0].Number
	}
	return nil
}

func askPickContract(t *careTurn) (string, error) {
	fit, _, err := careCandidates(t)
	if err != nil {
		return "", err
	}
	return templates.Message("aftercare_pick", map[string]any{"Action": careTitle(t), "Contracts": fit})
}

func takePickContract(t *careTurn, said string) (string, error) {
	fit, _, err := careCandidates(t)
	if err != nil {
		return "", err
	}
	c, err := pickNamed(fit, said, "aftercare_pick_reask", func(c storage.ContractView) []string { return itself(c.ResidentName) })
	if err != nil {
		return "", err
	}
	t.d.Number = c.Number
	return "", nil
}

func askCancelReason(t *careTurn) (string, error) {
	c, err := careContract(t)
	if err != nil {
		return "", err
	}
	return templates.Message("cancel_reason", c.Number)
}

func takeCancelReason(t *careTurn, said string) (string, error) {
	if len([]rune(said)) < 2 {
		return "", reaskWith("cancel_reason", t.d.Number)
	}
	if isQuestion(said) { // 解约了还能看病吗: a question, not a reason
		return "", reaskWith("cancel_reason_question", t.d.Number)
	}
	if err := tooLong(said, maxReasonRunes); err != nil {
		return "", err
	}
	t.d.Reason = said
	return "", nil
}

// careNewTeams are the other teams serving the contract's community.
func careNewTeams(t *careTurn) (storage.ContractView, []storage.Team, error) {
	c, err := careContract(t)
	if err != nil {
		return c, nil, err
	}
	teams, err := t.e.DB.TeamsServing(t, c.CommunityID)
	if err != nil {
		return c, nil, err
	}
	var out []storage.Team
	for _, tm := range teams {
		if tm.ID != c.TeamID {
			out = append(out, tm)
		}
	}
	return c, out[:min(len(out), maxListed)], nil
}

func askNewTeam(t *careTurn) (string, error) {
	c, teams, err := careNewTeams(t)
	if err != nil {
		return "", err
	}
	if len(teams) == 0 {
		return "", stopWith("change_no_team", c.CommunityName)
	}
	return templates.Message("sign_team", map[string]any{"Teams": teams, "Preferred": false})
}

func takeNewTeam(t *careTurn, said string) (string, error) {
	_, teams, err := careNewTeams(t)
	if err != nil {
		return "", err
	}
	tm, err := pickNamed(teams, said, "sign_team_reask", teamNames)
	if err != nil {
		return "", err
	}
	t.d.chosenTeam = teamChosen(tm)
	return "", nil
}

func askAftercareConfirm(t *careTurn) (string, error) {
	c, err := careContract(t)
	if err != nil {
		return "", err
	}
	if t.d.Kind == "renew" {
		return askRenewal(t, c)
	}
	m := map[string]any{"Action": careTitle(t), "Number": c.Number, "Name": c.ResidentName, "Team": c.TeamName,
		"Reason": t.d.Reason, "NewTeam": t.d.TeamName}
	return templates.Message("aftercare_confirm", m)
}

func takeAftercareConfirm(t *careTurn, said string) (string, error) {
	switch {
	case t.d.Kind == "renew" && answerTo(said, "同意") != answeredYes:
		return "", reaskWith("renew_confirm_reask", nil)
	case t.d.Kind != "renew" && answerTo(said, "确认") != answeredYes:
		return "", reaskWith("aftercare_confirm_reask", careTitle(t))
	}
	c, err := careContract(t)
	if err != nil {
		return "", err
	}
	return "", careApply(t, c)
}

// careRenewalPlan re-checks the contract's packages for its next term.
func careRenewalPlan(t *careTurn, c storage.ContractView) (RenewalPlan, error) {
	cat, err := t.catalog()
	if err != nil {
		return RenewalPlan{}, err
	}
	start := renewalStart(c)
	groups, err := ResidentGroups(t.e.Sealer, c.Groups, c.BirthDate, start)
	if err != nil {
		return RenewalPlan{}, err
	}
	age := 0
	if birth, err := time.ParseInLocation("2006-01-02", c.BirthDate, Shanghai); err == nil {
		age = Age(birth, start)
	}
	insured := storage.Insured(cmp.Or(c.Insured, string(storage.InsuredLocal)))
	return PlanRenewal(cat, c.Packages, Applicant{Age: age, Groups: groups, Insured: insured}), nil
}

// askRenewal shows the next term as the resident would sign it: its
// packages after the rules' re-check, what no longer fits and why, today's
// fees and the agreement, and asks for 同意.
func askRenewal(t *careTurn, c storage.ContractView) (string, error) {
	plan, err := careRenewalPlan(t, c)
	if err != nil {
		return "", err
	}
	cat, err := t.catalog()
	if err != nil {
		return "", err
	}
	var names, codes []string
	for _, p := range plan.Packages {
		names, codes = append(names, p.Name), append(codes, p.Code)
	}
	t.d.Renewal = plan.Packages
	agreement, err := Agreement(t, t.e.DB, cat, c.TeamID, codes, plan.Fees, c.TermMonths)
	if err != nil {
		return "", err
	}
	return templates.Message("renew_confirm", map[string]any{"Name": c.ResidentName, "Number": c.Number, "Team": c.TeamName,
		"NewEnd": renewedEnd(c), "Packages": strings.Join(names, "、"), "Dropped": plan.Dropped,
		"Price": priceOf(plan.Fees.Total), "Agreement": agreement})
}

// careRequestChange asks the new team's doctor to take the contract. An
// active contract stays with its team until they confirm; a pending one,
// not yet confirmed by anyone, simply moves to the new team.
func careRequestChange(t *careTurn, c storage.ContractView, key string) error {
	if t.d.TeamID == 0 || t.d.DoctorID == 0 {
		return missing(t.st.Flow, "team")
	}
	err := ChangeTeam(t, t.e.DB, c, NewTeam{ID: t.d.TeamID, DoctorID: t.d.DoctorID, Name: t.d.TeamName}, t.in.OpenID, key, t.in.At)
	if errors.Is(err, storage.ErrStatusChanged) {
		return stopWith("contract_already_answered", c.Number)
	}
	if err != nil {
		return err
	}
	return stopWith("change_done", map[string]any{"Number": c.Number, "Doctor": t.d.DoctorName,
		"Active": c.Status == storage.ContractActive, "Team": c.TeamName})
}

// NewTeam is the team a contract moves to.
type NewTeam struct {
	ID, DoctorID int64
	Name         string
}

// ChangeTeam moves a contract to another team (改签): an active contract
// stays with its team until the new team's doctor confirms (their
// agreement), a pending one moves at once and its former doctor hears it.
// key keys the new doctor's request; a contract no longer in the state read
// is storage.ErrStatusChanged.
func ChangeTeam(ctx context.Context, db *storage.DB, c storage.ContractView, to NewTeam, actor, key string, at time.Time) error {
	if c.AwaitingMember { // no doctor has been asked yet: the contract simply moves
		return db.ChangeStatus(ctx, storage.StatusChange{Number: c.Number, From: c.Status, To: c.Status, Actor: actor,
			TeamID: to.ID, DoctorID: to.DoctorID, Reason: "changed team"})
	}
	request := []storage.Push{SignRequest{Key: key, DoctorID: to.DoctorID, Number: c.Number, Resident: c.ResidentName,
		Community: c.CommunityName, At: at}.Push()}
	if c.Status == storage.ContractActive {
		return db.RequestTeamChange(ctx, c.Number, to.ID, to.DoctorID, actor, request)
	}
	moved := storage.Push{Key: key + ":moved", Kind: PushTeamChanged, Recipient: DoctorRecipient(c.DoctorID),
		Priority: PriorityTransactional, Fields: map[string]string{"number": c.Number, "resident": c.ResidentName, "team": to.Name}}
	return db.ChangeStatus(ctx, storage.StatusChange{Number: c.Number, From: c.Status, To: c.Status, Actor: actor,
		TeamID: to.ID, DoctorID: to.DoctorID, Reason: "changed team", Notify: append(request, moved)})
}

// visitsCancelledWith tells each doctor of the visits a contract's end
// cancelled.
func visitsCancelledWith(cancelled []storage.AppointmentView) []storage.Push {
	pushes := make([]storage.Push, 0, len(cancelled))
	for _, a := range cancelled {
		pushes = append(pushes, BookingNotice{Kind: PushBookingCancelled, Key: fmt.Sprintf("appointment:%d:cancelled", a.ID),
			DoctorID: a.DoctorID, Resident: a.ResidentName, VisitKind: a.Kind, At: a.StartsAt}.Push())
	}
	return pushes
}

func renewedEnd(c storage.ContractView) string {
	end, _ := time.ParseInLocation("2006-01-02", c.TermEnd.String, Shanghai)
	return end.AddDate(0, c.TermMonths, 0).Format("2006-01-02")
}

// apply makes the change durable with the notification, and ends the
// conversation saying so.
func careApply(t *careTurn, c storage.ContractView) error {
	change := storage.StatusChange{Number: c.Number, From: c.Status, To: c.Status, Actor: t.in.OpenID}
	key := fmt.Sprintf("contract:%s:%s:%d", c.Number, t.d.Kind, t.in.At.Unix())
	if t.d.Kind == "change" { // withdrawn by that prefix if the contract ends first
		key = fmt.Sprintf("%s%d", storage.TeamChangeKeyPrefix(c.Number), t.in.At.Unix())
	}
	var reply string
	var data any
	switch t.d.Kind {
	case "cancel":
		change.To, change.Reason = storage.ContractCancelled, t.d.Reason
		if !c.AwaitingMember { // a doctor never asked is not told
			change.Notify = []storage.Push{ContractEnded{Key: key, DoctorID: c.DoctorID, Number: c.Number, Resident: c.ResidentName,
				Reason: t.d.Reason}.Push()}
		}
		if c.ChangeDoctorID.Valid { // the team asked to take it hears too
			change.Notify = append(change.Notify, ContractEnded{Key: key + ":change", DoctorID: c.ChangeDoctorID.Int64,
				Number: c.Number, Resident: c.ResidentName, Reason: t.d.Reason}.Push())
		}
		ended := map[string]any{"Number": c.Number, "Visits": 0}
		change.At, change.VisitsEnded = t.in.At, func(cancelled []storage.AppointmentView) []storage.Push {
			ended["Visits"] = len(cancelled)
			return visitsCancelledWith(cancelled)
		}
		reply, data = "cancel_done", ended
	case "renew":
		if len(t.d.Renewal) == 0 {
			return missing(t.st.Flow, "renewal shown")
		}
		end := renewedEnd(c)
		change.TermEnd, change.IfTermEnd, change.Reason = end, c.TermEnd.String, "renewed"
		change.Renewal = &storage.Renewal{Packages: t.d.Renewal, AgreementVersion: AgreementVersion, AgreedAt: t.in.At}
		change.Notify = []storage.Push{ContractRenewal{Key: key, DoctorID: c.DoctorID, Number: c.Number, Resident: c.ResidentName,
			TermEnd: end}.Push()}
		reply, data = "renew_done", map[string]any{"Number": c.Number, "End": end}
	case "change":
		return careRequestChange(t, c, key)
	}
	err := t.e.DB.ChangeStatus(t, change)
	if errors.Is(err, storage.ErrStatusChanged) {
		return stopWith("contract_already_answered", c.Number)
	}
	if err != nil {
		return err
	}
	return stopWith(reply, data)
}
