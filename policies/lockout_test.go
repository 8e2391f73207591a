package policies

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grin-ai/grin/platform/database/databasetest"
)

// fakeUsers is a Directory of ids whose usernames are the ids.
type fakeUsers []string

func (f fakeUsers) EachUser(_ context.Context, fn func(id, username string) bool) error {
	for _, id := range f {
		if !fn(id, id) {
			return nil
		}
	}
	return nil
}

func (f fakeUsers) Username(_ context.Context, id string) (string, bool, error) {
	for _, u := range f {
		if u == id {
			return u, true, nil
		}
	}
	return "", false, nil
}

func (f fakeUsers) UserID(ctx context.Context, username string) (string, bool, error) {
	return f.Username(ctx, username)
}

// openWithUsers opens an enforcer whose lockout check knows users.
func openWithUsers(t *testing.T, users fakeUsers) (*Enforcer, string) {
	t.Helper()
	dir, db := databasetest.SQLite(t)
	return reopen(t, dir, db, nil, WithUsers(users)), dir
}

// matcherModel is grin's model with another matcher.
func matcherModel(m string) string {
	return defaultModel[:strings.Index(defaultModel, "m = ")] + "m = " + m + "\n"
}

func TestLockoutCheck(t *testing.T) {
	ctx := context.Background()
	e, dir := openWithUsers(t, fakeUsers{"u-base", "u-admin"})
	e.SetPermissions(ctx, "u-base", BaseDict())
	e.Grant(ctx, "u-admin", "role:admin")
	good := e.Documents()
	for _, tc := range []struct {
		name    string
		docs    Documents
		refused bool
	}{
		{"empty policy", Documents{good.Model, ""}, true},
		{"no admin rule", Documents{good.Model, strings.Replace(good.Policy, "p, role:admin, *, *", "", 1)}, true},
		{"admin may only read the policy", Documents{good.Model, strings.Replace(good.Policy, "p, role:admin, *, *", "p, role:admin, *, read", 1)}, true},
		{"only credentials may edit", Documents{good.Model, "p, credential:api_key, *, *\np, credential:anonymous, policies, edit\n"}, true},
		{"a role nobody holds", Documents{good.Model, "p, role:owner, *, *\n"}, true},
		{"admins keep the policy only", Documents{good.Model, "p, role:admin, policies, *\n"}, false},
		{"another user becomes the editor", Documents{good.Model, "p, u-base, policies, edit\n"}, false},
		{"through a Cat permission role", Documents{good.Model, "p, perm:{object}:{action}, *, *\ng, u-base, perm:policies:edit\n"}, false},
		// A matcher that does not go through roles: only asking every
		// user finds u-base.
		{"a matcher naming the user", Documents{matcherModel(`r.sub == "u-base"`), ""}, false},
		{"a matcher naming nobody", Documents{matcherModel(`r.sub == "u-gone"`), ""}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, op := range []struct {
				name string
				do   func(context.Context, Documents, ...Keep) error
			}{{"validate", e.Validate}, {"update", e.Update}} {
				err := op.do(ctx, tc.docs)
				if tc.refused != errors.Is(err, ErrLockout) {
					t.Fatalf("%s: err = %v, refused want %v", op.name, err, tc.refused)
				}
				if tc.refused && !strings.Contains(err.Error(), "u-admin") {
					t.Errorf("%s: %v does not name the administrator who would lose the policy", op.name, err)
				}
				if !tc.refused && op.name == "update" {
					if err := e.Update(ctx, good); err != nil { // back, for the next case
						t.Fatal(err)
					}
				}
			}
			if e.Documents() != good {
				t.Error("the policy in force changed")
			}
			if b, _ := os.ReadFile(filepath.Join(dir, PolicyFile)); string(b) != good.Policy {
				t.Error("policy.csv changed")
			}
		})
	}
}

// TestLockoutCheckNeedsSomeoneToProtect: when no internal user may edit the
// policy already (administrators come from an identity provider, or there
// are no users yet), the check lets edits through instead of freezing the
// policy.
func TestLockoutCheckNeedsSomeoneToProtect(t *testing.T) {
	ctx := context.Background()
	e, _ := openWithUsers(t, fakeUsers{"u-base"})
	e.SetPermissions(ctx, "u-base", BaseDict())
	if err := e.Update(ctx, Documents{e.Documents().Model, "p, role:admin, *, *\n"}); err != nil {
		t.Errorf("an edit when no user could edit before: %v", err)
	}
	e, _ = openWithUsers(t, nil)
	if err := e.Update(ctx, Documents{e.Documents().Model, ""}); err != nil {
		t.Errorf("an edit with no users: %v", err)
	}
}

// TestMissingFileComesFromTheLastGoodPolicy: a policy file deleted while
// grin was down is written back from the last good policy, not from the
// defaults, which may grant more.
func TestMissingFileComesFromTheLastGoodPolicy(t *testing.T) {
	ctx := context.Background()
	dir, db := databasetest.SQLite(t)
	e := reopen(t, dir, db, nil)
	strict := strings.Replace(e.Documents().Policy, "g, credential:api_key, role:admin", "g, credential:api_key, role:base", 1)
	if err := e.Update(ctx, Documents{e.Documents().Model, strict}); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, PolicyFile))
	e = reopen(t, dir, db, nil)
	if b, _ := os.ReadFile(filepath.Join(dir, PolicyFile)); string(b) != strict {
		t.Error("the missing policy.csv was not restored from the last good policy")
	}
	if allowed(t, e, "credential:api_key", "users", "delete", "x") {
		t.Error("the defaults came back with the deleted file")
	}
}

// TestEveryProblemAtOnce: a model and policy with several mistakes are
// refused with all of them, each placed on its line.
func TestEveryProblemAtOnce(t *testing.T) {
	e, _, _ := open(t)
	good := e.Documents()
	model := strings.Replace(good.Model, "r = sub, obj, act, self", "r = sub, obj, act", 1)
	model = strings.Replace(model, "&& objectMatch(r.obj", "&& objectMatches(r.obj", 1)
	model = strings.Replace(model, "m = actionMatch(", "m = actionMatches(", 1)
	policy := "p, role:admin, *, *\nq, a, b, c\np, a, b\n\ng, a,\n"
	err := e.Update(context.Background(), Documents{model, policy})
	var inv *InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("err = %v", err)
	}
	var got []string
	for _, p := range inv.Problems {
		got = append(got, fmt.Sprintf("%s:%d", p.File, p.Line))
	}
	lineOf := func(text, s string) int {
		return strings.Count(text[:strings.Index(text, s)], "\n") + 1
	}
	want := []string{
		fmt.Sprintf("model.conf:%d", lineOf(model, "r = sub")),
		fmt.Sprintf("model.conf:%d", lineOf(model, "m = ")), // both calls are on the matcher line
		fmt.Sprintf("model.conf:%d", lineOf(model, "m = ")),
		"policy.csv:2", "policy.csv:3", "policy.csv:5",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("problems at %v, want %v: %v", got, want, err)
	}
}

// TestLockoutAtStart: a policy.csv emptied while grin was down is refused
// at the next start like a broken one, and the last good policy serves.
func TestLockoutAtStart(t *testing.T) {
	ctx := context.Background()
	dir, db := databasetest.SQLite(t)
	users := fakeUsers{"u-admin"}
	e := reopen(t, dir, db, nil, WithUsers(users))
	e.Grant(ctx, "u-admin", "role:admin")
	good := e.Documents()
	os.WriteFile(filepath.Join(dir, PolicyFile), nil, 0o600)
	e, err := Open(ctx, dir, db, nil, WithUsers(users))
	if err != nil {
		t.Fatalf("start with an emptied policy.csv: %v", err)
	}
	st := e.FileStatus()
	if !st.Refused || len(st.Problems) != 1 || !strings.Contains(st.Problems[0].Message, "no user able to edit policies") {
		t.Errorf("file status = %+v", st)
	}
	if e.Documents() != good || !allowed(t, e, "u-admin", PolicyObject, "edit", "u-admin") {
		t.Error("the last good policy is not in force")
	}
}
