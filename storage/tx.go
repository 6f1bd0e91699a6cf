package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jmoiron/sqlx"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// shared is what a DB and every copy of it scoped to a transaction have in
// common.
type shared struct {
	onPushes atomic.Pointer[func()]
	sandbox  atomic.Bool                      // see SetSandbox
	clock    atomic.Pointer[func() time.Time] // see SetClock
	numbers  *sqlx.DB                         // PostgreSQL: see takeNumber
	catalog  catalogCache
	// doctorNames: see BoundDoctorName
	doctorNames doctorNames
}

// SetClock makes the times this package stamps itself (created_at,
// recorded_at, a push's default due time) come from now: the sandbox's
// movable clock, so a request made after the clock jumped a month is not a
// month old. Unset, the real time.
func (db *DB) SetClock(now func() time.Time) { db.shared.clock.Store(&now) }

// now is the time this package stamps, in UTC.
func (db *DB) now() time.Time {
	if f := db.shared.clock.Load(); f != nil {
		return (*f)().UTC()
	}
	return time.Now().UTC()
}

// txState is one open transaction, shared by the DB handed to its function
// and every method called on it.
type txState struct {
	// tx is begun by the first statement (open): a turn that only reads
	// Redis, or writes nothing, then costs the database nothing, not even
	// a connection, where BEGIN and COMMIT were two round trips each time.
	begin      func() (*sqlx.Tx, error)
	tx         *sqlx.Tx
	beginErr   error
	pushes     atomic.Int64 // pushes made due so far; a rolled-back savepoint takes its own back
	savepoints atomic.Int64 // names savepoints uniquely
	mu         sync.Mutex
	broken     error // a savepoint could not be rolled back: the transaction must not commit
	// newDoctor: a doctor was bound; the names BoundDoctorName keeps are
	// read again once the transaction commits, not before (a read in
	// between would keep the old names).
	newDoctor atomic.Bool
}

// OnPushes registers f to be called, synchronously and after the commit,
// whenever a transaction that enqueued at least one push (or made waiting
// pushes due) commits. Nothing is called for a rolled-back transaction. It
// applies to this DB and every copy scoped to a transaction; the last
// function registered wins, and nil removes it.
func (db *DB) OnPushes(f func()) {
	if f == nil {
		db.shared.onPushes.Store(nil)
		return
	}
	db.shared.onPushes.Store(&f)
}

func (db *DB) firePushes() {
	if f := db.shared.onPushes.Load(); f != nil {
		(*f)()
	}
}

// pushed records that n pushes were written or made due: the transaction
// tells OnPushes when it commits; outside one the write has already
// committed.
func (db *DB) pushed(n int64) {
	if n <= 0 {
		return
	}
	if db.tx != nil {
		db.tx.pushes.Add(n)
		return
	}
	db.firePushes()
}

// InTx runs fn in one transaction: the DB fn is given runs every method
// inside it, and methods that write in a transaction of their own join it.
// It commits when fn returns nil and rolls back when fn returns an error or
// panics (the panic goes on). Called on a DB already scoped to a
// transaction, InTx joins that transaction under a savepoint. fn's error is
// returned as it is, so errors.Is finds the sentinels storage returned.
func (db *DB) InTx(ctx context.Context, fn func(tx *DB) error) error {
	return db.inTx(ctx, "InTx", fn)
}

// inTx runs fn in a transaction of its own, or, on a DB scoped to a
// transaction, under a savepoint of that transaction: an error rolls back
// what fn wrote and leaves the surrounding transaction usable (PostgreSQL
// would otherwise refuse every later statement). fn's errors are returned
// unchanged; inTx wraps only those of its own.
func (db *DB) inTx(ctx context.Context, op string, fn func(tx *DB) error) error {
	if db.tx != nil {
		return db.savepoint(ctx, op, fn)
	}
	// Begun on the transaction's own context, not a statement's: a
	// statement's shorter deadline must not roll the whole back.
	st := &txState{begin: func() (*sqlx.Tx, error) { return db.pool.BeginTxx(ctx, nil) }}
	finished := false
	defer func() {
		if tx := st.begun(); !finished && tx != nil { // an error, a panic or runtime.Goexit
			tx.Rollback()
		}
	}()
	if err := fn(&DB{Dialect: db.Dialect, pool: db.pool, tx: st, shared: db.shared}); err != nil {
		return err
	}
	st.mu.Lock()
	broken := st.broken
	st.mu.Unlock()
	if broken != nil {
		return fail(op, broken)
	}
	finished = true
	tx := st.begun()
	if tx == nil {
		return nil // no statement ran: nothing to commit
	}
	if err := tx.Commit(); err != nil {
		return fail(op, err)
	}
	if st.pushes.Load() > 0 {
		db.firePushes()
	}
	if st.newDoctor.Load() {
		db.shared.doctorNames.forget()
	}
	return nil
}

func (db *DB) savepoint(ctx context.Context, op string, fn func(tx *DB) error) error {
	st := db.tx
	if st.begun() == nil {
		return db.first(fn)
	}
	tx, err := st.open()
	if err != nil {
		return fail(op, err)
	}
	name := fmt.Sprintf("jiayi_%d", st.savepoints.Add(1))
	if _, err := tx.ExecContext(ctx, "SAVEPOINT "+name); err != nil {
		return fail(op, err)
	}
	pushesBefore := st.pushes.Load()
	finished := false
	rollback := func() {
		finished = true
		st.pushes.Store(pushesBefore)
		bg := context.WithoutCancel(ctx)
		_, err := tx.ExecContext(bg, "ROLLBACK TO SAVEPOINT "+name)
		if err == nil {
			_, err = tx.ExecContext(bg, "RELEASE SAVEPOINT "+name)
		}
		if err != nil {
			st.mu.Lock()
			if st.broken == nil {
				st.broken = fmt.Errorf("roll back to savepoint after %s: %w", op, err)
			}
			st.mu.Unlock()
		}
	}
	defer func() {
		if !finished { // a panic or runtime.Goexit
			rollback()
		}
	}()
	if err := fn(db); err != nil {
		rollback()
		return err
	}
	if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT "+name); err != nil {
		rollback()
		return fail(op, err)
	}
	finished = true
	return nil
}

// first runs fn as the first work of a transaction no statement has begun
// yet, without a savepoint: undoing fn is then undoing the transaction, so
// on an error (or a panic) it is rolled back and the next statement
// begins it afresh. That spares a savepoint's two round trips where a
// turn's first write is a method that writes in a transaction of its own
// (a signing's CreateContract).
func (db *DB) first(fn func(tx *DB) error) error {
	st := db.tx
	pushesBefore := st.pushes.Load()
	finished := false
	defer func() {
		if finished {
			return
		}
		st.pushes.Store(pushesBefore)
		st.mu.Lock()
		tx := st.tx
		st.tx, st.beginErr, st.broken = nil, nil, nil
		st.mu.Unlock()
		if tx != nil {
			tx.Rollback()
		}
	}()
	if err := fn(db); err != nil {
		return err
	}
	finished = true
	return nil
}

// fail wraps an error with the storage operation it ended, once, turning
// sql.ErrNoRows into ErrNotFound.
func fail(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	return fmt.Errorf("storage.%s: %w", op, err)
}

// open begins the transaction if no statement has yet.
func (st *txState) open() (*sqlx.Tx, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.tx == nil && st.beginErr == nil {
		st.tx, st.beginErr = st.begin()
	}
	return st.tx, st.beginErr
}

// begun is the transaction if a statement began it, else nil.
func (st *txState) begun() *sqlx.Tx {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.tx
}

// unbegun is db, or, scoped to a transaction no statement has begun yet,
// the pool: for a read that needs no snapshot and should not begin one.
// Once begun, the transaction reads (it holds a connection: a second one
// from the pool could wait for itself when the pool is full).
func (db *DB) unbegun() *DB {
	if db.tx == nil || db.tx.begun() != nil {
		return db
	}
	return &DB{Dialect: db.Dialect, pool: db.pool, shared: db.shared}
}

// ext is what statements run on: the transaction (begun now if need be),
// or the pool.
func (db *DB) ext() (sqlx.ExtContext, error) {
	if db.tx != nil {
		return db.tx.open()
	}
	return db.pool, nil
}

func (db *DB) rebind(query string) string { return db.pool.Rebind(query) }

// get scans the one row query returns into dest; no row is ErrNotFound.
func (db *DB) get(ctx context.Context, op string, dest any, query string, args ...any) error {
	ext, err := db.ext()
	if err != nil {
		return fail(op, err)
	}
	return fail(op, sqlx.GetContext(ctx, ext, dest, db.rebind(query), args...))
}

// sel scans every row query returns into the slice dest.
func (db *DB) sel(ctx context.Context, op string, dest any, query string, args ...any) error {
	ext, err := db.ext()
	if err != nil {
		return fail(op, err)
	}
	return fail(op, sqlx.SelectContext(ctx, ext, dest, db.rebind(query), args...))
}

// selIn is sel for a query with IN (?) taking a slice (sqlx.In).
func (db *DB) selIn(ctx context.Context, op string, dest any, query string, args ...any) error {
	q, expanded, err := sqlx.In(query, args...)
	if err != nil {
		return fail(op, err)
	}
	return db.sel(ctx, op, dest, q, expanded...)
}

// exec runs a statement and returns how many rows it changed.
func (db *DB) exec(ctx context.Context, op string, query string, args ...any) (int64, error) {
	ext, err := db.ext()
	if err != nil {
		return 0, fail(op, err)
	}
	res, err := ext.ExecContext(ctx, db.rebind(query), args...)
	if err != nil {
		return 0, fail(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fail(op, err)
	}
	return n, nil
}

// execIn is exec for a statement with IN (?) taking a slice (sqlx.In).
func (db *DB) execIn(ctx context.Context, op string, query string, args ...any) (int64, error) {
	q, expanded, err := sqlx.In(query, args...)
	if err != nil {
		return 0, fail(op, err)
	}
	return db.exec(ctx, op, q, expanded...)
}

// insertMany writes rows with one INSERT per chunk instead of one per row:
// head is "INSERT INTO t (a, b) VALUES", tail what follows the values (ON
// CONFLICT …). Every row has as many values as the first. It returns how
// many rows were written.
func (db *DB) insertMany(ctx context.Context, op, head, tail string, rows [][]any) (int64, error) {
	const chunk = 500 // far below the bound parameters SQLite and PostgreSQL take
	var total int64
	for start := 0; start < len(rows); start += chunk {
		part := rows[start:min(start+chunk, len(rows))]
		one := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(part[0])), ", ") + ")"
		var q strings.Builder
		q.WriteString(head)
		args := make([]any, 0, len(part)*len(part[0]))
		for i, r := range part {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString(one)
			args = append(args, r...)
		}
		q.WriteString(" ")
		q.WriteString(tail)
		n, err := db.exec(ctx, op, q.String(), args...)
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

// isUniqueViolation reports whether err is a unique or primary key
// violation, by the driver's error code.
func isUniqueViolation(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "23505" // unique_violation
	}
	var lite *sqlite.Error
	if errors.As(err, &lite) {
		return lite.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || lite.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// signingClash says whether a unique violation in insertSigning's statement
// is one signKnown reports as ErrLiveContract: the resident's ID number (the
// same person being signed elsewhere at this moment) or the contract's
// keys. Any other (a package twice) is a plain error, as there.
func signingClash(err error) bool {
	var pg *pgconn.PgError
	return !errors.As(err, &pg) || pg.TableName == "residents" || pg.TableName == "contracts"
}
