// Package databasetest runs a store's behaviour suite on every engine grin
// stores data in: the embedded SQLite file and a real PostgreSQL server
// (integration/pgtest), so one contract is checked the same way on both.
package databasetest

import (
	"context"
	"database/sql"
	"testing"

	"github.com/grin-ai/grin/integration/pgtest"
	"github.com/grin-ai/grin/platform/database"
)

// Open gives a test a fresh, migrated, empty database of one engine,
// closed when the test ends.
type Open func(t *testing.T) *sql.DB

// SQLite opens a new SQLite database in a new data directory, closed when
// the test ends, and returns both.
func SQLite(t testing.TB) (dir string, db *sql.DB) {
	t.Helper()
	dir = t.TempDir()
	db, err := database.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return dir, db
}

// EachEngine runs fn once per engine, as the subtests "sqlite" and
// "postgres". The PostgreSQL subtest starts one server for all of fn's
// databases; it skips (and says how to install PostgreSQL) when it is
// missing, unless GRIN_REQUIRE_POSTGRES=1.
func EachEngine(t *testing.T, fn func(t *testing.T, engine database.Engine, open Open)) {
	t.Run(string(database.SQLite), func(t *testing.T) {
		fn(t, database.SQLite, func(t *testing.T) *sql.DB {
			t.Helper()
			_, db := SQLite(t)
			return db
		})
	})
	t.Run(string(database.Postgres), func(t *testing.T) {
		server := pgtest.Start(t)
		fn(t, database.Postgres, func(t *testing.T) *sql.DB {
			t.Helper()
			db, err := database.OpenPostgres(context.Background(), server.Database(t))
			if err != nil {
				t.Fatal(err)
			}
			// Registered after Database's cleanup, so it runs first: the
			// connections close before the database is dropped.
			t.Cleanup(func() { db.Close() })
			return db
		})
	})
}

// Case is one behaviour of a store's suite: its subtest name and what it
// checks on the fixture F built for it.
type Case[F any] struct {
	Name string
	Run  func(t *testing.T, f F)
}

// Suite runs every case on each engine (EachEngine), each on a new, empty
// database that fixture turns into what the cases check: the database
// itself, or a store opened on it.
func Suite[F any](t *testing.T, fixture func(t *testing.T, db *sql.DB) F, cases ...Case[F]) {
	t.Helper()
	EachEngine(t, func(t *testing.T, _ database.Engine, open Open) {
		for _, c := range cases {
			t.Run(c.Name, func(t *testing.T) { c.Run(t, fixture(t, open(t))) })
		}
	})
}

// DB is the fixture of a suite whose cases take the database itself.
func DB(_ *testing.T, db *sql.DB) *sql.DB { return db }
