package policies

import (
	"context"
	"testing"
)

// TestEditsInPlaceDecideAsAFreshLoad: after each edit of the rules, put in
// force in place beside the stored grants, every decision of a grid of
// subjects, objects and actions is the one a policy loaded afresh from the
// same files and grants gives; and none of the edits loaded the policy
// whole.
func TestEditsInPlaceDecideAsAFreshLoad(t *testing.T) {
	ctx := context.Background()
	users := fakeUsers{"admin", "alice", "bob"}
	e, dir := openWithUsers(t, users)
	if err := e.Grant(ctx, "admin", "role:admin"); err != nil {
		t.Fatal(err)
	}
	if err := e.SetPermissions(ctx, "alice", Dict{Memory: {Read}, Plugins: {Read}}); err != nil {
		t.Fatal(err)
	}
	if err := e.SetPermissions(ctx, "bob", Dict{Users: {Read}}); err != nil {
		t.Fatal(err)
	}
	loads := e.Figures().Loads
	edits := []struct {
		name string
		edit Change
	}{
		{"a rule doubling alice's grant", AddRule("g, alice, perm:plugins:read")},
		{"a deny rule", AddRule("p, bob, users, read, deny")},
		{"a role with a right", AddRule("p, role:ops, settings, *")},
		{"bob joins it", AddMember("role:ops", "bob")},
		{"the deny rule goes", RemoveRule("p, bob, users, read, deny")},
		{"the rule doubling alice's grant goes", RemoveRule("g, alice, perm:plugins:read")},
		{"bob leaves the role", RemoveMember("role:ops", "bob")},
		{"alice joins role:admin", AddMember("role:admin", "alice")},
	}
	subjects := []string{"admin", "alice", "bob", "role:ops", "credential:api_key", "credential:ws_key"}
	objects := []string{"users", "plugins", "settings", "policies", "episodic:alice", "episodic:bob", "declarative:shared"}
	actions := []string{"read", "list", "write", "edit", "delete"}
	for _, s := range edits {
		if _, err := e.Apply(ctx, s.edit, false); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		fresh := reopen(t, dir, e.db, nil, WithUsers(users))
		for _, sub := range subjects {
			for _, obj := range objects {
				for _, act := range actions {
					got := allowed(t, e, sub, obj, act, sub)
					if want := allowed(t, fresh, sub, obj, act, sub); got != want {
						t.Errorf("after %s: %s %s %s is %v in place, %v loaded afresh", s.name, sub, act, obj, got, want)
					}
				}
			}
		}
	}
	if f := e.Figures(); f.Loads != loads || f.EditsInPlace != int64(len(edits)) {
		t.Errorf("policies loaded whole %d (before the edits %d), in place %d, want %d", f.Loads, loads, f.EditsInPlace, len(edits))
	}
}
