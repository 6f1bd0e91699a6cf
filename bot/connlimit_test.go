package bot

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a log sink written from the listener's timer.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// Every refusal is counted in the log, though it is written at most once
// an interval: those after a line at the interval's end, or when the
// listener closes. (TestConnectionsPerAddressAreCapped covers the cap.)
func TestEveryRefusedConnectionIsLogged(t *testing.T) {
	for _, c := range []struct {
		name  string
		every time.Duration
		lines int // at least
	}{{"at the interval's end", 200 * time.Millisecond, 2}, {"on close", time.Hour, 2}} {
		t.Run(c.name, func(t *testing.T) {
			raw, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			logs := &lockedBuffer{}
			ln := limitPerIP(raw, 1, slog.New(slog.NewTextHandler(logs, nil))).(*perIPListener)
			ln.every = c.every
			accepted := make(chan net.Conn, 10)
			go func() {
				for {
					conn, err := ln.Accept()
					if err != nil {
						return
					}
					accepted <- conn
				}
			}()
			dial := func() net.Conn {
				t.Helper()
				conn, err := net.Dial("tcp", raw.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { conn.Close() })
				return conn
			}
			dial()
			<-accepted
			for range 4 {
				conn := dial()
				conn.SetReadDeadline(time.Now().Add(2 * time.Second))
				if _, err := conn.Read(make([]byte, 1)); err != io.EOF {
					t.Fatalf("a connection past the cap was kept open: %v", err)
				}
			}
			if c.every == time.Hour {
				ln.Close()
			} else {
				defer ln.Close()
			}
			counts := regexp.MustCompile(`refused=(\d+)`)
			for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				total, lines := 0, counts.FindAllStringSubmatch(logs.String(), -1)
				for _, m := range lines {
					n, _ := strconv.Atoi(m[1])
					total += n
				}
				if total == 4 && len(lines) >= c.lines {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("the log counted %d refusals in %d lines, want 4 in %d or more:\n%s", total, len(lines), c.lines, logs.String())
				}
			}
		})
	}
}
