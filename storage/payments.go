package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Payment is money a resident paid for their share of a contract at the
// counter, or a refund of it.
type Payment struct {
	ID         int64     `db:"id" json:"id"`
	Kind       string    `db:"kind" json:"kind"` // payment, refund
	Fen        int64     `db:"fen" json:"fen"`
	Method     string    `db:"method" json:"method"` // cash, card, wechat_pay, other
	Receipt    string    `db:"receipt" json:"receipt"`
	RecordedBy string    `db:"recorded_by" json:"recorded_by"`
	RecordedAt time.Time `db:"recorded_at" json:"recorded_at"`
}

// Account is what a contract's resident owes, paid and got back, in fen.
type Account struct {
	Due int64 `json:"due_fen"` // the resident's share, frozen at signing
	// DueUnknown: some package's resident share had no amount at signing;
	// the counter takes what the institution's published price asks.
	DueUnknown bool      `json:"due_unknown"`
	Paid       int64     `json:"paid_fen"`
	Refunded   int64     `json:"refunded_fen"`
	Payments   []Payment `json:"payments"`
}

// Outstanding is what the resident still owes, as far as the frozen
// shares say.
func (a Account) Outstanding() int64 { return max(a.Due-a.Paid, 0) }

// overpaid reports whether a payment is more than is owed; with an unknown
// share nothing bounds it.
func (a Account) overpaid(fen int64) bool { return !a.DueUnknown && fen > a.Outstanding() }

// Held is what the resident paid and has not had back.
func (a Account) Held() int64 { return a.Paid - a.Refunded }

// ErrAmount says a payment is more than is owed, or a refund more than was paid.
var ErrAmount = errors.New("amount out of range")

// ContractAccount reads a contract's account.
func (db *DB) ContractAccount(ctx context.Context, contractID int64) (Account, error) {
	const op = "ContractAccount"
	var splits []string
	if err := db.sel(ctx, op, &splits, `SELECT split FROM contract_packages WHERE contract_id = ?`, contractID); err != nil {
		return Account{}, err
	}
	// Every term's share counts: the renewed ones' packages are kept apart.
	var past []string
	if err := db.sel(ctx, op, &past, `SELECT packages FROM contract_past_terms WHERE contract_id = ?`, contractID); err != nil {
		return Account{}, err
	}
	for _, raw := range past {
		var ps []ContractPackage
		if err := json.Unmarshal([]byte(raw), &ps); err != nil {
			return Account{}, fail(op, err)
		}
		for _, p := range ps {
			b, _ := json.Marshal(p.Split)
			splits = append(splits, string(b))
		}
	}
	var a Account
	for _, raw := range splits {
		var split Split
		if err := json.Unmarshal([]byte(raw), &split); err != nil {
			return Account{}, fail(op, err)
		}
		fen, known := split.Resident()
		a.Due += fen
		a.DueUnknown = a.DueUnknown || !known
	}
	a.Payments = []Payment{}
	if err := db.sel(ctx, op, &a.Payments, `SELECT id, kind, fen, method, receipt, recorded_by, recorded_at FROM payments
		WHERE contract_id = ? ORDER BY id`, contractID); err != nil {
		return Account{}, err
	}
	for _, p := range a.Payments {
		if p.Kind == "payment" {
			a.Paid += p.Fen
		} else {
			a.Refunded += p.Fen
		}
	}
	return a, nil
}

// RecordPayment records a payment or a refund on a contract in scope,
// checked under the contract's row lock: the contract in one of the given
// statuses (else ErrStatusChanged), a payment no more than is owed, a
// refund no more than is held (else ErrAmount). The same receipt recorded
// again is ErrExists.
func (db *DB) RecordPayment(ctx context.Context, scope Scope, number string, p Payment, statuses ...string) (Account, error) {
	const op = "RecordPayment"
	var a Account
	err := db.inTx(ctx, op, func(tx *DB) error {
		if err := tx.Visible(ctx, scope, ThingContract, number); err != nil {
			return err
		}
		var c struct {
			ID          int64  `db:"id"`
			Institution int64  `db:"institution_id"`
			Status      string `db:"status"`
			Awaiting    bool   `db:"awaiting"`
		}
		// The no-op update takes the contract's row lock on PostgreSQL, so
		// two counters cannot both take the last yuan owed.
		if err := tx.get(ctx, op, &c, `UPDATE contracts SET number = number WHERE number = ?
			RETURNING id, (SELECT institution_id FROM teams WHERE teams.id = contracts.team_id) AS institution_id, status,
			member_code_hash <> '' AS awaiting`, number); err != nil {
			return err
		}
		// Nothing is paid for a signing its member has not confirmed.
		if !slices.Contains(statuses, c.Status) || c.Awaiting && p.Kind == "payment" {
			return fail(op, fmt.Errorf("%s of contract %s: %w", p.Kind, number, ErrStatusChanged))
		}
		var err error
		if a, err = tx.ContractAccount(ctx, c.ID); err != nil {
			return err
		}
		if p.Kind == "payment" && a.overpaid(p.Fen) || p.Kind == "refund" && p.Fen > a.Held() || p.Fen <= 0 {
			return fail(op, fmt.Errorf("%d fen against %+v: %w", p.Fen, a, ErrAmount))
		}
		_, err = tx.exec(ctx, op, `INSERT INTO payments (contract_id, kind, fen, method, receipt, recorded_by, recorded_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, c.ID, p.Kind, p.Fen, p.Method, p.Receipt, p.RecordedBy, db.now())
		if isUniqueViolation(err) {
			return fail(op, fmt.Errorf("receipt %s: %w", p.Receipt, ErrExists))
		}
		if err != nil {
			return err
		}
		if err := tx.auditIn(ctx, op, p.RecordedBy, nullID(c.Institution), "contract."+p.Kind, number,
			fmt.Sprintf("%d.%02d 元，%s，收据 %s", p.Fen/100, p.Fen%100, p.Method, p.Receipt)); err != nil {
			return err
		}
		a, err = tx.ContractAccount(ctx, c.ID)
		return err
	})
	return a, err
}
