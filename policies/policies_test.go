package policies

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grin-ai/grin/internal/logbuf"
	"github.com/grin-ai/grin/platform/database/databasetest"
)

// reopen opens an enforcer on dir and db, failing the test on an error.
func reopen(t *testing.T, dir string, db *sql.DB, log *slog.Logger, opts ...Option) *Enforcer {
	t.Helper()
	e, err := Open(context.Background(), dir, db, log, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func open(t *testing.T) (*Enforcer, string, *logbuf.Buffer) {
	t.Helper()
	dir, db := databasetest.SQLite(t)
	logs := &logbuf.Buffer{}
	return reopen(t, dir, db, slog.New(slog.NewTextHandler(logs, nil))), dir, logs
}

func allowed(t *testing.T, e *Enforcer, sub, obj, act, self string) bool {
	t.Helper()
	ok, err := e.Decide(Request{Subjects: []string{sub}, Self: self, Object: obj, Action: act})
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestObjectMatch(t *testing.T) {
	for _, tc := range []struct {
		obj, pattern, self string
		want               bool
	}{
		{"users", "users", "", true},
		{"users", "settings", "", false},
		{"anything", "*", "", true},
		{"episodic:alice", "episodic:*", "", true},
		{"episodic", "episodic:*", "", false},
		{"episodic:alice", "episodic:{self}", "alice", true},
		{"episodic:bob", "episodic:{self}", "alice", false},
		{"episodic:", "episodic:{self}", "", false},
		// An id is compared literally: "*" in an id is no wildcard.
		{"episodic:bob", "episodic:{self}", "*", false},
		{"episodic:a*", "episodic:{self}", "a*", true},
		{"docs:alice:notes", "docs:{self}:*", "alice", true},
		{"docs:bob:notes", "docs:{self}:*", "alice", false},
	} {
		if got := objectMatch(tc.obj, tc.pattern, tc.self); got != tc.want {
			t.Errorf("objectMatch(%q, %q, self=%q) = %v, want %v", tc.obj, tc.pattern, tc.self, got, tc.want)
		}
	}
}

func TestDefaultPolicy(t *testing.T) {
	e, _, _ := open(t)
	ctx := context.Background()
	if err := e.SetPermissions(ctx, "u1", Dict{Users: {Read, List}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sub, obj, act string
		want          bool
	}{
		{"u1", "users", "read", true},
		{"u1", "users", "list", true},
		{"u1", "users", "delete", false},
		{"u1", "policies", "read", false},
		{"nobody", "status", "read", false},
		{"credential:api_key", "users", "delete", true},
		{"credential:api_key", "policies", "edit", true},
		{"credential:anonymous", "settings", "edit", true},
		{"credential:ws_key", "conversation", "write", true},
		{"credential:ws_key", "memory", "read", true},
		{"credential:ws_key", "memory", "delete", false},
		{"credential:ws_key", "users", "read", false},
	} {
		if got := allowed(t, e, tc.sub, tc.obj, tc.act, tc.sub); got != tc.want {
			t.Errorf("%s %s %s = %v, want %v", tc.sub, tc.obj, tc.act, got, tc.want)
		}
	}
}

func TestGrantsTakeEffectAtOnce(t *testing.T) {
	e, _, _ := open(t)
	ctx := context.Background()
	if allowed(t, e, "u1", "plugins", "edit", "u1") {
		t.Fatal("allowed before any grant")
	}
	e.SetPermissions(ctx, "u1", Dict{Plugins: {Edit}})
	if !allowed(t, e, "u1", "plugins", "edit", "u1") {
		t.Fatal("grant not in force (a stale cached denial?)")
	}
	e.SetPermissions(ctx, "u1", Dict{})
	if allowed(t, e, "u1", "plugins", "edit", "u1") {
		t.Fatal("revoked grant still in force (a stale cached decision?)")
	}
	e.SetPermissions(ctx, "u1", Dict{Plugins: {Edit}})
	e.Grant(ctx, "u1", "role:admin")
	d, roles, _ := e.Access("u1")
	if !d.Has(Plugins, Edit) || len(roles) != 1 || roles[0] != "role:admin" {
		t.Errorf("access = %v %v", d, roles)
	}
	// SetPermissions leaves other roles alone; RemoveSubject takes all.
	e.SetPermissions(ctx, "u1", Dict{})
	if !allowed(t, e, "u1", "policies", "edit", "u1") {
		t.Error("SetPermissions dropped role:admin")
	}
	e.RemoveSubject(ctx, "u1")
	if allowed(t, e, "u1", "policies", "edit", "u1") {
		t.Error("a removed subject keeps its roles")
	}
}

func TestGrantsSurviveReopen(t *testing.T) {
	ctx := context.Background()
	dir, db := databasetest.SQLite(t)
	e := reopen(t, dir, db, nil)
	e.SetPermissions(ctx, "u1", Dict{LLM: {Read}})
	e2 := reopen(t, dir, db, nil)
	if !allowed(t, e2, "u1", "llm", "read", "u1") {
		t.Error("grant lost on reopen")
	}
}

func TestUpdateRefusesBrokenDocuments(t *testing.T) {
	e, dir, _ := open(t)
	ctx := context.Background()
	good := e.Documents()
	e.SetPermissions(ctx, "u1", Dict{Users: {Read}}) // a stored grant
	for _, tc := range []struct {
		name string
		docs Documents
		says string
	}{
		{"unknown rule type", Documents{good.Model, good.Policy + "\nx, a, b\n"}, "line"},
		{"too few fields", Documents{good.Model, good.Policy + "\np, role:x, users\n"}, "fields"},
		{"empty field", Documents{good.Model, good.Policy + "\ng, role:x,\n"}, "empty"},
		{"unclosed quote", Documents{good.Model, good.Policy + "\np, \"role:x, users, read\n"}, "line"},
		{"empty rule type", Documents{good.Model, good.Policy + "\n, role:x, users\n"}, "p or g"},
		{"three-field roles", Documents{strings.Replace(good.Model, "g = _, _", "g = _, _, _", 1), "p, role:admin, *, *\n"}, "g = _, _"},
		{"model syntax", Documents{"[request_definition\nr = sub", good.Policy}, ModelFile},
		{"three request fields", Documents{strings.Replace(good.Model, "r = sub, obj, act, self", "r = sub, obj, act", 1), good.Policy}, "four fields"},
		{"undefined function", Documents{strings.Replace(good.Model, "&& objectMatch(", "&& objectMatches(", 1), good.Policy}, "objectMatches"},
		{"no matchers", Documents{good.Model[:strings.Index(good.Model, "[matchers]")], good.Policy}, "matchers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := e.Update(ctx, tc.docs)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %q does not mention %q", err, tc.says)
			}
			if e.Documents() != good {
				t.Error("a refused update changed the documents in force")
			}
			b, _ := os.ReadFile(filepath.Join(dir, PolicyFile))
			if string(b) != good.Policy {
				t.Error("a refused update changed the file")
			}
		})
	}
	// A line number points at the right line.
	err := e.Update(ctx, Documents{good.Model, "p, role:x, users, read\n\nbogus\n"})
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("error should name line 3: %v", err)
	}
}

func TestHotReload(t *testing.T) {
	e, dir, logs := open(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := e.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	if allowed(t, e, "role:auditor", "users", "list", "") {
		t.Fatal("auditor allowed before the edit")
	}
	path := filepath.Join(dir, PolicyFile)
	orig, _ := os.ReadFile(path)
	// An editor's save: write a new file and rename it over the old one.
	edited := string(orig) + "\np, role:auditor, users, list\n"
	tmp := path + ".swp"
	os.WriteFile(tmp, []byte(edited), 0o600)
	os.Rename(tmp, path)
	waitFor(t, "the edit to take effect", func() bool { return allowed(t, e, "role:auditor", "users", "list", "") })

	// A broken edit is refused with a log line; the previous policy stays.
	os.WriteFile(path, []byte(edited+"\np, only-two, fields\n"), 0o600)
	waitFor(t, "the broken edit to be logged", func() bool { return strings.Contains(logs.String(), "policy edit refused") })
	if !allowed(t, e, "role:auditor", "users", "list", "") {
		t.Error("a broken edit replaced the policy in force")
	}
	if !strings.Contains(logs.String(), "line") {
		t.Errorf("the log should say which line is wrong: %s", logs.String())
	}
	// Fixing the file brings the fixed version in.
	os.WriteFile(path, orig, 0o600)
	waitFor(t, "the fix to take effect", func() bool { return !allowed(t, e, "role:auditor", "users", "list", "") })
}

func TestExplain(t *testing.T) {
	e, _, _ := open(t)
	e.SetPermissions(context.Background(), "u1", Dict{Users: {Read}})
	d, err := e.Explain(Request{Subjects: []string{"u1"}, Self: "u1", Object: "users", Action: "read"})
	if err != nil {
		t.Fatal(err)
	}
	if !d.Allowed || strings.Join(d.Rule, ", ") != "p, perm:{object}:{action}, *, *, allow" || d.Text != "p, perm:{object}:{action}, *, *" || d.Line == 0 || strings.Join(d.Via, ",") != "perm:users:read" {
		t.Errorf("explain = %+v", d)
	}
	d, _ = e.Explain(Request{Subjects: []string{"credential:api_key"}, Self: "x", Object: "users", Action: "delete"})
	if !d.Allowed || d.Rule[1] != "role:admin" || strings.Join(d.Via, ",") != "role:admin" {
		t.Errorf("explain api key = %+v", d)
	}
	d, _ = e.Explain(Request{Subjects: []string{"u1"}, Self: "u1", Object: "users", Action: "delete"})
	if d.Allowed || d.Rule != nil {
		t.Errorf("explain denied = %+v", d)
	}
}

func TestDictValidate(t *testing.T) {
	if err := (Dict{"KITCHEN": {Read}, Users: {"FLY"}}).Validate(); err == nil ||
		!strings.Contains(err.Error(), "KITCHEN") || !strings.Contains(err.Error(), "FLY") {
		t.Errorf("validate = %v", err)
	}
	if err := FullDict().Validate(); err != nil {
		t.Error(err)
	}
}

// TestConcurrentDecisionsDuringChanges is a hammer: decisions run while
// grants change and the policy reloads; run with -race.
func TestConcurrentDecisionsDuringChanges(t *testing.T) {
	e, _, _ := open(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					allowed(t, e, "u1", "users", "read", "u1")
				}
			}
		})
	}
	for i := range 50 {
		d := Dict{}
		if i%2 == 0 {
			d[Users] = []Permission{Read}
		}
		if err := e.SetPermissions(ctx, "u1", d); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			if err := e.Reload(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if got := allowed(t, e, "u1", "users", "read", "u1"); got != (i%2 == 0) {
			t.Fatalf("step %d: decision %v right after the change", i, got)
		}
	}
	close(stop)
	wg.Wait()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKeepRefusalChangesNothing: a change a Keep refuses leaves the grants,
// the decisions and the stored table as they were, also after a reload;
// one it accepts is in force.
func TestKeepRefusalChangesNothing(t *testing.T) {
	e, _, _ := open(t)
	ctx := context.Background()
	// In this policy, holders of EMBEDDER DELETE administer the policy.
	docs := e.Documents()
	docs.Policy += "\np, perm:embedder:delete, policies, edit\n"
	if err := e.Update(ctx, docs); err != nil {
		t.Fatal(err)
	}
	if err := e.SetPermissions(ctx, "u1", Dict{Embedder: {Delete}, Users: {Read}}); err != nil {
		t.Fatal(err)
	}
	errLast := errors.New("last")
	keepU1 := func(isAdmin func(string) (bool, error)) error {
		if ok, err := isAdmin("u1"); err != nil || !ok {
			return errLast
		}
		return nil
	}
	if err := e.SetPermissions(ctx, "u1", Dict{Users: {Read, List}}, keepU1); !errors.Is(err, errLast) {
		t.Fatalf("refused change: %v", err)
	}
	check := func(when string) {
		t.Helper()
		if ok, _ := e.IsAdministrator([]string{"u1"}, "u1"); !ok {
			t.Errorf("%s: u1 is no longer an administrator", when)
		}
		if allowed(t, e, "u1", "users", "list", "u1") {
			t.Errorf("%s: the refused USERS LIST is in force", when)
		}
		if d, _, _ := e.Access("u1"); !d.Has(Embedder, Delete) || d.Has(Users, List) {
			t.Errorf("%s: u1 holds %v", when, d)
		}
	}
	check("after the refusal")
	if err := e.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	check("after a reload")
	// A policy the Keep refuses is not written either.
	if err := e.Update(ctx, Documents{docs.Model, strings.ReplaceAll(docs.Policy, "p, perm:embedder:delete, policies, edit", "")}, keepU1); !errors.Is(err, errLast) {
		t.Fatalf("refused policy: %v", err)
	}
	check("after a refused policy")
	// An accepted change is in force.
	if err := e.SetPermissions(ctx, "u1", Dict{Embedder: {Delete}, Users: {List}}, keepU1); err != nil {
		t.Fatal(err)
	}
	if !allowed(t, e, "u1", "users", "list", "u1") || allowed(t, e, "u1", "users", "read", "u1") {
		t.Error("the accepted change is not in force")
	}
}
