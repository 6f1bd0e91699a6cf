package storage_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// What 我的数据 counts, one open deletion request a resident, answered once
// within the institution's scope with its notice, and a withdrawal kept.
func TestPrivacyRequests(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		w := world(t, db)
		r, c := w.resident(1)
		w.booked(t, "k1", r, c, w.slots[0])
		held, err := db.ResidentHeld(ctx, r)
		if err != nil || held.Contracts != 1 || held.Visits != 1 || held.Referrals != 0 || held.WithdrawnAt.Valid ||
			held.ConsentVersion.String != "2026-11" || !held.ConsentedAt.Valid {
			t.Fatalf("held: %+v %v", held, err)
		}
		now := time.Now()
		if created, err := db.RequestDeletion(ctx, r, "o_res", now); err != nil || !created {
			t.Fatalf("request: %v %v", created, err)
		}
		if created, err := db.RequestDeletion(ctx, r, "o_res", now); err != nil || created {
			t.Fatalf("asked again: %v %v", created, err)
		}
		reqs, total, err := db.DataRequests(ctx, storage.Scope{}, storage.Page{Limit: 10})
		if err != nil || total != 1 || reqs[0].ResidentID != r {
			t.Fatalf("requests: %+v %d %v", reqs, total, err)
		}
		notice := func(openID, name string) []storage.Push {
			return []storage.Push{{Key: "answered", Kind: "data_request_answered", Recipient: openID}}
		}
		if err := db.AnswerDataRequest(ctx, storage.Scope{Institution: 9999}, reqs[0].ID, "x", "done", now, notice); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("another institution answers: %v", err)
		}
		if err := db.AnswerDataRequest(ctx, storage.Scope{}, reqs[0].ID, "admin", "done", now, notice); err != nil {
			t.Fatal(err)
		}
		if err := db.AnswerDataRequest(ctx, storage.Scope{}, reqs[0].ID, "admin", "again", now, notice); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("answered twice: %v", err)
		}
		if got, _ := db.OutboxFor(ctx, "o_res"); !hasKind(got, "data_request_answered") {
			t.Fatalf("no notice to the resident: %+v", got)
		}
		if err := db.ConsentWithdrawn(ctx, r, "o_res", now); err != nil {
			t.Fatal(err)
		}
		if held, _ := db.ResidentHeld(ctx, r); !held.WithdrawnAt.Valid {
			t.Fatal("the withdrawal is not kept")
		}
	})
}

func hasKind(entries []storage.OutboxEntry, kind string) bool {
	for _, e := range entries {
		if e.Kind == kind {
			return true
		}
	}
	return false
}
