package storage_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

func seedOrganisation(t *testing.T, db *storage.DB) []int64 {
	t.Helper()
	ids, err := db.CreateInstitution(context.Background(), storage.Institution{Code: "shili", Name: "示例卫生院", Kind: "township_centre"},
		[]storage.Community{{Town: "示例镇", Name: "东村"}, {Town: "示例镇", Name: "西村"}},
		[]storage.NewTeam{
			{Name: "张医生团队", Doctor: storage.Doctor{Name: "张医生", Title: "全科医师"},
				Members: []storage.Member{{Role: "护士", Name: "李护士"}}, Communities: []int{0, 1}},
			{Name: "王医生团队", Doctor: storage.Doctor{Name: "王医生"}, Communities: []int{1}},
		})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestOrganisation(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if has, _ := db.HasOrganisation(ctx); has {
			t.Fatal("a new database has an organisation")
		}
		ids := seedOrganisation(t, db)
		if has, _ := db.HasOrganisation(ctx); !has {
			t.Fatal("no organisation after creating one")
		}
		cs, err := db.Communities(ctx)
		if err != nil || len(cs) != 2 || cs[0].Name != "东村" || cs[0].ID != ids[0] {
			t.Fatalf("communities = %+v, %v", cs, err)
		}
		east, _ := db.TeamsServing(ctx, ids[0])
		west, _ := db.TeamsServing(ctx, ids[1])
		if len(east) != 1 || east[0].DoctorName != "张医生" || len(east[0].Members) != 1 || east[0].Members[0].Name != "李护士" {
			t.Fatalf("east teams = %+v", east)
		}
		if len(west) != 2 {
			t.Fatalf("west teams = %+v", west)
		}
		docs, _ := db.Doctors(ctx)
		if len(docs) != 2 || docs[0].Name != "张医生" || docs[0].TeamName != "张医生团队" || docs[0].OpenID.Valid {
			t.Fatalf("doctors = %+v", docs)
		}
	})
}

func TestDoctorBindingCodes(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		seedOrganisation(t, db)
		docs, _ := db.Doctors(ctx)
		now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
		if err := db.SetBindingCode(ctx, docs[0].ID, "hash-a", now.Add(72*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := db.SetBindingCode(ctx, docs[1].ID, "hash-b", now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := db.BindDoctor(ctx, "hash-x", "o_doc", now); !errors.Is(err, storage.ErrCodeInvalid) {
			t.Fatalf("unknown code: %v", err)
		}
		if _, err := db.BindDoctor(ctx, "hash-b", "o_doc", now.Add(2*time.Hour)); !errors.Is(err, storage.ErrCodeInvalid) {
			t.Fatalf("expired code: %v", err)
		}
		d, err := db.BindDoctor(ctx, "hash-a", "o_doc", now)
		if err != nil || d.ID != docs[0].ID || d.OpenID.String != "o_doc" {
			t.Fatalf("bind: %+v %v", d, err)
		}
		if _, err := db.BindDoctor(ctx, "hash-a", "o_other", now); !errors.Is(err, storage.ErrCodeInvalid) {
			t.Fatalf("reused code: %v", err)
		}
		if err := db.SetBindingCode(ctx, docs[0].ID, "hash-c", now.Add(time.Hour)); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("new code for a bound doctor: %v", err)
		}
	})
}

// Two requests making a doctor's QR code at once keep the first URL; both
// show it.
func TestDoctorQRIsKeptOnce(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		seedOrganisation(t, db)
		docs, _ := db.Doctors(ctx)
		if url, err := db.DoctorQR(ctx, docs[0].ID); err != nil || url != "" {
			t.Fatalf("before: %q %v", url, err)
		}
		if url, err := db.SetDoctorQR(ctx, docs[0].ID, "https://qr/first"); err != nil || url != "https://qr/first" {
			t.Fatalf("first: %q %v", url, err)
		}
		if url, err := db.SetDoctorQR(ctx, docs[0].ID, "https://qr/second"); err != nil || url != "https://qr/first" {
			t.Fatalf("second: %q %v", url, err)
		}
		if url, _ := db.DoctorQR(ctx, docs[1].ID); url != "" {
			t.Fatalf("another doctor's code: %q", url)
		}
	})
}

// Bound doctors' names are kept in memory for 帮助: a binding on this
// instance is seen at once, one on another instance once the names are
// read again, 5 s later.
func TestBoundDoctorName(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		seedOrganisation(t, db)
		now := time.Now()
		db.SetClock(func() time.Time { return now })
		other := storagetest.Reopen(t, db)
		docs, _ := db.Doctors(ctx)
		expires := now.Add(time.Hour)
		db.SetBindingCode(ctx, docs[0].ID, "code-0", expires)
		db.SetBindingCode(ctx, docs[1].ID, "code-1", expires)
		if _, ok, err := db.BoundDoctorName(ctx, "o_doc0"); ok || err != nil {
			t.Fatalf("before any binding: %v, %v", ok, err)
		}
		if _, err := db.BindDoctor(ctx, "code-0", "o_doc0", now); err != nil {
			t.Fatal(err)
		}
		if name, ok, err := db.BoundDoctorName(ctx, "o_doc0"); !ok || err != nil || name != docs[0].Name {
			t.Fatalf("bound on this instance: %q, %v, %v", name, ok, err)
		}
		if _, err := other.BindDoctor(ctx, "code-1", "o_doc1", now); err != nil {
			t.Fatal(err)
		}
		now = now.Add(5 * time.Second)
		if name, ok, err := db.BoundDoctorName(ctx, "o_doc1"); !ok || err != nil || name != docs[1].Name {
			t.Fatalf("bound on another instance, 5 s later: %q, %v, %v", name, ok, err)
		}
		if _, ok, _ := db.BoundDoctorName(ctx, "o_resident"); ok {
			t.Fatal("a resident is named a doctor")
		}

	})
}

// A binding inside a turn's transaction: names read while it has not
// committed are read again once it has.
func TestBoundDoctorNameAfterATransaction(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		seedOrganisation(t, db)
		now := time.Now()
		docs, _ := db.Doctors(ctx)
		db.SetBindingCode(ctx, docs[0].ID, "code-0", now.Add(time.Hour))
		if err := db.InTx(ctx, func(tx *storage.DB) error {
			if _, err := tx.BindDoctor(ctx, "code-0", "o_doc0", now); err != nil {
				return err
			}
			_, _, err := db.BoundDoctorName(ctx, "o_doc0") // another turn, meanwhile
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if name, ok, err := db.BoundDoctorName(ctx, "o_doc0"); !ok || err != nil || name != docs[0].Name {
			t.Fatalf("bound in a transaction, after its commit: %q, %v, %v", name, ok, err)
		}
	})
}
