package storage

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ChatSession is one user's conversation state as Redis holds it. State is opaque
// here (flows owns its shape); Version grows by one with every save, and a
// save names the version it read, so a stale writer cannot overwrite a newer
// state.
type ChatSession struct {
	OpenID  string
	Version int64
	State   []byte
}

// ErrStaleChatSession says the session changed since it was loaded.
var ErrStaleChatSession = errors.New("session changed since it was read")

// LoadChatSession returns the user's session, or an empty one at version 0.
func (r *Redis) LoadChatSession(ctx context.Context, openID string) (ChatSession, error) {
	s := ChatSession{OpenID: openID}
	vals, err := r.Client.HMGet(ctx, r.key(openID, "session"), "v", "data").Result()
	if err != nil {
		return s, fmt.Errorf("storage.LoadChatSession: %w", err)
	}
	if v, ok := vals[0].(string); ok {
		if s.Version, err = strconv.ParseInt(v, 10, 64); err != nil {
			return s, fmt.Errorf("storage.LoadChatSession: bad version %q", v)
		}
	}
	if d, ok := vals[1].(string); ok {
		s.State = []byte(d)
	}
	return s, nil
}

// DropChatSession forgets a user's conversation state.
func (r *Redis) DropChatSession(ctx context.Context, openID string) error {
	if err := r.Client.Del(ctx, r.key(openID, "session")).Err(); err != nil {
		return fmt.Errorf("storage.DropChatSession: %w", err)
	}
	return nil
}

// saveTurn writes the session if it is still at the version that was read,
// and in the same step records the finished reply under the message's dedupe
// key, so a retry can never see the new state without the reply or the reply
// without the new state.
// It also releases the user's lock when the turn holds it (KEYS[3], token
// ARGV[7]), so a turn ends in one round trip.
var saveTurn = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'v')
if not cur then cur = '0' end
if cur ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'data', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if ARGV[5] ~= '' then
  redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[6])
end
if ARGV[7] ~= '' and redis.call('GET', KEYS[3]) == ARGV[7] then
  redis.call('DEL', KEYS[3])
end
return 1`)

// Turn is what one processed message leaves in Redis.
type Turn struct {
	Session    ChatSession   // as loaded; State replaced by the new state
	SessionTTL time.Duration // idle sessions disappear after this
	MessageKey string        // dedupe key of the message; empty for none
	Reply      string        // the finished reply a retry gets
	ReplyTTL   time.Duration // how long a retry can still get it
	Lock       *UserLock     // released with the save when set
}

// SaveTurn stores the new session state and the finished reply together. It
// returns ErrStaleChatSession if another writer saved the session first.
func (r *Redis) SaveTurn(ctx context.Context, t Turn) (ChatSession, error) {
	s := t.Session
	session := r.key(s.OpenID, "session")
	keys := []string{session, session, session} // unused keys name the session, keeping one slot
	args := []any{strconv.FormatInt(s.Version, 10), strconv.FormatInt(s.Version+1, 10),
		string(s.State), t.SessionTTL.Milliseconds(), "", 0, ""}
	if t.MessageKey != "" {
		keys[1], args[4], args[5] = r.key(s.OpenID, "msg:"+t.MessageKey), doneMark+t.Reply, t.ReplyTTL.Milliseconds()
	}
	if t.Lock != nil {
		keys[2], args[6] = t.Lock.key, t.Lock.token
		t.Lock.stopRenewing()
	}
	ok, err := saveTurn.Run(ctx, r.Client, keys, args...).Int()
	if err != nil {
		return s, fmt.Errorf("storage.SaveTurn: %w", err)
	}
	if ok != 1 {
		return s, fmt.Errorf("storage.SaveTurn: %w", ErrStaleChatSession)
	}
	if t.Lock != nil {
		t.Lock.released.Store(true)
	}
	s.Version++
	return s, nil
}

const (
	claimMark   = "p:" // in progress, followed by the claimer's token
	doneMark    = "d:" // finished, followed by the reply
	limitedMark = "l:" // BeginTurn's answer only: over the limit, followed by the count
)

// MessageState is what a dedupe key says about an inbound message.
type MessageState int

const (
	MessageNew        MessageState = iota // claimed now by the caller
	MessageInProgress                     // another attempt is working on it
	MessageDone                           // finished; the reply is known
	MessageLimited                        // BeginTurn: over the sender's limit, neither claimed nor to be run
)

// Claim marks a message as in progress before any work is done on it. The
// marker lives only claimTTL, so an attempt that dies does not swallow the
// message: WeChat's next retry finds no marker and runs it. The returned
// release drops the marker after a failed attempt.
func (r *Redis) Claim(ctx context.Context, openID, msgKey string, claimTTL time.Duration) (MessageState, string, func(), error) {
	key, token := r.key(openID, "msg:"+msgKey), randomToken()
	for range 3 {
		ok, err := r.Client.SetNX(ctx, key, claimMark+token, claimTTL).Result()
		if err != nil {
			return 0, "", nil, fmt.Errorf("storage.Claim: %w", err)
		}
		if ok {
			return MessageNew, "", r.dropClaim(ctx, key, token), nil
		}
		state, reply, err := r.MessageState(ctx, openID, msgKey)
		if err != nil || state != MessageNew {
			return state, reply, nil, err
		}
		// The marker expired between SETNX and GET: try to claim again.
	}
	return MessageInProgress, "", nil, nil
}

// countLua counts message msg in the sender's current window (key): a
// retry of one counts once. It returns how many different messages the
// window holds.
const countLua = `
local function count(key, window, msg)
  local added = redis.call('HSETNX', key, msg, 1)
  local n = redis.call('HLEN', key)
  if added == 1 and n == 1 then redis.call('PEXPIRE', key, window) end
  return n
end
`

// beginTurn claims a message (KEYS[1]) and, if no turn of the user holds
// their lock (KEYS[2]), takes it and reads the session (KEYS[3]): what
// Claim, LockUser and LoadChatSession do, in one round trip. A new message
// is first counted in its sender's window (KEYS[4]) when a limit is given
// (ARGV[5], 0 for none); over it, the message is not claimed. It answers
// the marker alone for a message claimed or finished before, the limited
// mark and the count alone for a message over the limit, an empty string
// alone for a claim without the lock, and the empty string, the session's
// version and its data for both.
var beginTurn = redis.NewScript(countLua + `
local cur = redis.call('GET', KEYS[1])
if cur then return {cur} end
if ARGV[5] ~= '0' then
  local n = count(KEYS[4], ARGV[6], ARGV[7])
  if n > tonumber(ARGV[5]) then return {'` + limitedMark + `' .. n} end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if not redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[4]) then return {''} end
local s = redis.call('HMGET', KEYS[3], 'v', 'data')
return {'', s[1] or '', s[2] or ''}`)

// Count is a limit on a sender's messages: at most Max different ones in
// Window. The zero Count counts nothing.
type Count struct {
	Max    int
	Window time.Duration
}

// TurnStart is what BeginTurn found and took.
type TurnStart struct {
	State   MessageState // MessageNew: claimed by the caller
	Reply   string       // MessageDone: the finished reply
	Release func()       // MessageNew: drops the claim after a failed attempt
	// Lock is set when the user's lock was free and is now the caller's;
	// Session was read under it. Otherwise the caller waits for the lock.
	Lock    *UserLock
	Session ChatSession
	Count   int // MessageLimited: the messages in the sender's window, this one included
}

// BeginTurn claims a message as Claim does and, when the user has no turn
// running, takes their lock and reads their session in the same round
// trip: a message from someone not already mid-turn costs one call to
// start instead of four. With a Count, a new message is counted first
// as CountMessage does, and one over the limit is not claimed.
func (r *Redis) BeginTurn(ctx context.Context, openID, msgKey string, claimTTL, lockTTL time.Duration, c Count) (TurnStart, error) {
	msg, lock, token, lockToken := r.key(openID, "msg:"+msgKey), r.key(openID, "lock"), randomToken(), randomToken()
	vals, err := beginTurn.Run(ctx, r.Client, []string{msg, lock, r.key(openID, "session"), r.key(openID, "rate")},
		claimMark+token, claimTTL.Milliseconds(), lockToken, lockTTL.Milliseconds(), c.Max, c.Window.Milliseconds(), msgKey).StringSlice()
	if err != nil {
		return TurnStart{}, fmt.Errorf("storage.BeginTurn: %w", err)
	}
	switch {
	case len(vals) == 0:
		return TurnStart{}, fmt.Errorf("storage.BeginTurn: empty answer")
	case strings.HasPrefix(vals[0], doneMark):
		return TurnStart{State: MessageDone, Reply: strings.TrimPrefix(vals[0], doneMark)}, nil
	case strings.HasPrefix(vals[0], limitedMark):
		n, err := strconv.Atoi(strings.TrimPrefix(vals[0], limitedMark))
		if err != nil {
			return TurnStart{}, fmt.Errorf("storage.BeginTurn: bad count %q", vals[0])
		}
		return TurnStart{State: MessageLimited, Count: n}, nil
	case vals[0] != "":
		return TurnStart{State: MessageInProgress}, nil
	}
	start := TurnStart{State: MessageNew, Release: r.dropClaim(ctx, msg, token)}
	if len(vals) < 3 {
		return start, nil
	}
	start.Lock = r.heldLock(ctx, lock, lockToken, lockTTL)
	start.Session = ChatSession{OpenID: openID, State: []byte(vals[2])}
	if len(vals[2]) == 0 {
		start.Session.State = nil
	}
	if vals[1] != "" {
		if start.Session.Version, err = strconv.ParseInt(vals[1], 10, 64); err != nil {
			start.Lock.Unlock()
			start.Release()
			return TurnStart{}, fmt.Errorf("storage.BeginTurn: bad version %q", vals[1])
		}
	}
	return start, nil
}

// dropClaim is the release of a claim: it drops the marker if it is still
// this claim's, never a finished reply.
func (r *Redis) dropClaim(ctx context.Context, key, token string) func() {
	return func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		compareAndDelete.Run(ctx, r.Client, []string{key}, claimMark+token)
	}
}

// MessageState reads a message's dedupe key without claiming it.
func (r *Redis) MessageState(ctx context.Context, openID, msgKey string) (MessageState, string, error) {
	v, err := r.Client.Get(ctx, r.key(openID, "msg:"+msgKey)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return MessageNew, "", nil
	case err != nil:
		return 0, "", fmt.Errorf("storage.MessageState: %w", err)
	case strings.HasPrefix(v, doneMark):
		return MessageDone, strings.TrimPrefix(v, doneMark), nil
	default:
		return MessageInProgress, "", nil
	}
}

// SetReply replaces a finished message's reply (used when the reply went out
// as a customer-service message instead, so a retry must not repeat it).
func (r *Redis) SetReply(ctx context.Context, openID, msgKey, reply string, ttl time.Duration) error {
	if err := r.Client.Set(ctx, r.key(openID, "msg:"+msgKey), doneMark+reply, ttl).Err(); err != nil {
		return fmt.Errorf("storage.SetReply: %w", err)
	}
	return nil
}

// RequestSeen is what the webhook's request memory says about a signed
// request.
type RequestSeen int

const (
	RequestNew    RequestSeen = iota // first time this signature is used
	RequestRepeat                    // the same request again: WeChat retrying
	RequestForged                    // the signature was used before with another body
)

// RememberRequest records a signed request's timestamp and nonce with a
// digest of its body, for as long as the signature is accepted. WeChat's
// signature covers only the token, timestamp and nonce, so without this a
// captured query string would carry any body for that long.
func (r *Redis) RememberRequest(ctx context.Context, timestamp, nonce, digest string, window time.Duration) (RequestSeen, error) {
	key := r.Prefix + ":req:" + timestamp + ":" + nonce
	first, err := r.Client.SetNX(ctx, key, digest, window).Result()
	if err != nil {
		return 0, fmt.Errorf("storage.RememberRequest: %w", err)
	}
	if first {
		return RequestNew, nil
	}
	seen, err := r.Client.Get(ctx, key).Result()
	switch {
	case errors.Is(err, redis.Nil): // expired in between: the window is over
		return RequestForged, nil
	case err != nil:
		return 0, fmt.Errorf("storage.RememberRequest: %w", err)
	case seen == digest:
		return RequestRepeat, nil
	}
	return RequestForged, nil
}

// countMessage counts one message, by its dedupe key, in the sender's
// current window.
var countMessage = redis.NewScript(countLua + `return count(KEYS[1], ARGV[1], ARGV[2])`)

// CountMessage counts a message from openID in a fixed window and returns
// how many different messages the window holds with it (a retry of one
// counts once): one count per sender, shared by every instance, so a limit
// holds however the load balancer spreads a flood.
func (r *Redis) CountMessage(ctx context.Context, openID, msgKey string, window time.Duration) (int, error) {
	n, err := countMessage.Run(ctx, r.Client, []string{r.key(openID, "rate")}, window.Milliseconds(), msgKey).Int()
	if err != nil {
		return 0, fmt.Errorf("storage.CountMessage: %w", err)
	}
	return n, nil
}
