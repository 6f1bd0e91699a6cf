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

// An address holding max connections has the next one closed at once; a
// closed one gives its place back; and every refusal is counted in the
// log, the ones after a line too, though the log is written at most once
// an interval.
func TestConnectionsPerAddress(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	ln := limitPerIP(raw, 1, slog.New(slog.NewTextHandler(logs, nil))).(*perIPListener)
	ln.every = 200 * time.Millisecond
	defer ln.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	refusedAtOnce := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err := c.Read(make([]byte, 1))
		return err == io.EOF
	}

	dial()
	held := <-accepted
	for range 4 {
		if c := dial(); !refusedAtOnce(c) {
			t.Fatal("a second connection from the address was kept open")
		}
	}
	held.Close()
	dial()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(2 * time.Second):
		t.Fatal("a closed connection did not give its place back")
	}

	counts := regexp.MustCompile(`refused=(\d+)`)
	deadline := time.Now().Add(2 * time.Second)
	for {
		total, lines := 0, counts.FindAllStringSubmatch(logs.String(), -1)
		for _, m := range lines {
			n, _ := strconv.Atoi(m[1])
			total += n
		}
		if total == 4 && len(lines) == 2 { // the first at once, the other three at the interval's end
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log counted %d refusals in %d lines, want 4 in 2:\n%s", total, len(lines), logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
