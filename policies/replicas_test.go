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

	"github.com/grin-ai/grin/internal/logbuf"
	"github.com/grin-ai/grin/platform/cluster"
	"github.com/grin-ai/grin/platform/database"
	"github.com/grin-ai/grin/platform/database/databasetest"
)

// TestPolicyInForceLivesInTheDatabase runs, on SQLite and on PostgreSQL,
// what replicas sharing one database (each with its own data directory) and
// a data directory upgraded from before WrittenFile see of the policy.
func TestPolicyInForceLivesInTheDatabase(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, db *sql.DB)
	}{
		{"a replica starting with files it wrote follows the newest version and rewrites them", testStartFollowsTheDatabase},
		{"files edited while a replica was down become the next version, checked against the newest", testStartTakesAnEdit},
		{"a refused edit at start stores nothing and leaves the files", testStartRefusesAnEdit},
		{"a data directory from before policy.written keeps working", testUpgradeOfADataDirectory},
		{"two replicas editing at once lose no edit", testConcurrentEdits},
	}
	databasetest.EachEngine(t, func(t *testing.T, _ database.Engine, openDB databasetest.Open) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) { c.run(t, openDB(t)) })
		}
	})
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

// testBus delivers events between the replicas joined to it, each
// subscriber's in order on a goroutine of its own, as a bus over the
// database does; it can cut a replica off (events to it are lost) and tell
// it so when it comes back (Missed).
type testBus struct {
	mu      sync.Mutex
	members []*busMember
}

type busMember struct {
	bus  *testBus
	id   string
	mu   sync.Mutex
	cut  bool
	subs map[string][]chan cluster.Event
}

func (b *testBus) join(id string) *busMember {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := &busMember{bus: b, id: id, subs: map[string][]chan cluster.Event{}}
	b.members = append(b.members, m)
	return m
}

func (m *busMember) ID() string { return m.id }

func (m *busMember) Publish(_ context.Context, e cluster.Event) error {
	e.Origin = m.id
	m.bus.mu.Lock()
	members := append([]*busMember(nil), m.bus.members...)
	m.bus.mu.Unlock()
	for _, o := range members {
		if o != m {
			o.deliver(e)
		}
	}
	return nil
}

func (m *busMember) deliver(e cluster.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cut {
		return
	}
	for _, ch := range m.subs[e.Topic] {
		ch <- e
	}
}

func (m *busMember) Subscribe(topic string, fn func(context.Context, cluster.Event)) func() {
	ch := make(chan cluster.Event, 1024)
	m.mu.Lock()
	m.subs[topic] = append(m.subs[topic], ch)
	m.mu.Unlock()
	done := make(chan struct{})
	go func() {
		for {
			select {
			case e := <-ch:
				fn(context.Background(), e)
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}

// setCut cuts the member off, or brings it back with a Missed event on
// every topic it subscribes to.
func (m *busMember) setCut(cut bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cut = cut
	if cut {
		return
	}
	for topic, chs := range m.subs {
		for _, ch := range chs {
			ch <- cluster.Event{Topic: topic, Missed: true}
		}
	}
}

var _ cluster.Bus = (*busMember)(nil)
