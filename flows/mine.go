package flows

import (
	"context"
	"strings"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

// mine is the 我的 menu; 我的签约 also works directly.
type mine struct{}

func (mine) title() string { return "我的" }

func (mine) start(ctx context.Context, e *Engine, st *State, _ Inbound) ([]string, error) {
	st.Step = "menu"
	return say("mine_menu", nil)
}

func (mine) answer(ctx context.Context, e *Engine, st *State, said string, in Inbound) ([]string, error) {
	switch said {
	case "1":
		st.Reset()
		return e.myContracts(ctx, in.OpenID)
	case "2":
		st.Reset()
		return e.myAppointments(ctx, in)
	case "3":
		st.Reset()
		st.Flow = "reminders"
		return reminderSettings{}.start(ctx, e, st, in)
	}
	return say("mine_menu", nil)
}

func (mine) help(*State) (string, error) { return templates.Message("mine_menu", nil) }

// statusNames are the contract states as residents read them.
var statusNames = map[string]string{
	storage.ContractPending: "待医生确认", storage.ContractActive: "已签约", storage.ContractDeclined: "已拒绝",
	storage.ContractCancelled: "已解约", storage.ContractExpired: "已到期",
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
		N                               int
		Name, MaskedID, Number, Status  string
		Team, Doctor, Packages, TermEnd string
	}
	var lines []line
	for i, c := range cs[:min(len(cs), maxContractsShown)] {
		id, err := e.Sealer.Open("id_number", c.IDSealed)
		if err != nil {
			return nil, err
		}
		var pkgs []string
		for _, p := range c.Packages {
			pkgs = append(pkgs, p.Name)
		}
		lines = append(lines, line{N: i + 1, Name: c.ResidentName, MaskedID: MaskID(id), Number: c.Number,
			Status: statusNames[c.Status], Team: c.TeamName, Doctor: c.DoctorName,
			Packages: strings.Join(pkgs, "、"), TermEnd: c.TermEnd.String})
	}
	return say("my_contracts", map[string]any{"Lines": lines, "More": len(cs) - len(lines)})
}
