package flows

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/templates"
)

// After signing, a resident can 解约 (end a contract, with a reason), 续签
// (renew it, from 30 days before its end) and 改签 (move to another team
// serving their community, which that team's doctor confirms). Each picks
// the contract first (skipped when there is one) and confirms before
// anything changes. States are drawn in aftercare.md.
type aftercare struct {
	kind string // cancel, renew, change
}

// renewWindow is how long before the end a contract may be renewed.
const renewWindow = 30 * 24 * time.Hour

func (a aftercare) title() string {
	return map[string]string{"cancel": "解约", "renew": "续签", "change": "改签"}[a.kind]
}

func (a aftercare) help(*State) (string, error) {
	return templates.Message("aftercare_help", a.title())
}

// fits says whether a contract can take this action at a moment; the reason
// is shown when none can.
func (a aftercare) fits(c storage.ContractView, at time.Time) bool {
	live := c.Status == storage.ContractPending || c.Status == storage.ContractActive
	if a.kind != "renew" {
		return live
	}
	if c.Status != storage.ContractActive || !c.TermEnd.Valid {
		return false
	}
	end, err := time.ParseInLocation("2006-01-02", c.TermEnd.String, Shanghai)
	return err == nil && end.Sub(at) <= renewWindow && !end.AddDate(0, 0, 1).Before(at)
}

func (a aftercare) candidates(ctx context.Context, e *Engine, in Inbound) ([]storage.ContractView, []storage.ContractView, error) {
	all, err := e.DB.ContractsManagedBy(ctx, in.OpenID)
	if err != nil {
		return nil, nil, err
	}
	var fit []storage.ContractView
	for _, c := range all {
		if a.fits(c, in.At) {
			fit = append(fit, c)
		}
	}
	return fit, all, nil
}

func (a aftercare) start(ctx context.Context, e *Engine, st *State, in Inbound) ([]string, error) {
	fit, all, err := a.candidates(ctx, e, in)
	if err != nil {
		return nil, err
	}
	if len(fit) == 0 {
		st.Reset()
		if a.kind == "renew" && len(all) > 0 && all[0].Status == storage.ContractActive {
			return say("renew_too_early", map[string]any{"Number": all[0].Number, "End": all[0].TermEnd.String})
		}
		return say("aftercare_none", a.title())
	}
	st.Data = map[string]string{"openid": in.OpenID}
	if len(fit) == 1 {
		st.Data["number"] = fit[0].Number
		return a.next(ctx, e, st, fit[0])
	}
	st.Step = "pick"
	return say("aftercare_pick", map[string]any{"Action": a.title(), "Contracts": fit})
}

// next asks what the chosen contract's action needs next.
func (a aftercare) next(ctx context.Context, e *Engine, st *State, c storage.ContractView) ([]string, error) {
	switch {
	case a.kind == "cancel" && st.Data["reason"] == "":
		st.Step = "reason"
		return say("cancel_reason", c.Number)
	case a.kind == "change" && st.Data["team"] == "":
		teams, err := a.otherTeams(ctx, e, c)
		if err != nil {
			return nil, err
		}
		if len(teams) == 0 {
			st.Reset()
			return say("change_no_team", c.CommunityName)
		}
		st.Step = "team"
		return say("sign_team", map[string]any{"Teams": teams, "Preferred": false})
	}
	st.Step = "confirm"
	return say("aftercare_confirm", a.summary(ctx, e, st, c))
}

func (a aftercare) otherTeams(ctx context.Context, e *Engine, c storage.ContractView) ([]storage.Team, error) {
	teams, err := e.DB.TeamsServing(ctx, c.CommunityID)
	if err != nil {
		return nil, err
	}
	var out []storage.Team
	for _, t := range teams {
		if t.ID != c.TeamID {
			out = append(out, t)
		}
	}
	return out[:min(len(out), maxListed)], nil
}

func (a aftercare) summary(ctx context.Context, e *Engine, st *State, c storage.ContractView) map[string]any {
	m := map[string]any{"Action": a.title(), "Number": c.Number, "Name": c.ResidentName, "Team": c.TeamName,
		"Reason": st.Data["reason"], "NewTeam": st.Data["team_name"], "NewEnd": ""}
	if a.kind == "renew" {
		m["NewEnd"] = renewedEnd(c)
	}
	return m
}

func packageNames(c storage.ContractView) []string {
	names := make([]string, 0, len(c.Packages))
	for _, p := range c.Packages {
		names = append(names, p.Name)
	}
	return names
}

func renewedEnd(c storage.ContractView) string {
	end, _ := time.ParseInLocation("2006-01-02", c.TermEnd.String, Shanghai)
	return end.AddDate(0, c.TermMonths, 0).Format("2006-01-02")
}

func (a aftercare) answer(ctx context.Context, e *Engine, st *State, said string, in Inbound) ([]string, error) {
	if in.OpenID == "" {
		in.OpenID = st.Data["openid"]
	}
	if said == "返回" || said == "" { // start over: pick again
		flow := st.Flow
		st.Reset()
		st.Flow = flow
		return a.start(ctx, e, st, in)
	}
	fit, _, err := a.candidates(ctx, e, in)
	if err != nil {
		return nil, err
	}
	if st.Step == "pick" {
		n, ok := choice(said, len(fit))
		if !ok {
			return say("aftercare_pick_reask", len(fit))
		}
		st.Data["number"] = fit[n-1].Number
		return a.next(ctx, e, st, fit[n-1])
	}
	var c storage.ContractView
	for _, f := range fit {
		if f.Number == st.Data["number"] {
			c = f
		}
	}
	if c.Number == "" { // changed meanwhile (the doctor declined, it expired)
		st.Reset()
		return say("aftercare_none", a.title())
	}
	switch st.Step {
	case "reason":
		if len([]rune(said)) < 2 {
			return say("cancel_reason", c.Number)
		}
		st.Data["reason"] = said
		return a.next(ctx, e, st, c)
	case "team":
		teams, err := a.otherTeams(ctx, e, c)
		if err != nil {
			return nil, err
		}
		n, ok := choice(said, len(teams))
		if !ok {
			return say("sign_team_reask", len(teams))
		}
		st.Data["team"], st.Data["team_name"] = strconv.FormatInt(teams[n-1].ID, 10), teams[n-1].Name
		st.Data["doctor"], st.Data["doctor_name"] = strconv.FormatInt(teams[n-1].DoctorID, 10), teams[n-1].DoctorName
		return a.next(ctx, e, st, c)
	case "confirm":
		if said != "确认"+a.title() && said != "确认" {
			return say("aftercare_confirm_reask", a.title())
		}
		return a.apply(ctx, e, st, c, in)
	}
	return a.start(ctx, e, st, in)
}

// apply makes the change durable with the notification, then ends.
func (a aftercare) apply(ctx context.Context, e *Engine, st *State, c storage.ContractView, in Inbound) ([]string, error) {
	change := storage.StatusChange{Number: c.Number, From: c.Status, To: c.Status, Actor: in.OpenID}
	key := fmt.Sprintf("contract:%s:%s:%d", c.Number, a.kind, in.At.Unix())
	var reply string
	var data any
	switch a.kind {
	case "cancel":
		change.To, change.Reason = storage.ContractCancelled, st.Data["reason"]
		change.Notify = []storage.Push{ContractEnded{Key: key, DoctorID: c.DoctorID, Number: c.Number, Resident: c.ResidentName,
			Reason: st.Data["reason"]}.Push()}
		reply, data = "cancel_done", c.Number
	case "renew":
		end := renewedEnd(c)
		change.TermEnd, change.IfTermEnd, change.Reason = end, c.TermEnd.String, "renewed"
		change.Notify = []storage.Push{ContractRenewal{Key: key, DoctorID: c.DoctorID, Number: c.Number, Resident: c.ResidentName,
			TermEnd: end}.Push()}
		reply, data = "renew_done", map[string]any{"Number": c.Number, "End": end}
	case "change":
		team, _ := strconv.ParseInt(st.Data["team"], 10, 64)
		doctor, _ := strconv.ParseInt(st.Data["doctor"], 10, 64)
		change.To, change.TeamID, change.DoctorID, change.Reason = storage.ContractPending, team, doctor, "changed team"
		change.Notify = []storage.Push{SignRequest{Key: key, DoctorID: doctor, Number: c.Number, Resident: c.ResidentName,
			Community: c.CommunityName, Packages: packageNames(c), At: in.At}.Push()}
		reply, data = "change_done", map[string]any{"Number": c.Number, "Doctor": st.Data["doctor_name"]}
	}
	err := e.DB.ChangeStatus(ctx, change)
	st.Reset()
	if errors.Is(err, storage.ErrStatusChanged) {
		return say("contract_already_answered", c.Number)
	}
	if err != nil {
		return nil, err
	}
	e.pushed()
	return say(reply, data)
}
