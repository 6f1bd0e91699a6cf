package storage_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// A referral is recorded once per request, with its doctor's notice, only
// under a contract still active with that doctor; it takes no slot.
func TestReferralRequests(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		w := world(t, db)
		r, c := w.resident(1)
		ask := func(key string) (int64, error) {
			return db.RequestReferral(ctx, storage.NewReferral{RequestKey: key, ResidentID: r, ContractID: c, DoctorID: w.doctorID,
				Hospital: "哈尔滨市第一医院", GreenChannel: true, ReasonSealed: "v1:sealed", At: time.Now(),
				Pushes: func(id int64) []storage.Push {
					return []storage.Push{{Key: "referral:" + key, Kind: "referral_request", Recipient: "doctor:1"}}
				}})
		}
		id, err := ask("run1")
		if err != nil {
			t.Fatal(err)
		}
		if again, err := ask("run1"); err != nil || again != id {
			t.Fatalf("a retry of the same request: %d %v", again, err)
		}
		notices := 0
		got, _ := db.OutboxFor(ctx, "doctor:1")
		for _, p := range got {
			if p.Kind == "referral_request" {
				notices++
			}
		}
		if notices != 1 {
			t.Fatalf("the doctor's notices: %+v", got)
		}
		list, err := db.ReferralsOf(ctx, r)
		if err != nil || len(list) != 1 || list[0].Hospital != "哈尔滨市第一医院" || !list[0].GreenChannel || list[0].ReasonSealed != "v1:sealed" {
			t.Fatalf("referrals: %+v %v", list, err)
		}
		if slots, _ := db.Slots(ctx, w.doctorID, w.slots[0].StartsAt, w.slots[3].EndsAt); slots[0].Booked+slots[1].Booked != 0 {
			t.Fatal("a referral took a slot")
		}
		cs, _ := db.ContractsManagedBy(ctx, "o_res")
		db.ChangeStatus(ctx, storage.StatusChange{Number: cs[0].Number, From: "active", To: "cancelled", Actor: "o_res"})
		if _, err := ask("run2"); !errors.Is(err, storage.ErrContractChanged) {
			t.Fatalf("a referral under a cancelled contract: %v", err)
		}
	})
}
