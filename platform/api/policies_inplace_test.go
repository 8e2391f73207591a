package api_test

import (
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/grin-ai/grin/platform/app/apptest"
)

// TestPolicyEditsChangeOnlyTheirRules: an edit of the rules (through the
// API, one rule or a member at a time, or of policy.csv on disk) puts only
// those rules in force, and the stored grants of every user are not read
// again (the metrics count policies loaded whole); only an edit of the
// model loads the policy whole. Each edit decides as a fresh load would:
// a rule of policy.csv that a user's grant doubled still holds when the
// grant is taken away.
func TestPolicyEditsChangeOnlyTheirRules(t *testing.T) {
	in := authRequired(t)
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	var alice struct {
		ID string `json:"id"`
	}
	in.Do("POST", "/users", map[string]any{"username": "alice", "password": "password-alice",
		"permissions": map[string][]string{"MEMORY": {"READ"}, "PLUGINS": {"READ"}}}, admin...).JSON(t, &alice)
	if alice.ID == "" {
		t.Fatal("alice was not created")
	}
	allowed := func(sub, obj, act string) bool {
		t.Helper()
		var d decision
		in.Do("POST", "/policies/check", map[string]string{"subject": sub, "object": obj, "action": act}, admin...).JSON(t, &d)
		return d.Allowed
	}
	loads := func() (whole, inPlace float64) {
		t.Helper()
		body := string(in.Do("GET", "/metrics", nil, admin...).Body)
		whole, ok1 := sample(body, `grin_policy_loads_total{kind="whole"}`)
		inPlace, ok2 := sample(body, `grin_policy_loads_total{kind="in_place"}`)
		if !ok1 || !ok2 {
			t.Fatalf("no grin_policy_loads_total in the metrics")
		}
		return whole, inPlace
	}
	must := func(status int, method, path string, body any) {
		t.Helper()
		if r := in.Do(method, path, body, admin...); r.Status != status {
			t.Fatalf("%s %s: %d %s", method, path, r.Status, r.Body)
		}
	}
	wholeAtStart, _ := loads()

	steps := []struct {
		name string
		do   func()
		// check asks the policy in force; grant is set for a change of
		// a user's grants, which is no edit of the rules.
		check func() bool
		grant bool
	}{
		{"a rule of policy.csv doubles alice's grant", func() {
			must(200, "POST", "/policies/rules", map[string]string{"rule": "g, user:alice, perm:plugins:read"})
		}, func() bool { return allowed("alice", "plugins", "read") }, false},
		{"the grant is taken away; the rule still gives it", func() {
			must(200, "PUT", "/users/"+alice.ID, map[string]any{"permissions": map[string][]string{"MEMORY": {"READ"}}})
		}, func() bool { return allowed("alice", "plugins", "read") }, true},
		{"a deny rule", func() {
			must(200, "POST", "/policies/rules", map[string]string{"rule": "p, user:alice, plugins, read, deny"})
		}, func() bool { return !allowed("alice", "plugins", "read") }, false},
		{"the deny rule goes", func() {
			must(200, "DELETE", "/policies/rules?rule="+url.QueryEscape("p, user:alice, plugins, read, deny"), nil)
		}, func() bool { return allowed("alice", "plugins", "read") }, false},
		{"the rule that doubled the grant goes", func() {
			must(200, "DELETE", "/policies/rules?rule="+url.QueryEscape("g, user:alice, perm:plugins:read"), nil)
		}, func() bool { return !allowed("alice", "plugins", "read") && allowed("alice", "memory", "read") }, false},
		{"alice joins role:admin", func() {
			must(200, "PUT", "/roles/role:admin/members/alice", nil)
		}, func() bool { return allowed("alice", "policies", "edit") }, false},
		{"alice leaves role:admin", func() {
			must(200, "DELETE", "/roles/role:admin/members/alice", nil)
		}, func() bool { return !allowed("alice", "policies", "edit") }, false},
		{"policy.csv edited on disk", func() {
			path := filepath.Join(in.Dir, "policy.csv")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, append(b, "p, user:alice, settings, read\n"...), 0o600); err != nil {
				t.Fatal(err)
			}
			for deadline := time.Now().Add(10 * time.Second); !allowed("alice", "settings", "read") && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
			}
		}, func() bool { return allowed("alice", "settings", "read") }, false},
	}
	edits := 0
	for _, s := range steps {
		s.do()
		if !s.grant {
			edits++
		}
		if !s.check() {
			t.Errorf("%s: the policy in force does not say so", s.name)
		}
		if whole, inPlace := loads(); whole != wholeAtStart || inPlace != float64(edits) {
			t.Errorf("%s: policies loaded whole %v (at start %v), edits in place %v, want %d", s.name, whole, wholeAtStart, inPlace, edits)
		}
	}

	// An edit of the model loads the policy whole.
	var docs struct {
		Model  string `json:"model"`
		Policy string `json:"policy"`
	}
	in.Do("GET", "/policies", nil, admin...).JSON(t, &docs)
	docs.Model += "\n# edited\n"
	must(200, "PUT", "/policies", docs)
	if whole, _ := loads(); whole != wholeAtStart+1 {
		t.Errorf("after an edit of the model: policies loaded whole %v, want %v", whole, wholeAtStart+1)
	}
	if !allowed("alice", "settings", "read") || allowed("alice", "plugins", "read") {
		t.Error("the model edit changed alice's decisions")
	}
}
