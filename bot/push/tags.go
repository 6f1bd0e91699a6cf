package push

import (
	"context"
	"fmt"
	"time"

	"github.com/jiayi-health/jiayi/flows"
	"github.com/jiayi-health/jiayi/storage"
)

// TagClient makes WeChat user tags and puts users on and off them.
type TagClient interface {
	CreateTag(ctx context.Context, name string) (int64, error)
	TagUsers(ctx context.Context, tagID int64, openIDs []string, on bool) error
}

// TagSync mirrors the segments that recur (each priority group, each
// community) into WeChat user tags and keeps their members in line with
// the database as residents sign, move, renew, leave, unfollow and turn
// tips off: it compares who carries each tag with who should, and tags and
// untags the difference, 50 users a call, recording each call at once.
type TagSync struct {
	DB     *storage.DB
	Sealer *storage.Sealer
	WeChat TagClient
	// Lock keeps syncs (and so tag creation) to one at a time across
	// instances; nil: no lock (one instance, tests).
	Lock func(ctx context.Context) (unlock func(), err error)
	Now  func() time.Time
}

// TagSyncResult says what a sync did.
type TagSyncResult struct {
	Tags, Created, Tagged, Untagged int
}

// Sync mirrors every recurring segment, making the tags it lacks.
func (t *TagSync) Sync(ctx context.Context) (TagSyncResult, error) {
	return t.sync(ctx, 0)
}

// SyncTag brings one tag's members in line, as a broadcast to it is sent.
func (t *TagSync) SyncTag(ctx context.Context, tagID int64) error {
	_, err := t.sync(ctx, tagID)
	return err
}

func (t *TagSync) sync(ctx context.Context, only int64) (TagSyncResult, error) {
	var r TagSyncResult
	if t.Lock != nil {
		unlock, err := t.Lock(ctx)
		if err != nil {
			return r, fmt.Errorf("tag sync: %w", err)
		}
		defer unlock()
	}
	segments, err := flows.TagSegments(ctx, t.DB, t.Sealer, t.Now())
	if err != nil {
		return r, err
	}
	tags, err := t.DB.Tags(ctx)
	if err != nil {
		return r, err
	}
	have := map[string]int64{}
	for _, tag := range tags {
		have[tag.Segment] = tag.TagID
	}
	for _, seg := range segments {
		id, ok := have[seg.Key]
		if only != 0 && id != only {
			continue
		}
		if !ok {
			if id, err = t.WeChat.CreateTag(ctx, seg.Name); err != nil {
				return r, fmt.Errorf("tag sync: create %s: %w", seg.Key, err)
			}
			if err := t.DB.SaveTag(ctx, seg.Key, id, seg.Name); err != nil {
				return r, err
			}
			r.Created++
		}
		if err := t.members(ctx, id, seg.Segment, &r); err != nil {
			return r, fmt.Errorf("tag sync: %s: %w", seg.Key, err)
		}
		r.Tags++
	}
	return r, nil
}

func (t *TagSync) members(ctx context.Context, id int64, seg storage.Segment, r *TagSyncResult) error {
	add, remove, err := t.DB.TagDiff(ctx, id, seg)
	if err != nil {
		return err
	}
	for _, change := range []struct {
		openIDs []string
		on      bool
		count   *int
	}{{remove, false, &r.Untagged}, {add, true, &r.Tagged}} {
		for start := 0; start < len(change.openIDs); start += storage.TagBatch {
			part := change.openIDs[start:min(start+storage.TagBatch, len(change.openIDs))]
			if err := t.WeChat.TagUsers(ctx, id, part, change.on); err != nil {
				return err
			}
			if err := t.DB.RecordTagged(ctx, id, part, change.on); err != nil {
				return err
			}
			*change.count += len(part)
		}
	}
	return t.DB.MarkTagSynced(ctx, id, t.Now())
}
