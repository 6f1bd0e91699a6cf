package storage_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/jiayi-health/jiayi/storage/storagetest"
)

func TestMigrationsUpOnEveryDatabase(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		all, err := storage.Migrations()
		if err != nil || len(all) == 0 {
			t.Fatalf("embedded migrations: %v (%d)", err, len(all))
		}
		raw := storagetest.SQL(t, db)
		var versions []int
		if err := raw.SelectContext(ctx, &versions, `SELECT version FROM schema_migrations ORDER BY version`); err != nil {
			t.Fatal(err)
		}
		if len(versions) != len(all) || versions[len(versions)-1] != all[len(all)-1].Version {
			t.Fatalf("applied %v, embedded %d migrations", versions, len(all))
		}
		again, err := db.Migrate(ctx)
		if err != nil || len(again) != 0 {
			t.Fatalf("second Migrate applied %v, err %v; want nothing", again, err)
		}
		if _, err := raw.ExecContext(ctx, `SELECT openid, subscribed, state_time FROM wechat_users`); err != nil {
			t.Fatalf("wechat_users missing: %v", err)
		}
	})
}

func TestParseDatabaseURLRejectsUnknownSchemes(t *testing.T) {
	for _, bad := range []string{"mysql://x", "jiayi.db", "sqlite:", "sqlite:a.db?mode=ro", ""} {
		if _, _, err := storage.ParseDatabaseURL(bad); err == nil {
			t.Errorf("ParseDatabaseURL(%q) accepted", bad)
		}
	}
	for _, good := range []string{"postgres://u@h/db", "postgresql://h/db", "sqlite:jiayi.db", "sqlite:///tmp/x.db"} {
		if _, _, err := storage.ParseDatabaseURL(good); err != nil {
			t.Errorf("ParseDatabaseURL(%q): %v", good, err)
		}
	}
}

func seen(openID string, subscribed bool, at int64) storage.Changes {
	return storage.Changes{Seen: &storage.UserSeen{OpenID: openID, Subscribed: subscribed, EventTime: time.Unix(at, 0)}}
}

func TestUserSubscriptionFollowsNewestEvent(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		if _, err := db.WeChatUser(ctx, "o1"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("unknown user: err %v, want ErrNotFound", err)
		}
		steps := []struct {
			subscribed bool
			at         int64
			want       bool
		}{
			{true, 100, true},
			{false, 200, false}, // unfollow
			{true, 150, false},  // a late retry of an older message does not resubscribe
			{true, 300, true},   // a new message does
		}
		for i, s := range steps {
			if err := db.Apply(ctx, seen("o1", s.subscribed, s.at)); err != nil {
				t.Fatal(err)
			}
			u, err := db.WeChatUser(ctx, "o1")
			if err != nil {
				t.Fatal(err)
			}
			if u.Subscribed != s.want {
				t.Fatalf("step %d: subscribed = %v, want %v", i, u.Subscribed, s.want)
			}
			if u.UnsubscribedAt.Valid == s.want {
				t.Fatalf("step %d: unsubscribed_at valid = %v with subscribed %v", i, u.UnsubscribedAt.Valid, s.want)
			}
		}
	})
}

// Each turn records the conversation it left open, and none once it ends.
func TestUserRecordsTheConversationLeftOpen(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		for i, flow := range []string{"signing", "booking", ""} {
			c := seen("o_conv", true, int64(100+i))
			c.Seen.Conversation = flow
			if err := db.Apply(ctx, c); err != nil {
				t.Fatal(err)
			}
			if u, err := db.WeChatUser(ctx, "o_conv"); err != nil || u.Conversation != flow {
				t.Fatalf("after a turn left %q open: %+v %v", flow, u, err)
			}
		}
	})
}

// Many writers at once must not fail with "database is locked" on SQLite,
// nor lose a row anywhere.
func TestConcurrentWritersAllLand(t *testing.T) {
	storagetest.ForEachDB(t, func(t *testing.T, db *storage.DB) {
		ctx := context.Background()
		const n = 40
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- db.Apply(ctx, seen(fmt.Sprintf("user%d", i), true, int64(i)))
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		var count int
		if err := storagetest.SQL(t, db).GetContext(ctx, &count, `SELECT COUNT(*) FROM wechat_users`); err != nil {
			t.Fatal(err)
		}
		if count != n {
			t.Fatalf("%d users stored, want %d", count, n)
		}
	})
}
