package flows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jiayi-health/jiayi/storage"
)

// ResidentChange is what staff change about a resident who moved or has a
// new phone.
type ResidentChange struct {
	ResidentID  int64
	Phone       string // "" keeps it
	CommunityID int64  // 0 keeps it
	TeamID      int64  // takes the contract when its team does not serve the new community
	Actor       string
	Now         time.Time
}

// UpdateResident records a resident's new phone or community, in one
// transaction. A live contract whose team does not serve the new
// community moves to TeamID the way 改签 does: an active one when that
// team's doctor agrees, a pending one at once. It returns what happened in
// words for staff, or a *Refusal saying what to correct.
func UpdateResident(ctx context.Context, db *storage.DB, s *storage.Sealer, scope storage.Scope, ch ResidentChange) (string, error) {
	r, err := db.Resident(ctx, scope, ch.ResidentID)
	if err != nil {
		return "", err
	}
	phone, ok := staffPhone(ch.Phone)
	if !ok {
		return "", &Refusal{Reason: phoneRule}
	}
	community := r.CommunityID
	if ch.CommunityID != 0 {
		if err := db.Visible(ctx, storage.Scope{Institution: scope.Institution}, storage.ThingCommunity, ch.CommunityID); err != nil {
			return "", &Refusal{Reason: "请选择本机构的社区"}
		}
		community = ch.CommunityID
	}
	contracts, err := db.ContractsOfResident(ctx, r.ID)
	if err != nil {
		return "", err
	}
	var live *storage.ContractView
	for i, c := range contracts {
		if c.Status == storage.ContractPending || c.Status == storage.ContractActive {
			live = &contracts[i]
		}
	}
	var move *storage.Place
	if live != nil && community != r.CommunityID {
		_, err := db.FindPlace(ctx, community, live.TeamID)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return "", err
		}
		if err != nil { // the contract's team does not serve the new community
			place, err := db.FindPlace(ctx, community, ch.TeamID)
			if errors.Is(err, storage.ErrNotFound) {
				return "", &Refusal{Reason: "原团队不服务新社区：请选择为新社区服务、接手这份签约的团队"}
			}
			if err != nil {
				return "", err
			}
			move = &place
		}
	}
	said := "已保存。"
	err = db.InTx(ctx, func(tx *storage.DB) error {
		var sealed storage.NewResident
		if phone != "" {
			if sealed.PhoneSealed, err = s.Seal("phone", phone); err != nil {
				return err
			}
			sealed.PhoneHash, sealed.PhoneMasked = s.Hash("phone", phone), MaskPhone(phone)
		}
		sealed.CommunityID = community
		if err := tx.UpdateResidentContact(ctx, r.ID, sealed, ch.Actor); err != nil {
			return err
		}
		if move == nil {
			return nil
		}
		team, err := tx.TeamByID(ctx, move.TeamID)
		if err != nil {
			return err
		}
		key := storage.TeamChangeKeyPrefix(live.Number) + fmt.Sprintf("move:%d:%d", community, team.ID)
		if err := ChangeTeam(ctx, tx, *live, NewTeam{ID: team.ID, DoctorID: team.DoctorID, Name: team.Name}, "staff:"+ch.Actor, key, ch.Now); err != nil {
			return err
		}
		if live.Status == storage.ContractActive {
			said = fmt.Sprintf("已保存。签约将转到%s，待该团队医生确认；确认前仍由%s服务。", team.Name, live.TeamName)
		} else {
			said = fmt.Sprintf("已保存。签约申请已转给%s。", team.Name)
		}
		return nil
	})
	if errors.Is(err, storage.ErrStatusChanged) {
		return "", &Refusal{Reason: "这份签约正在办理其他变更（如改签），请稍后再试"}
	}
	return said, err
}

// SetDueDate records the expected due date staff give for a resident in
// their scope (YYYY-MM-DD or 2027年5月20日; "" clears it), sealed; a date
// no pregnancy could have is a *Refusal. It answers in words for staff.
func SetDueDate(ctx context.Context, db *storage.DB, s *storage.Sealer, scope storage.Scope, residentID int64, said, actor string, now time.Time) (string, error) {
	r, err := db.Resident(ctx, scope, residentID)
	if err != nil {
		return "", err
	}
	sealed := ""
	if said = strings.TrimSpace(said); said != "" {
		due, ok := parseDueDate(said, now)
		if !ok || !fullDatePattern.MatchString(Normalize(said)) {
			return "", &Refusal{Reason: "预产期请写成 2027-05-20 这样的日期"}
		}
		if !CheckDueDate(due, now) {
			return "", &Refusal{Reason: "预产期应在今后9个月内，或产后两个月内已过的日子"}
		}
		if sealed, err = ResealDueDate(s, r.DueDateSealed, due.Format("2006-01-02")); err != nil {
			return "", err
		}
	}
	if err := db.SetDueDate(ctx, residentID, sealed, actor); err != nil {
		return "", err
	}
	if sealed == "" {
		return "已清除预产期，不再发送产检提醒。", nil
	}
	return "已保存预产期，居民会按孕周收到产检和产后访视提醒。", nil
}
