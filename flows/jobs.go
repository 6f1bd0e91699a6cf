package flows

import (
	"context"
	"sync/atomic"
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
