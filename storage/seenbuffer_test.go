package storage_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

// The buffer writes nothing until it is flushed, then each user's latest
// turn, many users in one go; the times are the turns' own, and a write
// that comes after a newer one does not move last_seen_at or the
// conversation back, nor resubscribe someone who has unfollowed since.
func TestSeenBufferWritesEachUsersLatestTurnOnFlush(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		b := &storage.SeenBuffer{DB: db}
		base := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
		const users = 520 // more than one statement's 500
		for i := range users {
			id := fmt.Sprintf("o_buf_%d", i)
			b.Add(storage.UserSeen{OpenID: id, Subscribed: true, EventTime: base, At: base, Conversation: "signing"})
			b.Add(storage.UserSeen{OpenID: id, Subscribed: true, EventTime: base.Add(time.Second), At: base.Add(time.Second)})
		}
		if held, ok := b.Pending("o_buf_3"); !ok || held.Conversation != "" || !held.At.Equal(base.Add(time.Second)) {
			t.Fatalf("pending: %+v %v", held, ok)
		}
		if _, err := db.WeChatUser(ctx, "o_buf_3"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("written before the flush: %v", err)
		}
		if err := b.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if _, ok := b.Pending("o_buf_3"); ok {
			t.Fatal("still pending after the flush")
		}
		for _, i := range []int{0, users - 1} {
			u, err := db.WeChatUser(ctx, fmt.Sprintf("o_buf_%d", i))
			if err != nil || !u.Subscribed || u.Conversation != "" || !u.LastSeenAt.Equal(base.Add(time.Second)) {
				t.Fatalf("user %d: %+v %v", i, u, err)
			}
		}
		// An unfollow written at once, then an older turn's record: the
		// unfollow and the newer time stay.
		if err := db.Apply(ctx, storage.Changes{Seen: &storage.UserSeen{OpenID: "o_buf_0", EventTime: base.Add(time.Minute),
			At: base.Add(time.Minute)}}); err != nil {
			t.Fatal(err)
		}
		b.Add(storage.UserSeen{OpenID: "o_buf_0", Subscribed: true, EventTime: base.Add(30 * time.Second), At: base.Add(30 * time.Second),
			Conversation: "booking"})
		if err := b.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		u, err := db.WeChatUser(ctx, "o_buf_0")
		if err != nil || u.Subscribed || u.Conversation != "" || !u.LastSeenAt.Equal(base.Add(time.Minute)) {
			t.Fatalf("after an older turn's record: %+v %v", u, err)
		}
		// A message and an unfollow in the same second (WeChat's clock has
		// whole seconds), the message's record held back and written after:
		// the unfollow stands.
		second := base.Add(2 * time.Minute)
		b.Add(storage.UserSeen{OpenID: "o_buf_1", Subscribed: true, EventTime: second, At: second.Add(-time.Millisecond)})
		if err := db.Apply(ctx, storage.Changes{Seen: &storage.UserSeen{OpenID: "o_buf_1", EventTime: second, At: second}}); err != nil {
			t.Fatal(err)
		}
		if err := b.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if u, err := db.WeChatUser(ctx, "o_buf_1"); err != nil || u.Subscribed || !u.UnsubscribedAt.Valid {
			t.Fatalf("an unfollow in the same second as a held message: %+v %v", u, err)
		}
	})
}

// Run writes what waits every interval, and once more when it is stopped.
func TestSeenBufferRunWritesAtTheEnd(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		b := &storage.SeenBuffer{DB: db}
		at := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); b.Run(ctx, time.Hour) }()
		b.Add(storage.UserSeen{OpenID: "o_end", Subscribed: true, EventTime: at, At: at, Conversation: "booking"})
		stop()
		<-done
		if u, err := db.WeChatUser(context.Background(), "o_end"); err != nil || u.Conversation != "booking" {
			t.Fatalf("after Run stopped: %+v %v", u, err)
		}
	})
}

// What a flush could not write waits for the next one, unless a newer turn
// of the same user came meanwhile.
func TestSeenBufferKeepsWhatItCouldNotWrite(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		b := &storage.SeenBuffer{DB: db}
		at := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
		b.Add(storage.UserSeen{OpenID: "o_keep", Subscribed: true, EventTime: at, At: at, Conversation: "signing"})
		gone, cancel := context.WithCancel(context.Background())
		cancel()
		if err := b.Flush(gone); err == nil {
			t.Fatal("a flush on a cancelled context wrote")
		}
		if held, ok := b.Pending("o_keep"); !ok || held.Conversation != "signing" {
			t.Fatalf("after a failed flush: %+v %v", held, ok)
		}
		if err := b.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if u, err := db.WeChatUser(context.Background(), "o_keep"); err != nil || u.Conversation != "signing" {
			t.Fatalf("after the next flush: %+v %v", u, err)
		}
	})
}
