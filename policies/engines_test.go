package policies

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/grin-ai/grin/platform/database/databasetest"
)

// TestStorageOnEachEngine runs what the policy keeps in the database, the
// grants of the API and the versions of the policy, on SQLite and on
// PostgreSQL: each case gets a new, empty database of the engine and a
// new data directory.
func TestStorageOnEachEngine(t *testing.T) {
	// Each case opens (and reopens) its enforcer on one data directory.
	opener := func(t *testing.T, db *sql.DB) func() *Enforcer {
		dir := t.TempDir()
		return func() *Enforcer { return reopen(t, dir, db, nil) }
	}
	databasetest.Suite(t, opener, []databasetest.Case[func() *Enforcer]{
		{Name: "grants take effect, are listed in order and survive a restart", Run: testGrantsStored},
		{Name: "versions are numbered, listed and read back", Run: testVersionsStored},
		{Name: "any role's text reads back as it was granted", Run: testGrantTextRoundTrip},
	}...)
}

func testGrantsStored(t *testing.T, open func() *Enforcer) {
	ctx := context.Background()
	e := open()
	if err := e.SetPermissions(ctx, "u1", Dict{Plugins: {Edit, Read}, LLM: {Read}}); err != nil {
		t.Fatal(err)
	}
	if err := e.Grant(ctx, "u1", "role:admin"); err != nil {
		t.Fatal(err)
	}
	if err := e.Grant(ctx, "u1", "role:admin"); err != nil { // granted twice: once
		t.Fatal(err)
	}
	if err := e.SetPermissions(ctx, "u2", Dict{Users: {Read}}); err != nil {
		t.Fatal(err)
	}
	if !allowed(t, e, "u1", "plugins", "edit", "u1") || allowed(t, e, "u2", "plugins", "edit", "u2") {
		t.Error("grants not in force as set")
	}
	// Replacing the permissions keeps the other roles.
	if err := e.SetPermissions(ctx, "u1", Dict{LLM: {Read}}); err != nil {
		t.Fatal(err)
	}
	e2 := open() // a restart reads the grants back
	d, roles, err := e2.Access("u1")
	if err != nil {
		t.Fatal(err)
	}
	if !d.Has(LLM, Read) || d.Has(Plugins, Read) || fmt.Sprint(roles) != "[role:admin]" {
		t.Errorf("after a restart u1 has %v %v", d, roles)
	}
	have, err := grantsOf(ctx, e2.db, "u1")
	if err != nil || strings.Join(have, " ") != "perm:llm:read role:admin" {
		t.Errorf("stored grants of u1: %v %v", have, err)
	}
	if err := e2.RemoveSubject(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	e3 := open()
	if allowed(t, e3, "u1", "llm", "read", "u1") || !allowed(t, e3, "u2", "users", "read", "u2") {
		t.Error("removing u1 did not take only u1's grants")
	}
}

func testVersionsStored(t *testing.T, open func() *Enforcer) {
	ctx := context.Background()
	e := open()
	first := e.InForce()
	if first < 1 {
		t.Fatalf("the policy at start is version %d", first)
	}
	base := e.Documents()
	var docs []Documents
	for i := range 3 {
		d := Documents{base.Model, base.Policy + fmt.Sprintf("\np, role:r%d, plugins, read\n", i)}
		if err := e.Update(WithAuthor(ctx, fmt.Sprintf("author %d", i)), d); err != nil {
			t.Fatal(err)
		}
		docs = append(docs, d)
	}
	if e.InForce() != first+3 {
		t.Errorf("in force: %d, want %d", e.InForce(), first+3)
	}
	list, err := e.Versions(ctx, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].N != first+3 || list[1].N != first+2 || list[0].Author != "author 2" || list[0].Source == "" {
		t.Errorf("newest two: %+v", list)
	}
	older, err := e.Versions(ctx, first+2, 10)
	if err != nil || len(older) != 2 || older[0].N != first+1 || older[1].N != first {
		t.Errorf("older than %d: %+v %v", first+2, older, err)
	}
	v, prev, err := e.Version(ctx, first+2)
	if err != nil || v.Docs != docs[1] || prev != docs[0] || v.Author != "author 1" {
		t.Errorf("version %d: %+v, previous %+v, %v", first+2, v, prev, err)
	}
	if _, _, err := e.Version(ctx, 99); err == nil {
		t.Error("an unknown version is found")
	}
	// The same documents again add no version; a restart finds the newest
	// in force.
	if err := e.Update(ctx, docs[2]); err != nil {
		t.Fatal(err)
	}
	if e2 := open(); e2.InForce() != first+3 || e2.Documents() != docs[2] {
		t.Errorf("after a restart: version %d, %+v", e2.InForce(), e2.Documents())
	}
}

// testGrantTextRoundTrip: the grants are read back at start in one row a
// subject (<length>:<role>, concatenated); roles holding the characters a
// reader could take for separators, digits after a colon, letters of more
// than one byte, or nothing at all, come back exactly, each to its own
// subject.
func testGrantTextRoundTrip(t *testing.T, open func() *Enforcer) {
	ctx := context.Background()
	e := open()
	grants := map[string][]string{
		"u1":      {"role:a:1:b", "role:12:3", "role:ünï,cødé", "role:two\nlines", "role:"},
		"u2":      {"role:a:1:b"},
		"sub:7:x": {"role:12:3", "role:z"},
	}
	for sub, roles := range grants {
		for _, r := range roles {
			if err := e.Grant(ctx, sub, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	e2 := open()
	e2.mu.RLock()
	defer e2.mu.RUnlock()
	for sub, roles := range grants {
		got, _ := e2.enf.GetRolesForUser(sub)
		slices.Sort(got)
		want := slices.Sorted(slices.Values(roles))
		if !slices.Equal(got, want) {
			t.Errorf("after a restart %s holds %q, want %q", sub, got, want)
		}
	}
}
