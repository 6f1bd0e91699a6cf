package flows

import (
	"context"
	"fmt"
	"time"

	"github.com/jiayi-health/jiayi/storage"
)

// HandOverTeam hands every resident of a team (live contracts, pending
// requests, booked visits ahead) to another team of the same institution in
// one action, when a doctor leaves or a team changes; each resident is told
// and the new team's doctor hears how many came. With retire the old team
// takes no new signings.
func HandOverTeam(ctx context.Context, db *storage.DB, scope storage.Scope, from, to int64, retire bool, actor string, now time.Time) (storage.Handover, error) {
	// A retired team serves no community: residents handed to it would
	// have a team nobody can sign with or move to.
	if n, err := db.TeamServes(ctx, to); err != nil {
		return storage.Handover{}, err
	} else if n == 0 {
		return storage.Handover{}, &Refusal{Reason: "接手团队已停用（不服务任何社区），请选择其他团队"}
	}
	key := fmt.Sprintf("handover:%d:%d:%d", from, to, now.Unix())
	return db.HandOverTeam(ctx, scope, from, to, retire, now, actor, func(h storage.Handover, old, next storage.Team) []storage.Push {
		notice := TeamHandover{Key: key, From: old.Name, To: next.Name, Doctor: next.DoctorName, DoctorID: next.DoctorID, At: now}
		var pushes []storage.Push
		for _, c := range h.Contracts {
			if c.ManagerOpenID != "" {
				pushes = append(pushes, notice.ToResident(c.ManagerOpenID, c.Number, c.ResidentName))
			}
		}
		if len(h.Contracts) > 0 {
			pushes = append(pushes, notice.ToDoctor(len(h.Contracts), len(h.Appointments)))
		}
		return pushes
	})
}
