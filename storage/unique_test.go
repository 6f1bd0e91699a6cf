package storage

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// Unique violations are told by the driver's code, not by words in the
// message.
func TestUniqueViolationIsToldByCode(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, "sqlite:"+t.TempDir()+"/u.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	insert := `INSERT INTO binding_failures (openid, day, count) VALUES ('o', 'd', 1)`
	if _, err := db.exec(ctx, "test", insert); err != nil {
		t.Fatal(err)
	}
	_, err = db.exec(ctx, "test", insert) // primary key (openid, day)
	if !isUniqueViolation(err) {
		t.Fatalf("duplicate primary key not recognised: %v", err)
	}
	if isUniqueViolation(fmt.Errorf("storage.x: %w", errors.New("UNIQUE constraint failed: SQLSTATE 23505"))) {
		t.Fatal("an error that only says so was taken for a unique violation")
	}
	if _, err := db.exec(ctx, "test", `INSERT INTO binding_failures (openid, day, count) VALUES ('o', 'e', NULL)`); err == nil || isUniqueViolation(err) {
		t.Fatalf("a NOT NULL failure was taken for a unique violation: %v", err)
	}
}
