package storage

import (
	"context"
	"database/sql"
	"time"
)

// WeChat's limits on user tags: tags an account may have, tags one user
// may carry, and openids one tagging call takes.
const (
	TagsPerAccount = 100
	TagsPerUser    = 20
	TagBatch       = 50
)

// Tag is a segment mirrored into a WeChat user tag.
type Tag struct {
	Segment  string       `db:"segment"` // group:CODE or community:ID
	TagID    int64        `db:"tag_id"`
	Name     string       `db:"name"`
	SyncedAt sql.NullTime `db:"synced_at"`
}

// Tags lists the segments mirrored into tags.
func (db *DB) Tags(ctx context.Context) ([]Tag, error) {
	out := []Tag{}
	err := db.sel(ctx, "Tags", &out, `SELECT segment, tag_id, name, synced_at FROM wechat_tags ORDER BY tag_id`)
	return out, err
}

// SaveTag records the tag WeChat made for a segment.
func (db *DB) SaveTag(ctx context.Context, segment string, tagID int64, name string) error {
	_, err := db.exec(ctx, "SaveTag", `INSERT INTO wechat_tags (segment, tag_id, name) VALUES (?, ?, ?)`, segment, tagID, name)
	return err
}

// TagDiff compares who carries a tag with who the segment reaches (in the
// whole deployment): add are those to tag, but not one already carrying
// TagsPerUser tags; remove those to untag. Each is sorted.
func (db *DB) TagDiff(ctx context.Context, tagID int64, seg Segment) (add, remove []string, err error) {
	const op = "TagDiff"
	q, args, err := seg.audienceQuery(Scope{})
	if err != nil {
		return nil, nil, fail(op, err)
	}
	if err := db.sel(ctx, op, &add, `SELECT d.openid FROM (`+q+`) d WHERE NOT EXISTS (SELECT 1 FROM wechat_tag_members w
		WHERE w.tag_id = ? AND w.openid = d.openid) AND (SELECT COUNT(*) FROM wechat_tag_members w WHERE w.openid = d.openid) < ?
		ORDER BY d.openid`, append(append([]any{}, args...), tagID, TagsPerUser)...); err != nil {
		return nil, nil, err
	}
	if err := db.sel(ctx, op, &remove, `SELECT w.openid FROM wechat_tag_members w WHERE w.tag_id = ?
		AND w.openid NOT IN (`+q+`) ORDER BY w.openid`, append([]any{tagID}, args...)...); err != nil {
		return nil, nil, err
	}
	return add, remove, nil
}

// RecordTagged records openids WeChat tagged (on) or untagged.
func (db *DB) RecordTagged(ctx context.Context, tagID int64, openIDs []string, on bool) error {
	const op = "RecordTagged"
	if len(openIDs) == 0 {
		return nil
	}
	if !on {
		_, err := db.execIn(ctx, op, `DELETE FROM wechat_tag_members WHERE tag_id = ? AND openid IN (?)`, tagID, openIDs)
		return err
	}
	rows := make([][]any, len(openIDs))
	for i, o := range openIDs {
		rows[i] = []any{tagID, o}
	}
	_, err := db.insertMany(ctx, op, `INSERT INTO wechat_tag_members (tag_id, openid) VALUES`, `ON CONFLICT DO NOTHING`, rows)
	return err
}

// MarkTagSynced records when a tag's members last matched its segment.
func (db *DB) MarkTagSynced(ctx context.Context, tagID int64, at time.Time) error {
	_, err := db.exec(ctx, "MarkTagSynced", `UPDATE wechat_tags SET synced_at = ? WHERE tag_id = ?`, at.UTC(), tagID)
	return err
}
