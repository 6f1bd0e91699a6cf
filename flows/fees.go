package flows

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/jiayi-health/jiayi/storage"
)

// Fees at the counter: staff record what a resident paid of their share,
// and after a contract ends early what was refunded. Nothing is charged
// online. None of the programmes this project follows sets a refund rule,
// so the refund is what the institution's own rule gives, at most what the
// resident paid.

// PaymentMethods are how a resident pays at the counter.
var PaymentMethods = []string{"cash", "card", "wechat_pay", "other"}

// RecordFee records a payment on a live contract or a refund on one that
// was cancelled or declined. It returns a *Refusal saying what to correct.
func RecordFee(ctx context.Context, db *storage.DB, scope storage.Scope, number string, p storage.Payment) (storage.Account, error) {
	p.Receipt = strings.TrimSpace(p.Receipt)
	switch {
	case p.Kind != "payment" && p.Kind != "refund":
		return storage.Account{}, &Refusal{Reason: "请选择收费或退费"}
	case !slices.Contains(PaymentMethods, p.Method):
		return storage.Account{}, &Refusal{Reason: "请选择支付方式"}
	case p.Receipt == "" || len(p.Receipt) > 40:
		return storage.Account{}, &Refusal{Reason: "请填写收据号（40字以内）"}
	case p.Fen <= 0:
		return storage.Account{}, &Refusal{Reason: "金额须大于0"}
	}
	// Payments are taken on a live contract and refunds made on one that
	// ended early; storage checks the status under the contract's lock, so
	// a cancellation at the same moment cannot slip between.
	statuses := []string{storage.ContractPending, storage.ContractActive}
	if p.Kind == "refund" {
		statuses = []string{storage.ContractCancelled, storage.ContractDeclined}
	}
	a, err := db.RecordPayment(ctx, scope, number, p, statuses...)
	switch {
	case errors.Is(err, storage.ErrStatusChanged) && p.Kind == "payment":
		return a, &Refusal{Reason: "只能为待确认或生效中的签约收费"}
	case errors.Is(err, storage.ErrStatusChanged):
		return a, &Refusal{Reason: "只有已解约或被拒绝的签约可以退费"}
	case errors.Is(err, storage.ErrAmount) && p.Kind == "payment":
		return a, &Refusal{Reason: "金额超过个人应付未付的部分"}
	case errors.Is(err, storage.ErrAmount):
		return a, &Refusal{Reason: "退费金额超过已收未退的部分"}
	case errors.Is(err, storage.ErrExists):
		return a, &Refusal{Reason: "这张收据已经登记过了"}
	}
	return a, err
}
