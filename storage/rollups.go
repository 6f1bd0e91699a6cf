package storage

import (
	"context"
	"database/sql"
	"strings"
	"time"
)

// Rollups keep each team's indicator totals for a period (see migration
// 0030), so a city's figures are a sum of team totals. A team's totals are
// counted by the same statement as a live report (CountIndicators with
// the team set), so the sum is the live figure as of when each team was
// counted.

// RollupTeam is a team and when its totals of a period were counted
// (invalid: never).
type RollupTeam struct {
	TeamID int64        `db:"team_id"`
	AsOf   sql.NullTime `db:"as_of"`
}

// StaleRollups lists up to limit teams whose totals of a period are the
// oldest (never counted first), leaving out those another instance is
// counting since claimedAfter.
func (db *DB) StaleRollups(ctx context.Context, period string, claimedAfter time.Time, limit int) ([]RollupTeam, error) {
	out := []RollupTeam{}
	err := db.sel(ctx, "StaleRollups", &out, `SELECT t.id AS team_id, u.as_of FROM teams t
		LEFT JOIN indicator_rollup_runs u ON u.team_id = t.id AND u.period = ?
		WHERE u.claimed_at IS NULL OR u.claimed_at < ?
		ORDER BY CASE WHEN u.as_of IS NULL THEN 0 ELSE 1 END, u.as_of, t.id LIMIT ?`, period, claimedAfter.UTC(), limit)
	return out, err
}

// ClaimRollup marks a team's totals of a period as being counted by this
// caller, unless another claimed them since claimedAfter; it returns the
// claim (the moment it was made, to the microsecond both databases keep),
// zero when another holds it.
func (db *DB) ClaimRollup(ctx context.Context, period string, teamID int64, now, claimedAfter time.Time) (time.Time, error) {
	const op = "ClaimRollup"
	claim := now.UTC().Truncate(time.Microsecond)
	err := db.inTx(ctx, op, func(tx *DB) error {
		if _, err := tx.exec(ctx, op, `INSERT INTO indicator_rollup_runs (period, team_id) VALUES (?, ?) ON CONFLICT DO NOTHING`,
			period, teamID); err != nil {
			return err
		}
		n, err := tx.exec(ctx, op, `UPDATE indicator_rollup_runs SET claimed_at = ? WHERE period = ? AND team_id = ?
			AND (claimed_at IS NULL OR claimed_at < ?)`, claim, period, teamID, claimedAfter.UTC())
		if n != 1 {
			claim = time.Time{}
		}
		return err
	})
	return claim, err
}

// SaveRollup replaces a team's totals of a period with those counted as of
// asOf under a claim, and releases it. If the claim has lapsed and another
// caller holds the team, nothing is saved: their count stands.
func (db *DB) SaveRollup(ctx context.Context, period string, teamID int64, claim, asOf time.Time, totals []PlaceTotal) error {
	const op = "SaveRollup"
	return db.inTx(ctx, op, func(tx *DB) error {
		// First, so a second saver waits on this row and then finds the
		// claim gone.
		n, err := tx.exec(ctx, op, `UPDATE indicator_rollup_runs SET as_of = ?, claimed_at = NULL WHERE period = ? AND team_id = ?
			AND claimed_at = ?`, asOf.UTC(), period, teamID, claim)
		if err != nil || n == 0 {
			return err
		}
		if _, err := tx.exec(ctx, op, `DELETE FROM indicator_rollups WHERE period = ? AND team_id = ?`, period, teamID); err != nil {
			return err
		}
		const batch = 200
		for start := 0; start < len(totals); start += batch {
			rows := totals[start:min(start+batch, len(totals))]
			args := make([]any, 0, 8*len(rows))
			for _, t := range rows {
				args = append(args, period, teamID, t.InstitutionID, t.CommunityID, t.DoctorID, t.Code, t.Numerator, t.Denominator)
			}
			if _, err := tx.exec(ctx, op, `INSERT INTO indicator_rollups (period, team_id, institution_id, community_id, doctor_id, code, num, den)
				VALUES `+strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?, ?), ", len(rows)), ", "), args...); err != nil {
				return err
			}
		}
		return nil
	})
}

// ReleaseRollup gives up a claim whose count failed, so the next call may
// try the team again at once.
func (db *DB) ReleaseRollup(ctx context.Context, period string, teamID int64, claim time.Time) error {
	_, err := db.exec(ctx, "ReleaseRollup", `UPDATE indicator_rollup_runs SET claimed_at = NULL WHERE period = ? AND team_id = ?
		AND claimed_at = ?`, period, teamID, claim)
	return err
}

// staleRollups marks teams' totals as needing a count, when contracts
// move between them: until both are counted again a sum of their totals
// would count the moved contracts twice or not at all, so reports over
// them count live.
func (db *DB) staleRollups(ctx context.Context, op string, teams ...int64) error {
	_, err := db.execIn(ctx, op, `UPDATE indicator_rollup_runs SET as_of = NULL WHERE team_id IN (?)`, teams)
	return err
}

// DropRollupsExcept deletes the totals of every period but those kept.
func (db *DB) DropRollupsExcept(ctx context.Context, keep []string) error {
	const op = "DropRollupsExcept"
	return db.inTx(ctx, op, func(tx *DB) error {
		for _, table := range []string{"indicator_rollups", "indicator_rollup_runs"} {
			if _, err := tx.execIn(ctx, op, `DELETE FROM `+table+` WHERE period NOT IN (?)`, append([]string{""}, keep...)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Rollup is a scope's totals of a period summed from its teams'.
type Rollup struct {
	Totals   []PlaceTotal
	AsOf     time.Time // when the least recently counted team was counted
	Complete bool      // every team in scope has been counted
}

// RollupTotals sums the kept totals of a period over the teams in scope
// (in one community, when set).
func (db *DB) RollupTotals(ctx context.Context, period string, scope Scope, communityID int64) (Rollup, error) {
	const op = "RollupTotals"
	var r Rollup
	cond, args := scope.where("t.institution_id", "t.doctor_id = ?")
	var runs struct {
		Teams   int `db:"teams"`
		Counted int `db:"counted"`
	}
	if err := db.get(ctx, op, &runs, `SELECT COUNT(*) AS teams, COUNT(u.as_of) AS counted FROM teams t
		LEFT JOIN indicator_rollup_runs u ON u.team_id = t.id AND u.period = ? WHERE `+cond, append([]any{period}, args...)...); err != nil {
		return r, err
	}
	if r.Complete = runs.Teams > 0 && runs.Counted == runs.Teams; !r.Complete {
		return r, nil
	}
	// The oldest count, read as a column (an aggregate of it would reach
	// SQLite's driver as text).
	if err := db.get(ctx, op, &r.AsOf, `SELECT u.as_of FROM teams t JOIN indicator_rollup_runs u ON u.team_id = t.id AND u.period = ?
		WHERE `+cond+` ORDER BY u.as_of LIMIT 1`, append([]any{period}, args...)...); err != nil {
		return r, err
	}
	if communityID != 0 {
		cond += ` AND x.community_id = ?`
		args = append(args, communityID)
	}
	r.Totals = []PlaceTotal{}
	err := db.sel(ctx, op, &r.Totals, `SELECT x.institution_id, x.community_id, x.team_id, x.doctor_id, x.code,
		CAST(SUM(x.num) AS DOUBLE PRECISION) AS num, CAST(SUM(x.den) AS DOUBLE PRECISION) AS den
		FROM indicator_rollups x JOIN teams t ON t.id = x.team_id WHERE x.period = ? AND `+cond+`
		GROUP BY x.institution_id, x.community_id, x.team_id, x.doctor_id, x.code`, append([]any{period}, args...)...)
	return r, err
}

// RollupExtras is what a report from rollups reads live besides: the
// communities in scope, the names of its places and the pushes sent.
func (db *DB) RollupExtras(ctx context.Context, q IndicatorQuery) (IndicatorTotals, error) {
	const op = "RollupExtras"
	var out IndicatorTotals
	if err := db.indicatorScope(ctx, op, q, &out); err != nil {
		return out, err
	}
	return out, db.indicatorPushes(ctx, op, q, &out.Pushes)
}

// TeamCount is how many teams the deployment has.
func (db *DB) TeamCount(ctx context.Context) (int, error) {
	var n int
	err := db.get(ctx, "TeamCount", &n, `SELECT COUNT(*) FROM teams`)
	return n, err
}
