package storage

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A push is written in the transaction of the change that causes it: if
// that transaction does not commit, no push is left behind.
func TestRolledBackChangeLeavesNoPush(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, "sqlite:"+t.TempDir()+"/a.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	failed := errors.New("the change failed after its push was written")
	err = db.inTx(ctx, "test", func(tx *DB) error {
		if err := tx.upsertUser(ctx, "test", UserSeen{OpenID: "o", Subscribed: true, EventTime: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if err := tx.enqueue(ctx, "test", []Push{{Key: "k", Kind: "sign_request", Recipient: "o"}}); err != nil {
			t.Fatal(err)
		}
		return failed
	})
	if !errors.Is(err, failed) {
		t.Fatalf("inTx returned %v", err)
	}
	rows, _ := db.OutboxFor(ctx, "o")
	var users int
	db.get(ctx, "test", &users, `SELECT COUNT(*) FROM wechat_users`)
	if len(rows) != 0 || users != 0 {
		t.Fatalf("after rollback: %d pushes, %d users", len(rows), users)
	}
}
