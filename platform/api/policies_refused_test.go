package api_test

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grin-ai/grin/internal/logbuf"
	"github.com/grin-ai/grin/platform/app"
	"github.com/grin-ai/grin/platform/app/apptest"
)

// policyState is GET /policies.
type policyState struct {
	Model      string `json:"model"`
	Policy     string `json:"policy"`
	FileStatus string `json:"file_status"`
	FileErrors []struct {
		File    string `json:"file"`
		Line    int    `json:"line"`
		Message string `json:"message"`
	} `json:"file_errors"`
}

// problem is a huma problem+json answer with its errors.
type problem struct {
	Detail string `json:"detail"`
	Errors []struct {
		Location string `json:"location"`
		Message  string `json:"message"`
	} `json:"errors"`
}

func getPolicy(t *testing.T, in *apptest.Instance, admin []string) policyState {
	t.Helper()
	r := in.Do("GET", "/policies", nil, admin...)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /policies as admin: %d %s", r.Status, r.Body)
	}
	var st policyState
	r.JSON(t, &st)
	return st
}

// waitForFileStatus polls GET /policies until the files' status is want:
// the watcher's verdict is the signal, the deadline only guards a hang.
func waitForFileStatus(t *testing.T, in *apptest.Instance, admin []string, want string) policyState {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := getPolicy(t, in, admin)
		if st.FileStatus == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("file_status stayed %q (want %q); log:\n%s", st.FileStatus, want, in.Logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// withoutAdminRule is the default policy with no rule for role:admin.
func withoutAdminRule(policy string) string {
	return strings.Replace(policy, "p, role:admin, *, *", "", 1)
}

// TestPolicyThatLocksEveryoneOutIsRefused: a policy under which no internal
// user may edit the policy is refused by PUT and by its dry run, with the
// reason, and every decision stays as it was. The API key, which the
// default policy makes an administrator, does not count as someone left to
// repair the policy.
func TestPolicyThatLocksEveryoneOutIsRefused(t *testing.T) {
	in := authRequired(t)
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	userTok := apptest.Bearer(in.Login("user", apptest.UserPassword))
	before := getPolicy(t, in, admin)
	if before.FileStatus != "in_force" || len(before.FileErrors) != 0 {
		t.Errorf("a fresh instance's files: %q %v", before.FileStatus, before.FileErrors)
	}

	for _, tc := range []struct{ name, policy string }{
		{"empty", ""},
		{"only comments", "# nothing here\n"},
		{"without the admin rule", withoutAdminRule(before.Policy)},
		{"only the API key may edit", "p, credential:api_key, *, *\n"},
	} {
		for _, path := range []string{"/policies", "/policies?dry_run=true"} {
			t.Run(tc.name+" "+path, func(t *testing.T) {
				r := in.Do("PUT", path, documents{before.Model, tc.policy}, admin...)
				if r.Status != http.StatusUnprocessableEntity {
					t.Fatalf("PUT %s: %d %s, want 422", path, r.Status, r.Body)
				}
				if !strings.Contains(r.Detail(), "this policy would leave no user able to edit policies") || !strings.Contains(r.Detail(), "admin") {
					t.Errorf("detail %q should say the policy locks administrators out, naming one", r.Detail())
				}
			})
		}
	}

	// Nothing changed: the documents, the files, and the decisions.
	after := getPolicy(t, in, admin)
	if after.Policy != before.Policy || after.Model != before.Model {
		t.Error("a refused policy replaced the one in force")
	}
	if b, _ := os.ReadFile(filepath.Join(in.Dir, "policy.csv")); string(b) != before.Policy {
		t.Error("a refused policy was written to policy.csv")
	}
	if r := in.Do("GET", "/users", nil, admin...); r.Status != 200 {
		t.Errorf("admin listing users after the refusals: %d", r.Status)
	}
	if r := in.Do("GET", "/", nil, userTok...); r.Status != 200 {
		t.Errorf("base user's status after the refusals: %d", r.Status)
	}
	if r := in.Do("GET", "/users", nil, userTok...); r.Status != 403 {
		t.Errorf("base user listing users after the refusals: %d, want 403 as before", r.Status)
	}
	// An edit that keeps an administrator is accepted.
	kept := withoutAdminRule(before.Policy) + "\np, role:admin, policies, *\n"
	if r := in.Do("PUT", "/policies", documents{before.Model, kept}, admin...); r.Status != 200 {
		t.Errorf("an edit that keeps policy editing for admins: %d %s", r.Status, r.Body)
	}
}

// TestPolicyFileThatLocksEveryoneOutIsRefused: an empty policy.csv written
// into the data directory is refused by the watcher, logged with the
// reason, and reported by GET /policies; the administrator can still edit
// the policy, and putting the file back ends the refusal.
func TestPolicyFileThatLocksEveryoneOutIsRefused(t *testing.T) {
	in := authRequired(t)
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	userTok := apptest.Bearer(in.Login("user", apptest.UserPassword))
	good := getPolicy(t, in, admin)
	path := filepath.Join(in.Dir, "policy.csv")

	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	st := waitForFileStatus(t, in, admin, "refused")
	if st.Policy != good.Policy {
		t.Error("GET /policies does not show the policy still in force")
	}
	if len(st.FileErrors) != 1 || !strings.Contains(st.FileErrors[0].Message, "would leave no user able to edit policies") {
		t.Errorf("file_errors = %+v, want the lockout", st.FileErrors)
	}
	// The refusal is shown as it is decided and logged just after: wait
	// for the line.
	logged := func() (string, bool) {
		logs := in.Logs.String()
		return logs, strings.Contains(logs, "level=ERROR") && strings.Contains(logs, "policy edit refused") &&
			strings.Contains(logs, "would leave no user able to edit policies")
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		logs, ok := logged()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("the refusal is not logged with its reason:\n%s", logs)
			break
		}
	}
	if r := in.Do("GET", "/users", nil, admin...); r.Status != 200 {
		t.Errorf("admin after the empty file: %d", r.Status)
	}
	if r := in.Do("GET", "/", nil, userTok...); r.Status != 200 {
		t.Errorf("base user after the empty file: %d", r.Status)
	}
	// The administrator can still edit the policy, which also rewrites the
	// files: they are in force again. What GET returned goes back as it
	// is, the report of the refusal with it.
	edited := good.Policy + "\np, perm:status:read, users, list\n"
	body := in.Do("GET", "/policies", nil, admin...).Map(t)
	if body["file_status"] != "refused" || body["file_errors"] == nil {
		t.Fatalf("GET /policies = %v", body)
	}
	body["policy"] = edited
	if r := in.Do("PUT", "/policies", body, admin...); r.Status != 200 {
		t.Fatalf("admin editing the policy after the empty file: %d %s", r.Status, r.Body)
	}
	if st := getPolicy(t, in, admin); st.FileStatus != "in_force" || st.Policy != edited {
		t.Errorf("after the PUT: %q, policy edited %v", st.FileStatus, st.Policy == edited)
	}
	if r := in.Do("GET", "/users", nil, userTok...); r.Status != 200 {
		t.Errorf("the PUT's rule is not in force: base user listing users: %d", r.Status)
	}
}

// brokenLines appends three broken lines to a policy: an unknown rule type,
// a rule with too few fields, and an unclosed quote, on lines n+2, n+3, n+4
// where n is the policy's line count.
func brokenLines(policy string) (string, []int) {
	n := strings.Count(strings.TrimRight(policy, "\n"), "\n") + 1
	text := strings.TrimRight(policy, "\n") + "\n\nx, role:base, users\np, role:base, users\np, \"role:base, users, read\n"
	return text, []int{n + 2, n + 3, n + 4}
}

// TestBrokenPolicyFileAtStart: grin starts with the last policy that
// loaded when policy.csv is broken, says so loudly naming the file and
// every error, and GET /policies reports them.
func TestBrokenPolicyFileAtStart(t *testing.T) {
	cfg := apptest.Config(t.TempDir())
	cfg.APIKey = testAPIKey
	first := apptest.StartWith(t, cfg)
	admin := apptest.Bearer(first.Login("admin", apptest.AdminPassword))
	good := getPolicy(t, first, admin)
	// The last good policy is the one in force, not the first ever.
	edited := good.Policy + "\np, perm:status:read, users, list\n"
	if r := first.Do("PUT", "/policies", documents{good.Model, edited}, admin...); r.Status != 200 {
		t.Fatalf("edit: %d %s", r.Status, r.Body)
	}
	first.Close()

	broken, lines := brokenLines(edited)
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "policy.csv"), []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	in := apptest.StartWith(t, cfg)
	admin = apptest.Bearer(in.Login("admin", apptest.AdminPassword))

	logs := in.Logs.String()
	if !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "policy files refused at start") || !strings.Contains(logs, "files=policy.csv") {
		t.Errorf("the start does not say loudly that policy.csv was refused:\n%s", logs)
	}
	for _, n := range lines {
		if want := "policy.csv line " + strconv.Itoa(n); !strings.Contains(logs, want) {
			t.Errorf("the log does not name %q:\n%s", want, logs)
		}
	}
	st := getPolicy(t, in, admin)
	if st.FileStatus != "refused" || st.Policy != edited {
		t.Errorf("GET /policies: status %q, last good in force %v", st.FileStatus, st.Policy == edited)
	}
	var got []int
	for _, e := range st.FileErrors {
		if e.File != "policy.csv" {
			t.Errorf("file error in %q, want policy.csv", e.File)
		}
		got = append(got, e.Line)
	}
	if len(got) != 3 || got[0] != lines[0] || got[1] != lines[1] || got[2] != lines[2] {
		t.Errorf("file_errors on lines %v, want %v: %+v", got, lines, st.FileErrors)
	}
	// The administrator can still do what administrators do, and the last
	// good policy's own rule holds.
	if r := in.Do("POST", "/users", map[string]any{"username": "carol", "password": "carol-password"}, admin...); r.Status != 200 {
		t.Errorf("admin creating a user: %d %s", r.Status, r.Body)
	}
	if r := in.Do("GET", "/users", nil, apptest.Bearer(in.Login("user", apptest.UserPassword))...); r.Status != 200 {
		t.Errorf("the last good policy's own rule is not in force: %d", r.Status)
	}
	// Fixing the file ends the refusal.
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "policy.csv"), []byte(good.Policy), 0o600); err != nil {
		t.Fatal(err)
	}
	if st := waitForFileStatus(t, in, admin, "in_force"); st.Policy != good.Policy {
		t.Error("the fixed file is not in force")
	}
}

// TestBrokenPolicyFileAtFirstStart: with no policy ever loaded there is no
// last good policy, and grin does not fall back to its defaults (which may
// grant more than the administrator's files meant to): it refuses to
// start, listing every error.
func TestBrokenPolicyFileAtFirstStart(t *testing.T) {
	dir := t.TempDir()
	// The default policy is what a first start would write; break it.
	defaults := t.TempDir()
	apptest.StartWith(t, apptest.Config(defaults)).Close()
	good, err := os.ReadFile(filepath.Join(defaults, "policy.csv"))
	if err != nil {
		t.Fatal(err)
	}
	broken, lines := brokenLines(string(good))
	if err := os.WriteFile(filepath.Join(dir, "policy.csv"), []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := app.New(ctx, apptest.Config(dir), slog.New(slog.NewTextHandler(&logbuf.Buffer{}, nil)))
	if err == nil {
		a.Close()
		t.Fatal("grin started with a broken policy.csv and no policy ever loaded")
	}
	if !strings.Contains(err.Error(), "no earlier policy") {
		t.Errorf("error %q should say there is nothing to fall back on", err)
	}
	for _, n := range lines {
		if want := "policy.csv line " + strconv.Itoa(n); !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q: %v", want, err)
		}
	}
}

// TestPutPolicyListsEveryProblem: a PUT with several broken lines is
// answered with one error per line, located at the line.
func TestPutPolicyListsEveryProblem(t *testing.T) {
	in := authRequired(t)
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	good := getPolicy(t, in, admin)
	broken, lines := brokenLines(good.Policy)
	for _, path := range []string{"/policies", "/policies?dry_run=true"} {
		r := in.Do("PUT", path, documents{good.Model, broken}, admin...)
		if r.Status != http.StatusUnprocessableEntity {
			t.Fatalf("PUT %s: %d %s", path, r.Status, r.Body)
		}
		var p problem
		r.JSON(t, &p)
		if len(p.Errors) != 3 {
			t.Fatalf("PUT %s: %d errors, want 3: %s", path, len(p.Errors), r.Body)
		}
		for i, n := range lines {
			if want := "body.policy[line " + strconv.Itoa(n) + "]"; p.Errors[i].Location != want || p.Errors[i].Message == "" {
				t.Errorf("PUT %s: error %d at %q (%q), want %s", path, i, p.Errors[i].Location, p.Errors[i].Message, want)
			}
		}
		if !strings.Contains(p.Detail, "3 problems") {
			t.Errorf("PUT %s: detail %q", path, p.Detail)
		}
	}
	// A broken model is located in body.model, every mistake of it.
	model := strings.Replace(good.Model, "&& objectMatch(r.obj", "&& objectMatches(r.obj", 1)
	model = strings.Replace(model, "m = actionMatch(r.act", "m = actionMatches(r.act", 1)
	r := in.Do("PUT", "/policies", documents{model, good.Policy}, admin...)
	var p problem
	r.JSON(t, &p)
	if r.Status != 422 || len(p.Errors) != 2 || !strings.HasPrefix(p.Errors[0].Location, "body.model[line ") {
		t.Errorf("broken model: %d %s", r.Status, r.Body)
	}
	if st := getPolicy(t, in, admin); st.Policy != good.Policy || st.Model != good.Model {
		t.Error("a refused PUT changed the policy")
	}
}
