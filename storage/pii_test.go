package storage_test

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/jiayi-health/jiayi/storage"
)

func TestSealerRoundTripsAndRefusesMisuse(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	s, err := storage.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	const id = "11010519491231002X" // synthetic
	a, _ := s.Seal("id_number", id)
	b, _ := s.Seal("id_number", id)
	if a == b || strings.Contains(a, id) || strings.Contains(a, "1949") {
		t.Fatalf("sealed values must differ and hide the value: %q %q", a, b)
	}
	if got, err := s.Open("id_number", a); err != nil || got != id {
		t.Fatalf("open = %q, %v", got, err)
	}
	if _, err := s.Open("phone", a); !errors.Is(err, storage.ErrSealed) {
		t.Fatalf("opened as another field: %v", err)
	}
	tampered := a[:len(a)-2] + "AA"
	if _, err := s.Open("id_number", tampered); !errors.Is(err, storage.ErrSealed) {
		t.Fatalf("tampered value opened: %v", err)
	}
	other, _ := storage.NewSealer(bytes.Repeat([]byte{8}, 32))
	if _, err := other.Open("id_number", a); !errors.Is(err, storage.ErrSealed) {
		t.Fatalf("opened with another key: %v", err)
	}
	again, err := storage.NewSealer(key)
	if err != nil {
		t.Fatal(err)
	}
	if s.Hash("id_number", id) != again.Hash("id_number", id) || s.Hash("id_number", id) == s.Hash("phone", id) ||
		s.Hash("id_number", id) == other.Hash("id_number", id) || strings.Contains(s.Hash("id_number", id), id) {
		t.Fatal("lookup hashes must be stable per field and key")
	}
	if _, err := storage.NewSealer(key[:16]); err == nil {
		t.Fatal("a 16-byte key accepted")
	}
}

func TestSandboxKeyFileIsMadeOnceAndPrivate(t *testing.T) {
	dir := t.TempDir()
	path := storage.KeyFileFor("sqlite:" + dir + "/jiayi.db")
	if path != dir+"/jiayi.db.pii-key" {
		t.Fatalf("key file %q is not beside the database", path)
	}
	first, err := storage.LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v", info.Mode(), err)
	}
	again, err := storage.LoadOrCreateKey(path)
	if err != nil || !bytes.Equal(first, again) || len(first) != 32 {
		t.Fatal("a second start must reuse the key")
	}
	os.WriteFile(path, []byte("not a key"), 0o600)
	if _, err := storage.LoadOrCreateKey(path); err == nil {
		t.Fatal("a damaged key file accepted")
	}
	if storage.KeyFileFor("postgres://h/db") != "jiayi.pii-key" {
		t.Fatal("postgres sandbox key file")
	}
}
