package storage

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// SeenBuffer holds back the "last seen" write of turns that need nothing
// else from it, and writes what gathered in one statement every interval:
// a reply to 帮助 or a step mid-conversation then costs the database
// nothing, where a write and a commit each would cap the replies a second
// at the disk's commits a second. What waits is only when a user last
// wrote and which conversation they left open; a crash loses at most one
// interval of it (a resident looks a second less recent). Follows,
// unfollows and QR scans are never held back.
type SeenBuffer struct {
	DB  *DB
	Log *slog.Logger

	mu      sync.Mutex
	pending map[string]UserSeen
}

// Add holds s back until the next Flush; a later turn of the same user
// replaces it.
func (b *SeenBuffer) Add(s UserSeen) {
	if s.At.IsZero() {
		s.At = b.DB.now()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pending == nil {
		b.pending = map[string]UserSeen{}
	}
	b.pending[s.OpenID] = s
}

// Pending is what waits for openID, if anything.
func (b *SeenBuffer) Pending(openID string) (UserSeen, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.pending[openID]
	return s, ok
}

// Flush writes what waits. What could not be written waits again, unless
// a newer turn of the same user came meanwhile.
func (b *SeenBuffer) Flush(ctx context.Context) error {
	b.mu.Lock()
	batch := b.pending
	b.pending = nil
	b.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	rows := make([]UserSeen, 0, len(batch))
	for _, s := range batch {
		rows = append(rows, s)
	}
	// In one order everywhere, so two flushes at once (a job's and the
	// ticker's, or two instances') cannot lock rows crosswise.
	slices.SortFunc(rows, func(a, b UserSeen) int { return strings.Compare(a.OpenID, b.OpenID) })
	if err := b.DB.upsertUsers(ctx, "SeenBuffer.Flush", rows, true); err != nil {
		b.putBack(rows) // rewriting what went in before the failure moves nothing back
		return err
	}
	return nil
}

func (b *SeenBuffer) putBack(rows []UserSeen) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pending == nil {
		b.pending = map[string]UserSeen{}
	}
	for _, s := range rows {
		if _, newer := b.pending[s.OpenID]; !newer {
			b.pending[s.OpenID] = s
		}
	}
}

// Run flushes every interval until ctx is done, then once more.
func (b *SeenBuffer) Run(ctx context.Context, every time.Duration) {
	log := cmp.Or(b.Log, slog.Default())
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := b.Flush(final); err != nil {
				log.Error("last-seen times not written at shutdown", "err", err)
			}
			return
		case <-tick.C:
		}
		if err := b.Flush(ctx); err != nil && ctx.Err() == nil {
			log.Warn("last-seen times not written; tried again next time", "err", err)
		}
	}
}
