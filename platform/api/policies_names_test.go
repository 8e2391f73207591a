package api_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grin-ai/grin/platform/app/apptest"
)

// policyView is GET /policies and PUT's answer, with the warnings.
type policyView struct {
	Model    string `json:"model"`
	Policy   string `json:"policy"`
	Warnings []struct {
		File    string `json:"file"`
		Line    int    `json:"line"`
		Message string `json:"message"`
	} `json:"warnings"`
}

// warningAt returns the warning of line n, or "".
func (v policyView) warningAt(n int) string {
	for _, w := range v.Warnings {
		if w.Line == n {
			return w.Message
		}
	}
	return ""
}

type decision struct {
	Allowed bool     `json:"allowed"`
	Effect  string   `json:"effect"`
	Rule    []string `json:"rule"`
	Via     []string `json:"via"`
	Subject string   `json:"subject"`
	Text    string   `json:"text"`
	Line    int      `json:"line"`
	Reason  string   `json:"reason"`
}

// TestSubjectsByName: an administrator names users by username in the API
// (bare) and in the policy (user:<username>); the rules stay with the user
// through a rename, go with a deletion, and rules naming nobody are
// warnings.
func TestSubjectsByName(t *testing.T) {
	in := authRequired(t)
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	check := func(sub, obj, act string) (decision, apptest.Response) {
		t.Helper()
		var d decision
		r := in.Do("POST", "/policies/check", map[string]string{"subject": sub, "object": obj, "action": act}, admin...)
		if r.Status == 200 {
			r.JSON(t, &d)
		}
		return d, r
	}
	create := func(name string, headers []string) (user, apptest.Response) {
		t.Helper()
		var u user
		r := in.Do("POST", "/users", map[string]any{"username": name, "password": "password-" + name}, headers...)
		if r.Status == 200 {
			r.JSON(t, &u)
		}
		return u, r
	}
	alice, r := create("alice", admin)
	if r.Status != 200 {
		t.Fatalf("create alice: %d %s", r.Status, r.Body)
	}

	// The bare username works in a check, as the user's id.
	for _, tc := range []struct {
		sub     string
		allowed bool
	}{{"admin", true}, {"alice", false}, {"user:alice", false}, {alice.ID, false}, {"role:admin", true}, {"credential:api_key", true}} {
		d, r := check(tc.sub, "policies", "edit")
		if r.Status != 200 || d.Allowed != tc.allowed {
			t.Errorf("check %s edit policies: %d %s, want allowed %v", tc.sub, r.Status, r.Body, tc.allowed)
		}
	}
	if d, _ := check("alice", "memory", "read"); !d.Allowed || !strings.Contains(d.Subject, alice.ID) {
		t.Errorf("check alice read memory: %+v, want allowed and the subject naming her id", d)
	}
	// A subject that names nothing is a 422 saying so, not a silent "denied".
	for _, sub := range []string{"carol", "user:carol", "credential:api_kee"} {
		if _, r := check(sub, "users", "read"); r.Status != 422 || !strings.Contains(r.Detail(), strings.TrimPrefix(sub, "user:")) {
			t.Errorf("check %s: %d %s, want 422 naming it", sub, r.Status, r.Body)
		}
	}

	// user:<username> in the policy names the user.
	var docs policyView
	in.Do("GET", "/policies", nil, admin...).JSON(t, &docs)
	if len(docs.Warnings) != 0 {
		t.Fatalf("the default policy has warnings: %+v", docs.Warnings)
	}
	base := strings.Count(docs.Policy, "\n")
	if !strings.HasSuffix(docs.Policy, "\n") {
		base++
	}
	// Lines base+1 … base+5 are the added ones.
	added := "g, user:alice, role:admin\n" +
		"g, user:zed, role:admin\n" +
		"p, alice, declarative:legal, read\n" +
		"g, user:alice, role:admn\n" +
		"p, credential:api_kee, users, read\n"
	edited := policyView{Model: docs.Model, Policy: docs.Policy + added}
	var dry policyView
	r = in.Do("PUT", "/policies?dry_run=true", edited, admin...)
	if r.Status != 200 {
		t.Fatalf("dry run: %d %s", r.Status, r.Body)
	}
	r.JSON(t, &dry)
	for i, want := range []string{"", "user:zed names no user", "user:alice", "role:admn", "credential:api_kee"} {
		got := dry.warningAt(base + 1 + i)
		if want == "" && got != "" || !strings.Contains(got, want) {
			t.Errorf("dry run, line %d: warning %q, want one containing %q (all: %+v)", base+1+i, got, want, dry.Warnings)
		}
	}
	if d, _ := check("alice", "policies", "edit"); d.Allowed {
		t.Fatal("a dry run made alice an administrator")
	}
	if r := in.Do("PUT", "/policies", edited, admin...); r.Status != 200 {
		t.Fatalf("put: %d %s", r.Status, r.Body)
	}
	in.Do("GET", "/policies", nil, admin...).JSON(t, &docs)
	if len(docs.Warnings) != 4 || docs.warningAt(base+1) != "" {
		t.Errorf("GET /policies warnings after the edit: %+v", docs.Warnings)
	}
	aliceTok := apptest.Bearer(in.Login("alice", "password-alice"))
	if r := in.Do("GET", "/policies", nil, aliceTok...); r.Status != 200 {
		t.Fatalf("alice, made administrator by user:alice, reads the policy: %d %s", r.Status, r.Body)
	}
	if d, _ := check("alice", "policies", "edit"); !d.Allowed || strings.Join(d.Via, ",") != "role:admin" {
		t.Errorf("check alice edit policies: %+v, want allowed via role:admin", d)
	}

	// A user whom the policy names gives what it names: only a policy
	// administrator may create one of that name.
	editor, r := create("editor", admin)
	if r.Status != 200 {
		t.Fatalf("create editor: %d %s", r.Status, r.Body)
	}
	if r := in.Do("PUT", "/users/"+editor.ID, map[string]any{"permissions": map[string][]string{"USERS": {"WRITE", "READ", "LIST"}, "MEMORY": {"READ", "LIST"}, "CONVERSATION": {"WRITE", "EDIT", "LIST", "READ", "DELETE"}, "STATUS": {"READ"}, "STATIC": {"READ"}}}, admin...); r.Status != 200 {
		t.Fatalf("give editor USERS WRITE: %d %s", r.Status, r.Body)
	}
	editorTok := apptest.Bearer(in.Login("editor", "password-editor"))
	if _, r := create("zed", editorTok); r.Status != 403 || !strings.Contains(r.Detail(), "user:zed") {
		t.Errorf("a USERS WRITE holder creates zed, whom the policy makes admin: %d %s, want 403 naming user:zed", r.Status, r.Body)
	}
	if _, r := create("bob", editorTok); r.Status != 200 {
		t.Errorf("a USERS WRITE holder creates bob: %d %s", r.Status, r.Body)
	}
	if _, r := create("zed", admin); r.Status != 200 {
		t.Fatalf("admin creates zed: %d %s", r.Status, r.Body)
	}
	if d, _ := check("zed", "policies", "edit"); !d.Allowed {
		t.Error("zed, created after the rule user:zed, is not an administrator")
	}
	in.Do("GET", "/policies", nil, admin...).JSON(t, &docs)
	if docs.warningAt(base+2) != "" {
		t.Errorf("user:zed still warned about once zed exists: %+v", docs.Warnings)
	}

	// A rename keeps the rules: the file names the new name.
	if r := in.Do("PUT", "/users/"+alice.ID, map[string]any{"username": "alicia"}, admin...); r.Status != 200 {
		t.Fatalf("rename alice: %d %s", r.Status, r.Body)
	}
	if r := in.Do("GET", "/policies", nil, aliceTok...); r.Status != 200 {
		t.Errorf("alicia (was alice) reads the policy: %d %s", r.Status, r.Body)
	}
	file, err := os.ReadFile(filepath.Join(in.Dir, "policy.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(file), "g, user:alicia, role:admin") || strings.Contains(string(file), "g, user:alice, role:admin") {
		t.Errorf("policy.csv after the rename:\n%s", file)
	}
	// Someone new called alice gets nothing of the old alice's.
	if _, r := create("alice", admin); r.Status != 200 {
		t.Fatalf("create a new alice: %d %s", r.Status, r.Body)
	}
	if d, _ := check("alice", "policies", "edit"); d.Allowed {
		t.Error("the new alice is an administrator: the rule followed the name, not the user")
	}

	// A deletion retires the user's rules: a newcomer of the same name
	// does not inherit them.
	if r := in.Do("DELETE", "/users/"+alice.ID, nil, admin...); r.Status != 200 {
		t.Fatalf("delete alicia: %d %s", r.Status, r.Body)
	}
	file, _ = os.ReadFile(filepath.Join(in.Dir, "policy.csv"))
	if strings.Contains(string(file), "\ng, user:alicia, role:admin") || !strings.Contains(string(file), "# user alicia was deleted") {
		t.Errorf("policy.csv after deleting alicia:\n%s", file)
	}
	if _, r := create("alicia", admin); r.Status != 200 {
		t.Fatalf("create a new alicia: %d %s", r.Status, r.Body)
	}
	if d, _ := check("alicia", "policies", "edit"); d.Allowed {
		t.Error("a new alicia inherited the deleted one's administrator rule")
	}
}
