package storage

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// StaffSession is a signed-in console session as Redis holds it. The
// browser holds only a random token; Redis keys it by the token's hash, so
// a copy of Redis does not hand out live sessions.
type StaffSession struct {
	StaffID         int64     `json:"staff"`
	PasswordVersion int       `json:"pv"`   // a password change or disabling ends the session
	CSRF            string    `json:"csrf"` // every form and every write carries it
	Created         time.Time `json:"created"`
}

// ErrNoSession says the token names no live session.
var ErrNoSession = errors.New("no such session")

func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (r *Redis) staffKey(kind, secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return r.Prefix + ":staff:" + kind + ":" + hex.EncodeToString(sum[:16])
}

// StartStaffSession stores a new session that lasts idle unless touched, and
// returns the token the browser keeps.
func (r *Redis) StartStaffSession(ctx context.Context, staffID int64, passwordVersion int, idle time.Duration) (string, StaffSession, error) {
	s := StaffSession{StaffID: staffID, PasswordVersion: passwordVersion, CSRF: newToken(), Created: time.Now().UTC()}
	token := newToken()
	data, _ := json.Marshal(s)
	if err := r.Client.Set(ctx, r.staffKey("session", token), data, idle).Err(); err != nil {
		return "", StaffSession{}, fmt.Errorf("storage.StartStaffSession: %w", err)
	}
	return token, s, nil
}

// TouchStaffSession returns the session for a token and keeps it alive for
// another idle period.
func (r *Redis) TouchStaffSession(ctx context.Context, token string, idle time.Duration) (StaffSession, error) {
	var s StaffSession
	data, err := r.Client.GetEx(ctx, r.staffKey("session", token), idle).Bytes()
	if errors.Is(err, redis.Nil) {
		return s, fmt.Errorf("storage.TouchStaffSession: %w", ErrNoSession)
	}
	if err != nil {
		return s, fmt.Errorf("storage.TouchStaffSession: %w", err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("storage.TouchStaffSession: %w", err)
	}
	return s, nil
}

// EndStaffSession signs a session out.
func (r *Redis) EndStaffSession(ctx context.Context, token string) error {
	if err := r.Client.Del(ctx, r.staffKey("session", token)).Err(); err != nil {
		return fmt.Errorf("storage.EndStaffSession: %w", err)
	}
	return nil
}

// countFailure adds one sign-in attempt to a counter whose window starts at
// its first attempt and does not move: a window always ends, however many
// tries come after.
var countFailure = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`)

// CountSignIn counts a sign-in attempt under each key (a user name, an
// address, a known browser), each in its own window, and returns the counts
// with this attempt in. Counting before the password is checked means
// parallel guesses cannot all slip under a limit.
func (r *Redis) CountSignIn(ctx context.Context, window time.Duration, keys ...string) ([]int, error) {
	out := make([]int, len(keys))
	for i, k := range keys {
		n, err := countFailure.Run(ctx, r.Client, []string{r.staffKey("fail", k)}, window.Milliseconds()).Int()
		if err != nil {
			return nil, fmt.Errorf("storage.CountSignIn: %w", err)
		}
		out[i] = n
	}
	return out, nil
}

// UncountSignIn takes a successful attempt back off a key's count (an
// address many staff share), without touching its window.
func (r *Redis) UncountSignIn(ctx context.Context, key string) error {
	if err := uncount.Run(ctx, r.Client, []string{r.staffKey("fail", key)}).Err(); err != nil {
		return fmt.Errorf("storage.UncountSignIn: %w", err)
	}
	return nil
}

var uncount = redis.NewScript(`
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then redis.call('DECR', KEYS[1]) end
return n`)

// ClearSignInFailures forgets the failures counted under keys (after a
// successful sign-in, or an operator's reset).
func (r *Redis) ClearSignInFailures(ctx context.Context, keys ...string) error {
	for _, k := range keys {
		if err := r.Client.Del(ctx, r.staffKey("fail", k)).Err(); err != nil {
			return fmt.Errorf("storage.ClearSignInFailures: %w", err)
		}
	}
	return nil
}

// RememberBrowser records that a browser signed in as a staff member, for
// ttl, and returns the token the browser keeps. A known browser is not held
// to the account-wide sign-in limit, so strangers guessing an admin's
// password cannot lock the admin out.
func (r *Redis) RememberBrowser(ctx context.Context, staffID int64, ttl time.Duration) (string, error) {
	token := newToken()
	if err := r.Client.Set(ctx, r.staffKey("browser", token), staffID, ttl).Err(); err != nil {
		return "", fmt.Errorf("storage.RememberBrowser: %w", err)
	}
	return token, nil
}

// KnownBrowser reports whether a browser token was given to this staff member.
func (r *Redis) KnownBrowser(ctx context.Context, token string, staffID int64) (bool, error) {
	if token == "" {
		return false, nil
	}
	id, err := r.Client.Get(ctx, r.staffKey("browser", token)).Int64()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("storage.KnownBrowser: %w", err)
	}
	return id == staffID, nil
}
