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

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) error {
	if d <= 0 {
		return ErrClockBackwards
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
	close(c.moved)
	c.moved = make(chan struct{})
	return nil
}

// MoveTo moves the clock forward to t.
func (c *Clock) MoveTo(t time.Time) error {
	return c.Advance(time.Until(t) - c.Offset())
}

// Offset is how far the clock is ahead of the real time.
func (c *Clock) Offset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
}

// wait returns after d of real time, or sooner if the clock is moved; false
// if ctx ended first.
func (c *Clock) wait(ctx context.Context, d time.Duration) bool {
	c.mu.Lock()
	moved := c.moved
	c.mu.Unlock()
	select {
	case <-ctx.Done():
		return false
	case <-moved:
	case <-time.After(d):
	}
	return true
}
