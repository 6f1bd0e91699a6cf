// Package bot is jiayi's edge: it wires configuration, storage, flows and the
// WeChat webhook into one HTTP server, with health, readiness and metrics.
package bot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jiayi-health/jiayi/bot/admin"
	"github.com/jiayi-health/jiayi/bot/config"
	"github.com/jiayi-health/jiayi/bot/push"
	"github.com/jiayi-health/jiayi/bot/turn"
	"github.com/jiayi-health/jiayi/bot/wechat"
	"github.com/jiayi-health/jiayi/bot/wechat/sandbox"
	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/flows/profile"
	"github.com/jiayi-health/jiayi/storage"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options are what tests change; production uses the zero value.
type Options struct {
	// Transport replaces the real WeChat API (production mode only; sandbox
	// mode always uses the stand-in).
	Transport http.RoundTripper
	// Now is the clock for signature freshness.
	Now func() time.Time
	// ReplyDeadline overrides the 4 s passive reply deadline.
	ReplyDeadline time.Duration
	// RedisPrefix overrides the "jiayi" key prefix.
	RedisPrefix string
	// ReadTimeout overrides how long a client may take to send a whole
	// request (DefaultReadTimeout).
	ReadTimeout time.Duration
}

// HTTP timeouts: WeChat sends small bodies at once and waits 5 s for the
// answer, so a client slower than this is holding a connection, not
// talking to us.
const (
	DefaultReadTimeout = 10 * time.Second
	writeTimeout       = 30 * time.Second // the admin API may take longer than a reply
	idleTimeout        = 60 * time.Second
)

// Server is one running jiayi instance.
type Server struct {
	Config  config.Config
	DB      *storage.DB
	Redis   *storage.Redis
	Sealer  *storage.Sealer  // personal data at rest
	StandIn *sandbox.StandIn // sandbox mode only
	Turns   *turn.Runner
	Pushes  *push.Dispatcher
	Tags    *push.TagSync

	log          *slog.Logger
	clock        *Clock // moved forward only in sandbox mode
	embedded     *storage.EmbeddedRedis
	unlock       func() // frees the lock on a SQLite database
	readTimeout  time.Duration
	handler      http.Handler
	demoCodes    map[int64]string                              // sandbox: binding codes issued to demo doctors at this start
	demoPassword string                                        // sandbox: the console admin's password
	boot         string                                        // sandbox: names this start, whose stand-in's record begins empty
	qr           func(context.Context, string) (string, error) // asks WeChat for a permanent QR code's URL
	seen         *storage.SeenBuffer                           // turns' "last seen", written together
	stopSeen     func()                                        // stops its writer after a last write
}

// turnsAtOnce bounds the messages one instance works on at once: enough to
// keep two cores busy while turns wait on Redis and the database, few
// enough that they do not slow each other (go-redis keeps 10 connections a
// core). More wait a second for a slot, then are answered "success" and
// replied to by customer-service message.
const turnsAtOnce = 32

// seenEvery is how often the turns' held-back "last seen" times are written.
const seenEvery = 500 * time.Millisecond

// New opens storage, applies migrations and builds the HTTP handler.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, opt Options) (*Server, error) {
	s := &Server{Config: cfg, log: log, clock: NewClock()}
	if err := s.open(ctx, opt); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) open(ctx context.Context, opt Options) error {
	if err := s.openDatabase(ctx); err != nil {
		return err
	}
	if err := s.openRedis(opt); err != nil {
		return err
	}
	account, client := s.openWeChat(opt)
	if err := s.openDispatcher(ctx, client); err != nil {
		return err
	}
	// Whatever commits a push wakes the dispatcher: a signing, a doctor's
	// answer, a job.
	s.DB.OnPushes(s.Pushes.Wake)
	s.seen = &storage.SeenBuffer{DB: s.DB, Log: s.log}
	writing, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.seen.Run(writing, seenEvery) }()
	s.stopSeen = func() { stop(); <-done }
	s.Turns = &turn.Runner{
		Stores:   turn.Stores{DB: s.DB, Redis: s.Redis},
		Engine:   &flows.Engine{DB: s.DB, Sealer: s.Sealer, IdleAfter: s.Config.FlowIdle, Log: s.log, Seen: s.seen},
		Deliver:  client.SendText,
		Log:      s.log,
		Deadline: opt.ReplyDeadline,
	}
	s.qr = client.SceneQRURL
	s.handler = s.routes(account, opt)
	s.readTimeout = opt.ReadTimeout
	return nil
}

// openDatabase connects, migrates, seeds the region's catalog, readies the
// personal-data key and, in sandbox mode, the demo organisation.
func (s *Server) openDatabase(ctx context.Context) (err error) {
	cfg := s.Config
	if s.unlock, err = storage.LockSQLite(cfg.DatabaseURL); err != nil {
		return err
	}
	if s.DB, err = storage.Open(ctx, cfg.DatabaseURL); err != nil {
		return err
	}
	s.DB.SetSandbox(cfg.Sandbox())
	if cfg.Sandbox() { // what the database stamps keeps to the sandbox clock, as the jobs do
		s.DB.SetClock(s.clock.Now)
	}
	if applied, err := s.DB.Migrate(ctx); err != nil {
		return err
	} else if len(applied) > 0 {
		s.log.Info("migrations applied", "names", applied)
	}
	if !cfg.Sandbox() {
		if err := refuseDemoData(ctx, s.DB); err != nil {
			return err
		}
	}
	if err := profile.Ensure(ctx, s.DB, cfg.Region); err != nil {
		return err
	}
	if s.Sealer, err = OpenSealer(ctx, cfg, s.DB, s.log); err != nil {
		return err
	}
	if n, err := flows.SealLegacyGroups(ctx, s.DB, s.Sealer); err != nil {
		return err
	} else if n > 0 {
		s.log.Info("priority groups stored in clear are now sealed", "residents", n)
	}
	if n, err := flows.SealLegacyComments(ctx, s.DB, s.Sealer); err != nil {
		return err
	} else if n > 0 {
		s.log.Info("survey comments stored in clear are now sealed", "surveys", n)
	}
	if n, err := flows.IndexLegacyGroups(ctx, s.DB, s.Sealer); err != nil {
		return err
	} else if n > 0 {
		s.log.Info("priority groups indexed for search", "residents", n)
	}
	if n, err := flows.MaskLegacyResidents(ctx, s.DB, s.Sealer); err != nil {
		return err
	} else if n > 0 {
		s.log.Info("masked ID numbers and phones kept for search", "residents", n)
	}
	if n, err := flows.ClassifyLegacyReadings(ctx, s.DB, s.Sealer); err != nil {
		return err
	} else if n > 0 {
		s.log.Info("visit readings classed for the control rates", "visits", n)
	}
	if cfg.Sandbox() {
		return s.loadDemo(ctx)
	}
	return nil
}

// openRedis connects to JIAYI_REDIS_URL or starts the embedded store.
func (s *Server) openRedis(opt Options) (err error) {
	redisURL := s.Config.RedisURL
	if redisURL == "" {
		if s.embedded, err = storage.StartEmbeddedRedis(); err != nil {
			return err
		}
		redisURL = s.embedded.URL()
		s.log.Info("embedded Redis-protocol store started", "addr", redisURL)
		// Conversations outlive a restart: the store is kept beside SQLite.
		if path := storage.SnapshotFileFor(s.Config.DatabaseURL); path != "" {
			if err := s.embedded.PersistTo(path); err != nil {
				return err
			}
		}
	}
	rdb, err := storage.OpenRedis(redisURL)
	if err != nil {
		return err
	}
	s.Redis = storage.NewRedis(rdb, opt.RedisPrefix)
	return nil
}

// openWeChat points the SDK at WeChat, a gateway, or in sandbox mode the
// in-process stand-in, and builds the client.
func (s *Server) openWeChat(opt Options) (wechat.Account, *wechat.Client) {
	cfg := s.Config
	account := wechat.Account{AppID: cfg.AppID, Secret: cfg.Secret, Token: cfg.Token, AESKey: cfg.AESKey}
	switch {
	case cfg.Sandbox():
		s.StandIn = sandbox.New()
		s.boot = strconv.FormatInt(time.Now().UnixNano(), 36)
		s.StandIn.Now = s.clock.Now // what it records is stamped with the sandbox time the person would see
		account.Secret = s.StandIn.Secret()
		wechat.UseTransport(sandbox.Transport{})
		s.log.Warn("SANDBOX MODE: JIAYI_WECHAT_SECRET is empty, nothing reaches WeChat; " +
			"outbound messages are recorded and shown at GET /sandbox/outbox?to=OPENID")
	case opt.Transport != nil:
		wechat.UseTransport(opt.Transport)
	default:
		wechat.UseTransport(http.DefaultTransport)
	}
	if cfg.WeChatAPI != "" && !cfg.Sandbox() {
		wechat.UseAPIBase(cfg.WeChatAPI)
	}
	return account, wechat.NewClient(account, s.Redis.Client, s.Redis.Prefix)
}

// quietHours reads the programme's quiet hours through flows.Settings, the
// accessor every rule goes through, at most once a minute: a profile loaded
// while the server runs applies within a minute.
func (s *Server) quietHours() func(context.Context) (profile.QuietHours, error) {
	var mu sync.Mutex
	var quiet profile.QuietHours
	var readAt time.Time
	return func(ctx context.Context) (profile.QuietHours, error) {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(readAt) < time.Minute {
			return quiet, nil
		}
		settings, err := flows.Settings(ctx, s.DB)
		if err != nil {
			return profile.QuietHours{}, err
		}
		quiet, readAt = settings.Quiet(), time.Now()
		return quiet, nil
	}
}

// openDispatcher sets up the push dispatcher with the configured templates
// (one per kind in sandbox mode) and the profile's quiet hours.
func (s *Server) openDispatcher(ctx context.Context, client *wechat.Client) error {
	cfg := s.Config
	templates := cfg.Templates
	if cfg.Sandbox() {
		templates = map[string]string{}
		for _, kind := range flows.PushKinds {
			templates[kind] = "sandbox_" + kind
		}
	}
	s.Pushes = &push.Dispatcher{DB: s.DB, Send: client, Mass: client, Templates: templates, Fields: cfg.Fields, Log: s.log, Now: s.clock.Now,
		Lease: cfg.OutboxLease, Workers: cfg.PushWorkers, Quiet: s.quietHours(), DailyQuota: cfg.DailyQuota, Rates: cfg.Rates,
		QuotaHit: func(err error) bool { return wechat.ErrCode(err) == 45009 },
		Permanent: func(err error) bool {
			switch wechat.ErrCode(err) {
			case 43004, 40003, 40037, 43101: // unfollowed, bad openid, bad template, refused subscription
				return true
			}
			return false
		}}
	s.Tags = &push.TagSync{DB: s.DB, Sealer: s.Sealer, WeChat: client, Now: s.clock.Now,
		Lock: func(ctx context.Context) (func(), error) { return s.Redis.LockUser(ctx, tagSyncLock, time.Minute) }}
	s.Pushes.SyncTag = s.Tags.SyncTag
	return nil
}

// tagSyncLock names the lock one tag sync at a time holds across instances
// (a user lock, under a name no openid has).
const tagSyncLock = "jiayi:tag-sync"

// Handler is the server's HTTP handler (tests use it with httptest).
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes(account wechat.Account, opt Options) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	// Only the configured proxies' X-Forwarded-For names a client (the
	// console's sign-in throttle counts by client); by default the peer does.
	if err := r.SetTrustedProxies(s.Config.TrustedProxies); err != nil {
		s.log.Error("JIAYI_TRUSTED_PROXIES ignored", "err", err)
	}
	r.Use(s.accessLog, gin.CustomRecovery(func(c *gin.Context, rec any) {
		s.log.Error("handler panicked", "route", c.FullPath(), "panic", fmt.Sprint(rec))
		c.AbortWithStatus(http.StatusInternalServerError)
	}))

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := wechat.NewMetrics(reg)
	s.Turns.Panicked = metrics.TurnPanicked
	hook := &wechat.Webhook{
		Signer:          wechat.Signer{Token: account.Token, AppID: account.AppID, AESKey: account.AESKey, Now: opt.Now},
		Turns:           s.Turns,
		Metrics:         metrics,
		Log:             s.log,
		Requests:        s.Redis,
		Senders:         s.Redis,
		Ahead:           s.sandboxAhead(),
		MaxPerMinute:    s.Config.MaxPerMinute,
		AcceptPlaintext: s.Config.AcceptPlaintext,
		Slots:           make(chan struct{}, turnsAtOnce),
		MassFinished: func(ctx context.Context, r storage.MassResult) error {
			found, err := s.DB.RecordMassResult(ctx, r)
			if err == nil && !found {
				s.log.Info("mass-send results for a job jiayi did not send", "msg_id", r.MsgID)
			}
			return err
		},
	}
	r.GET("/wechat", hook.Verify)
	r.POST("/wechat", hook.Receive)
	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", s.ready)
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	(&admin.API{DB: s.DB, Redis: s.Redis, Sealer: s.Sealer, Token: s.Config.AdminToken, BindingTTL: s.Config.BindingTTL,
		Log: s.log, QR: s.qr, Now: s.clock.Now}).Register(r)
	if s.StandIn != nil {
		r.GET("/sandbox/outbox", loopbackOnly, s.outbox)
		r.GET("/sandbox/demo", loopbackOnly, s.demo)
		r.GET("/sandbox/clock", loopbackOnly, s.showClock)
		r.POST("/sandbox/clock", loopbackOnly, s.moveClock)
		s.registerSimulator(r, account)
		s.StandIn.MassFinished = s.reportMassJob(account)
	}
	return r
}

// accessLog logs each request by route, never its query (signatures,
// openids) or body (what residents wrote).
func (s *Server) accessLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	level := slog.LevelInfo
	if strings.HasPrefix(route, "/sandbox/") {
		level = slog.LevelDebug // a simulator asks every second: it would bury the rest
	}
	s.log.Log(c.Request.Context(), level, "http", "method", c.Request.Method, "route", route, "status", c.Writer.Status(),
		"ms", time.Since(start).Milliseconds())
}

// loopbackOnly hides the sandbox routes from anyone not on this machine. It
// looks at the connection, not at headers a client could forge, and also
// refuses what reaches it from elsewhere through this machine: a request
// relayed by a proxy (X-Forwarded-For, X-Real-IP, Via, …), or one whose Host is
// not a loopback name (a page on another site that rebinds its DNS name to
// 127.0.0.1). A write must be JSON, which a page on another site cannot
// send here without a CORS preflight this server never grants.
func loopbackOnly(c *gin.Context) {
	host, _, err := net.SplitHostPort(c.Request.RemoteAddr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() || !loopbackHost(c.Request.Host) ||
		proxied(c.Request.Header) {
		c.AbortWithStatus(http.StatusNotFound)
		return
	}
	if c.Request.Method != http.MethodGet && c.Request.Method != http.MethodHead {
		if site := c.GetHeader("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
			c.AbortWithStatus(http.StatusForbidden)
			return
		}
		if ct, _, _ := strings.Cut(c.ContentType(), ";"); ct != "application/json" {
			c.JSON(http.StatusUnsupportedMediaType, gin.H{"error": "send JSON with Content-Type: application/json"})
			c.Abort()
			return
		}
	}
	c.Next()
}

// proxied reports whether a request carries what a reverse proxy adds; a
// proxy on this machine would otherwise make the sandbox public.
func proxied(h http.Header) bool {
	for _, name := range []string{"X-Forwarded-For", "Forwarded", "X-Real-Ip", "X-Forwarded-Host", "X-Forwarded-Proto", "Via"} {
		if h.Get(name) != "" {
			return true
		}
	}
	return false
}

// loopbackHost reports whether a Host header names this machine.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ready answers 200 when the database and Redis both answer and residents
// can sign (some community is served by a team), else 503 saying why.
func (s *Server) ready(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	status, code := gin.H{"database": "ok", "redis": "ok"}, http.StatusOK
	if err := s.DB.Ping(ctx); err != nil {
		status["database"], code = "unreachable", http.StatusServiceUnavailable
	}
	if err := s.Redis.Ping(ctx); err != nil {
		status["redis"], code = "unreachable", http.StatusServiceUnavailable
	}
	if status["database"] == "ok" {
		status["organisation"] = "ok"
		if opening, err := s.DB.SigningOpening(ctx); err != nil || !opening.Open() {
			status["organisation"], code = "no community is served by a team yet: residents cannot sign; "+
				"add communities, doctors and teams with jiayi org import (or in the console, by a staff account of an institution)", http.StatusServiceUnavailable
		}
	}
	c.JSON(code, status)
}

// Serve answers on ln until ctx is cancelled, then stops taking requests,
// lets in-flight requests and background turns finish, and returns nil.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	read := cmp.Or(s.readTimeout, DefaultReadTimeout)
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: read, ReadTimeout: read, WriteTimeout: writeTimeout,
		IdleTimeout: idleTimeout}
	errc := make(chan error, 1)
	go func() {
		errc <- srv.Serve(limitPerIP(ln, cmp.Or(s.Config.MaxConnsPerIP, config.DefaultMaxConnsPerIP), s.log))
	}()
	background, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	var jobs sync.WaitGroup
	jobs.Go(func() { s.Pushes.Run(background) })
	s.startJobs(background, &jobs)
	defer func() { stopBackground(); jobs.Wait() }()
	s.log.Info("listening", "addr", ln.Addr().String())
	if s.StandIn != nil {
		if addr, ok := browserAddr(ln.Addr()); ok {
			s.log.Warn("SANDBOX MODE: try it in a browser on this machine: http://" + addr + "/sim")
		} else {
			s.log.Warn("SANDBOX MODE: the simulator (/sim) answers browsers on this machine only, and this address is not loopback; " +
				"listen on :PORT or 127.0.0.1:PORT (JIAYI_ADDR) to use it")
		}
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down: draining in-flight requests")
	drain, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := srv.Shutdown(drain)
	s.Turns.Wait()
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return err
}

// Close releases storage. Safe on a partly built server.
func (s *Server) Close() {
	if s.stopSeen != nil {
		s.stopSeen() // before the database closes: the last "last seen" times go first
	}
	if s.Redis != nil {
		s.Redis.Client.Close()
	}
	if s.embedded != nil {
		s.embedded.Close()
	}
	if s.DB != nil {
		s.DB.Close()
	}
	if s.StandIn != nil {
		s.StandIn.Close()
	}
	if s.unlock != nil {
		s.unlock()
	}
}

// OpenSealer is the sealer of the deployment's personal data: JIAYI_PII_KEY,
// or in sandbox mode the key file beside the database, made on first use;
// a key the database's data was not sealed with is refused.
func OpenSealer(ctx context.Context, cfg config.Config, db *storage.DB, log *slog.Logger) (*storage.Sealer, error) {
	key := cfg.PIIKey
	if key == nil { // sandbox mode without JIAYI_PII_KEY
		path := storage.KeyFileFor(cfg.DatabaseURL)
		var err error
		if key, err = storage.LoadOrCreateKey(path); err != nil {
			return nil, err
		}
		log.Warn("personal data is encrypted with a generated sandbox key; set JIAYI_PII_KEY for real data", "key_file", path)
	}
	sealer, err := storage.NewSealer(key)
	if err != nil {
		return nil, err
	}
	if err := db.CheckKey(ctx, sealer); errors.Is(err, storage.ErrKeyMismatch) {
		return nil, fmt.Errorf("JIAYI_PII_KEY is not the key this database's personal data was encrypted with; " +
			"start with the key it was made with (in sandbox mode, the key file beside the SQLite database, or jiayi.pii-key in the directory started from when the database is PostgreSQL)")
	} else if err != nil {
		return nil, err
	}
	return sealer, nil
}

// browserAddr is how a browser on this machine reaches a listener over
// loopback, as the sandbox pages require: an unspecified host (":8080") is
// localhost; false when the listener is on another address only.
func browserAddr(a net.Addr) (string, bool) {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "", false
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil || ip.IsUnspecified():
		host = "localhost"
	case !ip.IsLoopback():
		return "", false
	}
	return net.JoinHostPort(host, port), true
}
