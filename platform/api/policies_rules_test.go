package api_test

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grin-ai/grin/platform/app/apptest"
)

// TestSingleRuleChanges: an administrator makes a user administrator by
// name, denies another one deletion and takes both back, one rule at a
// time; each change is checked as a whole policy is (a broken rule and a
// lock-out are refused, dry run alike).
func TestSingleRuleChanges(t *testing.T) {
	in := authRequired(t)
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	userTok := apptest.Bearer(in.Login("user", apptest.UserPassword))
	for _, name := range []string{"alice", "bob"} {
		if r := in.Do("POST", "/users", map[string]any{"username": name, "password": "password-" + name, "permissions": map[string][]string{"MEMORY": {"READ", "DELETE"}}}, admin...); r.Status != 200 {
			t.Fatalf("create %s: %d %s", name, r.Status, r.Body)
		}
	}
	aliceTok := apptest.Bearer(in.Login("alice", "password-alice"))
	file := func() string {
		b, err := os.ReadFile(filepath.Join(in.Dir, "policy.csv"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	allowed := func(sub, obj, act string) bool {
		var d decision
		in.Do("POST", "/policies/check", map[string]string{"subject": sub, "object": obj, "action": act}, admin...).JSON(t, &d)
		return d.Allowed
	}
	removeRule := func(rule string, dry bool) apptest.Response {
		q := "/policies/rules?rule=" + url.QueryEscape(rule)
		if dry {
			q += "&dry_run=true"
		}
		return in.Do("DELETE", q, nil, admin...)
	}

	// Make alice an administrator, by name.
	if r := in.Do("PUT", "/roles/role:admin/members/alice?dry_run=true", nil, admin...); r.Status != 200 || allowed("alice", "policies", "edit") {
		t.Fatalf("dry run of making alice admin: %d %s (or it changed something)", r.Status, r.Body)
	}
	r := in.Do("PUT", "/roles/role:admin/members/alice", nil, admin...)
	if r.Status != 200 || !strings.Contains(file(), "g, user:alice, role:admin") {
		t.Fatalf("make alice admin: %d %s\n%s", r.Status, r.Body, file())
	}
	if r := in.Do("GET", "/policies", nil, aliceTok...); r.Status != 200 {
		t.Errorf("alice reads the policy as administrator: %d", r.Status)
	}
	if r := in.Do("PUT", "/roles/role:admin/members/alice", nil, admin...); r.Status != 409 {
		t.Errorf("alice made admin twice: %d %s", r.Status, r.Body)
	}

	// Deny bob deletion: one rule.
	if r := in.Do("POST", "/policies/rules", map[string]string{"rule": "p, user:bob, *, delete, deny"}, admin...); r.Status != 200 {
		t.Fatalf("deny bob: %d %s", r.Status, r.Body)
	}
	if allowed("bob", "memory", "delete") {
		t.Error("bob may still delete")
	}
	// Bad rules are refused with the reason, and change nothing.
	for _, bad := range []string{"p, role:x", "p, role:x, users, read, maybe", "x, a, b", "\"unclosed"} {
		before := file()
		if r := in.Do("POST", "/policies/rules", map[string]string{"rule": bad}, admin...); r.Status != 422 || r.Detail() == "" {
			t.Errorf("add %q: %d %s", bad, r.Status, r.Body)
		}
		if file() != before {
			t.Errorf("a refused rule %q changed policy.csv", bad)
		}
	}

	// A lock-out is refused, dry run alike: no rule lets anyone edit the
	// policy once p, role:admin, *, * goes.
	for _, dry := range []bool{true, false} {
		r := removeRule("p, role:admin, *, *", dry)
		if r.Status != 422 || !strings.Contains(r.Detail(), "edit policies") {
			t.Errorf("remove the admin rule (dry run %v): %d %s", dry, r.Status, r.Body)
		}
	}
	if !allowed("admin", "policies", "edit") || !strings.Contains(file(), "p, role:admin, *, *") {
		t.Fatal("the refused lock-out changed the policy")
	}

	// Take both back.
	if r := removeRule("p, user:bob, *, delete, deny", false); r.Status != 200 || !allowed("bob", "memory", "delete") {
		t.Errorf("lift bob's deny: %d %s", r.Status, r.Body)
	}
	if r := removeRule("p, user:bob, *, delete, deny", false); r.Status != 404 {
		t.Errorf("lift bob's deny twice: %d %s", r.Status, r.Body)
	}
	if r := in.Do("DELETE", "/roles/role:admin/members/alice", nil, admin...); r.Status != 200 || allowed("alice", "policies", "edit") {
		t.Errorf("take alice out of role:admin: %d %s", r.Status, r.Body)
	}
	if r := in.Do("GET", "/policies", nil, aliceTok...); r.Status != 403 {
		t.Errorf("alice reads the policy after leaving role:admin: %d", r.Status)
	}
	if r := in.Do("PUT", "/roles/admin/members/alice", nil, admin...); r.Status != 422 {
		t.Errorf("a role without role: prefix: %d %s", r.Status, r.Body)
	}
	if r := in.Do("PUT", "/roles/role:admin/members/nobody", nil, admin...); r.Status != 422 {
		t.Errorf("a member who is nobody: %d %s", r.Status, r.Body)
	}

	// Only policy administrators change rules.
	if r := in.Do("POST", "/policies/rules", map[string]string{"rule": "g, user:user, role:admin"}, userTok...); r.Status != 403 {
		t.Errorf("a base user adds a rule: %d", r.Status)
	}
	if r := in.Do("PUT", "/roles/role:admin/members/user", nil, userTok...); r.Status != 403 {
		t.Errorf("a base user makes themselves admin: %d", r.Status)
	}
}

// TestDenyRuleReachesAnOpenSocket: revoking a permission by name with one
// deny rule stops a socket opened before it at its next message.
func TestDenyRuleReachesAnOpenSocket(t *testing.T) {
	in := authRequired(t)
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	in.Do("POST", "/users", map[string]any{"username": "dinah", "password": "dinah-pw",
		"permissions": map[string][]string{"CONVERSATION": {"WRITE"}}}, admin...)
	c := dial(t, in, "/ws?token="+in.Login("dinah", "dinah-pw"))
	c.send(map[string]string{"text": "meow"})
	if f, _ := c.reply(); f.Type != "chat" {
		t.Fatalf("before the deny: %+v", f)
	}
	if r := in.Do("POST", "/policies/rules", map[string]string{"rule": "p, user:dinah, conversation, write, deny"}, admin...); r.Status != 200 {
		t.Fatalf("deny dinah: %d %s", r.Status, r.Body)
	}
	c.send(map[string]string{"text": "meow again"})
	if f := c.next(); f.Type != "error" || f.Name != "PermissionDenied" {
		t.Errorf("after the deny: %+v, want a PermissionDenied error frame", f)
	}
}
