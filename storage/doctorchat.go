package storage

import "context"

// What a doctor asks in chat: the requests waiting for their answer, and
// how many residents they look after by priority group.

// maxWaitingListed caps the waiting requests one reply lists.
const maxWaitingListed = 20

// DoctorWaiting lists, oldest first, what waits for a doctor's answer: the
// sign requests of their team the resident has confirmed (a signing for an
// adult member waits for the member first), and the 改签 to their team. It
// lists maxWaitingListed at most; total counts them all.
func (db *DB) DoctorWaiting(ctx context.Context, doctorID int64) (list []ContractView, total int, err error) {
	const op = "DoctorWaiting"
	const waiting = ` WHERE (c.doctor_id = ? AND c.status = 'pending' AND c.member_code_hash = '')
		OR (c.change_doctor_id = ? AND c.status = 'active')`
	list = []ContractView{}
	if err := db.sel(ctx, op, &list, contractViewSQL+waiting+` ORDER BY c.id LIMIT ?`, doctorID, doctorID, maxWaitingListed); err != nil {
		return nil, 0, err
	}
	if len(list) < maxWaitingListed { // all of them: no count needed
		return list, len(list), nil
	}
	err = db.get(ctx, op, &total, `SELECT COUNT(*) FROM contracts c`+waiting, doctorID, doctorID)
	return list, total, err
}

// DoctorPanel is how many residents a doctor looks after under an active
// contract, and of them how many are in each priority group.
type DoctorPanel struct {
	Active int
	Groups map[string]int // by group code; groups with nobody are absent
}

// DoctorPanelOf counts a doctor's residents under active contracts, by the
// rules that put people in each priority group.
func (db *DB) DoctorPanelOf(ctx context.Context, doctorID int64, rules []GroupRule) (DoctorPanel, error) {
	const op = "DoctorPanelOf"
	p := DoctorPanel{Groups: map[string]int{}}
	if err := db.get(ctx, op, &p.Active, `SELECT COUNT(DISTINCT resident_id) FROM contracts WHERE doctor_id = ? AND status = 'active'`,
		doctorID); err != nil {
		return p, err
	}
	var tags []struct {
		Tag   string `db:"tag"`
		Count int    `db:"n"`
	}
	if err := db.sel(ctx, op, &tags, `SELECT g.tag, COUNT(DISTINCT c.resident_id) AS n FROM contracts c
		JOIN resident_groups g ON g.resident_id = c.resident_id WHERE c.doctor_id = ? AND c.status = 'active' GROUP BY g.tag`,
		doctorID); err != nil {
		return p, err
	}
	byTag := map[string]int{}
	for _, t := range tags {
		byTag[t.Tag] = t.Count
	}
	for _, r := range rules {
		n := byTag[r.Tag]
		if r.Tag == "" && r.BornOnOrBefore == "" && r.BornAfter == "" {
			continue
		}
		if r.Tag == "" {
			cond, arg := `r.birth_date <> '' AND r.birth_date <= ?`, r.BornOnOrBefore
			if r.BornAfter != "" {
				cond, arg = `r.birth_date > ?`, r.BornAfter
			}
			if err := db.get(ctx, op, &n, `SELECT COUNT(DISTINCT c.resident_id) FROM contracts c JOIN residents r ON r.id = c.resident_id
				WHERE c.doctor_id = ? AND c.status = 'active' AND `+cond, doctorID, arg); err != nil {
				return p, err
			}
		}
		if n > 0 {
			p.Groups[r.Code] = n
		}
	}
	return p, nil
}
