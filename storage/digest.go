package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// The digest of seasonal tips: tips for residents outside WeChat's 48-hour
// window wait in the outbox under a priority no dispatcher claims, and go
// twice a month as mass messages. flows decides what a digest says; this
// is how the waiting tips are taken, and the messages written, at once.

// KindSeasonal is the outbox kind of a seasonal tip (flows.PushSeasonal).
const KindSeasonal = "seasonal_reminder"

// DigestActor names the digest as the maker of its broadcasts: no one's
// console account (names have no colon).
const DigestActor = "system:digest"

// Why a tip is where it is (outbox.last_error), as the console labels it.
const (
	reasonHeld      = "held for the digest"
	reasonInDigest  = "in the digest"
	reasonDigested  = "sent in the digest"
	reasonAlone     = "held: no one else has these tips"
	reasonOverLimit = "monthly mass messages used up"
)

// HeldTip is a seasonal tip waiting for the digest.
type HeldTip struct {
	OutboxID    int64
	OpenID      string
	Institution int64 // of the resident's community; 0 if none is found
	Fields      map[string]string
	Due         time.Time
}

// DigestMessage is one mass message of a digest: the tips (outbox rows)
// it carries, to its openids.
type DigestMessage struct {
	Institution int64
	Title, Body string
	OpenIDs     []string
	Tips        []int64
}

// DigestRequest is one run of the digest.
type DigestRequest struct {
	Held     int       // the priority of tips waiting for it
	Now      time.Time // when it runs: tips stale by now are not taken
	Slot     time.Time // the digest's time: tips due by it are taken; zero: Now
	Next     time.Time // when tips left out are due again
	Month    string    // YYYY-MM, for the allowance
	Day      string    // YYYY-MM-DD, to name the digest
	Priority int       // of the messages' outbox rows
	// WroteSince is the start of WeChat's 48 hours: one left alone in a
	// message must have written since (a customer-service message).
	WroteSince time.Time
	Compose    func([]HeldTip) ([]DigestMessage, error)
}

// DigestRun says what a digest did: tips sent in messages, tips of users
// who had no mass message left this month, tips left for later.
type DigestRun struct {
	Messages, Tips, OverLimit, Left int
	Released                        int // tips given back to the dispatcher: their residents wrote
}

// ReleaseHeld gives back to the dispatcher (priority to, due now) the tips
// held (priority held) for WeChat users who wrote at or after since: a
// customer-service message reaches them, and costs no mass message.
func (db *DB) ReleaseHeld(ctx context.Context, held, to int, now, since time.Time) (int64, error) {
	return db.exec(ctx, "ReleaseHeld", `UPDATE outbox SET priority = ?, due_at = ?, last_error = ''
		WHERE state = 'pending' AND priority = ? AND kind = ? AND broadcast_id IS NULL
		AND recipient IN (SELECT openid FROM wechat_users WHERE last_seen_at >= ? AND subscribed AND seasonal_reminders)`,
		to, now.UTC(), held, KindSeasonal, since.UTC())
}

// HoldTip makes a claimed tip wait for the digest: priority held, due at
// due, stale no sooner than staleAt, with the attempt its claim counted
// given back.
func (db *DB) HoldTip(ctx context.Context, id int64, held int, due, staleAt time.Time) error {
	_, err := db.exec(ctx, "HoldTip", `UPDATE outbox SET priority = ?, due_at = ?, lease_until = NULL, last_error = ?,
		attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,
		stale_at = CASE WHEN stale_at IS NULL OR stale_at >= ? THEN stale_at ELSE ? END
		WHERE id = ? AND state = 'pending'`, held, due.UTC(), reasonHeld, staleAt.UTC(), staleAt.UTC(), id)
	return err
}

// Digest takes every tip held and due, has them composed into messages and
// writes those as broadcasts, in one transaction: a tip is in a message,
// or waits for the next digest, or is withdrawn (for its user's allowance,
// or because they no longer follow or want tips), and never two of these.
// A tip in a message is sent when its batch is; if the batch dies, the next
// digest takes the tip again. Several instances may run it: a tip taken by
// one is not there for the other.
func (db *DB) Digest(ctx context.Context, r DigestRequest) (DigestRun, error) {
	const op = "Digest"
	if r.Slot.IsZero() {
		r.Slot = r.Now
	}
	var run DigestRun
	err := db.inTx(ctx, op, func(tx *DB) error {
		run = DigestRun{}
		if err := tx.prepareDigest(ctx, op, r); err != nil {
			return err
		}
		tips, err := tx.takeHeld(ctx, op, r)
		if err != nil || len(tips) == 0 {
			return err
		}
		messages, err := r.Compose(tips)
		if err != nil {
			return fail(op, err)
		}
		to := make(map[int64]string, len(tips))
		for _, t := range tips {
			to[t.OutboxID] = t.OpenID
		}
		done := map[int64]bool{}
		var over []int64
		for _, m := range messages {
			id, allowed, err := tx.writeDigest(ctx, op, r, m)
			if errors.Is(err, ErrAloneOutsideWindow) {
				continue // the one left with an allowance waits with their tips
			}
			if err != nil {
				return err
			}
			goes := make(map[string]bool, len(allowed))
			for _, o := range allowed {
				goes[o] = true
			}
			var in []int64
			for _, t := range m.Tips {
				if done[t] = true; goes[to[t]] {
					in = append(in, t)
				} else {
					over = append(over, t)
				}
			}
			if len(allowed) > 0 {
				run.Messages++
			}
			if err := tx.markTips(ctx, op, in, "pending", reasonInDigest, time.Time{}, id); err != nil {
				return err
			}
			run.Tips += len(in)
		}
		var left []int64
		for _, t := range tips {
			if !done[t.OutboxID] {
				left = append(left, t.OutboxID)
			}
		}
		if err := tx.markTips(ctx, op, left, "pending", reasonAlone, r.Next, 0); err != nil {
			return err
		}
		if err := tx.markTips(ctx, op, over, "cancelled", reasonOverLimit, time.Time{}, 0); err != nil {
			return err
		}
		run.OverLimit, run.Left = len(over), len(left)
		return nil
	})
	return run, err
}

// prepareDigest withdraws the held tips of users who no longer follow the
// account or want tips, and frees for taking again the tips of digest
// batches that died. NOT EXISTS, not NOT IN: PostgreSQL runs a NOT IN over
// more openids than fit its work_mem once per row.
func (db *DB) prepareDigest(ctx context.Context, op string, r DigestRequest) error {
	if _, err := db.exec(ctx, op, `UPDATE outbox SET state = 'cancelled', last_error = 'reminders turned off'
		WHERE state = 'pending' AND priority = ? AND kind = ? AND broadcast_id IS NULL
		AND NOT EXISTS (SELECT 1 FROM wechat_users u WHERE u.openid = outbox.recipient AND u.subscribed AND u.seasonal_reminders)`,
		r.Held, KindSeasonal); err != nil {
		return err
	}
	_, err := db.exec(ctx, op, `UPDATE outbox SET broadcast_id = NULL, last_error = ?
		WHERE state = 'pending' AND kind = ? AND broadcast_id IS NOT NULL AND EXISTS (SELECT 1 FROM broadcast_recipients br
			JOIN broadcast_batches x ON x.broadcast_id = br.broadcast_id AND x.batch = br.batch
			JOIN outbox o ON o.idempotency_key = x.outbox_key
			WHERE br.broadcast_id = outbox.broadcast_id AND br.openid = outbox.recipient AND o.state = 'dead')`, reasonHeld, KindSeasonal)
	return err
}

// takeHeld marks the tips held and due as taken (so a second digest
// running at once waits, then finds them gone) and reads them with their
// resident's institution.
func (db *DB) takeHeld(ctx context.Context, op string, r DigestRequest) ([]HeldTip, error) {
	var rows []struct {
		ID        int64     `db:"id"`
		Recipient string    `db:"recipient"`
		Payload   string    `db:"payload"`
		Due       time.Time `db:"due_at"`
	}
	if err := db.sel(ctx, op, &rows, `UPDATE outbox SET broadcast_id = 0
		WHERE state = 'pending' AND priority = ? AND kind = ? AND broadcast_id IS NULL AND due_at <= ?
		AND (stale_at IS NULL OR stale_at > ?)
		RETURNING id, recipient, payload, due_at`, r.Held, KindSeasonal, r.Slot.UTC(), r.Now.UTC()); err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, nil
	}
	institutions := map[string]int64{}
	var openIDs []string
	for _, row := range rows {
		if _, ok := institutions[row.Recipient]; !ok {
			institutions[row.Recipient] = 0
			openIDs = append(openIDs, row.Recipient)
		}
	}
	for start := 0; start < len(openIDs); start += 500 {
		var found []struct {
			OpenID      string `db:"openid"`
			Institution int64  `db:"institution_id"`
		}
		if err := db.selIn(ctx, op, &found, `SELECT r.manager_openid AS openid, MIN(m.institution_id) AS institution_id
			FROM residents r JOIN communities m ON m.id = r.community_id WHERE r.manager_openid IN (?)
			GROUP BY r.manager_openid`, openIDs[start:min(start+500, len(openIDs))]); err != nil {
			return nil, err
		}
		for _, f := range found {
			institutions[f.OpenID] = f.Institution
		}
	}
	tips := make([]HeldTip, len(rows))
	for i, row := range rows {
		tips[i] = HeldTip{OutboxID: row.ID, OpenID: row.Recipient, Institution: institutions[row.Recipient], Due: row.Due}
		if err := json.Unmarshal([]byte(row.Payload), &tips[i].Fields); err != nil {
			return nil, fail(op, fmt.Errorf("tip %d: %w", row.ID, err))
		}
	}
	return tips, nil
}

// writeDigest writes one message of a digest as a broadcast, and returns
// its ID and those it goes to, sorted: the others had no mass message left
// this month. If only one had, and has not written lately, nothing is
// written (under a savepoint, so their allowance is not taken) and it says
// ErrAloneOutsideWindow.
func (db *DB) writeDigest(ctx context.Context, op string, r DigestRequest, m DigestMessage) (int64, []string, error) {
	audience := slices.Clone(m.OpenIDs)
	slices.Sort(audience)
	segment, _ := json.Marshal(map[string]string{"digest": r.Day})
	var id int64
	var allowed []string
	err := db.inTx(ctx, op, func(sp *DB) error {
		var err error
		id, allowed, err = sp.writeBroadcast(ctx, op, m.Institution, audience, NewBroadcast{Title: m.Title, Body: m.Body,
			SegmentJSON: string(segment), Month: r.Month, Due: r.Now, Priority: r.Priority, Actor: DigestActor, AloneSeenSince: r.WroteSince})
		return err
	})
	return id, allowed, err
}

// markTips moves tips taken by a digest on: into a digest's broadcast (in
// not 0), back to waiting (due again at due, no later than it was stale),
// or withdrawn.
func (db *DB) markTips(ctx context.Context, op string, ids []int64, state, reason string, due time.Time, in int64) error {
	for start := 0; start < len(ids); start += 500 {
		part := ids[start:min(start+500, len(ids))]
		set, args := `state = ?, last_error = ?, broadcast_id = ?`, []any{state, reason, nullID(in)}
		if !due.IsZero() {
			set, args = set+`, due_at = ?`, append(args, due.UTC())
		}
		if _, err := db.execIn(ctx, op, `UPDATE outbox SET `+set+` WHERE id IN (?)`, append(args, part)...); err != nil {
			return err
		}
	}
	return nil
}

// markDigestSent marks the tips of a digest batch WeChat took as sent: those
// of its recipients who still follow the account and want tips.
func (db *DB) markDigestSent(ctx context.Context, op string, broadcastID int64, batch int, at time.Time) error {
	_, err := db.exec(ctx, op, `UPDATE outbox SET state = 'sent', sent_at = ?, last_error = ?
		WHERE broadcast_id = ? AND state = 'pending' AND recipient IN (SELECT br.openid FROM broadcast_recipients br
			JOIN wechat_users u ON u.openid = br.openid
			WHERE br.broadcast_id = ? AND br.batch = ? AND u.subscribed AND u.seasonal_reminders)`,
		at.UTC(), reasonDigested, broadcastID, broadcastID, batch)
	return err
}
