package policies

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grin-ai/grin/integration/pgtest"
	"github.com/grin-ai/grin/internal/logbuf"
	"github.com/grin-ai/grin/platform/cluster"
	"github.com/grin-ai/grin/platform/cluster/clustertest"
	"github.com/grin-ai/grin/platform/database"
	"github.com/grin-ai/grin/platform/database/databasetest"
)

// TestPolicyInForceLivesInTheDatabase runs, on SQLite and on PostgreSQL,
// what replicas sharing one database (each with its own data directory) and
// a data directory upgraded from before WrittenFile see of the policy.
func TestPolicyInForceLivesInTheDatabase(t *testing.T) {
	databasetest.Suite(t, databasetest.DB, []databasetest.Case[*sql.DB]{
		{Name: "a replica starting with files it wrote follows the newest version and rewrites them", Run: testStartFollowsTheDatabase},
		{Name: "files edited while a replica was down become the next version, checked against the newest", Run: testStartTakesAnEdit},
		{Name: "a refused edit at start stores nothing and leaves the files", Run: testStartRefusesAnEdit},
		{Name: "a data directory from before policy.written keeps working", Run: testUpgradeOfADataDirectory},
		{Name: "two replicas editing at once lose no edit", Run: testConcurrentEdits},
		{Name: "a start that finds the files as noted writes nothing", Run: testRestartWritesNothing},
	}...)
}

// withRule is docs with one more rule line.
func withRule(docs Documents, rule string) Documents {
	return Documents{Model: docs.Model, Policy: strings.TrimRight(docs.Policy, "\n") + "\n" + rule + "\n"}
}

func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func versionCount(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), `SELECT count(*) FROM policy_versions`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func testStartFollowsTheDatabase(t *testing.T, db *sql.DB) {
	ctx := context.Background()
	dirA, dirB := t.TempDir(), t.TempDir()
	a := reopen(t, dirA, db, nil)
	b := reopen(t, dirB, db, nil)
	if a.InForce() != b.InForce() {
		t.Fatalf("two replicas start with versions %d and %d", a.InForce(), b.InForce())
	}
	edited := withRule(a.Documents(), "p, role:auditor, users, list")
	if err := a.Update(ctx, edited); err != nil {
		t.Fatal(err)
	}
	// B restarts: its files are those it wrote, so the database's newer
	// version is in force and replaces them, as a version already stored.
	before := versionCount(t, db)
	b = reopen(t, dirB, db, nil)
	if b.InForce() != a.InForce() || b.Documents() != edited {
		t.Errorf("B started with version %d, want %d", b.InForce(), a.InForce())
	}
	if !allowed(t, b, "role:auditor", "users", "list", "") {
		t.Error("A's edit is not in force on B")
	}
	if got := readFile(t, dirB, PolicyFile); got != edited.Policy {
		t.Errorf("B's policy.csv was not rewritten with the version in force:\n%s", got)
	}
	if n := versionCount(t, db); n != before {
		t.Errorf("B's start stored %d versions", n-before)
	}
}

func testStartTakesAnEdit(t *testing.T, db *sql.DB) {
	ctx := context.Background()
	dirA, dirB := t.TempDir(), t.TempDir()
	a := reopen(t, dirA, db, nil)
	reopen(t, dirB, db, nil)
	fromA := withRule(a.Documents(), "p, role:auditor, users, list")
	if err := a.Update(ctx, fromA); err != nil {
		t.Fatal(err)
	}
	// While B is down an administrator edits B's files, written before
	// A's change: the edit becomes the next version, and A's rule, which
	// the edited file does not have, is no longer in force.
	orig := readFile(t, dirB, PolicyFile)
	edit := strings.TrimRight(orig, "\n") + "\np, role:auditor, plugins, list\n"
	writeFile(t, dirB, PolicyFile, edit)
	b := reopen(t, dirB, db, nil)
	if b.InForce() != a.InForce()+1 {
		t.Errorf("B's edit is version %d, want %d", b.InForce(), a.InForce()+1)
	}
	v, prev, err := b.Version(ctx, b.InForce())
	if err != nil {
		t.Fatal(err)
	}
	if v.Docs.Policy != edit || prev != fromA || v.Source != sourceFile {
		t.Errorf("version %d: %+v after %+v", v.N, v, prev)
	}
	if !allowed(t, b, "role:auditor", "plugins", "list", "") || allowed(t, b, "role:auditor", "users", "list", "") {
		t.Error("B does not decide by its edit")
	}
	// A, restarted, follows it.
	a = reopen(t, dirA, db, nil)
	if a.InForce() != b.InForce() || readFile(t, dirA, PolicyFile) != edit {
		t.Errorf("A restarted with version %d, want %d", a.InForce(), b.InForce())
	}
}

func testStartRefusesAnEdit(t *testing.T, db *sql.DB) {
	ctx := context.Background()
	dirA, dirB := t.TempDir(), t.TempDir()
	a := reopen(t, dirA, db, nil)
	reopen(t, dirB, db, nil)
	fromA := withRule(a.Documents(), "p, role:auditor, users, list")
	if err := a.Update(ctx, fromA); err != nil {
		t.Fatal(err)
	}
	broken := readFile(t, dirB, PolicyFile) + "\np, only-two, fields\n"
	writeFile(t, dirB, PolicyFile, broken)
	before := versionCount(t, db)
	logs := &logbuf.Buffer{}
	b := reopen(t, dirB, db, slog.New(slog.NewTextHandler(logs, nil)))
	if n := versionCount(t, db); n != before {
		t.Errorf("a refused edit stored %d versions", n-before)
	}
	if !b.FileStatus().Refused || b.InForce() != a.InForce() || b.Documents() != fromA {
		t.Errorf("B serves version %d (refused %v), want A's %d", b.InForce(), b.FileStatus().Refused, a.InForce())
	}
	if readFile(t, dirB, PolicyFile) != broken {
		t.Error("the refused edit was overwritten: the administrator loses it")
	}
	// Still an edit at the next start: refused again, not taken as
	// grin's own file.
	if b = reopen(t, dirB, db, nil); !b.FileStatus().Refused || readFile(t, dirB, PolicyFile) != broken {
		t.Error("at the next start the refused edit is no longer reported")
	}
}

func testUpgradeOfADataDirectory(t *testing.T, db *sql.DB) {
	ctx := context.Background()
	dir := t.TempDir()
	e := reopen(t, dir, db, nil)
	docs := withRule(e.Documents(), "p, role:auditor, users, list")
	if err := e.Update(ctx, docs); err != nil {
		t.Fatal(err)
	}
	// A data directory written by a grin before policy.written: files
	// equal to the newest version start as they are, with no new version.
	upgrade := func() {
		if err := os.Remove(filepath.Join(dir, WrittenFile)); err != nil {
			t.Fatal(err)
		}
	}
	upgrade()
	n := versionCount(t, db)
	e = reopen(t, dir, db, nil)
	if e.Documents() != docs || versionCount(t, db) != n || e.FileStatus().Refused {
		t.Errorf("unchanged files after an upgrade: version %d, %d new versions", e.InForce(), versionCount(t, db)-n)
	}
	if _, err := os.Stat(filepath.Join(dir, WrittenFile)); err != nil {
		t.Errorf("no %s after the start: %v", WrittenFile, err)
	}
	// Files edited while the old grin was down are an edit, as before.
	upgrade()
	edit := withRule(docs, "p, role:auditor, plugins, list")
	writeFile(t, dir, PolicyFile, edit.Policy)
	e = reopen(t, dir, db, nil)
	if e.Documents() != edit || versionCount(t, db) != n+1 {
		t.Errorf("an edit made before the upgrade is not in force: %+v", e.Documents())
	}
}

// testRestartWritesNothing: a start whose files and policy.written already
// say the version in force replaces none of them (each rewrite is a file
// synced to disk, on the way to the first answer); after an edit, the next
// start notes the new version.
func testRestartWritesNothing(t *testing.T, db *sql.DB) {
	ctx := context.Background()
	dir := t.TempDir()
	e := reopen(t, dir, db, nil)
	files := []string{ModelFile, PolicyFile, WrittenFile}
	stat := func() map[string]os.FileInfo {
		infos := map[string]os.FileInfo{}
		for _, name := range files {
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			infos[name] = fi
		}
		return infos
	}
	before := stat()
	e = reopen(t, dir, db, nil)
	for name, fi := range stat() {
		if !os.SameFile(before[name], fi) {
			t.Errorf("a start with nothing changed replaced %s", name)
		}
	}
	// An edit through the API is noted (the next version), and the start
	// after it keeps the note.
	if err := e.Update(ctx, withRule(e.Documents(), "p, role:auditor, users, list")); err != nil {
		t.Fatal(err)
	}
	edited := stat()
	if os.SameFile(before[WrittenFile], edited[WrittenFile]) {
		t.Fatalf("%s was not rewritten after an edit", WrittenFile)
	}
	e = reopen(t, dir, db, nil)
	if after := stat(); !os.SameFile(edited[WrittenFile], after[WrittenFile]) {
		t.Errorf("the start after an edit rewrote %s", WrittenFile)
	}
	if got := readFile(t, dir, WrittenFile); !strings.Contains(got, fmt.Sprintf(`"version":%d`, e.InForce())) {
		t.Errorf("%s says %q, want version %d", WrittenFile, got, e.InForce())
	}
}

// testConcurrentEdits: two replicas add rules at once, each change made on
// the policy it has in force; every rule is in the final version, and
// every version holds the one before it plus one rule.
func testConcurrentEdits(t *testing.T, db *sql.DB) {
	ctx := context.Background()
	a := reopen(t, t.TempDir(), db, nil)
	b := reopen(t, t.TempDir(), db, nil)
	first := a.InForce()
	const each = 6
	var wg sync.WaitGroup
	errs := make(chan error, 2*each)
	for name, e := range map[string]*Enforcer{"a": a, "b": b} {
		wg.Go(func() {
			for i := range each {
				rule := fmt.Sprintf("p, role:%s%d, plugins, read", name, i)
				_, err := e.Apply(ctx, func(d Documents) (Documents, error) { return withRule(d, rule), nil }, false)
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	final := reopen(t, t.TempDir(), db, nil)
	if final.InForce() != first+2*each {
		t.Errorf("the newest version is %d, want %d (one per edit)", final.InForce(), first+2*each)
	}
	for _, name := range []string{"a", "b"} {
		for i := range each {
			if role := fmt.Sprintf("role:%s%d", name, i); !allowed(t, final, role, "plugins", "read", "") {
				t.Errorf("the edit adding %s was lost", role)
			}
		}
	}
	for n := first + 1; n <= final.InForce(); n++ {
		v, prev, err := final.Version(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(v.Docs.Policy, "\n") - strings.Count(prev.Policy, "\n"); got != 1 || !strings.HasPrefix(v.Docs.Policy, strings.TrimRight(prev.Policy, "\n")) {
			t.Errorf("version %d is not version %d plus one rule", n, n-1)
		}
	}
}

// replica is one grin process's Enforcer on a shared PostgreSQL database,
// with its own connections and data directory, following the others
// through bus.
type replica struct {
	e   *Enforcer
	dir string
	bus *clustertest.Member
}

func startReplicas(t *testing.T, opts []Option, names ...string) (*sql.DB, []replica) {
	t.Helper()
	url := pgtest.Start(t).Database(t)
	bus := &clustertest.Hub{}
	var out []replica
	var first *sql.DB
	for _, name := range names {
		db, err := database.OpenPostgres(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if first == nil {
			first = db
		}
		r := replica{dir: t.TempDir(), bus: bus.Join(name)}
		r.e = reopen(t, r.dir, db, nil, append([]Option{WithBus(r.bus)}, opts...)...)
		r.e.followEvery = time.Hour // only the bus brings changes here
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		if err := r.e.Watch(ctx); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return first, out
}

// TestReplicasFollowEachOther: two replicas on one PostgreSQL database,
// told of each other's changes by a bus. Every change on one (an edit, a
// restore, a file edit, grants set, given and removed) is decided the same
// on the other once the event arrives, loaded in place; a refused file edit
// changes nothing on either; events lost while a replica was cut off are
// caught up with when it is told it missed some.
func TestReplicasFollowEachOther(t *testing.T) {
	ctx := context.Background()
	db, rs := startReplicas(t, nil, "a", "b")
	a, b := rs[0], rs[1]
	first := a.e.InForce()
	// Decisions b has cached must not outlive the changes.
	if allowed(t, b.e, "role:auditor", "users", "list", "") || allowed(t, b.e, "u1", "plugins", "edit", "u1") {
		t.Fatal("allowed before any change")
	}
	loads := b.e.Figures().Loads

	// An edit through the API.
	edited := withRule(a.e.Documents(), "p, role:auditor, users, list")
	if err := a.e.Update(ctx, edited); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to put a's edit in force", func() bool { return allowed(t, b.e, "role:auditor", "users", "list", "") })
	waitFor(t, "b's files to hold a's edit", func() bool { return readFile(t, b.dir, PolicyFile) == edited.Policy })
	if b.e.InForce() != a.e.InForce() || b.e.Documents() != edited {
		t.Errorf("b: version %d, a: %d", b.e.InForce(), a.e.InForce())
	}

	// A restore.
	rctx, change, err := a.e.Restore(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.e.Apply(rctx, change, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to put the restored version in force", func() bool { return !allowed(t, b.e, "role:auditor", "users", "list", "") })
	if got := b.e.Figures(); got.Loads != loads || got.EditsInPlace < 2 {
		t.Errorf("b built the policy whole %d times and in place %d times; want in place only", got.Loads-loads, got.EditsInPlace)
	}

	// Grants: set, given, removed.
	if err := a.e.SetPermissions(ctx, "u1", Dict{Plugins: {Edit}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to load u1's permissions", func() bool { return allowed(t, b.e, "u1", "plugins", "edit", "u1") })
	if err := a.e.Grant(ctx, "u1", "role:admin"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to load u1's role", func() bool { return allowed(t, b.e, "u1", "policies", "edit", "u1") })
	da, ra, _ := a.e.Access("u1")
	db2, rb, _ := b.e.Access("u1")
	if fmt.Sprint(da, ra) != fmt.Sprint(db2, rb) {
		t.Errorf("u1 holds %v %v on a and %v %v on b", da, ra, db2, rb)
	}
	if err := a.e.RemoveSubject(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to drop u1's grants", func() bool {
		return !allowed(t, b.e, "u1", "policies", "edit", "u1") && !allowed(t, b.e, "u1", "plugins", "edit", "u1")
	})

	// A file edit on a, read by a's watcher, reaches b.
	fileEdit := withRule(a.e.Documents(), "p, role:auditor, plugins, list")
	writeFile(t, a.dir, PolicyFile, fileEdit.Policy)
	waitFor(t, "b to put a's file edit in force", func() bool { return allowed(t, b.e, "role:auditor", "plugins", "list", "") })
	waitFor(t, "b's files to hold a's file edit", func() bool { return readFile(t, b.dir, PolicyFile) == fileEdit.Policy })
	v, _, err := b.e.Version(ctx, b.e.InForce())
	if err != nil || v.Source != sourceFile {
		t.Errorf("the file edit is version %+v (%v)", v, err)
	}

	// A refused file edit changes nothing anywhere.
	versions := versionCount(t, db)
	writeFile(t, a.dir, PolicyFile, fileEdit.Policy+"p, only-two, fields\n")
	waitFor(t, "a to refuse the broken edit", func() bool { return a.e.FileStatus().Refused })
	if n := versionCount(t, db); n != versions {
		t.Errorf("a refused edit stored %d versions", n-versions)
	}
	if b.e.Documents() != fileEdit || b.e.FileStatus().Refused || readFile(t, b.dir, PolicyFile) != fileEdit.Policy {
		t.Error("a refused edit on a changed b")
	}
	writeFile(t, a.dir, PolicyFile, fileEdit.Policy)
	waitFor(t, "a's files to be in force again", func() bool { return !a.e.FileStatus().Refused })

	// Events lost while b is cut off: b still decides by the old policy
	// and grants until told it missed events, then catches up.
	if err := a.e.SetPermissions(ctx, "u2", Dict{LLM: {Read}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to load u2's permissions", func() bool { return allowed(t, b.e, "u2", "llm", "read", "u2") })
	b.bus.Cut(true)
	missed := withRule(a.e.Documents(), "p, role:auditor, settings, read")
	if err := a.e.Update(ctx, missed); err != nil {
		t.Fatal(err)
	}
	if err := a.e.SetPermissions(ctx, "u3", Dict{Users: {Read}}); err != nil {
		t.Fatal(err)
	}
	if err := a.e.RemoveSubject(ctx, "u2"); err != nil {
		t.Fatal(err)
	}
	if allowed(t, b.e, "role:auditor", "settings", "read", "") || allowed(t, b.e, "u3", "users", "read", "u3") || !allowed(t, b.e, "u2", "llm", "read", "u2") {
		t.Fatal("b saw changes while cut off: the test's bus does not cut")
	}
	b.bus.Cut(false)
	waitFor(t, "b to catch up with the missed version and grants", func() bool {
		return allowed(t, b.e, "role:auditor", "settings", "read", "") &&
			allowed(t, b.e, "u3", "users", "read", "u3") && !allowed(t, b.e, "u2", "llm", "read", "u2")
	})
	if b.e.InForce() != a.e.InForce() || readFile(t, b.dir, PolicyFile) != missed.Policy {
		t.Errorf("after catching up b has version %d, a %d", b.e.InForce(), a.e.InForce())
	}
}

// mapDirectory is a user directory the replicas share, as they share the
// users table.
type mapDirectory struct {
	mu    sync.Mutex
	names map[string]string // id -> username
}

func (d *mapDirectory) add(id, name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.names[id] = name
}

func (d *mapDirectory) EachUser(_ context.Context, fn func(id, username string) bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, name := range d.names {
		if !fn(id, name) {
			break
		}
	}
	return nil
}

func (d *mapDirectory) Username(_ context.Context, id string) (string, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	name, ok := d.names[id]
	return name, ok, nil
}

func (d *mapDirectory) UserID(_ context.Context, username string) (string, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, name := range d.names {
		if name == username {
			return id, true, nil
		}
	}
	return "", false, nil
}

// TestUserCreatedOnAnotherReplica: a rule naming user:carol before carol
// exists applies to her on every replica once she is created on one.
func TestUserCreatedOnAnotherReplica(t *testing.T) {
	ctx := context.Background()
	dir := &mapDirectory{names: map[string]string{"admin-1": "admin"}}
	_, rs := startReplicas(t, []Option{WithUsers(dir)}, "a", "b")
	a, b := rs[0], rs[1]
	if err := a.e.Grant(ctx, "admin-1", "role:admin"); err != nil {
		t.Fatal(err)
	}
	if err := a.e.Update(ctx, withRule(a.e.Documents(), "p, user:carol, plugins, list")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to put the rule in force", func() bool { return b.e.NamesUser("carol") })
	if allowed(t, b.e, "carol-1", "plugins", "list", "carol-1") {
		t.Fatal("a rule for a user who does not exist applies")
	}
	// What the users store does on a: create her, tell the policy and the
	// other replicas.
	dir.add("carol-1", "carol")
	if err := a.e.UserAdded(ctx, "carol"); err != nil {
		t.Fatal(err)
	}
	if err := a.bus.Publish(ctx, cluster.Event{Topic: cluster.TopicUser, Key: "carol-1"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b to apply user:carol's rule to her", func() bool { return allowed(t, b.e, "carol-1", "plugins", "list", "carol-1") })
}
