package main

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/grin-ai/grin/integration/pgtest"
	"github.com/grin-ai/grin/platform/app/apptest"
	"github.com/grin-ai/grin/platform/audit"
	"github.com/grin-ai/grin/platform/database"
	"github.com/grin-ai/grin/platform/session"
	"github.com/grin-ai/grin/platform/settings"
	"github.com/grin-ai/grin/platform/users"
	"github.com/grin-ai/grin/policies"
)

func TestDBMigrateUsage(t *testing.T) {
	withDB := t.TempDir()
	db, err := database.Open(context.Background(), withDB)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	env := map[string]string{"GRIN_DATA_DIR": withDB, "GRIN_DATABASE_URL": "postgres://grin:pw-s3cret@127.0.0.1:1/grin"}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		says string // in stderr
	}{
		{"no subcommand", env, []string{"db"}, 2, "grin db migrate"},
		{"unknown subcommand", env, []string{"db", "dump"}, 2, "grin db migrate"},
		{"from elsewhere", env, []string{"db", "migrate", "--from", "mysql"}, 2, `copies --from sqlite only, not --from "mysql"`},
		{"to elsewhere", env, []string{"db", "migrate", "--to", "mysql://grin:pw-s3cret@db/grin"}, 2, `--to postgres (GRIN_DATABASE_URL) or a postgres:// URL, not "mysql://grin:xxxxx@db/grin"`},
		{"no URL", map[string]string{"GRIN_DATA_DIR": withDB}, []string{"db", "migrate"}, 2, "needs GRIN_DATABASE_URL (or --to postgres://"},
		{"no database", map[string]string{"GRIN_DATA_DIR": filepath.Join(withDB, "typo"), "GRIN_DATABASE_URL": env["GRIN_DATABASE_URL"]}, []string{"db", "migrate"}, 2, "no grin database in"},
		{"positional", env, []string{"db", "migrate", "everything"}, 2, "grin db migrate takes flags only"},
		{"batch", env, []string{"db", "migrate", "--batch", "0"}, 2, "--batch: must be from 1 to 10000 rows, got 0"},
		{"unreachable", env, []string{"db", "migrate"}, 2, "postgres://grin:xxxxx@127.0.0.1:1/grin"},
		{"help", env, []string{"db", "migrate", "-h"}, 0, "Usage: grin db migrate [--from sqlite] [--to postgres|postgres://…]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runGrin(t, tc.env, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.says) {
				t.Errorf("exit %d, want %d with %q:\n%s", code, tc.code, tc.says, stderr)
			}
			if strings.Contains(stderr, "pw-s3cret") {
				t.Errorf("the message repeats the password: %s", stderr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(withDB, "typo")); !os.IsNotExist(err) {
		t.Errorf("a mistyped data directory was created: %v", err)
	}
}

// migrationUsers are the users the fixture creates, with their passwords.
var migrationUsers = map[string]string{"alice": "alice-password-1", "bob": "bob-password-22"}

// seedGrin makes a data directory the way grin's users do, through a real
// server: users with passwords and permissions, a login, a deleted user
// (the highest id SQLite handed out is no longer in the table), a policy
// edit, settings, a plugin compiled from source that keeps values in its
// key-value stores, and conversations.
func seedGrin(t *testing.T) string {
	t.Helper()
	in := apptest.Start(t)
	for name, pw := range migrationUsers {
		if r := in.Do("POST", "/users", map[string]any{"username": name, "password": pw,
			"permissions": map[string][]string{"MEMORY": {"READ", "WRITE"}, "CONVERSATION": {"READ"}}}); r.Status != 200 {
			t.Fatalf("create %s: %d %s", name, r.Status, r.Body)
		}
	}
	in.Login("alice", migrationUsers["alice"])
	var carol struct{ ID string }
	in.Do("POST", "/users", map[string]any{"username": "carol", "password": "carol-password-3"}).JSON(t, &carol)
	if r := in.Do("DELETE", "/users/"+carol.ID, nil); r.Status != 200 {
		t.Fatalf("delete carol: %d %s", r.Status, r.Body)
	}
	if r := in.Do("POST", "/settings", map[string]any{"name": "greeting", "value": map[string]any{"text": "héllo, 世界", "n": 3}}); r.Status != 200 {
		t.Fatalf("create a setting: %d %s", r.Status, r.Body)
	}
	manifest := `{"id":"caps","name":"Caps","version":"0.1.0","timeout_ms":20000,
		"hooks":[{"name":"before_cat_reads_message","priority":1}],"capabilities":{"kv":{}}}`
	if r := uploadZip(t, in, guestPlugin(t, "caps", manifest)); r.Status != 200 {
		t.Fatalf("install the plugin: %d %s", r.Status, r.Body)
	}
	var docs struct {
		Model  string `json:"model"`
		Policy string `json:"policy"`
	}
	in.Do("GET", "/policies", nil).JSON(t, &docs)
	docs.Policy += "\np, plugin:caps, capability:kv, use\n"
	if r := in.Do("PUT", "/policies", docs); r.Status != 200 {
		t.Fatalf("edit the policy: %d %s", r.Status, r.Body)
	}
	for _, m := range []struct{ user, text string }{
		{"alice", "kvset: colour=blue"}, {"bob", "kvset: colour=green\x7f"}, {"alice", "pkvset: shared=one"},
		{"alice", "My hat is green"}, {"bob", "What did I say?"}, {"oidc:dora@example.com", "Hello"},
	} {
		if r := in.Do("POST", "/message", map[string]any{"text": m.text}, "user_id", m.user); r.Status != 200 {
			t.Fatalf("%s says %q: %d %s", m.user, m.text, r.Status, r.Body)
		}
	}
	in.Close()
	return in.Dir
}

// guestPlugin builds a test guest from source and packs it with manifest.
func guestPlugin(t *testing.T, guest, manifest string) []byte {
	t.Helper()
	dir := t.TempDir()
	build := exec.Command("go", "build", "-buildmode=c-shared", "-o", filepath.Join(dir, "plugin.wasm"), ".")
	build.Dir = "../../wasmhooks/testdata/guests/" + guest
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", guest, err, b)
	}
	os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(manifest), 0o600)
	var archive bytes.Buffer
	z := newZip(&archive)
	z.add("manifest.json", filepath.Join(dir, "manifest.json"))
	z.add("plugin.wasm", filepath.Join(dir, "plugin.wasm"))
	z.close()
	return archive.Bytes()
}

// grinState is what grin's own stores read from a database.
type grinState struct {
	Users    []users.User
	History  map[string][]session.Turn
	Versions []policies.Version
	Policy   policies.Documents
	Settings []settings.Document
	Audit    []audit.Entry
	KV       [][3]string
	Plugins  [][4]string
}

// readState reads db through grin's stores; the policy files are
// restored from the database's newest version into an empty directory,
// as grin does when they are missing.
func readState(t *testing.T, db *sql.DB) grinState {
	t.Helper()
	ctx := context.Background()
	policy, err := policies.Open(ctx, t.TempDir(), db, nil)
	if err != nil {
		t.Fatalf("open the policy: %v", err)
	}
	us, err := users.New(db, policy)
	if err != nil {
		t.Fatal(err)
	}
	var s grinState
	if s.Users, _, err = us.List(ctx, users.Query{Limit: 100}); err != nil {
		t.Fatalf("list users: %v", err)
	}
	for name, pw := range migrationUsers {
		if _, err := us.Authenticate(ctx, name, pw); err != nil {
			t.Errorf("%s cannot log in with her password: %v", name, err)
		}
		if _, err := us.Authenticate(ctx, name, pw+"x"); err == nil {
			t.Errorf("%s logs in with a wrong password", name)
		}
	}
	history, err := session.NewHistory(ctx, database.NewCommitter(db), db)
	if err != nil {
		t.Fatal(err)
	}
	defer history.Close()
	s.History = map[string][]session.Turn{}
	for _, u := range []string{"alice", "bob", "oidc:dora@example.com"} {
		if s.History[u], err = history.Recent(ctx, u, 100); err != nil {
			t.Fatalf("history of %s: %v", u, err)
		}
	}
	if s.Versions, err = policy.Versions(ctx, 0, 100); err != nil {
		t.Fatalf("policy versions: %v", err)
	}
	s.Policy = policy.Documents()
	if s.Settings, err = settings.NewDocuments(db).List(ctx, ""); err != nil {
		t.Fatalf("settings: %v", err)
	}
	if s.Audit, _, err = audit.New(db).List(ctx, audit.Filter{Limit: audit.MaxLimit}); err != nil {
		t.Fatalf("audit: %v", err)
	}
	rows, err := db.QueryContext(ctx, `SELECT plugin_id || '/' || user_id, key, value FROM plugin_kv ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var r [3]string
		var v []byte
		if err := rows.Scan(&r[0], &r[1], &v); err != nil {
			t.Fatal(err)
		}
		r[2] = string(v)
		s.KV = append(s.KV, r)
	}
	rows.Close()
	rows, err = db.QueryContext(ctx, `SELECT id, CASE WHEN enabled THEN 'on' ELSE 'off' END, settings, CAST(installed_at AS TEXT) FROM plugins ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var r [4]string
		if err := rows.Scan(&r[0], &r[1], &r[2], &r[3]); err != nil {
			t.Fatal(err)
		}
		s.Plugins = append(s.Plugins, r)
	}
	rows.Close()
	return s
}

func openSQLite(t *testing.T, dir string) *sql.DB {
	t.Helper()
	db, err := database.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func openPostgres(t *testing.T, url string) *sql.DB {
	t.Helper()
	db, err := database.OpenPostgres(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func count(t *testing.T, db *sql.DB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// TestDBMigrate: grin db migrate copies a data directory a real server
// wrote into a real PostgreSQL, where grin's own stores read the same
// users (whose passwords log in), permissions, policy and its versions,
// settings, audit log, plugin state and conversations; memories are left
// for grin memory migrate, and said so. New rows on PostgreSQL take ids
// never used, the audit log stays append-only, and a second run copies
// nothing and verifies again.
func TestDBMigrate(t *testing.T) {
	dir := seedGrin(t)
	server := pgtest.Start(t)
	ctx := context.Background()
	src := openSQLite(t, dir)
	want := readState(t, src)
	if len(want.Users) < 4 || len(want.KV) != 3 || len(want.History["alice"]) == 0 || len(want.Versions) < 2 ||
		len(want.Settings) == 0 || len(want.Audit) == 0 || len(want.Plugins) != 1 {
		t.Fatalf("the fixture lacks something to migrate: %+v", want)
	}
	if !strings.Contains(want.Policy.Policy, "capability:kv") {
		t.Fatalf("the policy edit is not in force: %s", want.Policy.Policy)
	}
	// Replies' whys are stored compressed on SQLite; PostgreSQL gets them
	// as JSON text, compared below as read back.
	if n := count(t, src, `SELECT count(*) FROM conversation_history WHERE typeof(why) = 'blob'`); n == 0 {
		t.Fatal("the fixture holds no compressed why")
	}
	points := count(t, src, `SELECT count(*) FROM memory_points`)
	lastUserSeq := count(t, src, `SELECT seq FROM sqlite_sequence WHERE name = 'users'`)
	if lastUserSeq <= count(t, src, `SELECT max(seq) FROM users`) {
		t.Fatal("the fixture's deleted user was not the last created")
	}

	url := server.Database(t)
	env := map[string]string{"GRIN_DATA_DIR": dir, "GRIN_DATABASE_URL": url}
	code, stdout, stderr := runGrin(t, env, "db", "migrate", "--from", "sqlite", "--to", "postgres", "--batch", "3")
	if code != 0 {
		t.Fatalf("exit %d:\n%s\n%s", code, stdout, stderr)
	}
	for _, s := range []string{"verified: every table holds the same rows", "users", "audit", "conversation_history", "plugin_kv",
		"memory_points", "grin memory migrate", "Weaviate", "not copied"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("the output does not say %q:\n%s", s, stdout)
		}
	}
	if strings.Contains(stdout+stderr, server.URL[strings.Index(server.URL, ":")+3:strings.Index(server.URL, "@")]) {
		t.Errorf("the output shows the password:\n%s\n%s", stdout, stderr)
	}
	if !strings.Contains(stderr, "users: 4 of 4 rows") || !strings.Contains(stderr, "audit: ") {
		t.Errorf("no progress lines on stderr (not a terminal):\n%s", stderr)
	}

	dst := openPostgres(t, url)
	got := readState(t, dst)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("grin's stores read on PostgreSQL:\n%+v\nwant, as on SQLite:\n%+v", got, want)
	}
	if n := count(t, dst, `SELECT count(*) FROM memory_points`); n != 0 || points == 0 {
		t.Errorf("memories: %d on PostgreSQL, %d in the data directory; want none copied of some", n, points)
	}

	// New rows take ids after every one SQLite handed out.
	policy, err := policies.Open(ctx, t.TempDir(), dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	us, _ := users.New(dst, policy)
	if _, err := us.Create(ctx, "erin", "erin-password-5", nil); err != nil {
		t.Fatalf("create a user on PostgreSQL: %v", err)
	}
	if seq := count(t, dst, `SELECT seq FROM users WHERE username = 'erin'`); seq <= lastUserSeq {
		t.Errorf("a new user took seq %d; SQLite had handed out up to %d", seq, lastUserSeq)
	}
	before := count(t, dst, `SELECT max(id) FROM audit`)
	e, err := audit.New(dst).Append(ctx, audit.Entry{Actor: audit.Actor{Kind: audit.ActorFile}, Action: "test", Outcome: audit.Success})
	if err != nil || e.ID <= before {
		t.Errorf("a new audit entry: %+v, %v; want an id after %d", e, err, before)
	}
	// The audit log is still append-only.
	if _, err := dst.Exec(`UPDATE audit SET detail = 'changed'`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("changing the migrated audit log: %v", err)
	}

	// Again: nothing to copy; verified, and the new rows told apart.
	code, stdout, stderr = runGrin(t, env, "db", "migrate")
	if code == 0 || !strings.Contains(stdout, "differs: users has 4 rows in the data directory and 5 in PostgreSQL") ||
		!strings.Contains(stderr, "tables differ in PostgreSQL: audit, grant_generations, grants, users.") ||
		!strings.Contains(stderr, "every table was copied by an earlier run") {
		t.Errorf("a run after PostgreSQL was written to: exit %d:\n%s\n%s", code, stdout, stderr)
	}
}

// vacuumInto writes a copy of db's database into a new data directory.
func vacuumInto(t *testing.T, db *sql.DB) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := db.Exec(`VACUUM INTO $1`, filepath.Join(dir, database.FileName)); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestDBMigrateResumesAndRefuses: a migration cut off between batches
// resumes where it stopped, with no row copied twice or missed; a
// destination holding rows the migration did not copy is refused, and so
// is one migrated from another data directory unless --resume; a data
// directory at another schema version is refused with what to do; and a
// row changed in PostgreSQL afterwards is named by the verification.
func TestDBMigrateResumesAndRefuses(t *testing.T) {
	dir := seedGrin(t)
	server := pgtest.Start(t)
	src := openSQLite(t, dir)
	want := readState(t, src)
	url := server.Database(t)
	env := map[string]string{"GRIN_DATA_DIR": dir, "GRIN_DATABASE_URL": url}

	t.Run("interrupted", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var out, errOut strings.Builder
		// Cut off inside a table, between two of its batches.
		copied := map[string]int64{}
		err := dbMigrateWith(ctx, []string{"--batch", "2"}, func(k string) string { return env[k] }, &out, &errOut, func(table string, n int64) {
			if copied[table] = n; table == "conversation_history" && n == 4 {
				cancel()
			}
		})
		if err == nil || !strings.Contains(err.Error(), "run the same command again to resume") {
			t.Fatalf("an interrupted migration says: %v\n%s", err, errOut.String())
		}
		var done int64
		for _, n := range copied {
			done += n
		}
		dst := openPostgres(t, url)
		if n := count(t, dst, `SELECT sum(copied) FROM db_migrate_progress`); n != done || copied["conversation_history"] != 4 {
			t.Errorf("the progress table records %d rows; %d were reported copied (%v)", n, done, copied)
		}
		if n := count(t, dst, `SELECT count(*) FROM conversation_history`); n != 4 {
			t.Errorf("%d turns are in PostgreSQL after two batches of 2", n)
		}
		code, stdout, stderr := runGrin(t, env, "db", "migrate", "--batch", "2")
		if code != 0 || !strings.Contains(stderr, "resuming: "+strconv.FormatInt(done, 10)+" of") || !strings.Contains(stdout, "verified") {
			t.Fatalf("the second run: exit %d\n%s\n%s", code, stdout, stderr)
		}
		if got := readState(t, dst); !reflect.DeepEqual(got, want) {
			t.Errorf("after a resumed migration, grin's stores read on PostgreSQL:\n%+v\nwant:\n%+v", got, want)
		}
	})

	t.Run("rows of its own", func(t *testing.T) {
		url := server.Database(t)
		dst := openPostgres(t, url)
		if _, err := dst.Exec(`INSERT INTO settings (name, value) VALUES ('mine', '{}')`); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := runGrin(t, map[string]string{"GRIN_DATA_DIR": dir}, "db", "migrate", "--to", url)
		if code == 0 || !strings.Contains(stderr, "already holds rows that grin db migrate did not copy, in settings (1 row): migrate into an empty database") {
			t.Errorf("exit %d: %s", code, stderr)
		}
		if n := count(t, dst, `SELECT count(*) FROM users`); n != 0 {
			t.Errorf("%d users were copied into a database that was not empty", n)
		}
	})

	t.Run("another data directory", func(t *testing.T) {
		moved := vacuumInto(t, src)
		code, _, stderr := runGrin(t, map[string]string{"GRIN_DATA_DIR": moved, "GRIN_DATABASE_URL": url}, "db", "migrate")
		if code == 0 || !strings.Contains(stderr, "holds a migration from "+filepath.Join(dir, database.FileName)) || !strings.Contains(stderr, "--resume") {
			t.Errorf("exit %d: %s", code, stderr)
		}
		code, stdout, stderr := runGrin(t, map[string]string{"GRIN_DATA_DIR": moved, "GRIN_DATABASE_URL": url}, "db", "migrate", "--resume")
		if code != 0 || !strings.Contains(stderr, "resuming the migration from "+filepath.Join(dir, database.FileName)) || !strings.Contains(stdout, "verified") {
			t.Errorf("--resume: exit %d:\n%s\n%s", code, stdout, stderr)
		}
	})

	t.Run("schema versions", func(t *testing.T) {
		latest, err := database.Latest(database.SQLite)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			version int
			says    string
		}{
			{latest - 1, "start this grin once on it (grin serve), which brings it up to date"},
			{latest + 1, "was written by a newer grin"},
		} {
			other := vacuumInto(t, src)
			raw, err := sql.Open("sqlite", filepath.Join(other, database.FileName))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := raw.Exec(`PRAGMA user_version = ` + strconv.Itoa(c.version)); err != nil {
				t.Fatal(err)
			}
			raw.Close()
			url := server.Database(t)
			code, _, stderr := runGrin(t, map[string]string{"GRIN_DATA_DIR": other, "GRIN_DATABASE_URL": url}, "db", "migrate")
			if code == 0 || !strings.Contains(stderr, c.says) {
				t.Errorf("schema version %d (this grin's is %d): exit %d: %s", c.version, latest, code, stderr)
			}
			if n := count(t, openPostgres(t, url), `SELECT count(*) FROM users`); n != 0 {
				t.Errorf("schema version %d: %d users copied", c.version, n)
			}
		}
	})

	t.Run("verification names the table", func(t *testing.T) {
		if _, err := openPostgres(t, url).Exec(`UPDATE settings SET value = '{"text":"changed"}'`); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := runGrin(t, env, "db", "migrate")
		if code == 0 || !strings.Contains(stdout, "differs: settings has 1 row on both sides, but their content differs") ||
			!strings.Contains(stderr, "tables differ in PostgreSQL: settings.") {
			t.Errorf("exit %d:\n%s\n%s", code, stdout, stderr)
		}
	})
}
