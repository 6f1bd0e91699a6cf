package storage

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Changes are the durable effects of one conversation turn. Apply writes them
// in one transaction; the conversation state is saved only after it commits.
// Every change is idempotent, because a crash between the commit and the
// session save makes WeChat's retry run the turn again.
type Changes struct {
	Seen   *UserSeen
	Pushes []Push // enqueued in the same transaction
}

// UserSeen records that a WeChat user wrote to or followed the account
// (Subscribed) or unfollowed it (!Subscribed), as of WeChat's CreateTime.
type UserSeen struct {
	OpenID     string
	Subscribed bool
	EventTime  time.Time // WeChat's CreateTime of the message
	Scene      string    // QR scene the user came through, if any
	// Conversation is the conversation the turn left open ('' none), so a
	// conversation Redis lost can be told from one that never was.
	Conversation string
	// At is when the turn saw the user, for last_seen_at; zero: when it is
	// written. A write held back to go with others (SeenBuffer) keeps it.
	At time.Time
}

// WeChatUser is one row of wechat_users.
type WeChatUser struct {
	OpenID         string       `db:"openid"`
	Subscribed     bool         `db:"subscribed"`
	StateTime      int64        `db:"state_time"`
	Scene          string       `db:"scene"`
	FirstSeenAt    time.Time    `db:"first_seen_at"`
	LastSeenAt     time.Time    `db:"last_seen_at"`
	UnsubscribedAt sql.NullTime `db:"unsubscribed_at"`
	Conversation   string       `db:"conversation"`
}

// ErrNotFound says a looked-up row does not exist.
var ErrNotFound = errors.New("not found")

// Apply writes one turn's changes in a single transaction.
func (db *DB) Apply(ctx context.Context, c Changes) error {
	const op = "Apply"
	return db.inTx(ctx, op, func(tx *DB) error {
		if c.Seen != nil {
			if err := tx.upsertUser(ctx, op+": user", *c.Seen); err != nil {
				return err
			}
			if !c.Seen.Subscribed {
				if err := tx.cancelPushesTo(ctx, op+": cancel pushes", c.Seen.OpenID); err != nil {
					return err
				}
			}
		}
		return tx.enqueue(ctx, op, c.Pushes)
	})
}

// upsertUser lets the newest event by WeChat's clock decide subscribed, so a
// retried old message cannot resubscribe someone who has since unfollowed.
func (db *DB) upsertUser(ctx context.Context, op string, s UserSeen) error {
	return db.upsertUsers(ctx, op, []UserSeen{s}, false)
}

// upsertUsers is upsertUser for several users, 500 to a statement; each
// openid at most once (PostgreSQL refuses to update a row twice in one).
// held says the rows were held back (SeenBuffer) and may be written after
// a later follow or unfollow: they then move only last_seen_at and the
// conversation, never the subscription, which WeChat's whole-second
// CreateTime could not order within a second.
func (db *DB) upsertUsers(ctx context.Context, op string, seen []UserSeen, held bool) error {
	now := db.now()
	rows := make([][]any, 0, len(seen))
	for _, s := range seen {
		at := now
		if !s.At.IsZero() {
			at = s.At.UTC()
		}
		var unsubscribedAt any
		if !s.Subscribed {
			unsubscribedAt = at
		}
		rows = append(rows, []any{s.OpenID, s.Subscribed, s.EventTime.Unix(), s.Scene, at, at, unsubscribedAt, s.Conversation})
	}
	subscription := `
    subscribed = CASE WHEN excluded.state_time >= wechat_users.state_time
        THEN excluded.subscribed ELSE wechat_users.subscribed END,
    unsubscribed_at = CASE WHEN excluded.state_time >= wechat_users.state_time
        THEN excluded.unsubscribed_at ELSE wechat_users.unsubscribed_at END,
    state_time = CASE WHEN excluded.state_time >= wechat_users.state_time
        THEN excluded.state_time ELSE wechat_users.state_time END,
    scene = CASE WHEN excluded.scene <> '' THEN excluded.scene ELSE wechat_users.scene END,`
	if held {
		subscription = ""
	}
	_, err := db.insertMany(ctx, op, `INSERT INTO wechat_users (openid, subscribed, state_time, scene, first_seen_at,
		last_seen_at, unsubscribed_at, conversation) VALUES`, `ON CONFLICT (openid) DO UPDATE SET`+subscription+`
    last_seen_at = CASE WHEN excluded.last_seen_at >= wechat_users.last_seen_at
        THEN excluded.last_seen_at ELSE wechat_users.last_seen_at END,
    conversation = CASE WHEN excluded.last_seen_at >= wechat_users.last_seen_at
        THEN excluded.conversation ELSE wechat_users.conversation END`, rows)
	return err
}

// WeChatUser returns the stored row for an openid, or ErrNotFound.
func (db *DB) WeChatUser(ctx context.Context, openID string) (WeChatUser, error) {
	var u WeChatUser
	err := db.get(ctx, "WeChatUser", &u, `SELECT openid, subscribed, state_time, scene,
		first_seen_at, last_seen_at, unsubscribed_at, conversation FROM wechat_users WHERE openid = ?`, openID)
	return u, err
}
