package bot

import (
	"log/slog"
	"net"
	"sync"
	"time"
)

// perIPListener refuses a connection from an address that already holds max
// open ones, so one client cannot hoard the server's connections (slow or
// idle ones held open until a timeout). It closes the excess at once.
type perIPListener struct {
	net.Listener
	max int
	log *slog.Logger

	mu         sync.Mutex
	open       map[string]int
	refused    int
	lastLogged time.Time
}

func limitPerIP(ln net.Listener, max int, log *slog.Logger) net.Listener {
	return &perIPListener{Listener: ln, max: max, log: log, open: map[string]int{}}
}

func (l *perIPListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		if l.admit(ip) {
			return &countedConn{Conn: c, release: sync.OnceFunc(func() { l.release(ip) })}, nil
		}
		c.Close()
	}
}

func (l *perIPListener) admit(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip] < l.max {
		l.open[ip]++
		return true
	}
	// Logged at most every 10 s: a flood must not flood the log too.
	if l.refused++; time.Since(l.lastLogged) > 10*time.Second {
		l.log.Warn("connections refused: too many open from one address", "addr", ip, "max", l.max, "refused", l.refused)
		l.lastLogged, l.refused = time.Now(), 0
	}
	return false
}

func (l *perIPListener) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip]--; l.open[ip] <= 0 {
		delete(l.open, ip)
	}
}

// countedConn gives its place back when closed.
type countedConn struct {
	net.Conn
	release func()
}

func (c *countedConn) Close() error {
	c.release()
	return c.Conn.Close()
}
