package storage

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Sealer keeps personal data (ID numbers, phones) encrypted at rest with
// AES-256-GCM and finds it again through a keyed hash, so the database never
// holds the clear value and equal values can still be looked up.
type Sealer struct {
	aead        cipher.AEAD
	hashKey     []byte
	fingerprint string
}

const sealPrefix = "v1:"

// ErrSealed says a sealed value could not be opened: wrong key, wrong field
// or tampered.
var ErrSealed = errors.New("sealed value cannot be opened")

// NewSealer derives separate encryption and hashing keys from the 32-byte
// JIAYI_PII_KEY.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("storage.NewSealer: key is %d bytes, want 32", len(key))
	}
	derive := func(purpose string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte("jiayi/pii/" + purpose))
		return m.Sum(nil)
	}
	block, err := aes.NewCipher(derive("encrypt"))
	if err != nil {
		return nil, fmt.Errorf("storage.NewSealer: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("storage.NewSealer: %w", err)
	}
	return &Sealer{aead: aead, hashKey: derive("lookup"), fingerprint: hex.EncodeToString(derive("fingerprint")[:16])}, nil
}

// Fingerprint names the key without revealing it, so a database can tell
// whether it is the key its data was sealed with.
func (s *Sealer) Fingerprint() string { return s.fingerprint }

// Seal encrypts a value for one field (the field is authenticated, so a
// sealed phone cannot be passed off as an ID number).
func (s *Sealer) Seal(field, value string) (string, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("storage.Seal: %w", err)
	}
	out := s.aead.Seal(nonce, nonce, []byte(value), []byte(field))
	return sealPrefix + base64.RawStdEncoding.EncodeToString(out), nil
}

// Open decrypts a value sealed for field.
func (s *Sealer) Open(field, sealed string) (string, error) {
	raw, ok := strings.CutPrefix(sealed, sealPrefix)
	if !ok {
		return "", ErrSealed
	}
	b, err := base64.RawStdEncoding.DecodeString(raw)
	if err != nil || len(b) < s.aead.NonceSize() {
		return "", ErrSealed
	}
	plain, err := s.aead.Open(nil, b[:s.aead.NonceSize()], b[s.aead.NonceSize():], []byte(field))
	if err != nil {
		return "", ErrSealed
	}
	return string(plain), nil
}

// Hash is the keyed lookup hash of a value in a field: equal values hash
// equal, and without the key nobody can test a guess against it.
func (s *Sealer) Hash(field, value string) string {
	m := hmac.New(sha256.New, s.hashKey)
	m.Write([]byte(field + "\x00" + value))
	return hex.EncodeToString(m.Sum(nil))
}

// KeyFileFor names the file that keeps a sandbox's generated personal-data
// key: beside the SQLite database, or in the working directory.
func KeyFileFor(databaseURL string) string {
	if d, dsn, err := ParseDatabaseURL(databaseURL); err == nil && d == SQLite {
		path := strings.TrimPrefix(strings.SplitN(dsn, "?", 2)[0], "file:")
		if path != ":memory:" {
			return path + ".pii-key"
		}
	}
	return "jiayi.pii-key"
}

// LoadOrCreateKey reads a 32-byte key kept as hex in path, or makes one and
// keeps it there, readable by the owner only. Used in sandbox mode when no
// JIAYI_PII_KEY is set, so data tried there is still encrypted with a key
// nobody else has.
func LoadOrCreateKey(path string) ([]byte, error) {
	if b, err := os.ReadFile(path); err == nil {
		key, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("storage.LoadOrCreateKey: %s does not hold a 32-byte hex key", path)
		}
		return key, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("storage.LoadOrCreateKey: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("storage.LoadOrCreateKey: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return LoadOrCreateKey(path) // another instance made it first
	}
	if err != nil {
		return nil, fmt.Errorf("storage.LoadOrCreateKey: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		return nil, fmt.Errorf("storage.LoadOrCreateKey: %w", err)
	}
	return key, f.Sync()
}
