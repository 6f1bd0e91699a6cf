package storage

import (
	"context"
	"fmt"
	"time"
)

// ConfirmMember records that the family member a contract was signed for
// confirmed it themselves: by the code (codeHash, not expired, from a
// WeChat user other than the one who signed them; by, their openid) or at
// the desk (number, in the staff scope). The doctor's request (notify) is
// enqueued then. A contract that is not waiting, or a wrong or expired
// code, is ErrNotFound.
func (db *DB) ConfirmMember(ctx context.Context, m MemberConfirmation) (ContractView, error) {
	const op = "ConfirmMember"
	var v ContractView
	err := db.inTx(ctx, op, func(tx *DB) error {
		where, args := `c.member_code_hash = ? AND c.member_code_expires > ? AND r.manager_openid <> ?`,
			[]any{m.CodeHash, m.At.UTC(), m.By}
		if m.CodeHash == "" {
			cond, sargs := m.Scope.where("t.institution_id", "c.doctor_id = ?")
			where, args = `c.number = ? AND c.member_code_hash <> '' AND `+cond, append([]any{m.Number}, sargs...)
		}
		if err := tx.get(ctx, op, &v, contractViewSQL+` WHERE c.status = 'pending' AND `+where, args...); err != nil {
			return err
		}
		n, err := tx.exec(ctx, op, `UPDATE contracts SET member_code_hash = '', member_code_expires = NULL,
			member_confirmed_by = ?, member_confirmed_at = ? WHERE id = ? AND member_code_hash <> ''`, m.By, m.At.UTC(), v.ID)
		if err == nil && n > 0 && m.ConsentVersion != "" {
			// The member's own consent and agreement replace those the
			// one who signed them gave on their behalf.
			_, err = tx.exec(ctx, op, `UPDATE contracts SET consent_version = ?, consented_at = ?, consent_by = ?,
				agreement_version = ?, agreed_at = ? WHERE id = ?`,
				m.ConsentVersion, m.At.UTC(), m.By, m.AgreementVersion, m.At.UTC(), v.ID)
			if err == nil {
				// An adult who agreed in their own WeChat manages their own
				// contract from then on: 我的签约, 我的数据, 撤回同意, 解约.
				_, err = tx.exec(ctx, op, `UPDATE residents SET manager_openid = ?, relation = 'self' WHERE id = ?`, m.By, v.ResidentID)
			}
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return fail(op, fmt.Errorf("%s: %w", v.Number, ErrNotFound))
		}
		if err := tx.addEvents(ctx, op, []int64{v.ID}, m.By, ContractPending, ContractPending, m.Event); err != nil {
			return err
		}
		v.AwaitingMember = false
		return tx.enqueue(ctx, op, m.Notify(v))
	})
	return v, err
}

// AwaitingCode finds the signing a code confirms: pending, the code not
// expired, and not asked for from the WeChat user who signed them.
// Anything else is ErrNotFound.
func (db *DB) AwaitingCode(ctx context.Context, codeHash, by string, at time.Time) (ContractView, error) {
	const op = "AwaitingCode"
	var v ContractView
	if err := db.get(ctx, op, &v, contractViewSQL+` WHERE c.status = 'pending' AND c.member_code_hash = ?
		AND c.member_code_expires > ? AND r.manager_openid <> ?`, codeHash, at.UTC(), by); err != nil {
		return v, err
	}
	one := []ContractView{v}
	err := db.loadPackages(ctx, op, one)
	return one[0], err
}

// RefuseMember ends a signing its member declined; no doctor was asked.
func (db *DB) RefuseMember(ctx context.Context, number, by, reason string, at time.Time) error {
	const op = "RefuseMember"
	return db.inTx(ctx, op, func(tx *DB) error {
		var id int64
		if err := tx.get(ctx, op, &id, `UPDATE contracts SET status = 'cancelled', ended_at = ?, member_code_hash = ''
			WHERE number = ? AND status = 'pending' AND member_code_hash <> '' RETURNING id`, at.UTC(), number); err != nil {
			return err
		}
		return tx.addEvents(ctx, op, []int64{id}, by, ContractPending, ContractCancelled, reason)
	})
}

// MemberConfirmation is a family member's confirmation of a contract.
type MemberConfirmation struct {
	CodeHash string // by code from WeChat
	Number   string // or at the desk, in Scope
	Scope    Scope
	By       string // the member's openid, or the staff member
	Event    string // the contract event's reason
	At       time.Time
	// ConsentVersion and AgreementVersion, when set, are what the member
	// agreed to themselves (in WeChat); at the desk it is on paper.
	ConsentVersion, AgreementVersion string
	Notify                           func(ContractView) []Push
}

// LapseMemberRequests ends the contracts that waited for a family member
// past their code's expiry; they never counted and the doctor was never
// asked. It returns the contracts ended.
func (db *DB) LapseMemberRequests(ctx context.Context, now time.Time, reason string) (int, error) {
	const op = "LapseMemberRequests"
	var n int
	err := db.inTx(ctx, op, func(tx *DB) error {
		var ids []int64
		if err := tx.sel(ctx, op, &ids, `SELECT id FROM contracts WHERE status = 'pending' AND member_code_hash <> ''
			AND member_code_expires <= ?`, now.UTC()); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		if _, err := tx.execIn(ctx, op, `UPDATE contracts SET status = 'cancelled', ended_at = ?, member_code_hash = ''
			WHERE id IN (?)`, now.UTC(), ids); err != nil {
			return err
		}
		n = len(ids)
		return tx.addEvents(ctx, op, ids, "system", ContractPending, ContractCancelled, reason)
	})
	return n, err
}
