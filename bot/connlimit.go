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

	every time.Duration // refusals are logged at most this often

	mu         sync.Mutex
	open       map[string]int
	refused    int    // since the last line
	refusedIP  string // the latest refused
	lastLogged time.Time
	due        bool // a line for refusals since the last is scheduled
}

func limitPerIP(ln net.Listener, max int, log *slog.Logger) net.Listener {
	return &perIPListener{Listener: ln, max: max, log: log, open: map[string]int{}, every: 10 * time.Second}
}

// Close logs the refusals not logged yet, then closes.
func (l *perIPListener) Close() error {
	l.mu.Lock()
	l.logRefusedNow()
	l.mu.Unlock()
	return l.Listener.Close()
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
	l.refused, l.refusedIP = l.refused+1, ip
	l.logRefused()
	return false
}

// logRefused logs refusals at most every l.every, so a flood does not flood
// the log too. Refusals after a line are counted in one at the end of the
// interval, even if the flood is over by then: every refusal is in a line.
// l.mu is held.
func (l *perIPListener) logRefused() {
	wait := l.every - time.Since(l.lastLogged)
	if wait <= 0 {
		l.logRefusedNow()
		return
	}
	if !l.due {
		l.due = true
		time.AfterFunc(wait, func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.due = false
			l.logRefusedNow()
		})
	}
}

func (l *perIPListener) logRefusedNow() {
	if l.refused == 0 {
		return
	}
	l.log.Warn("connections refused: too many open from one address", "addr", l.refusedIP, "max", l.max, "refused", l.refused)
	l.lastLogged, l.refused = time.Now(), 0
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
