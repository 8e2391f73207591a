package database_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/grin-ai/grin/integration/pgtest"
	"github.com/grin-ai/grin/platform/database"
	"github.com/grin-ai/grin/platform/database/databasetest"
)

// migrationNames lists the migration files of one engine's directory.
func migrationNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".sql") {
			names = append(names, e.Name())
		}
	}
	return names
}

// TestMigrationsMirror: every schema step exists for both engines, under
// the same number and name, so a database on either is at the same
// schema for the same version.
func TestMigrationsMirror(t *testing.T) {
	sqlite := migrationNames(t, "migrations")
	postgres := migrationNames(t, filepath.Join("migrations", "postgres"))
	if strings.Join(sqlite, "\n") != strings.Join(postgres, "\n") {
		t.Errorf("the engines' migrations differ:\nSQLite:     %v\nPostgreSQL: %v", sqlite, postgres)
	}
}

// tables lists the tables of grin's schema a database holds.
func tables(t *testing.T, engine database.Engine, db *sql.DB) []string {
	t.Helper()
	q := `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`
	if engine == database.Postgres {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> 'schema_migrations' ORDER BY table_name`
	}
	rows, err := db.QueryContext(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	return names
}

// TestEngines: on both engines a new database gets the same tables, knows
// which engine it is, and binds $1-style placeholders by position (the
// one SQL every store writes for both), a placeholder used twice included.
func TestEngines(t *testing.T) {
	want := "audit conversation_history grant_generations grants login_clients login_failures memory_points plugin_kv plugin_modules plugins policy_versions secrets settings turn_leases users"
	databasetest.EachEngine(t, func(t *testing.T, engine database.Engine, open databasetest.Open) {
		db := open(t)
		if got := database.EngineOf(db); got != engine {
			t.Errorf("EngineOf says %q", got)
		}
		if got := strings.Join(tables(t, engine, db), " "); got != want {
			t.Errorf("tables:\n got %s\nwant %s", got, want)
		}
		var a, b, c string
		if err := db.QueryRowContext(t.Context(), `SELECT $2, $1, $2`, "first", "second").Scan(&a, &b, &c); err != nil {
			t.Fatal(err)
		}
		if a != "second" || b != "first" || c != "second" {
			t.Errorf("$2, $1, $2 bound as %q, %q, %q", a, b, c)
		}
		// New ids come back the same way on both.
		var id int64
		if err := db.QueryRowContext(t.Context(), `INSERT INTO policy_versions (model, policy, source, created_at) VALUES ($1, $2, $3, $4) RETURNING version`,
			"m", "p", "file", 1).Scan(&id); err != nil || id != 1 {
			t.Errorf("RETURNING: %d %v", id, err)
		}
		// A conflict is ignored with the same words on both.
		for range 2 {
			if _, err := db.ExecContext(t.Context(), `INSERT INTO grants (subject, role) VALUES ($1, $2) ON CONFLICT DO NOTHING`, "alice", "perm:x"); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestPostgresMigrations: replicas opening one new database at once all
// start, each migration is applied once, a restart applies none, and a
// schema newer than this grin is refused as on SQLite.
func TestPostgresMigrations(t *testing.T) {
	server := pgtest.Start(t)
	url := server.Database(t)
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() {
			db, err := database.OpenPostgres(ctx, url)
			if err == nil {
				db.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
	db, err := database.OpenPostgres(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	var n, top int
	if err := db.QueryRowContext(ctx, `SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &top); err != nil {
		t.Fatal(err)
	}
	want := len(migrationNames(t, "migrations"))
	if n != want || top != want {
		t.Errorf("schema_migrations has %d rows up to %d, want %d", n, top, want)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO schema_migrations (version, name) VALUES (999, '0999_future.sql')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := database.OpenPostgres(ctx, url); err == nil || !strings.Contains(err.Error(), "newer grin") {
		t.Errorf("a newer schema: %v", err)
	}
}

// TestOpenPostgresErrors: a wrong URL or an unreachable server is refused
// in words that never repeat the password.
func TestOpenPostgresErrors(t *testing.T) {
	for _, url := range []string{
		"mysql://grin:s3cret-pw@127.0.0.1/grin",
		"postgres://grin:s3cret-pw@127.0.0.1:1/grin?connect_timeout=2",
		"postgres://grin:s3cret-pw@127.0.0.1:5432/grin?sslmode=bogus",
	} {
		_, err := database.OpenPostgres(t.Context(), url)
		if err == nil {
			t.Errorf("%s: opened", url)
			continue
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("the error repeats the password: %v", err)
		}
		t.Log(err)
	}
}

// TestHoldKeepsOtherProcessesOut: a lock held on PostgreSQL keeps out
// another handle (as another replica's) asking for the same key, until
// released; other keys pass; the held connection goes back to the pool.
func TestHoldKeepsOtherProcessesOut(t *testing.T) {
	server := pgtest.Start(t)
	url := server.Database(t)
	ctx := context.Background()
	open := func() *sql.DB {
		db, err := database.OpenPostgres(ctx, url, database.MaxConns(2))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	a, b := open(), open()
	release, err := database.Hold(ctx, a, "grin.test")
	if err != nil {
		t.Fatal(err)
	}
	other, err := database.Hold(ctx, b, "grin.other")
	if err != nil {
		t.Fatalf("another key: %v", err)
	}
	other()
	got := make(chan func(), 1)
	go func() {
		r, err := database.Hold(ctx, b, "grin.test")
		if err != nil {
			t.Error(err)
			r = func() {}
		}
		got <- r
	}()
	// The second replica still waits: its lock is not granted while the
	// first holds it (PostgreSQL says so in pg_locks).
	for {
		var waiting int
		if err := a.QueryRow(`SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting == 1 {
			break
		}
		select {
		case <-got:
			t.Fatal("the second Hold was granted while the first held the key")
		default:
		}
	}
	release()
	(<-got)()
	if s := a.Stats(); s.InUse != 0 {
		t.Errorf("connections still in use after release: %+v", s)
	}
}
