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
	"sync/atomic"
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
		bounded(q, &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.MaxRetries, &o.ContextTimeoutEnabled)
		return redis.NewFailoverClient(o), nil
	case q.Has("addr"):
		o, err := redis.ParseClusterURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("storage.OpenRedis: cluster URL: %w", redactURLError(err))
		}
		bounded(q, &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.MaxRetries, &o.ContextTimeoutEnabled)
		return redis.NewClusterClient(o), nil
	default:
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("storage.OpenRedis: %w", redactURLError(err))
		}
		bounded(q, &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.MaxRetries, &o.ContextTimeoutEnabled)
		return redis.NewClient(o), nil
	}
}

// Redis sits on the reply's path, and WeChat waits 5 s for a reply: a
// stopped or frozen Redis must cost a resident a quick "busy" answer, not
// WeChat's timeout. go-redis's defaults (3 s reads, 3 retries, and context
// deadlines ignored) would let one command take 12 s. The URL's own
// dial_timeout, read_timeout, write_timeout and max_retries win.
const (
	redisCallTimeout = time.Second
	redisRetries     = 1
)

func bounded(q url.Values, dial, read, write *time.Duration, retries *int, honourContext *bool) {
	if !q.Has("dial_timeout") {
		*dial = redisCallTimeout
	}
	if !q.Has("read_timeout") {
		*read = redisCallTimeout
	}
	if !q.Has("write_timeout") {
		*write = redisCallTimeout
	}
	if !q.Has("max_retries") {
		*retries = redisRetries
	}
	*honourContext = true
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
	srv          *miniredis.Miniredis
	mu           sync.Mutex
	stop         chan struct{}
	snapshotPath string // where PersistTo keeps it; "" not kept
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

// Close stops the store, writing it out first if it is kept (PersistTo);
// its data stays in memory until the process ends, so Restart brings it
// back as it was (tests use this to take Redis away and back).
func (e *EmbeddedRedis) Close() {
	if err := e.save(); err != nil {
		slog.Default().Error("embedded store not saved; conversations in it are lost", "err", err)
	}
	e.mu.Lock()
	e.snapshotPath = "" // written once: a second Close must not overwrite a newer process's
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

// compareAndExpire extends KEYS[1] to ARGV[2] ms only while it still holds
// ARGV[1].
var compareAndExpire = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`)

// LockUser takes the per-user lock that makes one user's messages run one
// after the other, across every instance. It waits until ctx is done. The
// lock lives ttl and is renewed every third of it while held, so it can be
// short: if its holder dies, the user's next message (WeChat retries after
// 5 s) finds it gone rather than waiting out a long turn's worth. unlock
// stops the renewal and releases it.
func (r *Redis) LockUser(ctx context.Context, openID string, ttl time.Duration) (unlock func(), err error) {
	l, err := r.WaitUserLock(ctx, openID, ttl)
	if err != nil {
		return nil, err
	}
	return l.Unlock, nil
}

// WaitUserLock is LockUser giving the lock itself, which a turn's last
// write can release with it (SaveTurn).
func (r *Redis) WaitUserLock(ctx context.Context, openID string, ttl time.Duration) (*UserLock, error) {
	key, token := r.key(openID, "lock"), randomToken()
	wait := 5 * time.Millisecond
	for {
		ok, err := r.Client.SetNX(ctx, key, token, ttl).Result()
		switch {
		case err != nil && ctx.Err() != nil: // the deadline fell during the call
			return nil, fmt.Errorf("storage.LockUser: %w", ErrLockTimeout)
		case err != nil:
			return nil, fmt.Errorf("storage.LockUser: %w", err)
		}
		if ok {
			return r.heldLock(ctx, key, token, ttl), nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("storage.LockUser: %w", ErrLockTimeout)
		case <-time.After(wait):
		}
		wait = min(wait*2, 50*time.Millisecond)
	}
}

// UserLock is a held per-user lock, renewed until it is released.
type UserLock struct {
	r          *Redis
	ctx        context.Context
	key, token string
	stop       chan struct{}
	stopOnce   sync.Once
	once       sync.Once
	released   atomic.Bool // by the write that ended the turn
}

func (r *Redis) heldLock(ctx context.Context, key, token string, ttl time.Duration) *UserLock {
	return &UserLock{r: r, ctx: ctx, key: key, token: token, stop: r.keepLocked(key, token, ttl)}
}

// stopRenewing ends the renewal. The write that releases the lock stops it
// first, so a renewal cannot find the lock gone and report it lost; the
// lock's time left (a third of its life at least) covers that write.
func (l *UserLock) stopRenewing() { l.stopOnce.Do(func() { close(l.stop) }) }

// Unlock stops the renewal and releases the lock, unless the turn's last
// write released it already.
func (l *UserLock) Unlock() {
	l.once.Do(func() {
		l.stopRenewing()
		if l.released.Load() {
			return
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(l.ctx), 2*time.Second)
		defer cancel()
		compareAndDelete.Run(ctx, l.r.Client, []string{l.key}, l.token)
	})
}

// keepLocked renews a held lock until stop is closed or the lock is lost.
func (r *Redis) keepLocked(key, token string, ttl time.Duration) chan struct{} {
	stop := make(chan struct{})
	go func() {
		tick := time.NewTicker(ttl / 3)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), ttl/3)
			held, err := compareAndExpire.Run(ctx, r.Client, []string{key}, token, ttl.Milliseconds()).Int()
			cancel()
			switch {
			case err != nil:
				slog.Default().Warn("user lock not renewed; it lapses unless the next try succeeds", "err", err)
			case held == 0:
				slog.Default().Error("user lock lost before it was renewed; another turn of the same user may run")
				return
			}
		}
	}()
	return stop
}
