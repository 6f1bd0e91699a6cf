package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// SnapshotFileFor is where the embedded store keeps its conversations
// beside a SQLite database, so that a restart on embedded defaults loses
// none; "" for other databases (which run with a real Redis).
func SnapshotFileFor(databaseURL string) string { return BesideDatabase(databaseURL, ".sessions") }

// BesideDatabase is a file beside a SQLite database, named after it with
// suffix; "" for other databases.
func BesideDatabase(databaseURL, suffix string) string {
	if d, dsn, err := ParseDatabaseURL(databaseURL); err == nil && d == SQLite {
		if path := strings.TrimPrefix(strings.SplitN(dsn, "?", 2)[0], "file:"); path != ":memory:" {
			return path + suffix
		}
	}
	return ""
}

// snapshotEvery is how often the embedded store is written out while it
// runs: a crash (rather than a stop) loses at most this much, and the next
// message then says its conversation was lost.
const snapshotEvery = 5 * time.Second

// snapshotKey is one key of the embedded store as the snapshot keeps it.
// Values are what Redis holds: conversation state and replies are sealed
// there already.
type snapshotKey struct {
	Key    string            `json:"k"`
	String *string           `json:"s,omitempty"`
	Hash   map[string]string `json:"h,omitempty"`
	// Expires is when the key's time to live ends, so the time the store
	// was stopped counts against it; zero: it lives on.
	Expires time.Time `json:"exp,omitzero"`
}

// PersistTo restores the store from path, if a snapshot is there, and from
// then on writes it there every few seconds and when the store is closed.
// Locks are not kept: their holders are gone with the process.
func (e *EmbeddedRedis) PersistTo(path string) error {
	if err := e.restore(path); err != nil {
		return fmt.Errorf("storage.PersistTo: %w", err)
	}
	e.mu.Lock()
	e.snapshotPath = path
	stop := e.stop
	e.mu.Unlock()
	if stop == nil {
		return fmt.Errorf("storage.PersistTo: the store is closed")
	}
	go func() {
		t := time.NewTicker(snapshotEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				_ = e.save() // a failed write is tried again at the next tick and at Close
			}
		}
	}()
	return nil
}

func (e *EmbeddedRedis) restore(path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var keys []snapshotKey
	if err := json.Unmarshal(b, &keys); err != nil {
		return fmt.Errorf("%s is not a snapshot of the embedded store: %w", path, err)
	}
	now := time.Now()
	for _, k := range keys {
		if !k.Expires.IsZero() && !k.Expires.After(now) {
			continue // its time ran out while the store was stopped
		}
		switch {
		case k.String != nil:
			if err := e.srv.Set(k.Key, *k.String); err != nil {
				return err
			}
		case k.Hash != nil:
			for f, v := range k.Hash {
				e.srv.HSet(k.Key, f, v)
			}
		}
		if !k.Expires.IsZero() {
			e.srv.SetTTL(k.Key, k.Expires.Sub(now))
		}
	}
	return nil
}

// save writes every string and hash key but locks, with what is left of its
// time to live, through a temporary file so a crash mid-write keeps the last
// whole snapshot.
func (e *EmbeddedRedis) save() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.snapshotPath == "" {
		return nil
	}
	keys := []snapshotKey{}
	for _, k := range e.srv.Keys() {
		if strings.HasSuffix(k, ":lock") {
			continue
		}
		sk := snapshotKey{Key: k}
		if ttl := e.srv.TTL(k); ttl > 0 {
			sk.Expires = time.Now().Add(ttl)
		}
		switch e.srv.Type(k) {
		case "string":
			v, err := e.srv.Get(k)
			if err != nil {
				continue // expired meanwhile
			}
			sk.String = &v
		case "hash":
			fields, err := e.srv.HKeys(k)
			if err != nil {
				continue
			}
			sk.Hash = map[string]string{}
			for _, f := range fields {
				sk.Hash[f] = e.srv.HGet(k, f)
			}
		default:
			continue
		}
		keys = append(keys, sk)
	}
	b, err := json.Marshal(keys)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(e.snapshotPath), filepath.Base(e.snapshotPath)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), e.snapshotPath)
}
