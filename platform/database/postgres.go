package database

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Engine names the database engine behind a handle.
type Engine string

// The engines grin stores its data in.
const (
	SQLite   Engine = "sqlite"
	Postgres Engine = "postgres"
)

// EngineOf says which engine db runs on, for the few statements that are
// not written the same for both; "" for no database (nil).
func EngineOf(db *sql.DB) Engine {
	if db == nil {
		return ""
	}
	if _, ok := db.Driver().(*stdlib.Driver); ok {
		return Postgres
	}
	return SQLite
}

// PostgresConns is the default bound on the connections one grin process
// opens to PostgreSQL: the server's own default max_connections is 100,
// shared by every replica (GRIN_DATABASE_CONNS changes it).
const PostgresConns = 16

// PostgresOption adjusts how OpenPostgres connects.
type PostgresOption func(*postgresOptions)

type postgresOptions struct {
	conns   int
	observe func(statement string, d time.Duration, err error)
}

// ObserveStatements has fn told of every statement run on the handle: its
// kind (the first word of its SQL in lower case: select, insert, …), how
// long PostgreSQL took to answer it, and its error. fn must be quick.
func ObserveStatements(fn func(statement string, d time.Duration, err error)) PostgresOption {
	return func(o *postgresOptions) { o.observe = fn }
}

// tracer times statements for ObserveStatements (pgx's QueryTracer).
type tracer struct {
	observe func(statement string, d time.Duration, err error)
}

type traceKey struct{}

type traceStart struct {
	kind string
	at   time.Time
}

func (t tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, traceKey{}, traceStart{kind: statementKind(data.SQL), at: time.Now()})
}

func (t tracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	if st, ok := ctx.Value(traceKey{}).(traceStart); ok {
		t.observe(st.kind, time.Since(st.at), data.Err)
	}
}

// statementKind is the first word of sql, lower case, from a short list
// (a metric label must not take arbitrary values).
func statementKind(sql string) string {
	word, _, _ := strings.Cut(strings.TrimSpace(sql), " ")
	switch w := strings.ToLower(strings.TrimRight(word, "(\n\t")); w {
	case "select", "insert", "update", "delete", "with", "begin", "commit", "rollback", "create", "alter", "notify", "listen", "lock":
		return w
	default:
		return "other"
	}
}

// MaxConns bounds the connections the handle opens (PostgresConns when n
// is not positive).
func MaxConns(n int) PostgresOption { return func(o *postgresOptions) { o.conns = n } }

// migrationLock is the key of the advisory lock held while migrating, so
// that replicas starting together migrate one at a time: "grin" in ASCII.
const migrationLock = 0x6772696e

// IsPostgresURL says whether rawURL names a PostgreSQL server
// (postgres:// or postgresql://).
func IsPostgresURL(rawURL string) bool {
	scheme, _, ok := strings.Cut(rawURL, "://")
	return ok && (strings.EqualFold(scheme, "postgres") || strings.EqualFold(scheme, "postgresql"))
}

// OpenPostgres connects to the PostgreSQL database at rawURL
// (postgres://user:password@host:port/database?sslmode=…) through pgx and
// database/sql, so stores keep one *sql.DB-shaped code for both engines,
// and applies every pending migration. Errors never repeat the password.
//
// Notes: the handle is safe for concurrent use and holds up to
// PostgresConns connections unless MaxConns says otherwise.
func OpenPostgres(ctx context.Context, rawURL string, opts ...PostgresOption) (*sql.DB, error) {
	o := postgresOptions{conns: PostgresConns}
	for _, f := range opts {
		f(&o)
	}
	if o.conns <= 0 {
		o.conns = PostgresConns
	}
	where := RedactURL(rawURL)
	if !IsPostgresURL(rawURL) {
		return nil, fmt.Errorf("open database %s: not a PostgreSQL URL (postgres://user:password@host:port/database)", where)
	}
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		// pgx's message may quote the URL: say only what is wrong.
		return nil, fmt.Errorf("open database %s: the URL does not parse as a PostgreSQL connection string", where)
	}
	if o.observe != nil {
		cfg.Tracer = tracer{observe: o.observe}
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(o.conns)
	db.SetMaxIdleConns(o.conns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", where, err)
	}
	if err := migratePostgres(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate database %s: %w", where, err)
	}
	return db, nil
}

// RedactURL is rawURL without its password, for messages.
func RedactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(a URL that does not parse)"
	}
	return u.Redacted()
}

// migratePostgres applies the pending PostgreSQL migrations, each in its
// own transaction with its row in schema_migrations. PostgreSQL's DDL is
// transactional, so a step is applied whole or not at all, as on SQLite;
// an advisory lock makes replicas that start together take turns.
func migratePostgres(ctx context.Context, db *sql.DB) error {
	ms, err := migrations(postgresMigrations)
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		// Two replicas creating it at once: one wins, the other finds it.
		var n int
		if qerr := db.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); qerr != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
	}
	for {
		done, err := migrateStep(ctx, db, ms)
		if err != nil || done {
			return err
		}
	}
}

// migrateStep applies the next pending migration, if any, and says
// whether none was left.
func migrateStep(ctx context.Context, db *sql.DB, ms []migration) (done bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("begin a migration: %w", err)
	}
	defer func() {
		if err != nil || done {
			err = errors.Join(err, ignoreDone(tx.Rollback()))
		}
	}()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
		return false, fmt.Errorf("wait for other replicas' migrations: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return false, fmt.Errorf("read schema version: %w", err)
	}
	if current > len(ms) {
		return false, fmt.Errorf("the database is at schema version %d but this grin knows only %d: it was written by a newer grin", current, len(ms))
	}
	if current == len(ms) {
		return true, nil
	}
	m := ms[current]
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return false, fmt.Errorf("apply %s: %w", m.name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
		return false, fmt.Errorf("record %s: %w", m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("commit %s: %w", m.name, err)
	}
	return false, nil
}

func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}

// Hold takes a lock on key that every process on the database respects,
// for work that spans several transactions (and other stores), until
// release is called. On PostgreSQL it is a session advisory lock, holding
// one connection of the pool meanwhile; on SQLite, where one process owns
// the file, there is nobody else to keep out and it does nothing (the
// caller's own mutex suffices).
func Hold(ctx context.Context, db *sql.DB, key string) (release func(), err error) {
	if EngineOf(db) != Postgres {
		return func() {}, nil
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("wait for the lock on %s: %w", key, err)
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(hashtext($1))`, key); err != nil {
		conn.Close()
		return nil, fmt.Errorf("wait for the lock on %s: %w", key, err)
	}
	return func() {
		// Unlocked even when the caller's context is done; a connection
		// that cannot unlock is dropped, which unlocks it.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_unlock(hashtext($1))`, key); err != nil {
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		conn.Close()
	}, nil
}

// Locked runs fn in a transaction in which no other Locked call with the
// same key runs, on any connection or process: a check and the write it
// allows (a quota, a name nobody may resemble) stay one step. On SQLite
// the transaction alone does it (one writer at a time, taken at BEGIN);
// on PostgreSQL an advisory lock on key is held until the transaction
// ends. fn's error rolls the transaction back and is returned as is.
func Locked(ctx context.Context, db *sql.DB, key string, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin a write: %w", err)
	}
	defer tx.Rollback()
	if EngineOf(db) == Postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, key); err != nil {
			return fmt.Errorf("wait for the lock on %s: %w", key, err)
		}
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
