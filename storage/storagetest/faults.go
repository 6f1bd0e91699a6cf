package storagetest

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"sync"
	"testing"

	"github.com/jiayi-health/jiayi/storage"
)

// Proxy stands between the code under test and a real server (PostgreSQL,
// Redis) on loopback, so a test can take the server away the ways it goes
// away in production without touching the machine's own services: Cut is a
// stopped server (connections reset, new ones refused), Freeze a frozen one
// (connections stay open and nothing comes back, like SIGSTOP), Resume the
// server back.
type Proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	state  proxyState
	conns  map[net.Conn]struct{}
	thawed chan struct{} // closed when a freeze ends
}

type proxyState int

const (
	proxyUp proxyState = iota
	proxyCut
	proxyFrozen
)

// NewProxy starts a proxy to target (host:port) for the rest of the test.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}, thawed: make(chan struct{})}
	close(p.thawed)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Addr is where clients connect instead of the server.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut drops every connection and refuses new ones until Resume.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.thawLocked()
	p.state = proxyCut
	for c := range p.conns {
		c.Close()
	}
}

// Freeze stops forwarding in both directions, on open and new connections,
// until Resume.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state != proxyFrozen {
		p.state = proxyFrozen
		p.thawed = make(chan struct{})
	}
}

// Resume brings the server back.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.thawLocked()
	p.state = proxyUp
}

func (p *Proxy) thawLocked() {
	select {
	case <-p.thawed:
	default:
		close(p.thawed)
	}
}

func (p *Proxy) close() {
	p.ln.Close()
	p.Cut()
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.state == proxyCut
		if !cut {
			p.conns[c] = struct{}{}
		}
		p.mu.Unlock()
		if cut {
			c.Close()
			continue
		}
		go p.serve(c)
	}
}

func (p *Proxy) serve(client net.Conn) {
	defer func() {
		p.mu.Lock()
		delete(p.conns, client)
		p.mu.Unlock()
		client.Close()
	}()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.conns[server] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, server)
		p.mu.Unlock()
		server.Close()
	}()
	done := make(chan struct{}, 2)
	go func() { p.pipe(server, client); done <- struct{}{} }()
	go func() { p.pipe(client, server); done <- struct{}{} }()
	<-done
}

// pipe copies src to dst, holding each chunk while the proxy is frozen.
func (p *Proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.waitThawed() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				dst.Close()
			}
			return
		}
	}
}

// waitThawed blocks while frozen; false when the proxy was cut meanwhile.
func (p *Proxy) waitThawed() bool {
	p.mu.Lock()
	thawed := p.thawed
	p.mu.Unlock()
	<-thawed
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state != proxyCut
}

// PostgresBehindProxy is Postgres reached through a Proxy: a fresh migrated
// database of its own on the JIAYI_TEST_DATABASE_URL server, which the test
// can stop and freeze. It is unavailable (a failure in CI) without that
// server.
func PostgresBehindProxy(t testing.TB) (*storage.DB, *Proxy, string) {
	t.Helper()
	adminURL := os.Getenv("JIAYI_TEST_DATABASE_URL")
	if adminURL == "" {
		unavailable(t, "JIAYI_TEST_DATABASE_URL is not set")
	}
	_, directURL := postgresWithURL(t, adminURL)
	u, err := url.Parse(directURL)
	if err != nil {
		t.Fatal(err)
	}
	p := NewProxy(t, u.Host)
	u.Host = p.Addr()
	db, err := storage.Open(context.Background(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	remember(t, db, directURL)
	return db, p, u.String()
}

// RedisBehindProxy is a Redis reached through a Proxy, under a key prefix of
// its own: the embedded store, or the JIAYI_TEST_REDIS_URL server when real
// is true (unavailable without it).
func RedisBehindProxy(t testing.TB, real bool) (*storage.Redis, *Proxy, string) {
	t.Helper()
	var target *storage.Redis
	var rawURL string
	if real {
		rawURL = os.Getenv("JIAYI_TEST_REDIS_URL")
		if rawURL == "" {
			unavailable(t, "JIAYI_TEST_REDIS_URL is not set")
		}
		target = RealRedis(t, rawURL)
	} else {
		target, rawURL = embeddedWithURL(t)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	p := NewProxy(t, u.Host)
	u.Host = p.Addr()
	c, err := storage.OpenRedis(u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return storage.NewRedis(c, target.Prefix), p, u.String()
}
