// Package storage keeps jiayi's durable state: SQL through sqlx on SQLite or
// PostgreSQL, and conversation state, dedupe markers and per-user locks in Redis.
package storage

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

func init() {
	// sqlx does not know modernc's driver name; it takes '?' placeholders.
	sqlx.BindDriver("sqlite", sqlx.QUESTION)
}

// Dialect names the SQL database behind a DB.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is the SQL store. Queries are written with '?' placeholders and rebound
// for the dialect by sqlx. A DB handed to an InTx function is scoped to that
// transaction: every method called on it runs inside it (see tx.go).
type DB struct {
	Dialect Dialect
	pool    *sqlx.DB
	tx      *txState // nil outside a transaction
	shared  *shared  // what every copy of this DB has in common
}

// DefaultDatabaseURL is the embedded default: a SQLite file in the working
// directory.
const DefaultDatabaseURL = "sqlite:jiayi.db"

// ParseDatabaseURL checks a JIAYI_DATABASE_URL value and returns the dialect
// and the driver's data source name. Accepted: postgres://…, postgresql://…,
// sqlite:PATH (sqlite:///abs/path and sqlite::memory: too).
func ParseDatabaseURL(raw string) (Dialect, string, error) {
	switch {
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		if _, err := url.Parse(raw); err != nil {
			return "", "", fmt.Errorf("not a valid postgres URL")
		}
		return Postgres, raw, nil
	case strings.HasPrefix(raw, "sqlite:"):
		path := strings.TrimPrefix(raw, "sqlite:")
		path = strings.TrimPrefix(path, "//")
		if path == "" {
			return "", "", fmt.Errorf("sqlite URL names no file")
		}
		if strings.Contains(path, "?") {
			return "", "", fmt.Errorf("sqlite URL takes no options")
		}
		return SQLite, sqliteDSN(path), nil
	default:
		return "", "", fmt.Errorf("must start with postgres://, postgresql:// or sqlite: (sqlite:PATH)")
	}
}

// sqliteDSN turns on WAL and a busy timeout, and makes every transaction
// BEGIN IMMEDIATE: a writer takes the write lock at BEGIN and waits there
// (up to the busy timeout) instead of failing with "database is locked" when
// it tries to upgrade a read lock mid-transaction.
func sqliteDSN(path string) string {
	return "file:" + path + "?_txlock=immediate&_time_format=sqlite" +
		"&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)"
}

// Open connects to the database named by a JIAYI_DATABASE_URL value.
// It does not migrate; call Migrate.
func Open(ctx context.Context, rawURL string) (*DB, error) {
	dialect, dsn, err := ParseDatabaseURL(rawURL)
	if err != nil {
		return nil, fail("Open", err)
	}
	driver := "pgx"
	if dialect == SQLite {
		driver = "sqlite"
	}
	db, err := sqlx.Open(driver, dsn)
	if err != nil {
		return nil, fail("Open", err)
	}
	// Every connection the pool may open it also keeps: database/sql keeps
	// two idle by default, so under load the rest were closed as soon as
	// they were free and opened again, a new PostgreSQL backend each time.
	if dialect == SQLite {
		// One file, one writer at a time: a small pool keeps waiting writers few.
		db.SetMaxOpenConns(4)
		db.SetMaxIdleConns(4)
	} else {
		db.SetMaxOpenConns(20)
		db.SetMaxIdleConns(20)
		db.SetConnMaxIdleTime(5 * time.Minute)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fail("Open", fmt.Errorf("reach %s database: %w", dialect, err))
	}
	sh := &shared{}
	if dialect == Postgres {
		if sh.numbers, err = openNumbers(dsn); err != nil {
			db.Close()
			return nil, fail("Open", fmt.Errorf("open the contract-number pool: %w", err))
		}
	}
	return &DB{Dialect: dialect, pool: db, shared: sh}, nil
}

// openNumbers opens the small pool contract numbers are taken through (see
// takeNumber): its own, so a turn holding a connection of the main pool
// never waits on that pool for a second one, and with synchronous_commit
// off, so a number's commit does not wait for the disk.
func openNumbers(dsn string) (*sqlx.DB, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	q.Set("synchronous_commit", "off") // pgx sends what it does not know as a run-time parameter
	// A number waits on the day's row only for another's one statement,
	// or for an import numbering inside its transaction; a wait longer
	// than this is given up (the signing fails and is asked again) rather
	// than held in a deadlock PostgreSQL cannot see, across two pools.
	q.Set("lock_timeout", "2s")
	u.RawQuery = q.Encode()
	db, err := sqlx.Open("pgx", u.String())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(2)
	db.SetConnMaxIdleTime(5 * time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil { // a pooler refusing the parameters says so at start
		db.Close()
		return nil, err
	}
	return db, nil
}

// Ping reports whether the database answers, for /readyz.
func (db *DB) Ping(ctx context.Context) error {
	return db.pool.PingContext(ctx)
}

// Close closes the connection pool. A DB scoped to a transaction does not
// own the pool and refuses.
func (db *DB) Close() error {
	if db.tx != nil {
		return errors.New("storage.Close: called inside a transaction")
	}
	if db.shared.numbers != nil {
		db.shared.numbers.Close()
	}
	return db.pool.Close()
}
