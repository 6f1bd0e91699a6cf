package flows

import (
	"context"
	"crypto/rand"
	"time"

	"github.com/jiayi-health/jiayi/storage"
)

// Binding codes are read off a screen or paper and typed on a phone: no
// letters or digits that look alike.
const codeAlphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"

// BindingCodeTTL is how long a doctor's binding code stays valid by default.
const BindingCodeTTL = 72 * time.Hour

// NewBindingCode makes a random 8-character code (about 40 bits).
func NewBindingCode() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = codeAlphabet[int(b[i])%len(codeAlphabet)]
	}
	return string(b)
}

// codeHash is how a binding code is kept: a keyed hash, never the code.
func codeHash(s *storage.Sealer, code string) string {
	return s.Hash("binding_code", code)
}

// IssueBindingCode gives an unbound doctor a fresh single-use code, valid
// for ttl from now, and returns it to be handed to the doctor.
func IssueBindingCode(ctx context.Context, db *storage.DB, s *storage.Sealer, doctorID int64, now time.Time, ttl time.Duration) (string, error) {
	code := NewBindingCode()
	if err := db.SetBindingCode(ctx, doctorID, codeHash(s, code), now.Add(ttl)); err != nil {
		return "", err
	}
	return code, nil
}
