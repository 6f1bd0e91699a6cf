package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// Mass messages (群发): a service account's reach at most MassPerMonth times
// a month per user, and one mass-send call takes at most MassBatch openids.
const (
	MassPerMonth = 4
	MassBatch    = 10000
)

// KindBroadcast is the outbox kind of one batch of a broadcast, and
// KindBroadcastPreview of a preview to one member of staff.
const (
	KindBroadcast        = "broadcast"
	KindBroadcastPreview = "broadcast_preview"
)

// ErrEmptyAudience: no one the segment names can receive tips.
var ErrEmptyAudience = errors.New("the segment reaches no one who receives tips")

// ErrAloneOutsideWindow: the broadcast would reach one user, who has not
// written lately (a mass message needs two openids).
var ErrAloneOutsideWindow = errors.New("a broadcast to one user who has not written in 48 hours")

// ErrOverLimit: everyone the segment names has had this month's mass messages.
var ErrOverLimit = errors.New("everyone in the audience has had this month's mass messages")

// Segment is who a broadcast is for. Each list narrows the audience to
// residents matching one of its values; an empty list does not narrow.
// Residents are reached through the WeChat user who manages them, once
// however many of their family match, and only if that user follows the
// account and has not turned tips off.
type Segment struct {
	Statuses     []string // of the resident's newest contract; empty: active
	CommunityIDs []int64
	TeamIDs      []int64
	Packages     []string // package codes of that contract
	// Priority groups: declared ones by their keyed hash, those that follow
	// from age as ranges of birth dates. A resident in any of them matches.
	GroupTags []string
	GroupBorn []BirthRange
	AnyGroup  bool       // a group was asked for: with no tags and ranges, no one matches
	Born      BirthRange // an age band
}

// BirthRange holds birth dates after After and until Until (YYYY-MM-DD);
// an empty bound is open.
type BirthRange struct{ After, Until string }

func (b BirthRange) cond(args []any) (string, []any) {
	var parts []string
	if b.After != "" {
		parts, args = append(parts, "r.birth_date > ?"), append(args, b.After)
	}
	if b.Until != "" {
		parts, args = append(parts, "r.birth_date <= ?"), append(args, b.Until)
	}
	if len(parts) == 0 {
		return "1 = 1", args
	}
	return strings.Join(parts, " AND "), args
}

// audienceQuery selects the distinct openids a segment reaches in scope.
func (s Segment) audienceQuery(scope Scope) (string, []any, error) {
	cond, args := scope.where("m.institution_id", "")
	statuses := s.Statuses
	if len(statuses) == 0 {
		statuses = []string{"active"}
	}
	cond += " AND c.status IN (?)"
	args = append(args, statuses)
	if len(s.CommunityIDs) > 0 {
		cond, args = cond+" AND r.community_id IN (?)", append(args, s.CommunityIDs)
	}
	if len(s.TeamIDs) > 0 {
		cond, args = cond+" AND c.team_id IN (?)", append(args, s.TeamIDs)
	}
	if len(s.Packages) > 0 {
		cond += " AND EXISTS (SELECT 1 FROM contract_packages p WHERE p.contract_id = c.id AND p.package_code IN (?))"
		args = append(args, s.Packages)
	}
	if s.AnyGroup {
		var either []string
		if len(s.GroupTags) > 0 {
			either, args = append(either, "r.id IN (SELECT resident_id FROM resident_groups WHERE tag IN (?))"), append(args, s.GroupTags)
		}
		for _, b := range s.GroupBorn {
			var c string
			c, args = b.cond(args)
			either = append(either, "("+c+")")
		}
		if len(either) == 0 {
			either = []string{"1 = 0"}
		}
		cond += " AND (" + strings.Join(either, " OR ") + ")"
	}
	var band string
	band, args = s.Born.cond(args)
	cond += " AND " + band
	q, expanded, err := sqlx.In(`SELECT DISTINCT r.manager_openid AS openid FROM residents r
		JOIN communities m ON m.id = r.community_id
		JOIN contracts c ON c.id = (SELECT MAX(id) FROM contracts WHERE resident_id = r.id)
		JOIN wechat_users u ON u.openid = r.manager_openid
		WHERE r.manager_openid <> '' AND u.subscribed AND u.seasonal_reminders AND `+cond, args...)
	return q, expanded, err
}

// MassUse is an audience by how many of this month's mass messages each of
// its WeChat users has had: Used[n] users have had n (the last, MassPerMonth
// or more).
type MassUse struct {
	Total int
	Used  [MassPerMonth + 1]int
}

// OverLimit is how many of the audience can be given no more this month.
func (u MassUse) OverLimit() int { return u.Used[MassPerMonth] }

// BroadcastAudience counts who a segment reaches in scope and how much of
// the month's allowance (month YYYY-MM) they have used.
func (db *DB) BroadcastAudience(ctx context.Context, scope Scope, seg Segment, month string) (MassUse, error) {
	const op = "BroadcastAudience"
	q, args, err := seg.audienceQuery(scope)
	if err != nil {
		return MassUse{}, fail(op, err)
	}
	var rows []struct {
		Used int `db:"used"`
		N    int `db:"n"`
	}
	if err := db.sel(ctx, op, &rows, `SELECT COALESCE(a.used, 0) AS used, COUNT(*) AS n FROM (`+q+`) au
		LEFT JOIN mass_allowance a ON a.openid = au.openid AND a.month = ? GROUP BY COALESCE(a.used, 0)`, append(args, month)...); err != nil {
		return MassUse{}, err
	}
	var u MassUse
	for _, r := range rows {
		u.Total += r.N
		u.Used[min(r.Used, MassPerMonth)] += r.N
	}
	return u, nil
}

// NewBroadcast is a broadcast as an admin sends it.
type NewBroadcast struct {
	Title, Body string
	Segment     Segment
	SegmentJSON string // the segment as the admin chose it, to show later
	Month       string // YYYY-MM of Due in Asia/Shanghai
	Due         time.Time
	Priority    int // of its outbox rows
	Actor       string
	// TagID, when set, is a WeChat tag mirroring the segment: the broadcast
	// goes in one batch to the tag's members.
	TagID int64
	// ArticleID, when set, sends that article (图文) instead of a text.
	ArticleID int64
	// AloneSeenSince, when set, refuses a broadcast (not by tag) left with
	// one user unless they wrote at or after it: a mass message needs two
	// openids, and one alone is reached only by a customer-service message.
	AloneSeenSince time.Time
}

// CreateBroadcast writes a broadcast for the segment's audience in scope:
// each WeChat user's allowance for the month is taken at once (so two
// broadcasts written together cannot both take someone's last), those with
// none left are kept aside and reported, and the rest are cut into batches,
// each queued in the outbox. It returns the broadcast's ID and use.
func (db *DB) CreateBroadcast(ctx context.Context, scope Scope, b NewBroadcast) (int64, MassUse, error) {
	const op = "CreateBroadcast"
	var id int64
	var use MassUse
	err := db.inTx(ctx, op, func(tx *DB) error {
		q, args, err := b.Segment.audienceQuery(scope)
		if err != nil {
			return fail(op, err)
		}
		var audience []string
		if err := tx.sel(ctx, op, &audience, q+" ORDER BY openid", args...); err != nil {
			return err
		}
		if len(audience) == 0 {
			return fail(op, ErrEmptyAudience)
		}
		var allowed []string
		id, allowed, err = tx.writeBroadcast(ctx, op, scope.Institution, audience, b)
		use = MassUse{Total: len(audience)}
		use.Used[MassPerMonth] = len(audience) - len(allowed)
		if err == nil && len(allowed) == 0 {
			err = fail(op, ErrOverLimit)
		}
		return err
	})
	return id, use, err
}

// writeBroadcast writes a broadcast of an institution (0: city staff's) to
// an audience of openids, sorted: it takes each one's allowance for the
// month, keeps aside those with none left, queues the rest in batches and
// audits it. It returns the broadcast's ID (0 when no one had any allowance
// left, and nothing was written) and those it goes to.
func (db *DB) writeBroadcast(ctx context.Context, op string, institution int64, audience []string, b NewBroadcast) (int64, []string, error) {
	var id int64
	allowed, err := db.takeAllowance(ctx, op, audience, b.Month)
	if err != nil || len(allowed) == 0 {
		return 0, nil, err
	}
	if len(allowed) == 1 && b.TagID == 0 && !b.AloneSeenSince.IsZero() {
		var wrote int
		if err := db.get(ctx, op, &wrote, `SELECT COUNT(*) FROM wechat_users WHERE openid = ? AND last_seen_at >= ?`,
			allowed[0], b.AloneSeenSince.UTC()); err != nil {
			return 0, nil, err
		}
		if wrote == 0 {
			return 0, allowed, fail(op, ErrAloneOutsideWindow)
		}
	}
	if err := db.get(ctx, op, &id, `INSERT INTO broadcasts (institution_id, title, body, segment, month, due_at, audience,
		over_limit, created_by, created_at, article_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		nullID(institution), b.Title, b.Body, b.SegmentJSON, b.Month, b.Due.UTC(), len(audience),
		len(audience)-len(allowed), b.Actor, db.now(), nullID(b.ArticleID)); err != nil {
		return 0, nil, err
	}
	if err := db.queueBatches(ctx, op, id, audience, allowed, b); err != nil {
		return 0, nil, err
	}
	return id, allowed, db.auditIn(ctx, op, b.Actor, nullID(institution), "broadcast.create", strconv.FormatInt(id, 10),
		fmt.Sprintf("%s: %d", b.Title, len(allowed)))
}

// takeAllowance counts one mass message for each openid that has fewer
// than MassPerMonth this month, and returns those, sorted.
func (db *DB) takeAllowance(ctx context.Context, op string, openIDs []string, month string) ([]string, error) {
	var allowed []string
	for start := 0; start < len(openIDs); start += 500 {
		part := openIDs[start:min(start+500, len(openIDs))]
		values := strings.TrimSuffix(strings.Repeat("(?, ?, 1), ", len(part)), ", ")
		args := make([]any, 0, 2*len(part)+1)
		for _, o := range part {
			args = append(args, o, month)
		}
		var got []string
		if err := db.sel(ctx, op, &got, `INSERT INTO mass_allowance (openid, month, used) VALUES `+values+`
			ON CONFLICT (openid, month) DO UPDATE SET used = mass_allowance.used + 1
			WHERE mass_allowance.used < ? RETURNING openid`, append(args, MassPerMonth)...); err != nil {
			return nil, err
		}
		allowed = append(allowed, got...)
	}
	slices.Sort(allowed)
	return allowed, nil
}

// queueBatches writes a broadcast's recipients and cuts those allowed into
// batches of nearly equal size, none above MassBatch and, but for an
// audience of one, none of one (WeChat's list needs two openids), each one
// outbox row.
func (db *DB) queueBatches(ctx context.Context, op string, id int64, audience, allowed []string, b NewBroadcast) error {
	n := (len(allowed) + MassBatch - 1) / MassBatch
	if b.TagID != 0 {
		n = 1
	}
	batchOf := make(map[string]int, len(allowed))
	sizes := make([]int, n+1)
	for i, o := range allowed {
		batchOf[o] = i*n/len(allowed) + 1
		sizes[batchOf[o]]++
	}
	rows := make([][]any, len(audience))
	for i, o := range audience {
		rows[i] = []any{id, o, batchOf[o]} // 0: over the limit
	}
	if _, err := db.insertMany(ctx, op, `INSERT INTO broadcast_recipients (broadcast_id, openid, batch) VALUES`, "", rows); err != nil {
		return err
	}
	pushes := make([]Push, n)
	for batch := 1; batch <= n; batch++ {
		key := fmt.Sprintf("broadcast:%d:%d", id, batch)
		if _, err := db.exec(ctx, op, `INSERT INTO broadcast_batches (broadcast_id, batch, size, outbox_key, tag_id) VALUES (?, ?, ?, ?, ?)`,
			id, batch, sizes[batch], key, nullID(b.TagID)); err != nil {
			return err
		}
		pushes[batch-1] = Push{Key: key, Kind: KindBroadcast, Recipient: key, Priority: b.Priority, Due: b.Due,
			Fields: map[string]string{"broadcast": strconv.FormatInt(id, 10), "batch": strconv.Itoa(batch)}}
	}
	return db.enqueue(ctx, op, pushes)
}

// BatchToSend is one batch of a broadcast as it goes out.
type BatchToSend struct {
	BroadcastID int64
	Batch       int
	Title, Body string
	OpenIDs     []string // those who still follow and want tips
	Withdrawn   int      // those who no longer do
	TagID       int64    // sent to this tag's members; 0: to OpenIDs
	ArticleID   int64    // the article (图文) it sends; 0: the text
}

// BroadcastBatch reads a batch to send: the words and the openids of those
// who still follow the account and want tips.
func (db *DB) BroadcastBatch(ctx context.Context, broadcastID int64, batch int) (BatchToSend, error) {
	const op = "BroadcastBatch"
	out := BatchToSend{BroadcastID: broadcastID, Batch: batch}
	var words struct {
		Title     string        `db:"title"`
		Body      string        `db:"body"`
		TagID     sql.NullInt64 `db:"tag_id"`
		ArticleID sql.NullInt64 `db:"article_id"`
	}
	if err := db.get(ctx, op, &words, `SELECT b.title, b.body, x.tag_id, b.article_id FROM broadcasts b
		JOIN broadcast_batches x ON x.broadcast_id = b.id WHERE b.id = ? AND x.batch = ?`, broadcastID, batch); err != nil {
		return out, err
	}
	out.Title, out.Body, out.TagID, out.ArticleID = words.Title, words.Body, words.TagID.Int64, words.ArticleID.Int64
	var rows []struct {
		OpenID string `db:"openid"`
		Wants  bool   `db:"wants"`
	}
	if err := db.sel(ctx, op, &rows, `SELECT br.openid, COALESCE(u.subscribed AND u.seasonal_reminders, FALSE) AS wants
		FROM broadcast_recipients br LEFT JOIN wechat_users u ON u.openid = br.openid
		WHERE br.broadcast_id = ? AND br.batch = ? ORDER BY br.openid`, broadcastID, batch); err != nil {
		return out, err
	}
	for _, r := range rows {
		if r.Wants {
			out.OpenIDs = append(out.OpenIDs, r.OpenID)
		} else {
			out.Withdrawn++
		}
	}
	return out, nil
}

// MarkBroadcastSubmitted records a batch WeChat took (its outbox row sent)
// under the msg_id its results will name; with done, the batch's results
// are known already (no one was left to send to, or the one left was
// written to directly).
func (db *DB) MarkBroadcastSubmitted(ctx context.Context, outboxID int64, b BatchToSend, msgID string, at time.Time, done *MassResult) error {
	const op = "MarkBroadcastSubmitted"
	return db.inTx(ctx, op, func(tx *DB) error {
		if err := tx.MarkSent(ctx, outboxID, at); err != nil {
			return err
		}
		if err := tx.markDigestSent(ctx, op, b.BroadcastID, b.Batch, at); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, op, `UPDATE broadcast_batches SET msg_id = ?, withdrawn = ?, submitted_at = ?
			WHERE broadcast_id = ? AND batch = ?`, msgID, b.Withdrawn, at.UTC(), b.BroadcastID, b.Batch); err != nil {
			return err
		}
		if done == nil {
			return nil
		}
		r := *done
		r.MsgID = msgID
		_, err := tx.RecordMassResult(ctx, r)
		return err
	})
}

// MassResult is what WeChat reports of one mass-send job (MASSSENDJOBFINISH).
type MassResult struct {
	MsgID                         string
	Status                        string
	Total, Filtered, Sent, Failed int
}

// RecordMassResult stores a job's results on the batch WeChat sent under
// its msg_id, and reports whether one was found (a job sent from WeChat's
// own back office is not ours). A repeat of the event changes nothing.
func (db *DB) RecordMassResult(ctx context.Context, r MassResult) (bool, error) {
	if r.MsgID == "" {
		return false, nil
	}
	n, err := db.exec(ctx, "RecordMassResult", `UPDATE broadcast_batches SET status = ?, total = ?, filtered = ?, sent = ?,
		failed = ?, finished_at = ? WHERE msg_id = ?`, r.Status, r.Total, r.Filtered, r.Sent, r.Failed, db.now(), r.MsgID)
	return n > 0, err
}

// Broadcast is a broadcast as the console shows it, with its progress.
type Broadcast struct {
	ID          int64        `db:"id" json:"id"`
	Title       string       `db:"title" json:"title"`
	Body        string       `db:"body" json:"text"`
	Segment     string       `db:"segment" json:"-"`
	Due         time.Time    `db:"due_at" json:"at"`
	Audience    int          `db:"audience" json:"audience"`
	OverLimit   int          `db:"over_limit" json:"over_limit"`
	CreatedBy   string       `db:"created_by" json:"created_by"`
	CreatedAt   time.Time    `db:"created_at" json:"created_at"`
	CancelledAt sql.NullTime `db:"cancelled_at" json:"-"`
	Batches     int          `db:"batches" json:"batches"`
	Submitted   int          `db:"submitted" json:"-"`
	Finished    int          `db:"finished" json:"-"`
	Dead        int          `db:"dead" json:"-"`
	Sent        int          `db:"sent" json:"sent"`
	Filtered    int          `db:"filtered" json:"filtered"`
	Failed      int          `db:"failed" json:"failed"`
	Withdrawn   int          `db:"withdrawn" json:"withdrawn"`
	LastError   string       `db:"last_error" json:"-"`
	State       string       `db:"-" json:"state"`
}

// Progress names where a broadcast is: scheduled (due later), sending,
// submitted (WeChat took every batch; results to come), done, failed (a
// batch could not be sent) or cancelled.
func (b *Broadcast) progress(now time.Time) {
	switch {
	case b.CancelledAt.Valid:
		b.State = "cancelled"
	case b.Dead > 0 && b.Submitted+b.Dead == b.Batches:
		b.State = "failed"
	case b.Finished == b.Batches:
		b.State = "done"
	case b.Submitted+b.Dead == b.Batches:
		b.State = "submitted"
	case b.Submitted == 0 && b.Due.After(now):
		b.State = "scheduled"
	default:
		b.State = "sending"
	}
}

const broadcastColumns = `b.id, b.title, b.body, b.segment, b.due_at, b.audience, b.over_limit, b.created_by, b.created_at,
	b.cancelled_at, COUNT(x.batch) AS batches,
	COALESCE(SUM(CASE WHEN x.msg_id <> '' THEN 1 ELSE 0 END), 0) AS submitted,
	COALESCE(SUM(CASE WHEN x.finished_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS finished,
	COALESCE(SUM(CASE WHEN o.state = 'dead' THEN 1 ELSE 0 END), 0) AS dead,
	COALESCE(SUM(x.sent), 0) AS sent, COALESCE(SUM(x.filtered), 0) AS filtered,
	COALESCE(SUM(x.failed), 0) + COALESCE(SUM(CASE WHEN o.state = 'dead' THEN x.size - x.withdrawn ELSE 0 END), 0) AS failed,
	COALESCE(SUM(x.withdrawn), 0) AS withdrawn, COALESCE(MAX(o.last_error), '') AS last_error`

const broadcastFrom = `broadcasts b LEFT JOIN broadcast_batches x ON x.broadcast_id = b.id
	LEFT JOIN outbox o ON o.idempotency_key = x.outbox_key`

// Broadcasts lists the broadcasts in scope, newest first.
func (db *DB) Broadcasts(ctx context.Context, scope Scope, page Page, now time.Time) ([]Broadcast, int, error) {
	const op = "Broadcasts"
	cond, args := broadcastScope(scope)
	var total int
	if err := db.get(ctx, op+": count", &total, `SELECT COUNT(*) FROM broadcasts b WHERE `+cond, args...); err != nil {
		return nil, 0, err
	}
	page = page.clamp()
	out := []Broadcast{}
	err := db.sel(ctx, op, &out, `SELECT `+broadcastColumns+` FROM `+broadcastFrom+` WHERE `+cond+`
		GROUP BY b.id, b.title, b.body, b.segment, b.due_at, b.audience, b.over_limit, b.created_by, b.created_at, b.cancelled_at
		ORDER BY b.id DESC LIMIT ? OFFSET ?`, append(args, page.Limit, page.Offset)...)
	for i := range out {
		out[i].progress(now)
	}
	return out, total, err
}

// BroadcastByID is one broadcast in scope; outside it, ErrNotFound.
func (db *DB) BroadcastByID(ctx context.Context, scope Scope, id int64, now time.Time) (Broadcast, error) {
	cond, args := broadcastScope(scope)
	var b Broadcast
	err := db.get(ctx, "BroadcastByID", &b, `SELECT `+broadcastColumns+` FROM `+broadcastFrom+` WHERE b.id = ? AND `+cond+`
		GROUP BY b.id, b.title, b.body, b.segment, b.due_at, b.audience, b.over_limit, b.created_by, b.created_at, b.cancelled_at`,
		append([]any{id}, args...)...)
	b.progress(now)
	return b, err
}

// A broadcast belongs to the institution whose admin sent it; city staff
// see them all, an institution's staff their own.
func broadcastScope(scope Scope) (string, []any) {
	if scope.Whole() {
		return "1 = 1", nil
	}
	return "b.institution_id = ?", []any{scope.Institution}
}

// CancelBroadcast withdraws what of a broadcast has not gone: its waiting
// batches, whose recipients get this month's allowance back.
func (db *DB) CancelBroadcast(ctx context.Context, scope Scope, id int64, actor string) (int, error) {
	const op = "CancelBroadcast"
	withdrawn := 0
	err := db.inTx(ctx, op, func(tx *DB) error {
		cond, args := broadcastScope(scope)
		var month string
		if err := tx.get(ctx, op, &month, `SELECT b.month FROM broadcasts b WHERE b.id = ? AND b.cancelled_at IS NULL AND `+cond,
			append([]any{id}, args...)...); err != nil {
			return err
		}
		var batches []int
		if err := tx.sel(ctx, op, &batches, `SELECT x.batch FROM broadcast_batches x JOIN outbox o ON o.idempotency_key = x.outbox_key
			WHERE x.broadcast_id = ? AND o.state = 'pending' AND (o.lease_until IS NULL OR o.lease_until < ?)`, id, tx.now()); err != nil {
			return err
		}
		if len(batches) > 0 {
			if _, err := tx.execIn(ctx, op, `UPDATE outbox SET state = 'cancelled', last_error = 'broadcast cancelled'
				WHERE idempotency_key IN (SELECT outbox_key FROM broadcast_batches WHERE broadcast_id = ? AND batch IN (?))`, id, batches); err != nil {
				return err
			}
			// A digest's tips for those batches are withdrawn with them.
			if _, err := tx.execIn(ctx, op, `UPDATE outbox SET state = 'cancelled', last_error = 'broadcast cancelled'
				WHERE broadcast_id = ? AND state = 'pending' AND recipient IN
				(SELECT openid FROM broadcast_recipients WHERE broadcast_id = ? AND batch IN (?))`, id, id, batches); err != nil {
				return err
			}
			n, err := tx.execIn(ctx, op, `UPDATE mass_allowance SET used = used - 1 WHERE month = ? AND used > 0 AND openid IN
				(SELECT openid FROM broadcast_recipients WHERE broadcast_id = ? AND batch IN (?))`, month, id, batches)
			if err != nil {
				return err
			}
			withdrawn = int(n)
		}
		if _, err := tx.exec(ctx, op, `UPDATE broadcasts SET cancelled_at = ? WHERE id = ?`, tx.now(), id); err != nil {
			return err
		}
		return tx.auditIn(ctx, op, actor, nullID(scope.Institution), "broadcast.cancel", strconv.FormatInt(id, 10), strconv.Itoa(withdrawn))
	})
	return withdrawn, err
}

// BroadcastOverLimit lists the residents whose WeChat user a broadcast
// could not reach for this month's limit, as the console lists residents.
func (db *DB) BroadcastOverLimit(ctx context.Context, scope Scope, id int64, page Page) ([]ResidentRow, int, error) {
	cond, args := scope.where("m.institution_id", residentOfDoctor)
	out := []ResidentRow{}
	var total int
	err := db.listing(ctx, "BroadcastOverLimit", &out, &total, residentRowColumns, residentRowFrom+` WHERE `+cond+`
		AND r.manager_openid IN (SELECT openid FROM broadcast_recipients WHERE broadcast_id = ? AND batch = 0)`,
		"r.id", page, append(args, id))
	return out, total, err
}
