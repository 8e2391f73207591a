package database

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenMigratesOnceAndKeepsData(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES ('k', '1')`); err != nil {
		t.Fatal(err)
	}
	var mode string
	db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode)
	if mode != "wal" {
		t.Errorf("journal mode %q, want wal", mode)
	}
	db.Close()

	db, err = Open(ctx, dir) // a restart: no migration runs twice
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	if err := db.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = 'k'`).Scan(&v); err != nil || v != "1" {
		t.Errorf("data after reopening: %q %v", v, err)
	}
	ms, _ := migrations(sqliteMigrations)
	var version int
	db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version)
	if version != len(ms) {
		t.Errorf("schema version %d, want %d", version, len(ms))
	}
	info, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("database file mode %v, want 0600", info.Mode().Perm())
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	db.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", 999))
	db.Close()
	_, err = Open(ctx, dir)
	if err == nil || !strings.Contains(err.Error(), "newer grin") {
		t.Errorf("opening a newer database: %v", err)
	}
}

// TestReadsRunBesideTheWriter: the read-only connections read what was
// committed while the writing connection is inside a transaction, never
// what is not committed yet, and refuse to write.
func TestReadsRunBesideTheWriter(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reads, err := OpenReads(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer reads.Close()
	db.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES ('k', 'committed')`)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	tx.ExecContext(ctx, `UPDATE settings SET value = 'pending' WHERE name = 'k'`)
	// The writer holds the one writing connection; the read does not wait.
	var v string
	if err := reads.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = 'k'`).Scan(&v); err != nil || v != "committed" {
		t.Errorf("read beside an open write: %q %v", v, err)
	}
	if _, err := reads.ExecContext(ctx, `DELETE FROM settings`); err == nil {
		t.Error("a read-only connection wrote")
	}
	if _, err := OpenReads(ctx, t.TempDir()); err == nil {
		t.Error("OpenReads of a directory without a database succeeded")
	}
}
