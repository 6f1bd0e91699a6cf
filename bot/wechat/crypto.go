package wechat

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"strconv"
	"time"

	"github.com/silenceper/wechat/v2/util"
)

// Signer checks and makes WeChat's signatures and, in safe mode, encrypts and
// decrypts message bodies.
type Signer struct {
	Token  string
	AppID  string
	AESKey string // EncodingAESKey (43 characters); empty: safe mode off
	// MaxSkew bounds how far a request's timestamp may be from Now, so a
	// captured request cannot be replayed later. Zero: 5 minutes.
	MaxSkew time.Duration
	Now     func() time.Time
}

var (
	errBadSignature = errors.New("signature does not match")
	errStale        = errors.New("timestamp too far from now")
	errNoAESKey     = errors.New("safe-mode message but no EncodingAESKey configured")
)

// ValidAESKey reports whether s is an EncodingAESKey: 43 characters of
// base64 that decode to a 32-byte AES key.
func ValidAESKey(s string) bool {
	if len(s) != 43 {
		return false
	}
	key, err := base64.StdEncoding.DecodeString(s + "=")
	return err == nil && len(key) == 32
}

func (s Signer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// window is how long a signature is accepted either side of now.
func (s Signer) window() time.Duration {
	if s.MaxSkew == 0 {
		return 5 * time.Minute
	}
	return s.MaxSkew
}

// fresh checks the request timestamp against the clock.
func (s Signer) fresh(timestamp string) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errStale
	}
	skew := s.window()
	if d := s.now().Sub(time.Unix(ts, 0)); d > skew || d < -skew {
		return errStale
	}
	return nil
}

// sign is WeChat's signature: SHA-1 over the sorted, concatenated parts.
func sign(parts ...string) string { return util.Signature(parts...) }

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// CheckSignature verifies the URL signature every request carries.
func (s Signer) CheckSignature(signature, timestamp, nonce string) error {
	if !equal(signature, sign(s.Token, timestamp, nonce)) {
		return errBadSignature
	}
	return s.fresh(timestamp)
}

// Decrypt verifies msg_signature over the encrypted body and decrypts it.
func (s Signer) Decrypt(msgSignature, timestamp, nonce, encrypted string) ([]byte, error) {
	if s.AESKey == "" {
		return nil, errNoAESKey
	}
	if !equal(msgSignature, sign(s.Token, timestamp, nonce, encrypted)) {
		return nil, errBadSignature
	}
	if err := s.fresh(timestamp); err != nil {
		return nil, err
	}
	_, plain, err := util.DecryptMsg(s.AppID, encrypted, s.AESKey)
	return plain, err
}

// Encrypt seals a reply for safe mode and signs it.
func (s Signer) Encrypt(plain []byte, nonce string) (encrypted, msgSignature string, timestamp int64, err error) {
	random := make([]byte, 16)
	if _, err = rand.Read(random); err != nil {
		return
	}
	enc, err := util.EncryptMsg(random, plain, s.AppID, s.AESKey)
	if err != nil {
		return
	}
	timestamp = s.now().Unix()
	encrypted = string(enc)
	msgSignature = sign(s.Token, strconv.FormatInt(timestamp, 10), nonce, encrypted)
	return
}
