// Package storagetest gives contract tests every backend this machine has:
// SQLite and the embedded Redis always; PostgreSQL and a real Redis when
// JIAYI_TEST_DATABASE_URL and JIAYI_TEST_REDIS_URL name them. With CI=true a
// missing or unreachable service fails the test instead of leaving it out.
package storagetest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/jiayi-health/jiayi/storage"
)

// InCI reports whether the tests run under CI, where every service must exist.
func InCI() bool { return os.Getenv("CI") == "true" }

// unavailable fails in CI and skips elsewhere.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// ForEachDB runs fn as a subtest on a fresh, migrated database of every
// available dialect.
func ForEachDB(t *testing.T, fn func(t *testing.T, db *storage.DB)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	if pg := os.Getenv("JIAYI_TEST_DATABASE_URL"); pg != "" {
		t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t, pg)) })
	} else if InCI() {
		t.Fatal("CI=true but JIAYI_TEST_DATABASE_URL is not set")
	}
}

// SQLite opens a migrated SQLite database in a temporary file.
func SQLite(t testing.TB) *storage.DB {
	t.Helper()
	db, _ := sqliteWithURL(t)
	return db
}

func sqliteWithURL(t testing.TB) (*storage.DB, string) {
	t.Helper()
	u := "sqlite:" + filepath.Join(t.TempDir(), "jiayi.db")
	db, err := storage.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	remember(t, db, u)
	return db, u
}

// Postgres creates a database of its own on the server named by adminURL,
// migrates it, and drops it when the test ends.
func Postgres(t testing.TB, adminURL string) *storage.DB {
	t.Helper()
	db, _ := postgresWithURL(t, adminURL)
	return db
}

// PostgresWithURL is Postgres, also returning the URL of the test's database
// (for tests that start a whole binary on it).
func PostgresWithURL(t testing.TB, adminURL string) (*storage.DB, string) {
	t.Helper()
	return postgresWithURL(t, adminURL)
}

func postgresWithURL(t testing.TB, adminURL string) (*storage.DB, string) {
	t.Helper()
	ctx := context.Background()
	admin, err := openRaw(ctx, adminURL)
	if err != nil {
		unavailable(t, "PostgreSQL at JIAYI_TEST_DATABASE_URL: %v", err)
	}
	defer admin.Close()
	name := fmt.Sprintf("jiayi_test_%d_%d", os.Getpid(), time.Now().UnixNano())
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(adminURL)
	u.Path = "/" + name
	db, err := storage.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Close()
		admin, err := openRaw(context.Background(), adminURL)
		if err != nil {
			t.Errorf("drop %s: %v", name, err)
			return
		}
		defer admin.Close()
		if _, err := admin.ExecContext(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	remember(t, db, u.String())
	return db, u.String()
}

// Reopen opens the database of a DB this package opened a second time, as
// another instance of jiayi would; it is closed when the test ends.
func Reopen(t testing.TB, db *storage.DB) *storage.DB {
	t.Helper()
	u, ok := urls.Load(db)
	if !ok {
		t.Fatal("storagetest.Reopen: this DB was not opened by storagetest")
	}
	other, err := storage.Open(context.Background(), u.(string))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	return other
}

// urls knows the database URL of every DB this package opened.
var urls sync.Map // *storage.DB → string

func remember(t testing.TB, db *storage.DB, rawURL string) {
	urls.Store(db, rawURL)
	t.Cleanup(func() { urls.Delete(db) })
}

// openRaw opens a plain sqlx handle to the database a JIAYI_DATABASE_URL
// value names, and checks that it answers.
func openRaw(ctx context.Context, rawURL string) (*sqlx.DB, error) {
	dialect, dsn, err := storage.ParseDatabaseURL(rawURL)
	if err != nil {
		return nil, err
	}
	driver := "pgx"
	if dialect == storage.SQLite {
		driver = "sqlite"
	}
	db, err := sqlx.Open(driver, dsn)
	if err != nil {
		return nil, err
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// SQL opens a raw SQL handle of its own on the database of a DB this
// package opened, for tests that look at rows no storage method returns.
// Queries take '?' placeholders through Rebind. The handle is closed when
// the test ends. Production code has no such handle: storage does not
// export its own.
func SQL(t testing.TB, db *storage.DB) *sqlx.DB {
	t.Helper()
	u, ok := urls.Load(db)
	if !ok {
		t.Fatal("storagetest.SQL: this DB was not opened by storagetest; use SQLAt with its URL")
	}
	return SQLAt(t, u.(string))
}

// SQLAt is SQL for the database a JIAYI_DATABASE_URL value names (a
// Stack's DatabaseURL, say, that a server under test opened itself).
func SQLAt(t testing.TB, databaseURL string) *sqlx.DB {
	t.Helper()
	raw, err := openRaw(context.Background(), databaseURL)
	if err != nil {
		t.Fatalf("storagetest.SQLAt: %v", err)
	}
	t.Cleanup(func() { raw.Close() })
	return raw
}

// ForEachRedis runs fn as a subtest on the embedded store and, when
// JIAYI_TEST_REDIS_URL is set, on that Redis, each under a key prefix of its
// own that is removed afterwards.
func ForEachRedis(t *testing.T, fn func(t *testing.T, r *storage.Redis)) {
	t.Run("embedded", func(t *testing.T) { fn(t, Embedded(t)) })
	if u := os.Getenv("JIAYI_TEST_REDIS_URL"); u != "" {
		t.Run("redis", func(t *testing.T) { fn(t, RealRedis(t, u)) })
	} else if InCI() {
		t.Fatal("CI=true but JIAYI_TEST_REDIS_URL is not set")
	}
}

// Embedded starts an in-process store for one test.
func Embedded(t testing.TB) *storage.Redis {
	t.Helper()
	r, _ := embeddedWithURL(t)
	return r
}

func embeddedWithURL(t testing.TB) (*storage.Redis, string) {
	t.Helper()
	e, err := storage.StartEmbeddedRedis()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	c, err := storage.OpenRedis(e.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return storage.NewRedis(c, "jiayitest"), e.URL()
}

// RealRedis connects to the Redis at rawURL under a fresh key prefix.
func RealRedis(t testing.TB, rawURL string) *storage.Redis {
	t.Helper()
	c, err := storage.OpenRedis(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		unavailable(t, "Redis at JIAYI_TEST_REDIS_URL: %v", err)
	}
	prefix := fmt.Sprintf("jiayitest%d_%d", os.Getpid(), time.Now().UnixNano())
	t.Cleanup(func() {
		defer c.Close()
		iter := c.Scan(ctx, 0, prefix+":*", 200).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	})
	return storage.NewRedis(c, prefix)
}

// Stack is one complete set of backends, and the URLs that reach them (for
// tests that start a whole server on the stack).
type Stack struct {
	Name        string
	DB          *storage.DB
	Redis       *storage.Redis
	DatabaseURL string
	RedisURL    string
}

// ForEachStack runs fn on the embedded stack (SQLite and the in-process
// Redis) and, when both test services are configured, on PostgreSQL with a
// real Redis.
func ForEachStack(t *testing.T, fn func(t *testing.T, s Stack)) {
	t.Run("embedded", func(t *testing.T) {
		db, dbURL := sqliteWithURL(t)
		r, redisURL := embeddedWithURL(t)
		fn(t, Stack{Name: "embedded", DB: db, Redis: r, DatabaseURL: dbURL, RedisURL: redisURL})
	})
	pg, rd := os.Getenv("JIAYI_TEST_DATABASE_URL"), os.Getenv("JIAYI_TEST_REDIS_URL")
	if pg != "" && rd != "" {
		t.Run("services", func(t *testing.T) {
			db, dbURL := postgresWithURL(t, pg)
			fn(t, Stack{Name: "services", DB: db, Redis: RealRedis(t, rd), DatabaseURL: dbURL, RedisURL: rd})
		})
	} else if InCI() {
		t.Fatal("CI=true but JIAYI_TEST_DATABASE_URL or JIAYI_TEST_REDIS_URL is not set")
	}
}
