package api_test

import (
	"strings"
	"testing"

	"github.com/grin-ai/grin/platform/app/apptest"
)

type dryRun struct {
	Changes []struct {
		Subject string `json:"subject"`
		Object  string `json:"object"`
		Action  string `json:"action"`
		Before  string `json:"before"`
		After   string `json:"after"`
		Text    string `json:"text"`
	} `json:"decision_changes"`
}

// TestDryRunShowsDecisionChanges: a dry run of an acceptable change says,
// subject by subject, which decisions it would turn and by which rule, and
// changes nothing.
func TestDryRunShowsDecisionChanges(t *testing.T) {
	in := authRequired(t)
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	for _, name := range []string{"alice", "bob", "carol"} {
		if r := in.Do("POST", "/users", map[string]any{"username": name, "password": "password-" + name}, admin...); r.Status != 200 {
			t.Fatalf("create %s: %d %s", name, r.Status, r.Body)
		}
	}
	if r := in.Do("POST", "/memory/collections/declarative/points?partition=contracts", map[string]any{"content": "The lease ends in March."}, admin...); r.Status != 200 {
		t.Fatalf("store a contract: %d %s", r.Status, r.Body)
	}
	var before policyView
	in.Do("GET", "/policies", nil, admin...).JSON(t, &before)

	type change struct{ subject, object, action, before, after, says string }
	for _, tc := range []struct {
		name, method, path string
		body               any
		want               []change
	}{
		{"make alice administrator", "PUT", "/roles/role:admin/members/alice?dry_run=true", nil,
			[]change{{"user:alice", "policies", "edit", "none", "allow", "p, role:admin, *, *"}}},
		{"deny bob deletion", "POST", "/policies/rules?dry_run=true", map[string]string{"rule": "p, user:bob, *, delete, deny"},
			[]change{{"user:bob", "conversation", "delete", "allow", "deny", "p, user:bob, *, delete, deny"}}},
		{"every reader reads contracts", "PUT", "/policies?dry_run=true", policyView{Model: before.Model, Policy: before.Policy + "p, perm:memory:read, declarative:contracts, read\n"},
			[]change{{"other users with the same roles", "declarative:contracts", "read", "none", "allow", "p, perm:memory:read, declarative:contracts, read"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d dryRun
			r := in.Do(tc.method, tc.path, tc.body, admin...)
			if r.Status != 200 {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			r.JSON(t, &d)
			for _, w := range tc.want {
				found := false
				for _, c := range d.Changes {
					if strings.Contains(c.Subject, w.subject) && c.Object == w.object && c.Action == w.action && c.Before == w.before && c.After == w.after && strings.Contains(c.Text, w.says) {
						found = true
					}
				}
				if !found {
					t.Errorf("no change %+v among %+v", w, d.Changes)
				}
			}
			// Only the subjects the change reaches are listed.
			for _, c := range d.Changes {
				if strings.Contains(c.Subject, "carol") && tc.name != "every reader reads contracts" {
					t.Errorf("carol is not reached by %q, yet: %+v", tc.name, c)
				}
			}
		})
	}
	var after policyView
	in.Do("GET", "/policies", nil, admin...).JSON(t, &after)
	if after.Policy != before.Policy {
		t.Error("a dry run changed the policy")
	}
}
