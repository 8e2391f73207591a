package api_test

import (
	"strings"
	"testing"

	"github.com/grin-ai/grin/platform/app/apptest"
)

type effective struct {
	Subject     string   `json:"subject"`
	Roles       []string `json:"roles"`
	Permissions []struct {
		Object string `json:"object"`
		Action string `json:"action"`
		decision
	} `json:"permissions"`
	Rules []struct {
		Line int    `json:"line"`
		Text string `json:"text"`
	} `json:"rules"`
}

// find returns the decision on object and action, if listed.
func (e effective) find(object, action string) (decision, bool) {
	for _, p := range e.Permissions {
		if p.Object == object && p.Action == action {
			return p.decision, true
		}
	}
	return decision{}, false
}

// TestGroupReadsOneSpace: an administrator gives a group read access to one
// declarative space, by name: role:legal reads declarative:contracts and
// alice is in it. What alice may do then says so (with the rule and the
// role), GET /roles lists her, she reads the space and bob does not.
func TestGroupReadsOneSpace(t *testing.T) {
	in := authRequired(t)
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	userTok := apptest.Bearer(in.Login("user", apptest.UserPassword))
	for _, name := range []string{"alice", "bob"} {
		if r := in.Do("POST", "/users", map[string]any{"username": name, "password": "password-" + name}, admin...); r.Status != 200 {
			t.Fatalf("create %s: %d %s", name, r.Status, r.Body)
		}
	}
	if r := in.Do("POST", "/memory/collections/declarative/points?partition=contracts", map[string]any{"content": "The lease ends in March."}, admin...); r.Status != 200 {
		t.Fatalf("store a contract: %d %s", r.Status, r.Body)
	}
	var docs policyView
	in.Do("GET", "/policies", nil, admin...).JSON(t, &docs)
	docs.Policy += "\np, role:legal, declarative:contracts, read\ng, user:alice, role:legal\np, user:bob, *, delete, deny\n"
	if r := in.Do("PUT", "/policies", docs, admin...); r.Status != 200 {
		t.Fatalf("put: %d %s", r.Status, r.Body)
	}

	get := func(subject string) effective {
		t.Helper()
		var e effective
		r := in.Do("GET", "/policies/effective?subject="+subject, nil, admin...)
		if r.Status != 200 {
			t.Fatalf("effective %s: %d %s", subject, r.Status, r.Body)
		}
		r.JSON(t, &e)
		return e
	}
	alice := get("alice")
	d, ok := alice.find("declarative:contracts", "read")
	if !ok || d.Effect != "allow" || d.Text != "p, role:legal, declarative:contracts, read" || strings.Join(d.Via, ",") != "role:legal" {
		t.Errorf("alice on declarative:contracts read: %+v (listed %v)", d, ok)
	}
	if _, ok := alice.find("declarative:contracts", "delete"); ok {
		t.Error("alice may delete contracts, it says")
	}
	if d, ok := alice.find("memory", "read"); !ok || d.Effect != "allow" {
		t.Errorf("alice's base MEMORY READ is not listed: %+v", d)
	}
	if !strings.Contains(strings.Join(alice.Roles, ","), "role:legal") {
		t.Errorf("alice's roles: %v", alice.Roles)
	}
	if len(alice.Rules) != 1 || alice.Rules[0].Text != "g, user:alice, role:legal" || alice.Rules[0].Line == 0 {
		t.Errorf("rules naming alice: %+v", alice.Rules)
	}
	bob := get("user:bob")
	if _, ok := bob.find("declarative:contracts", "read"); ok {
		t.Error("bob may read contracts, it says")
	}
	if d, ok := bob.find("memory", "delete"); !ok || d.Effect != "deny" || d.Text != "p, user:bob, *, delete, deny" {
		t.Errorf("bob's denied deletion: %+v (listed %v)", d, ok)
	}
	if role := get("role:legal"); len(role.Rules) != 2 {
		t.Errorf("rules naming role:legal: %+v", role.Rules)
	}

	var roles []struct {
		Name    string   `json:"name"`
		Members []string `json:"members"`
	}
	in.Do("GET", "/roles", nil, admin...).JSON(t, &roles)
	members := map[string]string{}
	for _, r := range roles {
		members[r.Name] = strings.Join(r.Members, ",")
	}
	if members["role:legal"] != "user:alice" || !strings.Contains(members["role:admin"], "user:admin") || !strings.Contains(members["role:admin"], "credential:api_key") {
		t.Errorf("GET /roles: %+v", roles)
	}

	// The space itself: alice recalls from it, bob does not.
	aliceTok := apptest.Bearer(in.Login("alice", "password-alice"))
	bobTok := apptest.Bearer(in.Login("bob", "password-bob"))
	if r := in.Do("GET", "/memory/recall?text=when+does+the+lease+end", nil, aliceTok...); r.Status != 200 || !strings.Contains(string(r.Body), "The lease ends in March.") {
		t.Errorf("alice recalls from contracts: %d %s", r.Status, r.Body)
	}
	if r := in.Do("GET", "/memory/recall?text=when+does+the+lease+end", nil, bobTok...); r.Status != 200 || strings.Contains(string(r.Body), "The lease ends in March.") {
		t.Errorf("bob recalls from contracts: %d %s", r.Status, r.Body)
	}

	// Bad input and callers who may not read the policy.
	if r := in.Do("GET", "/policies/effective?subject=nobody", nil, admin...); r.Status != 422 || !strings.Contains(r.Detail(), "nobody") {
		t.Errorf("effective of nobody: %d %s", r.Status, r.Body)
	}
	for _, path := range []string{"/policies/effective?subject=alice", "/roles"} {
		if r := in.Do("GET", path, nil, userTok...); r.Status != 403 {
			t.Errorf("base user GET %s: %d", path, r.Status)
		}
	}
}
