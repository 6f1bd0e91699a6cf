package flows

import (
	"cmp"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jiayi-health/jiayi/storage"
)

// JobRun is what one run of a background job did, as `jiayi jobs run
// --once` prints it: the residents, contracts or other rows it read or
// changed, the pushes it enqueued, and how long it took.
type JobRun struct {
	Rows    int     `json:"rows"`
	Pushes  int     `json:"pushes"`
	Seconds float64 `json:"seconds"`
	Skipped string  `json:"skipped,omitempty"` // why it did not run
	// Unfinished says why it stopped short (another instance holds part).
	Unfinished string `json:"unfinished,omitempty"`
}

// A job's rows are counted where they are read, deep in a pass; a counter
// in the context gathers them without every function on the way returning
// one more number.
type tallyKey struct{}

// CountingRows returns a context whose jobs add the rows they read to n.
func CountingRows(ctx context.Context, n *atomic.Int64) context.Context {
	return context.WithValue(ctx, tallyKey{}, n)
}

// countRows adds rows read to the count the context carries, if any.
func countRows(ctx context.Context, rows int) {
	if n, ok := ctx.Value(tallyKey{}).(*atomic.Int64); ok {
		n.Add(int64(rows))
	}
}

// chunkLease is how long an instance may take over one chunk of a job
// before another takes it over as dead.
const chunkLease = 30 * time.Minute

// chunkWorkers is how many chunks an instance runs at once.
const chunkWorkers = 2

// chunkRun runs one chunk of the jobs named, reading its rows once, and
// says what it enqueued for each.
type chunkRun func(ctx context.Context, chunk storage.CampaignChunk, codes []string) (map[string]int, error)

// runChunks takes part in jobs split into chunks (the seasonal campaigns
// due on a day, a day's personal reminders) with any other instances: it
// starts each unless one has, runs each chunk no instance is running and
// records it, and finishes the jobs when it finds no chunk left to claim.
// Jobs over the same rows run a chunk together when their chunks match,
// so run reads the rows once for all of them and says what each enqueued.
// finished names the jobs that had finished before the call, which it
// leaves alone; unfinished says some are not finished after it (another
// instance holds a chunk, or held one and died: it is taken over when its
// lease passes). at is the real time now: leases must not be taken as of
// when a long pass began.
func runChunks(ctx context.Context, db *storage.DB, codes []string, year int, at func() time.Time, size int64, by storage.ChunkBy,
	run chunkRun) (total int, finished map[string]bool, unfinished bool, err error) {
	finished = map[string]bool{}
	var open []string
	for _, code := range codes {
		done, err := db.StartCampaign(ctx, code, year, at(), size, by)
		if err != nil {
			return 0, finished, true, err
		}
		if done {
			finished[code] = true
		} else {
			open = append(open, code)
		}
	}
	// Two at once: while one chunk waits on the database, the other's
	// reminders are made.
	var mu sync.Mutex
	var failed error
	var wg sync.WaitGroup
	for range chunkWorkers {
		wg.Go(func() {
			for {
				counts, more, err := runOneChunk(ctx, db, open, year, at, run)
				mu.Lock()
				for _, n := range counts {
					total += n
				}
				failed = cmp.Or(failed, err)
				stop := failed != nil || !more
				mu.Unlock()
				if stop {
					return
				}
			}
		})
	}
	wg.Wait()
	if failed != nil {
		return total, finished, true, failed
	}
	for _, code := range open {
		did, err := db.FinishChunkedCampaign(ctx, code, year, at())
		if err != nil {
			return total, finished, true, err
		}
		if !did { // finished by another instance just now, or still held
			_, done, err := db.CampaignThrough(ctx, code, year)
			if err != nil {
				return total, finished, true, err
			}
			unfinished = unfinished || !done
		}
	}
	return total, finished, unfinished, nil
}

// runOneChunk claims a chunk of the jobs, runs it and records it; more is
// false when there was none left to claim. A chunk it could not run or
// record is handed back for the next run.
func runOneChunk(ctx context.Context, db *storage.DB, codes []string, year int, at func() time.Time, run chunkRun) (counts map[string]int, more bool, err error) {
	claimedAt := at()
	chunk, together, err := claimChunk(ctx, db, codes, year, claimedAt)
	if err != nil || len(together) == 0 {
		return nil, false, err
	}
	counts, err = run(ctx, chunk, together)
	for i, code := range together {
		if err == nil {
			err = db.FinishChunk(ctx, code, year, chunk.Chunk, counts[code], at())
		}
		if err != nil {
			for _, code := range together[i:] {
				// Cancelled at shutdown, it is still handed back.
				if rerr := db.ReleaseChunk(context.WithoutCancel(ctx), code, year, chunk.Chunk, claimedAt); rerr != nil {
					return counts, false, errors.Join(err, rerr)
				}
			}
			return counts, false, err
		}
	}
	return counts, true, nil
}

// claimChunk claims the next chunk of the first of the jobs that has one,
// and the same chunk of the others where no one is running it; together
// names the jobs it claimed it for, none when every chunk is taken.
func claimChunk(ctx context.Context, db *storage.DB, codes []string, year int, now time.Time) (chunk storage.CampaignChunk, together []string, err error) {
	for i, code := range codes {
		c, ok, err := db.ClaimChunk(ctx, code, year, now, chunkLease)
		if err != nil {
			return chunk, nil, err
		}
		if !ok {
			continue
		}
		together = []string{code}
		for _, other := range codes[i+1:] {
			same, err := db.ClaimSameChunk(ctx, other, year, c, now, chunkLease)
			if err != nil {
				return c, nil, err // what it claimed comes back after the lease
			}
			if same {
				together = append(together, other)
			}
		}
		return c, together, nil
	}
	return chunk, nil, nil
}

// realTime is now moved on by the real time passed since the call.
func realTime(now time.Time) func() time.Time {
	began := time.Now()
	return func() time.Time { return now.Add(time.Since(began)) }
}
