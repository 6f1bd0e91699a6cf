package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

func init() {
	// go-redis logs connection trouble through its own logger to stderr;
	// send it to the structured log instead. It never logs command arguments.
	redis.SetLogger(redisLog{})
}

type redisLog struct{}

func (redisLog) Printf(ctx context.Context, format string, v ...any) {
	slog.Default().WarnContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...))
}

// OpenRedis connects to the Redis named by a JIAYI_REDIS_URL value.
//
//	redis://[user:pass@]host:6379/0                     one server
//	redis://host1:6379?addr=host2:6379&addr=host3:6379  a Cluster (seed nodes)
//	redis://host1:26379?master_name=mymaster&addr=host2:26379
//	                                                    Sentinel: the addresses are sentinels
//
// rediss:// turns on TLS in every form.
func OpenRedis(rawURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return nil, fmt.Errorf("storage.OpenRedis: must be redis://host:port or rediss://host:port")
	}
	q := u.Query()
	switch {
	case q.Has("master_name"):
		o, err := redis.ParseFailoverURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("storage.OpenRedis: sentinel URL: %w", redactURLError(err))
		}
		return redis.NewFailoverClient(o), nil
	case q.Has("addr"):
		o, err := redis.ParseClusterURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("storage.OpenRedis: cluster URL: %w", redactURLError(err))
		}
		return redis.NewClusterClient(o), nil
	default:
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("storage.OpenRedis: %w", redactURLError(err))
		}
		return redis.NewClient(o), nil
	}
}

// redactURLError keeps a password that url.Parse may quote out of the error.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return errors.New(ue.Err.Error())
	}
	return err
}

// EmbeddedRedis is the in-process Redis-protocol store used when no
// JIAYI_REDIS_URL is set. It listens on a random loopback port and is reached
// through the same go-redis client production uses, so the code paths are
// the same.
type EmbeddedRedis struct {
	srv  *miniredis.Miniredis
	mu   sync.Mutex
	stop chan struct{}
}

// ttlTick is how often the embedded store's TTLs follow the wall clock.
// miniredis only expires keys when told time has passed; telling it on every
// command (its ClockTTL mode) re-sorts every key per command, so a ticker
// does it instead, at a cost independent of traffic.
const ttlTick = 100 * time.Millisecond

// StartEmbeddedRedis starts the in-process store.
func StartEmbeddedRedis() (*EmbeddedRedis, error) {
	e := &EmbeddedRedis{srv: miniredis.NewMiniRedis()}
	if err := e.srv.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("storage.StartEmbeddedRedis: %w", err)
	}
	e.startClock()
	return e, nil
}

func (e *EmbeddedRedis) startClock() {
	e.mu.Lock()
	defer e.mu.Unlock()
	stop := make(chan struct{})
	e.stop = stop
	go func() {
		last := time.Now()
		t := time.NewTicker(ttlTick)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				e.srv.FastForward(now.Sub(last))
				last = now
			}
		}
	}()
}

// URL is the redis:// address of the embedded store.
func (e *EmbeddedRedis) URL() string { return "redis://" + e.srv.Addr() }

// Close stops the store; its data is kept until the process ends, so Restart
// brings it back as it was (tests use this to take Redis away and back).
func (e *EmbeddedRedis) Close() {
	e.mu.Lock()
	if e.stop != nil {
		close(e.stop)
		e.stop = nil
	}
	e.mu.Unlock()
	e.srv.Close()
}

// Restart starts a closed store again on the same port.
func (e *EmbeddedRedis) Restart() error {
	if err := e.srv.Restart(); err != nil {
		return err
	}
	e.startClock()
	return nil
}

// Redis holds conversation state, retry dedupe markers and per-user locks.
// Every key one operation touches together shares the hash tag {openid}, so
// the scripts below work on a Redis Cluster.
type Redis struct {
	Client redis.UniversalClient
	Prefix string // key prefix, "jiayi" in production; tests use their own
}

// NewRedis wraps a client; prefix defaults to "jiayi".
func NewRedis(c redis.UniversalClient, prefix string) *Redis {
	if prefix == "" {
		prefix = "jiayi"
	}
	return &Redis{Client: c, Prefix: prefix}
}

func (r *Redis) key(openID, kind string) string {
	return r.Prefix + ":{" + openID + "}:" + kind
}

// Ping reports whether Redis answers, for /readyz.
func (r *Redis) Ping(ctx context.Context) error {
	return r.Client.Ping(ctx).Err()
}

func randomToken() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// compareAndDelete deletes KEYS[1] only while it still holds ARGV[1], so an
// owner whose lock or marker has expired cannot remove someone else's.
var compareAndDelete = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)

// ErrLockTimeout says the per-user lock was not free before the deadline.
var ErrLockTimeout = errors.New("user is busy: lock not acquired in time")

// LockUser takes the per-user lock that makes one user's messages run one
// after the other, across every instance. It waits until ctx is done. The
// lock expires after ttl in case its holder dies; unlock releases it early.
func (r *Redis) LockUser(ctx context.Context, openID string, ttl time.Duration) (unlock func(), err error) {
	key, token := r.key(openID, "lock"), randomToken()
	wait := 5 * time.Millisecond
	for {
		ok, err := r.Client.SetNX(ctx, key, token, ttl).Result()
		if err != nil {
			return nil, fmt.Errorf("storage.LockUser: %w", err)
		}
		if ok {
			return func() {
				ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
				defer cancel()
				compareAndDelete.Run(ctx, r.Client, []string{key}, token)
			}, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("storage.LockUser: %w", ErrLockTimeout)
		case <-time.After(wait):
		}
		wait = min(wait*2, 50*time.Millisecond)
	}
}
