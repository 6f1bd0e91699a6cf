package storage

import (
	"context"
	"fmt"
	"time"
)

// Handover is what moved when a team handed its residents to another.
type Handover struct {
	Contracts    []ContractView    // as they were before the move
	Appointments []AppointmentView // booked visits that moved to the new team's doctor
}

// HandOverTeam moves every live contract of team from (pending requests
// included, and 改签 requests waiting to join it) to team to of the same
// institution, with the booked visits ahead of those residents: they keep
// their times with the new team's doctor, whose slot at that time takes
// them beyond its capacity if need be, so no booking is lost. With retire
// the old team stops serving its communities, so nobody signs with it any
// more. notify builds the pushes from what moved; all in one transaction.
func (db *DB) HandOverTeam(ctx context.Context, scope Scope, from, to int64, retire bool, now time.Time, actor string,
	notify func(Handover, Team, Team) []Push) (Handover, error) {
	const op = "HandOverTeam"
	var h Handover
	err := db.inTx(ctx, op, func(tx *DB) error {
		h = Handover{}
		for _, id := range []int64{from, to} {
			if err := tx.Visible(ctx, scope, ThingTeam, id); err != nil {
				return err
			}
		}
		old, err := tx.TeamByID(ctx, from)
		if err != nil {
			return err
		}
		next, err := tx.TeamByID(ctx, to)
		if err != nil {
			return err
		}
		if from == to || old.InstitutionID != next.InstitutionID {
			return fail(op, fmt.Errorf("team %d to %d: %w", from, to, ErrNotFound))
		}
		if err := tx.sel(ctx, op, &h.Contracts, contractViewSQL+` WHERE c.team_id = ? AND c.status IN ('pending', 'active')
			ORDER BY c.id`, from); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, op, `UPDATE contracts SET team_id = ?, doctor_id = ? WHERE team_id = ? AND status IN ('pending', 'active')`,
			to, next.DoctorID, from); err != nil {
			return err
		}
		if err := tx.staleRollups(ctx, op, from, to); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, op, `UPDATE contracts SET change_team_id = ?, change_doctor_id = ? WHERE change_team_id = ?`,
			to, next.DoctorID, from); err != nil {
			return err
		}
		ids := make([]int64, len(h.Contracts))
		byStatus := map[string][]int64{}
		var pending []string
		for i, c := range h.Contracts {
			ids[i] = c.ID
			byStatus[c.Status] = append(byStatus[c.Status], c.ID)
			if c.Status == ContractPending {
				pending = append(pending, c.Number)
			}
		}
		if err := tx.withdrawMovedRequests(ctx, op, pending...); err != nil {
			return err
		}
		for status, list := range byStatus {
			if err := tx.addEvents(ctx, op, list, actor, status, status, "handed over from "+old.Name+" to "+next.Name); err != nil {
				return err
			}
		}
		if old.DoctorID != next.DoctorID && len(ids) > 0 {
			if err := tx.moveVisits(ctx, op, ids, old.DoctorID, next.DoctorID, now, &h); err != nil {
				return err
			}
		}
		if retire {
			if _, err := tx.exec(ctx, op, `DELETE FROM team_communities WHERE team_id = ?`, from); err != nil {
				return err
			}
		}
		if err := tx.auditIn(ctx, op, actor, nullID(old.InstitutionID), "team.handover", old.Name,
			handoverDetail(next.Name, len(ids), len(h.Appointments), retire)); err != nil {
			return err
		}
		return tx.enqueue(ctx, op, notify(h, old, next))
	})
	return h, err
}

// moveVisits gives the booked visits ahead under the contracts to another
// doctor at the same times.
func (db *DB) moveVisits(ctx context.Context, op string, contractIDs []int64, fromDoctor, toDoctor int64, now time.Time, h *Handover) error {
	if err := db.selIn(ctx, op, &h.Appointments, appointmentViewSQL+` WHERE a.contract_id IN (?) AND a.doctor_id = ?
		AND a.status = 'booked' AND a.starts_at > ? ORDER BY a.starts_at`, contractIDs, fromDoctor, now.UTC()); err != nil {
		return err
	}
	for _, a := range h.Appointments {
		var slot Slot
		if err := db.get(ctx, op, &slot, `SELECT id, doctor_id, day, starts_at, ends_at, capacity, booked, closed FROM slots WHERE id = ?`,
			a.SlotID); err != nil {
			return err
		}
		var newSlot int64
		if err := db.get(ctx, op, &newSlot, `INSERT INTO slots (doctor_id, day, starts_at, ends_at, capacity, booked) VALUES (?, ?, ?, ?, 1, 1)
			ON CONFLICT (doctor_id, starts_at) DO UPDATE SET capacity = slots.capacity + 1, booked = slots.booked + 1 RETURNING id`,
			toDoctor, slot.Day, slot.StartsAt.UTC(), slot.EndsAt.UTC()); err != nil {
			return err
		}
		if _, err := db.exec(ctx, op, `UPDATE slots SET booked = booked - 1 WHERE id = ? AND booked > 0`, a.SlotID); err != nil {
			return err
		}
		if _, err := db.exec(ctx, op, `UPDATE appointments SET doctor_id = ?, slot_id = ?, updated_at = ? WHERE id = ?`,
			toDoctor, newSlot, now.UTC(), a.ID); err != nil {
			return err
		}
	}
	return nil
}

// handoverDetail is the audit log's account of a handover, in the words of
// the staff who read it.
func handoverDetail(to string, contracts, visits int, retired bool) string {
	d := fmt.Sprintf("移交给%s：签约 %d 份，预约 %d 次", to, contracts, visits)
	if retired {
		d += "；原团队停用"
	}
	return d
}
