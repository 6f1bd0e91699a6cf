package storage_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jiayi-health/jiayi/storage"
	"github.com/redis/go-redis/v9"
)

// The embedded store kept beside SQLite comes back after a stop with its
// conversations, replies and their lifetimes; locks die with the process.
func TestEmbeddedStoreOutlivesAStop(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "jiayi.db.sessions")
	if got := storage.SnapshotFileFor("sqlite:" + filepath.Join(filepath.Dir(path), "jiayi.db")); got != path {
		t.Fatalf("snapshot file = %q, want %q", got, path)
	}
	start := func() (*storage.EmbeddedRedis, *redis.Client) {
		e, err := storage.StartEmbeddedRedis()
		if err != nil {
			t.Fatal(err)
		}
		if err := e.PersistTo(path); err != nil {
			t.Fatal(err)
		}
		c, err := storage.OpenRedis(e.URL())
		if err != nil {
			t.Fatal(err)
		}
		return e, c.(*redis.Client)
	}
	e, c := start()
	c.HSet(ctx, "jiayi:{o1}:session", "v", "3", "data", "sealed-state")
	c.Set(ctx, "jiayi:{o1}:msg:m1", "d:sealed-reply", time.Hour)
	c.Set(ctx, "jiayi:{o1}:lock", "token", time.Hour)
	c.Set(ctx, "jiayi:{o2}:msg:m2", "d:short-lived", 300*time.Millisecond)
	c.Close()
	e.Close()
	time.Sleep(400 * time.Millisecond) // stopped longer than the short key had to live
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("snapshot: %v %v", info, err)
	}

	e, c = start()
	defer e.Close()
	defer c.Close()
	if v, err := c.HGet(ctx, "jiayi:{o1}:session", "data").Result(); err != nil || v != "sealed-state" {
		t.Fatalf("session after the stop: %q %v", v, err)
	}
	if ttl := c.PTTL(ctx, "jiayi:{o1}:msg:m1").Val(); ttl <= 58*time.Minute || ttl > time.Hour {
		t.Fatalf("reply's time to live after the stop: %v", ttl)
	}
	if err := c.Get(ctx, "jiayi:{o2}:msg:m2").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("a key outlived its time while the store was stopped: %v", err)
	}
	if err := c.Get(ctx, "jiayi:{o1}:lock").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("a lock outlived its process: %v", err)
	}
}
