package policies

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/casbin/casbin/v3"

	"github.com/grin-ai/grin/platform/database"
)

// benchPolicy builds an enforcer with users internal users, each granted the
// base dictionary plus USERS:READ (10 grants), so 10,000 users make 100,000
// grouping rules beside the default policy.
func benchPolicy(b *testing.B, users int) (*Enforcer, []string) {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	db, err := database.Open(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	d := BaseDict()
	d[Users] = []Permission{Read}
	roles := d.roles()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, users)
	for i := range ids {
		ids[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		for _, r := range roles {
			if _, err := tx.ExecContext(ctx, `INSERT INTO grants (subject, role) VALUES (?, ?)`, ids[i], r); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	e, err := Open(ctx, dir, db, nil)
	if err != nil {
		b.Fatal(err)
	}
	return e, ids
}

// BenchmarkDecide measures one decision with 10,000 users and 100,000
// grouping rules: "first" is a user's first decision (the cache holds
// nothing for it), "repeated" a decision the cache already knows.
func BenchmarkDecide(b *testing.B) {
	e, ids := benchPolicy(b, 10_000)
	b.Run("first", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if i%len(ids) == 0 {
				e.mu.Lock()
				e.clearLocked()
				e.mu.Unlock()
			}
			id := ids[i%len(ids)]
			ok, err := e.Decide(Request{Subjects: []string{id}, Self: id, Object: "users", Action: "read"})
			if err != nil || !ok {
				b.Fatalf("decide: %v %v", ok, err)
			}
		}
	})
	b.Run("first-denied", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if i%len(ids) == 0 {
				e.mu.Lock()
				e.clearLocked()
				e.mu.Unlock()
			}
			id := ids[i%len(ids)]
			ok, err := e.Decide(Request{Subjects: []string{id}, Self: id, Object: "users", Action: "delete"})
			if err != nil || ok {
				b.Fatalf("decide: %v %v", ok, err)
			}
		}
	})
	b.Run("repeated", func(b *testing.B) {
		id := ids[42]
		req := Request{Subjects: []string{id}, Self: id, Object: "users", Action: "read"}
		for b.Loop() {
			if ok, err := e.Decide(req); err != nil || !ok {
				b.Fatalf("decide: %v %v", ok, err)
			}
		}
	})
}

// BenchmarkLoad measures Reload with 100,000 stored grants and files that
// did not change: the rules are put in force in place, the grants not
// read again (a whole load is BenchmarkLoadLarge's "start").
func BenchmarkLoad(b *testing.B) {
	e, _ := benchPolicy(b, 10_000)
	ctx := context.Background()
	for b.Loop() {
		if err := e.Reload(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLockoutCheck measures the lockout check of a policy edit with
// 10,000 users (100,000 grouping rules) and one administrator, created
// last: "kept" is an edit that keeps the administrator (found among the
// members of role:admin), "refused" an empty policy (every user asked, to
// prove nobody may edit), which also rebuilds the policy in force to see
// whether anyone could before.
func BenchmarkLockoutCheck(b *testing.B) {
	e, ids := benchPolicy(b, 10_000)
	ctx := context.Background()
	admin := "00000000-0000-4000-8000-admin0000000"
	e.users = fakeUsers(append(ids, admin))
	if err := e.Grant(ctx, admin, "role:admin"); err != nil {
		b.Fatal(err)
	}
	docs := e.Documents()
	b.Run("kept", func(b *testing.B) {
		grants, _ := e.loadGrants(ctx)
		cand, err := build(docs, grants, nil)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, ok, err := e.policyEditor(ctx, cand); err != nil || !ok {
				b.Fatalf("editor: %v %v", ok, err)
			}
		}
	})
	b.Run("refused", func(b *testing.B) {
		grants, _ := e.loadGrants(ctx)
		cand, err := build(Documents{docs.Model, ""}, grants, nil)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			e.writeMu.Lock()
			err := e.checkLockout(ctx, cand, func() (*casbin.Enforcer, error) { return build(docs, grants, nil) })
			e.writeMu.Unlock()
			if !errors.Is(err, ErrLockout) {
				b.Fatalf("check: %v", err)
			}
		}
	})
}

// BenchmarkLoadLarge measures, with 100,000 users each granted 10
// permission roles (1,000,000 grouping rules): "start" is Open on a data
// directory that already holds them, "edit-rule" one rule added to the
// policy through Apply (the API's POST /policies/rules), "file-edit" the
// watcher's reload of a changed policy.csv, and "grant" one user's
// dictionary replaced (PUT /users/{id}). Run with -benchtime 3x.
func BenchmarkLoadLarge(b *testing.B) {
	e, ids := benchPolicy(b, 100_000)
	ctx := context.Background()
	// An administrator, so that the lockout check of an edit finds one
	// as in a real deployment.
	admin := "00000000-0000-4000-8000-admin0000000"
	e.users = fakeUsers(append(ids, admin))
	if err := e.Grant(ctx, admin, "role:admin"); err != nil {
		b.Fatal(err)
	}
	b.Run("start", func(b *testing.B) {
		for b.Loop() {
			if _, err := Open(ctx, e.dir, e.db, nil, WithUsers(e.users)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("edit-rule", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			rule := fmt.Sprintf("p, role:bench, episodic:%d, read", i)
			if _, err := e.Apply(ctx, AddRule(rule), false); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("file-edit", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			docs := e.Documents()
			docs.Policy += fmt.Sprintf("p, role:bench, declarative:%d, read\n", i)
			if err := writeFileAtomic(filepath.Join(e.dir, PolicyFile), []byte(docs.Policy)); err != nil {
				b.Fatal(err)
			}
			if changed, err := e.reloadIfChanged(ctx); err != nil || !changed {
				b.Fatalf("reload: %v %v", changed, err)
			}
		}
	})
	b.Run("grant", func(b *testing.B) {
		d := BaseDict()
		for i := 0; b.Loop(); i++ {
			if i%2 == 0 {
				d[Plugins] = []Permission{Read}
			} else {
				delete(d, Plugins)
			}
			if err := e.SetPermissions(ctx, ids[i%len(ids)], d); err != nil {
				b.Fatal(err)
			}
		}
	})
}
