package database

import (
	"context"
	"database/sql"
	"fmt"
)

// Version reads the schema version db is at: SQLite's user_version, or
// the newest step recorded in PostgreSQL's schema_migrations (0 when none
// is). It changes nothing, so a copy tool can check a database it must
// not migrate.
func Version(ctx context.Context, db *sql.DB) (int, error) {
	var v int
	q := `PRAGMA user_version`
	if EngineOf(db) == Postgres {
		q = `SELECT coalesce(max(version), 0) FROM schema_migrations`
		var exists bool
		if err := db.QueryRowContext(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
			return 0, fmt.Errorf("read schema version: %w", err)
		}
		if !exists {
			return 0, nil
		}
	}
	if err := db.QueryRowContext(ctx, q).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// Latest is the schema version this grin's migrations bring a database of
// engine e to.
func Latest(e Engine) (int, error) {
	dir := sqliteMigrations
	if e == Postgres {
		dir = postgresMigrations
	}
	ms, err := migrations(dir)
	if err != nil {
		return 0, err
	}
	return len(ms), nil
}
