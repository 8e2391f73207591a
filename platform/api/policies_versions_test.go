package api_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grin-ai/grin/platform/app/apptest"
)

type policyVersion struct {
	Version  int64  `json:"version"`
	Author   string `json:"author"`
	Source   string `json:"source"`
	InForce  bool   `json:"in_force"`
	Policy   string `json:"policy"`
	Diff     string `json:"diff"`
	Warnings []any  `json:"warnings"`
}

// TestPolicyVersionsAndRestore: each accepted change (PUT, one rule, one
// member, a file edit) is one numbered version with its author; a broken
// file is shown with every error beside the last good version; and
// yesterday's version comes back, as a new version, in force and in the
// data directory.
func TestPolicyVersionsAndRestore(t *testing.T) {
	in := authRequired(t)
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	path := filepath.Join(in.Dir, "policy.csv")
	versions := func() []policyVersion {
		t.Helper()
		var vs []policyVersion
		r := in.Do("GET", "/policies/versions", nil, admin...)
		if r.Status != 200 {
			t.Fatalf("versions: %d %s", r.Status, r.Body)
		}
		r.JSON(t, &vs)
		return vs
	}
	vs := versions()
	if len(vs) != 1 || vs[0].Version != 1 || vs[0].Source != "file" || !vs[0].InForce {
		t.Fatalf("first start: %+v, want version 1 from the files, in force", vs)
	}
	yesterday, _ := os.ReadFile(path)
	if r := in.Do("POST", "/users", map[string]any{"username": "bob", "password": "bob-password"}, admin...); r.Status != 200 {
		t.Fatalf("create bob: %d %s", r.Status, r.Body)
	}

	// Four changes, four versions.
	var docs policyView
	in.Do("GET", "/policies", nil, admin...).JSON(t, &docs)
	docs.Policy += "p, role:auditor, users, list\n"
	if r := in.Do("PUT", "/policies", docs, admin...); r.Status != 200 {
		t.Fatalf("put: %d %s", r.Status, r.Body)
	}
	if r := in.Do("POST", "/policies/rules", map[string]string{"rule": "p, user:bob, *, delete, deny"}, admin...); r.Status != 200 {
		t.Fatalf("rule: %d %s", r.Status, r.Body)
	}
	if r := in.Do("PUT", "/roles/role:auditor/members/bob", nil, admin...); r.Status != 200 {
		t.Fatalf("member: %d %s", r.Status, r.Body)
	}
	if r := in.Do("POST", "/policies/rules?dry_run=true", map[string]string{"rule": "p, role:x, users, read"}, admin...); r.Status != 200 {
		t.Fatalf("dry run: %d %s", r.Status, r.Body)
	}
	now, _ := os.ReadFile(path)
	os.WriteFile(path, append(now, "p, role:auditor, users, read\n"...), 0o600)
	waitForVersions := func(n int) []policyVersion {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			// The file's version is stored, then put in force: wait for both.
			vs := versions()
			if len(vs) >= n && vs[0].InForce || time.Now().After(deadline) {
				return vs
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	vs = waitForVersions(5)
	want := []struct{ source, author string }{{"file", "policy files"}, {"api", "admin ("}, {"api", "admin ("}, {"api", "admin ("}, {"file", "policy files"}}
	if len(vs) != 5 {
		t.Fatalf("after four changes and a dry run: %d versions %+v, want 5", len(vs), vs)
	}
	for i, w := range want {
		v := vs[len(vs)-1-i]
		if v.Version != int64(i+1) || v.Source != w.source || !strings.Contains(v.Author, w.author) || v.InForce != (i == 4) {
			t.Errorf("version %d: %+v, want source %s by %q", i+1, v, w.source, w.author)
		}
	}
	var v3 policyVersion
	in.Do("GET", "/policies/versions/3", nil, admin...).JSON(t, &v3)
	if !strings.Contains(v3.Diff, "+p, user:bob, *, delete, deny") || strings.Count(v3.Diff, "\n+") != 2 { // +++ b/policy.csv and the rule
		t.Errorf("version 3's diff:\n%s", v3.Diff)
	}

	// Break the file: every error is shown, beside the last good version.
	os.WriteFile(path, []byte("p, role:admin, *, *\np, role:x\ng, a\n"), 0o600)
	st := waitForFileStatus(t, in, admin, "refused")
	var got policyView
	var withVersion struct {
		Version int64 `json:"version"`
	}
	r := in.Do("GET", "/policies", nil, admin...)
	r.JSON(t, &got)
	r.JSON(t, &withVersion)
	if len(st.FileErrors) != 2 || st.FileErrors[0].Line != 2 || st.FileErrors[1].Line != 3 || withVersion.Version != 5 {
		t.Errorf("refused file: errors %+v, version %d (want 2 errors, lines 2 and 3, and version 5 in force)", st.FileErrors, withVersion.Version)
	}

	// Restore yesterday's version: a new version, in force, in the files.
	if r := in.Do("POST", "/policies/versions/1/restore?dry_run=true", nil, admin...); r.Status != 200 || len(versions()) != 5 {
		t.Fatalf("dry run of the restore: %d %s", r.Status, r.Body)
	}
	r = in.Do("POST", "/policies/versions/1/restore", nil, admin...)
	if r.Status != 200 {
		t.Fatalf("restore: %d %s", r.Status, r.Body)
	}
	vs = versions()
	if len(vs) != 6 || vs[0].Version != 6 || vs[0].Source != "restore" || !vs[0].InForce {
		t.Errorf("after the restore: %+v", vs[0])
	}
	if now, _ := os.ReadFile(path); string(now) != string(yesterday) {
		t.Errorf("policy.csv after the restore is not version 1's:\n%s", now)
	}
	waitForFileStatus(t, in, admin, "in_force")
	var d decision
	in.Do("POST", "/policies/check", map[string]string{"subject": "bob", "object": "memory", "action": "delete"}, admin...).JSON(t, &d)
	if d.Effect == "deny" {
		t.Error("bob's deny outlived the restore of a version without it")
	}
	for _, n := range []int{99, 0} {
		if r := in.Do("POST", fmt.Sprintf("/policies/versions/%d/restore", n), nil, admin...); r.Status/100 != 4 {
			t.Errorf("restore version %d: %d", n, r.Status)
		}
	}
}
