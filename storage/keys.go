package storage

import (
	"context"
	"errors"
	"time"
)

// ErrKeyMismatch says the personal-data key is not the one the database's
// data was sealed with.
var ErrKeyMismatch = errors.New("the key is not the one this database's personal data was sealed with")

// CheckKey makes sure a database is used with the key its personal data was
// sealed with. The first start records the key's fingerprint; a database
// that already holds sealed data from before fingerprints proves the key by
// opening one value. Starting with another key fails with ErrKeyMismatch.
func (db *DB) CheckKey(ctx context.Context, s *Sealer) error {
	const op = "CheckKey"
	return db.inTx(ctx, op, func(tx *DB) error {
		var recorded string
		err := tx.get(ctx, op, &recorded, `SELECT fingerprint FROM key_fingerprints WHERE name = 'pii'`)
		if err == nil {
			if recorded != s.Fingerprint() {
				return fail(op, ErrKeyMismatch)
			}
			return nil
		}
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		var sealed []string
		if err := tx.sel(ctx, op, &sealed, `SELECT id_number_sealed FROM residents ORDER BY id LIMIT 1`); err != nil {
			return err
		}
		for _, v := range sealed {
			if _, err := s.Open("id_number", v); err != nil {
				return fail(op, ErrKeyMismatch)
			}
		}
		_, err = tx.exec(ctx, op, `INSERT INTO key_fingerprints (name, fingerprint, created_at) VALUES ('pii', ?, ?)`,
			s.Fingerprint(), time.Now().UTC())
		return err
	})
}
