package api_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grin-ai/grin/platform/app/apptest"
)

// TestFormerModelMigrates: a data directory written by grin before deny
// rules (the allow-only model) starts with today's model, keeps the former
// one as a backup, and every rule keeps its meaning.
func TestFormerModelMigrates(t *testing.T) {
	dir := t.TempDir()
	former, err := os.ReadFile("../../policies/defaults/former/model-allow-only.conf")
	if err != nil {
		t.Fatal(err)
	}
	policy := "p, role:admin, *, *\n" +
		"g, credential:api_key, role:admin\n" +
		"p, perm:{object}:{action}, *, *\n" +
		"p, perm:memory:{action}, episodic:{self}, *\n" +
		"p, role:auditor, users, list\n"
	os.WriteFile(filepath.Join(dir, "model.conf"), former, 0o600)
	os.WriteFile(filepath.Join(dir, "policy.csv"), []byte(policy), 0o600)
	cfg := apptest.Config(dir)
	cfg.APIKey = testAPIKey
	in := apptest.StartWith(t, cfg)
	key := []string{"Authorization", "Bearer " + testAPIKey}

	model, _ := os.ReadFile(filepath.Join(dir, "model.conf"))
	if !strings.Contains(string(model), "p.eft == deny") {
		t.Errorf("model.conf was not migrated:\n%s", model)
	}
	if backup, _ := os.ReadFile(filepath.Join(dir, "model.conf.allow-only.bak")); string(backup) != string(former) {
		t.Errorf("the former model was not kept as model.conf.allow-only.bak")
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "policy.csv")); string(got) != policy {
		t.Errorf("policy.csv changed:\n%s", got)
	}
	for _, tc := range []struct {
		sub, obj, act string
		allowed       bool
	}{
		{"role:auditor", "users", "list", true},
		{"role:auditor", "users", "read", false},
		{"credential:api_key", "policies", "edit", true},
	} {
		var d decision
		r := in.Do("POST", "/policies/check", map[string]string{"subject": tc.sub, "object": tc.obj, "action": tc.act}, key...)
		r.JSON(t, &d)
		if r.Status != 200 || d.Allowed != tc.allowed {
			t.Errorf("after the migration, %s %s %s: %d %s, want allowed %v", tc.sub, tc.act, tc.obj, r.Status, r.Body, tc.allowed)
		}
	}
	// A deny rule now works in the migrated policy.
	var docs policyView
	in.Do("GET", "/policies", nil, key...).JSON(t, &docs)
	docs.Policy += "p, role:auditor, users, list, deny\n"
	if r := in.Do("PUT", "/policies", docs, key...); r.Status != 200 {
		t.Fatalf("add a deny rule: %d %s", r.Status, r.Body)
	}
	var d decision
	in.Do("POST", "/policies/check", map[string]string{"subject": "role:auditor", "object": "users", "action": "list"}, key...).JSON(t, &d)
	if d.Allowed || d.Effect != "deny" || d.Text != "p, role:auditor, users, list, deny" {
		t.Errorf("after the deny rule: %+v", d)
	}
}

// TestDenyOneUserDeletion: an administrator denies bob deletion by name;
// the explanation names the deny rule and the role it came through, bob's
// permission dictionary no longer shows MEMORY DELETE, and the Cat's
// delete answers 403 saying why instead of 200 with nothing done.
func TestDenyOneUserDeletion(t *testing.T) {
	for _, tc := range []struct {
		name, rules string
		via         string // the role the deny comes through, if any
		catShows    bool   // whether /users/bob still shows MEMORY DELETE
	}{
		{"everything", "p, user:bob, *, delete, deny\n", "", false},
		{"his episodic memory", "p, user:bob, episodic:*, delete, deny\n", "", true},
		{"through a role", "g, user:bob, role:no-delete\np, role:no-delete, *, delete, deny\n", "role:no-delete", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := authRequired(t)
			admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
			var bob user
			r := in.Do("POST", "/users", map[string]any{"username": "bob", "password": "bob-password", "permissions": map[string][]string{
				"MEMORY": {"READ", "LIST", "WRITE", "DELETE"}, "CONVERSATION": {"READ", "WRITE"}}}, admin...)
			if r.Status != 200 {
				t.Fatalf("create bob: %d %s", r.Status, r.Body)
			}
			r.JSON(t, &bob)
			bobTok := apptest.Bearer(in.Login("bob", "bob-password"))
			if r := in.Do("POST", "/memory/collections/episodic/points", map[string]any{"content": "my cat is called Dinah"}, bobTok...); r.Status != 200 {
				t.Fatalf("bob stores a memory: %d %s", r.Status, r.Body)
			}

			var docs policyView
			in.Do("GET", "/policies", nil, admin...).JSON(t, &docs)
			docs.Policy += "\n" + tc.rules
			if r := in.Do("PUT", "/policies", docs, admin...); r.Status != 200 {
				t.Fatalf("deny bob: %d %s", r.Status, r.Body)
			}

			// The explanation names the deny rule as written, and the role.
			var d decision
			r = in.Do("POST", "/policies/check", map[string]string{"subject": "bob", "object": "episodic:" + bob.ID, "action": "delete"}, admin...)
			r.JSON(t, &d)
			denyRule := strings.Split(strings.TrimSpace(tc.rules), "\n")
			if d.Allowed || d.Effect != "deny" || d.Text != denyRule[len(denyRule)-1] || d.Line == 0 || strings.Join(d.Via, ",") != tc.via || !strings.Contains(d.Reason, "denied by the rule") {
				t.Errorf("check bob delete his memory: %s", r.Body)
			}

			// The Cat's delete says why, and deletes nothing.
			r = in.Do("DELETE", "/memory/collections/episodic", nil, bobTok...)
			if r.Status != 403 || !strings.Contains(r.Detail(), denyRule[len(denyRule)-1]) {
				t.Errorf("bob wipes his episodic memory: %d %s, want 403 naming the deny rule", r.Status, r.Body)
			}
			var points struct {
				Points []any `json:"points"`
			}
			in.Do("GET", "/memory/collections/episodic/points", nil, bobTok...).JSON(t, &points)
			if len(points.Points) != 1 {
				t.Errorf("bob's memory after the refused delete: %d points, want 1", len(points.Points))
			}

			// The dictionary shows what bob may do; the denied grant is
			// listed apart, and sending the dictionary back keeps it.
			var got struct {
				Permissions map[string][]string `json:"permissions"`
				Denied      map[string][]string `json:"denied"`
			}
			in.Do("GET", "/users/"+bob.ID, nil, admin...).JSON(t, &got)
			shows := strings.Contains(strings.Join(got.Permissions["MEMORY"], ","), "DELETE")
			if shows != tc.catShows || tc.catShows == (len(got.Denied["MEMORY"]) == 1) {
				t.Errorf("GET /users/bob: permissions %v, denied %v", got.Permissions, got.Denied)
			}
			if r := in.Do("PUT", "/users/"+bob.ID, map[string]any{"permissions": got.Permissions}, admin...); r.Status != 200 {
				t.Fatalf("put bob's dictionary back: %d %s", r.Status, r.Body)
			}
		})
	}
}
