package flows

import (
	"context"
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

// runChunks takes part in a job split into chunks (a seasonal campaign, a
// day's personal reminders) with any other instances: it starts the job
// unless one has, runs each chunk no instance is running, records it, and
// finishes the job when it finds no chunk left to claim. finished says the
// job had already finished before this call, which then does nothing.
// at is the real time now: leases must not be taken as of when a long
// pass began.
func runChunks(ctx context.Context, db *storage.DB, code string, year int, at func() time.Time, size int64, by storage.ChunkBy,
	run func(context.Context, storage.CampaignChunk) (int, error)) (total int, finished bool, err error) {
	if finished, err = db.StartCampaign(ctx, code, year, at(), size, by); finished || err != nil {
		return 0, finished, err
	}
	for {
		chunk, ok, err := db.ClaimChunk(ctx, code, year, at(), chunkLease)
		if err != nil {
			return total, false, err
		}
		if !ok {
			_, err = db.FinishChunkedCampaign(ctx, code, year, at())
			return total, false, err
		}
		n, err := run(ctx, chunk)
		total += n
		if err != nil {
			return total, false, err
		}
		if err := db.FinishChunk(ctx, code, year, chunk.Chunk, n, at()); err != nil {
			return total, false, err
		}
	}
}

// realTime is now moved on by the real time passed since the call.
func realTime(now time.Time) func() time.Time {
	began := time.Now()
	return func() time.Time { return now.Add(time.Since(began)) }
}
