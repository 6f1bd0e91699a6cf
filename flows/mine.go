package flows

import (
	"context"
	"strings"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

// mine is the 我的 menu; 我的签约 and 我的预约 also work directly.
var _ = declare(&conversation[struct{}]{
	about: about{name: "mine", title: "我的", keywords: []string{"我的"}, help: "mine_help", version: 1, menu: true},
	steps: []step[struct{}]{{name: "menu", take: takeMineChoice,
		ask: func(*turn[struct{}]) (string, error) { return templates.Message("mine_menu", nil) }}},
})

func takeMineChoice(t *turn[struct{}], said string) (string, error) {
	var replies []string
	var err error
	switch asNumber(said) {
	case "1":
		replies, err = t.e.myContracts(t, t.in.OpenID)
	case "2":
		replies, err = t.e.myAppointments(t, t.in)
	case "3":
		return "", switchTo{name: reminders.name}
	case "4":
		replies, err = t.e.myData(t, t.in)
	default:
		return "", reaskWith("mine_menu", nil)
	}
	if err != nil {
		return "", err
	}
	return "", stop{strings.Join(replies, "\n")}
}

// statusNames are the contract states as residents read them.
var statusNames = map[string]string{
	storage.ContractPending: "待医生确认", storage.ContractActive: "已签约", storage.ContractDeclined: "已拒绝",
	storage.ContractCancelled: "已解约", storage.ContractExpired: "已到期",
}

// statusOf is a contract's state as residents read it: a signing made
// for a family member waits for them before any doctor.
func statusOf(c storage.ContractView) string {
	if c.AwaitingMember {
		return mustMessage("status_awaiting_member", nil)
	}
	return statusNames[c.Status]
}

// maxContractsShown keeps the list inside one reply.
const maxContractsShown = 5

// myContracts lists the contracts of every resident the user manages, ID
// numbers masked. Nobody else's contracts can be reached from here.
func (e *Engine) myContracts(ctx context.Context, openID string) ([]string, error) {
	cs, err := e.DB.ContractsManagedBy(ctx, openID)
	if err != nil {
		return nil, err
	}
	type line struct {
		N                                           int
		Name, MaskedID, Number, Status              string
		Team, Doctor, Packages, TermEnd, ChangeTeam string
		Declined                                    string // the doctor's reason
		Phone                                       string // of the team's institution, for a live one
		Live                                        bool
	}
	shown := cs[:min(len(cs), maxContractsShown)]
	var declined []int64
	for _, c := range shown {
		if c.Status == storage.ContractDeclined {
			declined = append(declined, c.ID)
		}
	}
	// A declined signing shows the doctor's reason, which the resident
	// was sent when it was declined.
	reasons, err := e.DB.EndReasons(ctx, declined)
	if err != nil {
		return nil, err
	}
	var lines []line
	phones := map[int64]string{}
	for i, c := range shown {
		live := c.Status == storage.ContractActive || c.Status == storage.ContractPending
		if _, ok := phones[c.TeamID]; live && !ok {
			if phones[c.TeamID], err = e.teamPhone(ctx, c.TeamID); err != nil {
				return nil, err
			}
		}
		id, err := e.Sealer.Open("id_number", c.IDSealed)
		if err != nil {
			return nil, err
		}
		var pkgs []string
		for _, p := range c.Packages {
			pkgs = append(pkgs, p.Name)
		}
		lines = append(lines, line{N: i + 1, Name: c.ResidentName, MaskedID: MaskID(id), Number: c.Number,
			Status: statusOf(c), Team: c.TeamName, Doctor: c.DoctorName,
			Packages: strings.Join(pkgs, "、"), TermEnd: c.TermEnd.String, ChangeTeam: c.ChangeTeamName.String, Declined: reasons[c.ID],
			Phone: phones[c.TeamID], Live: live})
	}
	return say("my_contracts", map[string]any{"Lines": lines, "More": len(cs) - len(lines)})
}
