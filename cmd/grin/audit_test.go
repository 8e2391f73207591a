package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/grin-ai/grin/platform/app/apptest"
)

// TestAuditCommand: grin audit reads the log of a running server's data
// directory, newest first, filtered by username (entries name users by
// id), action prefix and age, as a table or as JSON, and says how to read
// on when a page ends; bad filters are refused naming the flag.
func TestAuditCommand(t *testing.T) {
	in := apptest.Start(t)
	var carol struct{ ID string }
	in.Do("POST", "/users", map[string]any{"username": "carol", "password": "carol-secret-pw", "permissions": map[string][]string{"USERS": {"READ"}}}).JSON(t, &carol)
	in.Do("PUT", "/users/"+carol.ID, map[string]any{"permissions": map[string][]string{"USERS": {"READ", "LIST"}}})
	in.Do("POST", "/auth/token", map[string]string{"username": "carol", "password": "not-hers"})
	in.Do("POST", "/settings", map[string]any{"name": "x", "value": map[string]any{"api_key": "doc-secret-key"}})

	env := map[string]string{"GRIN_DATA_DIR": in.Dir}
	for _, tc := range []struct {
		args      []string
		code      int
		says, not []string
	}{
		{nil, 0, []string{"user.create", "user.update", "login", "setting.create", "refused", "anonymous user"}, []string{"carol-secret-pw", "not-hers", "doc-secret-key"}},
		{[]string{"--target", "carol"}, 0, []string{"user.create", "user.update", "login"}, []string{"setting.create"}},
		{[]string{"--action", "user.*", "--changes"}, 0, []string{"user.create", "user.update", `"LIST"`, "before:"}, []string{" login ", "setting.create"}},
		{[]string{"--action", "login", "--since", "1h"}, 0, []string{"login", "Invalid Credentials"}, []string{"user.create"}},
		{[]string{"--since", "2000-01-01T00:00:00Z", "--until", "2000-01-02T00:00:00Z"}, 0, []string{"no entries"}, []string{"login"}},
		{[]string{"--limit", "1"}, 0, []string{"setting.create"}, []string{"user.create"}},
		{[]string{"--since", "last week"}, 2, nil, nil},
		{[]string{"--limit", "0"}, 2, nil, nil},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := runGrin(t, env, append([]string{"audit"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d: %s %s", code, tc.code, out, errOut)
			}
			for _, s := range tc.says {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q:\n%s", s, out)
				}
			}
			for _, s := range tc.not {
				if strings.Contains(out, s) {
					t.Errorf("output has %q:\n%s", s, out)
				}
			}
			if tc.code == 2 && !strings.Contains(errOut, "--") {
				t.Errorf("the refusal names no flag: %s", errOut)
			}
		})
	}
	_, _, errOut := runGrin(t, env, "audit", "--limit", "1")
	if !strings.Contains(errOut, "grin audit --before") {
		t.Errorf("a page that is not the last says nothing of the next: %q", errOut)
	}
	code, out, _ := runGrin(t, env, "audit", "--json", "--actor", "carol")
	if code != 0 {
		t.Fatalf("--json: exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var e struct {
		Action string `json:"action"`
		Actor  struct {
			ID string `json:"id"`
		} `json:"actor"`
	}
	if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &e) != nil || e.Action != "login" || e.Actor.ID != carol.ID {
		t.Errorf("--json --actor carol: %q, want carol's failed login, by her id", out)
	}
}
