package storage

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
)

// ErrInUse says another jiayi server already runs on a SQLite database.
var ErrInUse = errors.New("another jiayi server is already running on this SQLite database")

// LockSQLite takes, for as long as a server runs, an exclusive lock on a
// file beside a SQLite database: two servers on one file would each keep
// their own conversations and sessions and answer residents from both.
// The operating system frees the lock if the process dies. Other databases
// need no lock; the release is then a no-op.
func LockSQLite(databaseURL string) (release func(), err error) {
	d, dsn, err := ParseDatabaseURL(databaseURL)
	path := strings.TrimPrefix(strings.SplitN(dsn, "?", 2)[0], "file:")
	if err != nil || d != SQLite || path == ":memory:" {
		return func() {}, nil
	}
	f, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("storage.LockSQLite: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("storage.LockSQLite: %s: %w", path, ErrInUse)
		}
		return nil, fmt.Errorf("storage.LockSQLite: %w", err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
			f.Close()
		})
	}, nil
}
