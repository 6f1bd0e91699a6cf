package storage

import (
	"context"
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
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := upsertUser(ctx, tx, db, UserSeen{OpenID: "o", Subscribed: true, EventTime: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := enqueue(ctx, tx, db, []Push{{Key: "k", Kind: "sign_request", Recipient: "o"}}); err != nil {
		t.Fatal(err)
	}
	tx.Rollback() // the change failed after its push was written
	rows, _ := db.OutboxFor(ctx, "o")
	var users int
	db.GetContext(ctx, &users, `SELECT COUNT(*) FROM wechat_users`)
	if len(rows) != 0 || users != 0 {
		t.Fatalf("after rollback: %d pushes, %d users", len(rows), users)
	}
}
