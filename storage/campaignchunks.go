package storage

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// CampaignChunk is one share of a campaign's expansion: the residents with
// IDs after FirstID up to LastID.
type CampaignChunk struct {
	Chunk   int   `db:"chunk"`
	FirstID int64 `db:"first_id"` // exclusive
	LastID  int64 `db:"last_id"`
}

// ChunkBy says what a campaign's chunks split by ID.
type ChunkBy string

const (
	ByResident ChunkBy = "residents" // a seasonal campaign
	ByContract ChunkBy = "contracts" // a day's personal reminders
)

// StartCampaign records a campaign for a year unless one is recorded, and
// splits its residents or contracts, as they are now, into chunks of size
// by ID for instances to claim (see ClaimChunk). It says whether the
// campaign has already finished. The last chunk is open-ended, so a
// resident written while the chunks were being made is in one. A campaign
// recorded before chunks existed gets them here.
func (db *DB) StartCampaign(ctx context.Context, code string, year int, now time.Time, size int64, by ChunkBy) (finished bool, err error) {
	const op = "StartCampaign"
	if by != ByResident && by != ByContract {
		return false, fail(op, fmt.Errorf("no chunks by %q", by))
	}
	err = db.inTx(ctx, op, func(tx *DB) error {
		if _, err := tx.exec(ctx, op, `INSERT INTO campaigns (code, year, started_at) VALUES (?, ?, ?)
			ON CONFLICT (code, year) DO NOTHING`, code, year, now.UTC()); err != nil {
			return err
		}
		var state struct {
			Finished bool `db:"finished"`
			Chunks   int  `db:"chunks"`
		}
		if err := tx.get(ctx, op, &state, `SELECT finished_at IS NOT NULL AS finished,
			(SELECT COUNT(*) FROM campaign_chunks k WHERE k.code = c.code AND k.year = c.year) AS chunks
			FROM campaigns c WHERE code = ? AND year = ?`, code, year); err != nil {
			return err
		}
		if finished = state.Finished; finished || state.Chunks > 0 {
			return nil
		}
		var ids struct {
			First int64 `db:"first"`
			Last  int64 `db:"last"`
		}
		if err := tx.get(ctx, op, &ids, `SELECT COALESCE(MIN(id), 1) - 1 AS first, COALESCE(MAX(id), 0) AS last FROM `+string(by)); err != nil {
			return err
		}
		var rows [][]any
		for from, k := ids.First, 0; k == 0 || from < ids.Last; from, k = from+size, k+1 {
			to := from + size
			if to >= ids.Last {
				to = math.MaxInt64
			}
			rows = append(rows, []any{code, year, k, from, to})
		}
		// Two instances starting at once make the same chunks, or one more
		// open-ended one: every resident is still in a chunk.
		_, err := tx.insertMany(ctx, op, `INSERT INTO campaign_chunks (code, year, chunk, first_id, last_id) VALUES`,
			`ON CONFLICT (code, year, chunk) DO NOTHING`, rows)
		return err
	})
	return finished, err
}

// ClaimChunk leases the next chunk of a campaign that no one is expanding:
// never claimed, or claimed by an instance that has not finished it
// within lease (died). ok is false when there is none.
func (db *DB) ClaimChunk(ctx context.Context, code string, year int, now time.Time, lease time.Duration) (c CampaignChunk, ok bool, err error) {
	now = claimTime(now)
	lock := ""
	if db.Dialect == Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	err = db.get(ctx, "ClaimChunk", &c, `UPDATE campaign_chunks SET started_at = ?
		WHERE code = ? AND year = ? AND chunk = (SELECT chunk FROM campaign_chunks WHERE code = ? AND year = ?
			AND finished_at IS NULL AND (started_at IS NULL OR started_at < ?) ORDER BY chunk LIMIT 1`+lock+`)
		RETURNING chunk, first_id, last_id`, now.UTC(), code, year, code, year, now.Add(-lease).UTC())
	if errors.Is(err, ErrNotFound) {
		return c, false, nil
	}
	return c, err == nil, err
}

// ClaimSameChunk leases a campaign's chunk of the same number and the same
// residents as one claimed of another (two seasonal entries due on one
// day), if no one is expanding it, so both are expanded over one read.
func (db *DB) ClaimSameChunk(ctx context.Context, code string, year int, as CampaignChunk, now time.Time, lease time.Duration) (bool, error) {
	now = claimTime(now)
	n, err := db.exec(ctx, "ClaimSameChunk", `UPDATE campaign_chunks SET started_at = ?
		WHERE code = ? AND year = ? AND chunk = ? AND first_id = ? AND last_id = ?
		AND finished_at IS NULL AND (started_at IS NULL OR started_at < ?)`,
		now.UTC(), code, year, as.Chunk, as.FirstID, as.LastID, now.Add(-lease).UTC())
	return n > 0, err
}

// ReleaseChunk hands back a chunk claimed at claimedAt that its instance
// could not run (a failure, a shutdown), so the next run takes it at once
// rather than after the lease. One claimed since by another is left alone.
func (db *DB) ReleaseChunk(ctx context.Context, code string, year, chunk int, claimedAt time.Time) error {
	_, err := db.exec(ctx, "ReleaseChunk", `UPDATE campaign_chunks SET started_at = NULL
		WHERE code = ? AND year = ? AND chunk = ? AND started_at = ? AND finished_at IS NULL`, code, year, chunk, claimTime(claimedAt))
	return err
}

// claimTime is a claim's moment to the microsecond, as PostgreSQL keeps
// it, so ReleaseChunk can name the claim.
func claimTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// FinishChunk records a chunk expanded, with the pushes it enqueued.
func (db *DB) FinishChunk(ctx context.Context, code string, year, chunk, pushes int, now time.Time) error {
	_, err := db.exec(ctx, "FinishChunk", `UPDATE campaign_chunks SET finished_at = ?, pushes = ?
		WHERE code = ? AND year = ? AND chunk = ?`, now.UTC(), pushes, code, year, chunk)
	return err
}

// FinishChunkedCampaign finishes a campaign whose every chunk is expanded,
// with their pushes, as FinishCampaign does, and forgets its chunks; it
// says whether this call did. Each instance asks after its last chunk: the
// last to finish one sees them all finished.
func (db *DB) FinishChunkedCampaign(ctx context.Context, code string, year int, now time.Time) (done bool, err error) {
	const op = "FinishChunkedCampaign"
	err = db.inTx(ctx, op, func(tx *DB) error {
		n, err := tx.exec(ctx, op, `UPDATE campaigns SET finished_at = ?, through = COALESCE(through, started_at),
			pushes = (SELECT COALESCE(SUM(k.pushes), 0) FROM campaign_chunks k WHERE k.code = campaigns.code AND k.year = campaigns.year)
			WHERE code = ? AND year = ? AND finished_at IS NULL AND NOT EXISTS (SELECT 1 FROM campaign_chunks k
				WHERE k.code = campaigns.code AND k.year = campaigns.year AND k.finished_at IS NULL)`, now.UTC(), code, year)
		if done = n > 0; !done || err != nil {
			return err
		}
		_, err = tx.exec(ctx, op, `DELETE FROM campaign_chunks WHERE code = ? AND year = ?`, code, year)
		return err
	})
	return done, err
}
