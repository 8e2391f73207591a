// Package database opens grin's database, the embedded SQLite file or a
// PostgreSQL server (OpenPostgres), and keeps its schema current.
//
// Every piece of durable state of the embedded deployment (users, grants,
// settings, later history and vectors) lives in one file so that a backup is
// one copy and a laptop install has nothing to set up. The pure-Go driver
// (modernc.org/sqlite) keeps the binary free of cgo.
//
// Migrations are numbered SQL files embedded in the binary, one set per
// engine with the same numbers and names (migrations/ for SQLite,
// migrations/postgres/ for PostgreSQL); SQLite's schema version is its own
// user_version, bumped in the same transaction as the migration so that a
// crash never leaves a half-applied step.
//
// Stores write one SQL for both engines: placeholders are $1, $2… (SQLite
// binds them by position as PostgreSQL does), conflicts are ON CONFLICT,
// new ids come back with RETURNING; EngineOf tells the few that differ.
package database

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/grin-ai/grin/internal/walbatch"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// FileName is the name of the database file inside the data directory.
const FileName = "grin.db"

// Open opens (creating if needed) the database in dir and applies every
// pending migration. The returned handle is safe for concurrent use.
func Open(ctx context.Context, dir string) (*sql.DB, error) {
	path := filepath.Join(dir, FileName)
	// Create the file readable by its owner only; SQLite gives the WAL
	// and shared-memory files the same mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	f.Close()
	q := url.Values{}
	for _, p := range []string{
		"journal_mode(WAL)",
		"busy_timeout(10000)",
		"foreign_keys(1)",
		"synchronous(NORMAL)",
		"cache_size(-65536)",   // 64 MiB of pages: fewer reads from the OS
		"mmap_size(268435456)", // and those through a mapping, not pread
	} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	if err := walbatch.Register(); err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	q.Set("vfs", walbatch.Name)
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	// One connection: SQLite admits one writer at a time, and with several
	// connections waiting writers sleep in SQLite's busy handler (up to
	// 100 ms a nap), which showed as second-long tails under load. With one
	// connection, database/sql queues callers in order instead. Callers
	// must not hold rows or a transaction open while making another call
	// on the handle.
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate database %s: %w", path, err)
	}
	return db, nil
}

// OpenReads opens read-only connections to the database in dir, which
// Open must have created: reads on the hot paths (a session's history, a
// partition's memories) go there and run beside the one writing
// connection, as WAL allows, instead of queueing behind its writes. Each
// connection keeps the statements prepared on it (database/sql prepares a
// *sql.Stmt once per connection).
//
// A read sees what was committed when it began; writes are answered only
// once committed (Committer), so a reader never misses a write its caller
// was told about.
func OpenReads(ctx context.Context, dir string) (*sql.DB, error) {
	path := filepath.Join(dir, FileName)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open database %s for reading: %w", path, err)
	}
	q := url.Values{}
	for _, p := range []string{
		"busy_timeout(10000)",
		"query_only(1)", // a write through here is a bug: refuse it
		"cache_size(-16384)",
		"mmap_size(268435456)",
	} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open database %s for reading: %w", path, err)
	}
	// More connections than cores: a reader holding one is often a
	// goroutine waiting for a core, and with few connections the
	// sessions loading at once queue behind it (with 4 on 2 cores, a
	// fifth of 1,000 users' first messages waited a third of a second for
	// one). WAL readers do not block each other, and a connection's page
	// cache grows only as it is used.
	n := max(16, 8*runtime.GOMAXPROCS(0))
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n) // kept open, with their prepared statements
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s for reading: %w", path, err)
	}
	return db, nil
}

// The migrations of each engine, in migrationFiles.
const (
	sqliteMigrations   = "migrations"
	postgresMigrations = "migrations/postgres"
)

type migration struct {
	version int
	name    string
	sql     string
}

// migrations reads the migrations of one engine from dir.
func migrations(dir string) ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %q must start with a positive number and an underscore", e.Name())
		}
		b, err := migrationFiles.ReadFile(dir + "/" + e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %q: versions must run 1, 2, 3… without gaps", m.name)
		}
	}
	return ms, nil
}

func migrate(ctx context.Context, db *sql.DB) error {
	ms, err := migrations(sqliteMigrations)
	if err != nil {
		return err
	}
	var current int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current > len(ms) {
		return fmt.Errorf("the database is at schema version %d but this grin knows only %d: it was written by a newer grin", current, len(ms))
	}
	for _, m := range ms[current:] {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			tx.Rollback()
			return fmt.Errorf("apply %s: %w", m.name, err)
		}
		// PRAGMA does not take bound parameters; the version is an int we made.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", m.version)); err != nil {
			tx.Rollback()
			return fmt.Errorf("record %s: %w", m.name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit %s: %w", m.name, err)
		}
	}
	return nil
}
