package storage_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// countPushes registers an OnPushes hook and returns how often it ran.
func countPushes(db *storage.DB) *atomic.Int64 {
	var n atomic.Int64
	db.OnPushes(func() { n.Add(1) })
	return &n
}

func userSeen(openID string) storage.Changes {
	return storage.Changes{Seen: &storage.UserSeen{OpenID: openID, Subscribed: true, EventTime: time.Now()}}
}

// Two methods that each write in a transaction of their own join the one
// InTx opens: they see each other's writes, nobody else sees them before
// the commit, and they commit together.
func TestInTxCommitsMethodsTogether(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		seedOrganisation(t, db)
		pushes := countPushes(db)
		var number string
		err := db.InTx(ctx, func(tx *storage.DB) error {
			var err error
			if number, _, err = tx.CreateContract(ctx, newContract(t, db, "sign:tx", "idhash-tx")); err != nil {
				return err
			}
			if err := tx.ChangeStatus(ctx, storage.StatusChange{Number: number, From: storage.ContractPending,
				To: storage.ContractActive, Actor: "doctor:1", TermEnd: "2027-11-22"}); err != nil {
				return err
			}
			if v, err := tx.ContractByNumber(ctx, number); err != nil || v.Status != storage.ContractActive || len(v.Packages) != 2 {
				t.Errorf("inside the transaction: %+v %v", v, err)
			}
			if _, err := db.ContractByNumber(ctx, number); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("outside the transaction before commit: %v, want ErrNotFound", err)
			}
			if pushes.Load() != 0 {
				t.Error("OnPushes ran before the commit")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		v, err := db.ContractByNumber(ctx, number)
		if err != nil || v.Status != storage.ContractActive || v.TermEnd.String != "2027-11-22" {
			t.Fatalf("after commit: %+v %v", v, err)
		}
		var events int
		storagetest.SQL(t, db).GetContext(ctx, &events, `SELECT COUNT(*) FROM contract_events`)
		if rows, _ := db.OutboxFor(ctx, "doctor:1"); len(rows) != 1 || events != 2 {
			t.Fatalf("after commit: %d pushes, %d events", len(rows), events)
		}
		if pushes.Load() != 1 {
			t.Fatalf("OnPushes ran %d times, want once", pushes.Load())
		}
	})
}

// An error from fn rolls back every method that joined, and InTx returns it
// as it was, sentinels and all.
func TestInTxErrorRollsBackEverything(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		seedOrganisation(t, db)
		pushes := countPushes(db)
		var number string
		err := db.InTx(ctx, func(tx *storage.DB) error {
			if err := tx.Apply(ctx, userSeen("o_res")); err != nil {
				return err
			}
			var err error
			if number, _, err = tx.CreateContract(ctx, newContract(t, db, "sign:rollback", "idhash-rb")); err != nil {
				return err
			}
			return tx.ChangeStatus(ctx, storage.StatusChange{Number: number, From: storage.ContractActive,
				To: storage.ContractCancelled, Actor: "o_res"})
		})
		if !errors.Is(err, storage.ErrStatusChanged) {
			t.Fatalf("InTx returned %v, want ErrStatusChanged", err)
		}
		if _, err := db.ContractByNumber(ctx, number); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("the contract survived the rollback: %v", err)
		}
		if _, err := db.WeChatUser(ctx, "o_res"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("the user survived the rollback: %v", err)
		}
		if rows, _ := db.OutboxFor(ctx, "doctor:1"); len(rows) != 0 {
			t.Fatalf("%d pushes survived the rollback", len(rows))
		}
		if pushes.Load() != 0 {
			t.Fatalf("OnPushes ran %d times for a rolled-back transaction", pushes.Load())
		}
	})
}

// A joined method that fails is rolled back to its savepoint: what it wrote
// before failing is undone, and the surrounding transaction can still
// commit its other writes, on PostgreSQL too, where a failed statement
// would otherwise abort the whole transaction.
func TestInTxJoinedFailureLeavesTheTransactionUsable(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		w := world(t, db)
		docs, _ := db.Doctors(ctx)
		expires := time.Now().Add(time.Hour)
		db.SetBindingCode(ctx, docs[0].ID, "code-0", expires)
		db.SetBindingCode(ctx, docs[1].ID, "code-1", expires)
		if _, err := db.BindDoctor(ctx, "code-0", "o_doc", time.Now()); err != nil {
			t.Fatal(err)
		}
		r1, c1 := w.resident(1)
		first, err := w.book("k1", r1, c1, w.slots[0])
		if err != nil {
			t.Fatal(err)
		}
		var number string
		cs, _ := db.ContractsManagedBy(ctx, "o_res")
		for _, c := range cs {
			if c.ID == c1 {
				number = c.Number
			}
		}
		pushes := countPushes(db)
		err = db.InTx(ctx, func(tx *storage.DB) error {
			if err := tx.Apply(ctx, storage.Changes{Pushes: []storage.Push{push("kept:1", "o_kept")}}); err != nil {
				return err
			}
			// No row matches: ErrStatusChanged, nothing written.
			err := tx.ChangeStatus(ctx, storage.StatusChange{Number: number, From: storage.ContractPending,
				To: storage.ContractActive, Actor: "doctor:1"})
			if !errors.Is(err, storage.ErrStatusChanged) {
				t.Errorf("wrong From: %v, want ErrStatusChanged", err)
			}
			// The slot's place is taken before the limit refuses the booking.
			_, err = tx.Book(ctx, storage.NewAppointment{RequestKey: "k-too-many", ResidentID: r1, ContractID: c1,
				DoctorID: w.doctorID, SlotID: w.slots[2].ID, Kind: "clinic", MaxUpcoming: 1, Now: time.Now(),
				Pushes: func(id int64) []storage.Push { return []storage.Push{push("refused:1", "o_refused")} }})
			if !errors.Is(err, storage.ErrTooMany) {
				t.Errorf("second booking over the limit: %v, want ErrTooMany", err)
			}
			// A unique violation: a failed statement, which aborts a
			// PostgreSQL transaction unless rolled back to a savepoint.
			if _, err := tx.BindDoctor(ctx, "code-1", "o_doc", time.Now()); !errors.Is(err, storage.ErrCodeInvalid) {
				t.Errorf("binding a WeChat bound to another doctor: %v, want ErrCodeInvalid", err)
			}
			if err := tx.ChangeStatus(ctx, storage.StatusChange{Number: number, From: storage.ContractActive,
				To: storage.ContractActive, Actor: "o_res", TermEnd: "2100-12-31", Reason: "renewed"}); err != nil {
				return err
			}
			return tx.Apply(ctx, storage.Changes{Pushes: []storage.Push{push("kept:2", "o_kept")}})
		})
		if err != nil {
			t.Fatalf("the outer transaction could not commit: %v", err)
		}
		if rows, _ := db.OutboxFor(ctx, "o_kept"); len(rows) != 2 {
			t.Fatalf("%d of the transaction's own pushes committed, want 2", len(rows))
		}
		if rows, _ := db.OutboxFor(ctx, "o_refused"); len(rows) != 0 {
			t.Fatalf("the refused booking's push committed: %+v", rows)
		}
		slots, _ := db.Slots(ctx, w.doctorID, w.slots[0].StartsAt, w.slots[3].EndsAt)
		if slots[0].Booked != 1 || slots[2].Booked != 0 {
			t.Fatalf("the refused booking kept its place: %+v", slots)
		}
		if up, _ := db.UpcomingManagedBy(ctx, "o_res", time.Now()); len(up) != 1 || up[0].ID != first {
			t.Fatalf("upcoming = %+v", up)
		}
		if v, _ := db.ContractByNumber(ctx, number); v.TermEnd.String != "2100-12-31" {
			t.Fatalf("the later change did not commit: %+v", v)
		}
		if _, bound, _ := db.DoctorOpenID(ctx, docs[1].ID); bound {
			t.Fatal("the refused binding committed")
		}
		if _, err := db.BindDoctor(ctx, "code-1", "o_doc2", time.Now()); err != nil {
			t.Fatalf("the refused binding spent the code: %v", err)
		}
		if pushes.Load() != 1 {
			t.Fatalf("OnPushes ran %d times, want once", pushes.Load())
		}
	})
}

// A nested InTx joins the transaction: its error undoes its own writes
// only, whether it came after the transaction's first write (under a
// savepoint) or was that first work (without one: the transaction rolls
// back and begins afresh with the next statement).
func TestNestedInTxJoins(t *testing.T) {
	for _, outerFirst := range []bool{true, false} {
		t.Run(map[bool]string{true: "after a write", false: "as the first work"}[outerFirst], func(t *testing.T) {
			storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
				ctx := context.Background()
				pushes := countPushes(db)
				inner := errors.New("inner step failed")
				err := db.InTx(ctx, func(tx *storage.DB) error {
					if outerFirst {
						if err := tx.Apply(ctx, userSeen("o_outer")); err != nil {
							return err
						}
					}
					err := tx.InTx(ctx, func(tx2 *storage.DB) error {
						if err := tx2.Apply(ctx, storage.Changes{Seen: userSeen("o_inner").Seen,
							Pushes: []storage.Push{push("inner:1", "o_inner")}}); err != nil {
							return err
						}
						return inner
					})
					if !errors.Is(err, inner) {
						t.Errorf("nested InTx returned %v", err)
					}
					return tx.InTx(ctx, func(tx2 *storage.DB) error { return tx2.Apply(ctx, userSeen("o_inner2")) })
				})
				if err != nil {
					t.Fatal(err)
				}
				for openID, want := range map[string]bool{"o_outer": outerFirst, "o_inner": false, "o_inner2": true} {
					if _, err := db.WeChatUser(ctx, openID); (err == nil) != want {
						t.Errorf("%s stored: %v, want %v", openID, err == nil, want)
					}
				}
				if rows, _ := db.OutboxFor(ctx, "o_inner"); len(rows) != 0 {
					t.Fatalf("the failed nested step's push committed")
				}
				if pushes.Load() != 0 {
					t.Fatalf("OnPushes ran %d times, though the only push was rolled back", pushes.Load())
				}
			})
		})
	}
}

// A nested InTx that was the transaction's first work and succeeded
// stands or falls with the rest.
func TestInTxJoinedAsFirstWorkFallsWithTheRest(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		outer := errors.New("outer failed")
		err := db.InTx(ctx, func(tx *storage.DB) error {
			if err := tx.InTx(ctx, func(tx2 *storage.DB) error { return tx2.Apply(ctx, userSeen("o_joined")) }); err != nil {
				return err
			}
			return outer
		})
		if _, stored := db.WeChatUser(ctx, "o_joined"); !errors.Is(err, outer) || stored == nil {
			t.Fatalf("the first work outlived its transaction's rollback: %v, %v", err, stored)
		}
	})
}

// A panic in fn rolls the transaction back and goes on; the DB stays usable.
func TestInTxPanicRollsBack(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		pushes := countPushes(db)
		func() {
			defer func() {
				if p := recover(); p != "boom" {
					t.Fatalf("recovered %v, want the panic to go on", p)
				}
			}()
			db.InTx(ctx, func(tx *storage.DB) error {
				tx.Apply(ctx, storage.Changes{Pushes: []storage.Push{push("panic:1", "o_panic")}})
				panic("boom")
			})
		}()
		if rows, _ := db.OutboxFor(ctx, "o_panic"); len(rows) != 0 {
			t.Fatal("a push survived the panic")
		}
		if err := db.Apply(ctx, userSeen("o_after")); err != nil {
			t.Fatalf("after the panic: %v", err)
		}
		if pushes.Load() != 0 {
			t.Fatalf("OnPushes ran %d times", pushes.Load())
		}
	})
}

// OnPushes runs once after a transaction that enqueued commits: not for one
// without pushes, nor for one that only replays pushes already written, nor
// for a rolled-back one.
func TestOnPushesFiresOncePerCommittedEnqueue(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		pushes := countPushes(db)
		expect := func(step string, want int64) {
			t.Helper()
			if got := pushes.Swap(0); got != want {
				t.Fatalf("%s: OnPushes ran %d times, want %d", step, got, want)
			}
		}
		db.Apply(ctx, userSeen("o_quiet"))
		expect("a transaction without pushes", 0)
		db.Enqueue(ctx, []storage.Push{push("a", "o1"), push("b", "o2")})
		expect("Enqueue of two", 1)
		db.Enqueue(ctx, []storage.Push{push("a", "o1")})
		expect("a replay of a push already written", 0)
		db.InTx(ctx, func(tx *storage.DB) error {
			tx.Enqueue(ctx, []storage.Push{push("c", "o1")})
			tx.Apply(ctx, storage.Changes{Pushes: []storage.Push{push("d", "o1")}})
			return nil
		})
		expect("one InTx enqueuing twice", 1)
		db.InTx(ctx, func(tx *storage.DB) error {
			tx.Enqueue(ctx, []storage.Push{push("e", "o1")})
			return errors.New("changed my mind")
		})
		expect("a rolled-back InTx", 0)
		db.OnPushes(nil)
		db.Enqueue(ctx, []storage.Push{push("f", "o1")})
		expect("after OnPushes(nil)", 0)
	})
}

// A transaction begins with its first statement: one that runs none does
// not reach the database at all (here, a context already cancelled would
// have failed BEGIN), and one that does begins on the transaction's own
// context, so a statement's shorter deadline does not roll it back.
func TestInTxBeginsWithItsFirstStatement(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		gone, cancel := context.WithCancel(context.Background())
		cancel()
		if err := db.InTx(gone, func(tx *storage.DB) error { return nil }); err != nil {
			t.Fatalf("a transaction with no statement: %v", err)
		}
		if err := db.InTx(gone, func(tx *storage.DB) error {
			_, err := tx.WeChatUser(context.Background(), "o_nobody")
			return err
		}); !errors.Is(err, context.Canceled) {
			t.Fatalf("a statement in a transaction whose context is gone: %v", err)
		}
		ctx := context.Background()
		if err := db.InTx(ctx, func(tx *storage.DB) error {
			short, cancel := context.WithTimeout(ctx, time.Second)
			err := tx.Apply(short, storage.Changes{Seen: &storage.UserSeen{OpenID: "o_lazy", Subscribed: true, EventTime: time.Unix(100, 0)}})
			cancel()
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if u, err := db.WeChatUser(ctx, "o_lazy"); err != nil || !u.Subscribed {
			t.Fatalf("after the commit: %+v %v", u, err)
		}
	})
}

// Who a sender is is read without beginning the turn's transaction: a
// context that would fail BEGIN does not matter to it.
func TestDoctorLookupDoesNotBeginTheTransaction(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		gone, cancel := context.WithCancel(context.Background())
		cancel()
		err := db.InTx(gone, func(tx *storage.DB) error {
			_, err := tx.DoctorByOpenID(context.Background(), "o_not_a_doctor")
			return err
		})
		if !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("got %v, want ErrNotFound", err)
		}
	})
}
