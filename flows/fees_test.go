package flows

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

func TestFeesAtTheCounter(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		profile.Ensure(ctx, db, "national")
		profile.LoadDemo(ctx, db, "national")
		// The national profile gives no amount for the elderly package; the
		// institution's admin sets 30 yuan.
		if err := db.SetPackagePrice(ctx, "elderly", map[storage.Insured]storage.Split{storage.InsuredLocal: {"resident": 3000}}, "admin"); err != nil {
			t.Fatal(err)
		}
		inst, _ := db.InstitutionByCode(ctx, "demo")
		sealer, _ := storage.NewSealer(bytes.Repeat([]byte{1}, 32))
		place, _ := db.FindCommunityTeam(ctx, inst.ID, "幸福社区", "林静家庭医生团队")
		number, err := SignAtDesk(ctx, db, sealer, DeskSigning{Name: "赵桂兰", IDNumber: synthID("110105", "19480512", "031"),
			Phone: "13800001111", CommunityID: place.CommunityID, TeamID: place.TeamID, Packages: []string{"elderly"}, Request: strings.Repeat("f", 20)},
			ResidentImport{Institution: inst.ID, Actor: "wang", Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		scope := storage.Scope{Institution: inst.ID}
		pay := func(kind string, fen int64, receipt string) (storage.Account, error) {
			return RecordFee(ctx, db, scope, number, storage.Payment{Kind: kind, Fen: fen, Method: "cash", Receipt: receipt, RecordedBy: "wang"})
		}
		var refusal *Refusal
		if _, err := pay("payment", 3001, "R1"); !errors.As(err, &refusal) || !strings.Contains(refusal.Reason, "超过个人应付") {
			t.Fatalf("paying more than is owed: %v", err)
		}
		a, err := pay("payment", 1000, "R1")
		if err != nil || a.Due != 3000 || a.Paid != 1000 || a.Outstanding() != 2000 {
			t.Fatalf("a first payment: %+v %v", a, err)
		}
		if _, err := pay("payment", 1000, "R1"); !errors.As(err, &refusal) || !strings.Contains(refusal.Reason, "已经登记过") {
			t.Fatalf("the same receipt twice: %v", err)
		}
		if _, err := pay("refund", 500, "T1"); !errors.As(err, &refusal) || !strings.Contains(refusal.Reason, "已解约") {
			t.Fatalf("a refund on a live contract: %v", err)
		}
		if _, err := RecordFee(ctx, db, storage.Scope{Institution: inst.ID + 9}, number, storage.Payment{Kind: "payment", Fen: 100,
			Method: "cash", Receipt: "X", RecordedBy: "x"}); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("another institution's contract: %v", err)
		}
		if err := db.ChangeStatus(ctx, storage.StatusChange{Number: number, From: storage.ContractActive, To: storage.ContractCancelled,
			Actor: "o", Reason: "搬家"}); err != nil {
			t.Fatal(err)
		}
		if _, err := pay("refund", 1001, "T1"); !errors.As(err, &refusal) || !strings.Contains(refusal.Reason, "超过已收未退") {
			t.Fatalf("refunding more than was paid: %v", err)
		}
		if a, err := pay("refund", 1000, "T1"); err != nil || a.Held() != 0 || a.Refunded != 1000 {
			t.Fatalf("a refund: %+v %v", a, err)
		}
		if _, err := pay("payment", 100, "R2"); !errors.As(err, &refusal) || !strings.Contains(refusal.Reason, "只能为待确认或生效中") {
			t.Fatalf("a payment on a cancelled contract: %v", err)
		}
		// The status is checked under the contract's lock, in storage.
		if _, err := db.RecordPayment(ctx, scope, number, storage.Payment{Kind: "payment", Fen: 100, Method: "cash", Receipt: "R3", RecordedBy: "wang"},
			storage.ContractActive); !errors.Is(err, storage.ErrStatusChanged) {
			t.Fatalf("storage takes a payment on a cancelled contract: %v", err)
		}
		log, _, _ := db.AuditLog(ctx, scope, storage.Page{Limit: 2})
		if log[0].Action != "contract.refund" || log[1].Action != "contract.payment" || log[0].Detail != "10.00 元，cash，收据 T1" {
			t.Fatalf("audit: %+v", log)
		}
	})
}

// A package whose price had no amount at signing leaves the resident's
// share unknown: the counter takes what the institution's published price
// asks, and nothing claims the resident owes 0.
func TestFeesForAnUnknownPrice(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		profile.Ensure(ctx, db, "national")
		profile.LoadDemo(ctx, db, "national")
		inst, _ := db.InstitutionByCode(ctx, "demo")
		sealer, _ := storage.NewSealer(bytes.Repeat([]byte{1}, 32))
		place, _ := db.FindCommunityTeam(ctx, inst.ID, "幸福社区", "林静家庭医生团队")
		number, err := SignAtDesk(ctx, db, sealer, DeskSigning{Name: "赵桂兰", IDNumber: synthID("110105", "19480512", "031"),
			Phone: "13800001111", CommunityID: place.CommunityID, TeamID: place.TeamID, Packages: []string{"elderly"}, Request: strings.Repeat("u", 20)},
			ResidentImport{Institution: inst.ID, Actor: "wang", Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		a, err := RecordFee(ctx, db, storage.Scope{Institution: inst.ID}, number,
			storage.Payment{Kind: "payment", Fen: 4500, Method: "cash", Receipt: "U1", RecordedBy: "wang"})
		if err != nil || !a.DueUnknown || a.Paid != 4500 {
			t.Fatalf("a payment against an unknown share: %+v %v", a, err)
		}
	})
}
