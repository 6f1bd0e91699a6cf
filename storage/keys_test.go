package storage_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// A database is used with the key its personal data was sealed with: the
// first start records the key's fingerprint, another key is refused, and a
// database sealed before fingerprints proves the key by opening a value.
func TestTheDatabaseKnowsItsKey(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		right, _ := storage.NewSealer(bytes.Repeat([]byte{1}, 32))
		wrong, _ := storage.NewSealer(bytes.Repeat([]byte{2}, 32))
		if right.Fingerprint() == wrong.Fingerprint() {
			t.Fatal("fingerprints do not tell keys apart")
		}
		seedOrganisation(t, db)
		nc := newContract(t, db, "k", "h")
		nc.Resident.IDSealed, _ = right.Seal("id_number", "110105195503020210")
		if _, _, err := db.CreateContract(ctx, nc); err != nil {
			t.Fatal(err)
		}
		// Sealed before fingerprints: the wrong key cannot open the data.
		if err := db.CheckKey(ctx, wrong); !errors.Is(err, storage.ErrKeyMismatch) {
			t.Fatalf("the wrong key on sealed data: %v", err)
		}
		for range 2 {
			if err := db.CheckKey(ctx, right); err != nil {
				t.Fatalf("the right key: %v", err)
			}
		}
		if err := db.CheckKey(ctx, wrong); !errors.Is(err, storage.ErrKeyMismatch) {
			t.Fatalf("the wrong key once recorded: %v", err)
		}
	})
}
