package bot

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Clock is the time the background jobs, the dispatcher, the console and
// the conversations run on. In production it is the real time. In sandbox
// mode it can be moved forward (POST /sandbox/clock), so the reminders,
// agendas, renewals and expiries that fall due on a later day can be seen
// now; it never goes back, so nothing due is undone.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
	moved  chan struct{} // closed at each move, so waiting jobs look again at once
}

// NewClock is a clock at the real time.
func NewClock() *Clock { return &Clock{moved: make(chan struct{})} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// ErrClockBackwards says a move would take the clock back.
var ErrClockBackwards = errors.New("the sandbox clock only moves forward")

// maxOffset keeps the offset far from overflowing: a century ahead.
const maxOffset = 100 * 366 * 24 * time.Hour

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.advanceLocked(d)
}

// MoveTo moves the clock forward to t.
func (c *Clock) MoveTo(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.advanceLocked(time.Until(t) - c.offset)
}

func (c *Clock) advanceLocked(d time.Duration) error {
	if d <= 0 {
		return ErrClockBackwards
	}
	if d > maxOffset-c.offset {
		return ErrClockTooFar
	}
	c.offset += d
	close(c.moved)
	c.moved = make(chan struct{})
	return nil
}

// ErrClockTooFar says a move would take the clock more than a century ahead.
var ErrClockTooFar = errors.New("the sandbox clock goes at most a century ahead")

// setOffset puts the clock where a previous run of the sandbox left it.
func (c *Clock) setOffset(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d > 0 && d <= maxOffset {
		c.offset = d
	}
}

// Offset is how far the clock is ahead of the real time.
func (c *Clock) Offset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
}

// moves is closed at the clock's next move. A job takes it before its
// pass, so a move during the pass is not missed.
func (c *Clock) moves() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.moved
}

// wait returns after d of real time, or sooner if the clock moved since
// moved was taken; false if ctx ended first.
func (c *Clock) wait(ctx context.Context, moved <-chan struct{}, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-moved:
	case <-time.After(d):
	}
	return true
}
