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
	ms, _ := migrations()
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
