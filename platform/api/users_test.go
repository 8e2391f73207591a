package api_test

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/grin-ai/grin/platform/app/apptest"
)

var uuid4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

type user struct {
	ID          string              `json:"id"`
	Username    string              `json:"username"`
	Permissions map[string][]string `json:"permissions"`
	Roles       []string            `json:"roles"`
}

func TestDefaultUsers(t *testing.T) {
	in := apptest.Start(t)
	var list []user
	in.Do("GET", "/users", nil).JSON(t, &list)
	if len(list) != 2 || list[0].Username != "admin" || list[1].Username != "user" {
		t.Fatalf("default users = %+v, want admin then user", list)
	}
	if got := len(list[0].Permissions); got != 11 {
		t.Errorf("admin has %d resources, want all 11: %v", got, list[0].Permissions)
	}
	if !slices.Contains(list[0].Roles, "role:admin") {
		t.Errorf("admin roles = %v, want role:admin", list[0].Roles)
	}
	base := map[string][]string{"STATUS": {"READ"}, "MEMORY": {"LIST", "READ"}, "CONVERSATION": {"WRITE", "EDIT", "LIST", "READ", "DELETE"}, "STATIC": {"READ"}}
	if fmt.Sprint(list[1].Permissions) != fmt.Sprint(base) {
		t.Errorf("user permissions = %v, want the Cat's base %v", list[1].Permissions, base)
	}
	for _, u := range list {
		if !uuid4.MatchString(u.ID) {
			t.Errorf("id %q is not a uuid4", u.ID)
		}
	}
	// Passwords come from the configuration, not from the username.
	if r := in.Do("POST", "/auth/token", map[string]string{"username": "admin", "password": "admin"}); r.Status != http.StatusForbidden {
		t.Errorf("admin/admin login = %d, want 403", r.Status)
	}
	in.Login("admin", apptest.AdminPassword)
	in.Login("user", apptest.UserPassword)
}

func TestDefaultUserWithoutPasswordCannotLogIn(t *testing.T) {
	cfg := apptest.Config(t.TempDir())
	cfg.AdminPassword, cfg.UserPassword = "", ""
	in := apptest.StartWith(t, cfg)
	if in.GeneratedAdminPassword == "" || len(in.GeneratedAdminPassword) < 16 {
		t.Fatalf("generated admin password %q, want a long random one", in.GeneratedAdminPassword)
	}
	in.Login("admin", in.GeneratedAdminPassword)
	for _, pw := range []string{"", "user", "password"} {
		if r := in.Do("POST", "/auth/token", map[string]string{"username": "user", "password": pw}); r.Status == http.StatusOK {
			t.Errorf("user logged in with %q; the default user must have no password", pw)
		}
	}
	if strings.Contains(in.Logs.String(), in.GeneratedAdminPassword) {
		t.Error("the generated admin password was logged")
	}
}

func TestUsersCRUD(t *testing.T) {
	in := apptest.Start(t)

	// Create: shape, uuid4, default permissions, no password.
	r := in.Do("POST", "/users", map[string]any{"username": "alice", "password": "wonderland"})
	if r.Status != http.StatusOK {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	if strings.Contains(string(r.Body), "wonderland") || strings.Contains(string(r.Body), "password") {
		t.Errorf("create answer shows the password: %s", r.Body)
	}
	var alice user
	r.JSON(t, &alice)
	if !uuid4.MatchString(alice.ID) || alice.Username != "alice" {
		t.Fatalf("created %+v", alice)
	}
	if got := fmt.Sprint(alice.Permissions["MEMORY"]); got != "[LIST READ]" {
		t.Errorf("default permissions MEMORY = %s, want the base [LIST READ]", got)
	}

	// Given permissions are kept, in the Cat's order, without duplicates.
	r = in.Do("POST", "/users/", map[string]any{"username": "bob", "password": "builder", "permissions": map[string][]string{"USERS": {"READ", "LIST", "READ"}}})
	var bob user
	r.JSON(t, &bob)
	if fmt.Sprint(bob.Permissions) != "map[USERS:[LIST READ]]" {
		t.Errorf("bob permissions = %v", bob.Permissions)
	}

	// Refusals, each with a sentence and no secret echoed.
	for _, tc := range []struct {
		name   string
		body   any
		status int
		says   string
	}{
		{"duplicate username", map[string]any{"username": "alice", "password": "another"}, 409, "alice"},
		{"short username", map[string]any{"username": "a", "password": "secret1"}, 422, "username"},
		{"short password", map[string]any{"username": "carol", "password": "abc"}, 422, "password"},
		{"long password", map[string]any{"username": "carol", "password": strings.Repeat("x", 73)}, 422, "password"},
		{"unknown field", map[string]any{"username": "carol", "password": "secret1", "admin": true}, 422, "admin"},
		{"unknown resource", map[string]any{"username": "carol", "password": "secret1", "permissions": map[string][]string{"KITCHEN": {"READ"}}}, 422, "KITCHEN"},
		{"unknown permission", map[string]any{"username": "carol", "password": "secret1", "permissions": map[string][]string{"USERS": {"FLY"}}}, 422, "permissions.USERS"},
		{"no username", map[string]any{"password": "secret1"}, 422, "username"},
		{"not JSON", "{username:", 400, ""},
		{"wrong type", map[string]any{"username": 42, "password": "secret1"}, 422, "username"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := in.Do("POST", "/users", tc.body)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			if !strings.Contains(string(r.Body), tc.says) {
				t.Errorf("answer %s does not mention %q", r.Body, tc.says)
			}
			if strings.Contains(string(r.Body), "secret1") || strings.Contains(string(r.Body), "xxxxxxxx") {
				t.Errorf("answer echoes the password: %s", r.Body)
			}
		})
	}

	// List: creation order, skip and limit.
	var list []user
	in.Do("GET", "/users", nil).JSON(t, &list)
	var names []string
	for _, u := range list {
		names = append(names, u.Username)
	}
	if fmt.Sprint(names) != "[admin user alice bob]" {
		t.Errorf("list = %v, want creation order", names)
	}
	in.Do("GET", "/users?skip=1&limit=2", nil).JSON(t, &list)
	if len(list) != 2 || list[0].Username != "user" || list[1].Username != "alice" {
		t.Errorf("skip=1&limit=2 = %+v", list)
	}
	if r := in.Do("GET", "/users?limit=0", nil); r.Status != 422 {
		t.Errorf("limit=0: %d, want 422", r.Status)
	}
	if r := in.Do("GET", "/users?skip=-1", nil); r.Status != 422 {
		t.Errorf("skip=-1: %d, want 422", r.Status)
	}

	// Read.
	var got user
	in.Do("GET", "/users/"+alice.ID, nil).JSON(t, &got)
	if got.Username != "alice" {
		t.Errorf("get = %+v", got)
	}
	r = in.Do("GET", "/users/no-such-id", nil)
	if r.Status != 404 || r.Detail() != "User not found" {
		t.Errorf("get missing = %d %q, want 404 \"User not found\"", r.Status, r.Detail())
	}

	// Update: only given fields change.
	r = in.Do("PUT", "/users/"+alice.ID, map[string]any{"username": "alice2"})
	got = user{}
	r.JSON(t, &got)
	if got.Username != "alice2" || fmt.Sprint(got.Permissions) != fmt.Sprint(alice.Permissions) {
		t.Errorf("after renaming: %+v (permissions must stay %v)", got, alice.Permissions)
	}
	in.Login("alice2", "wonderland") // password unchanged
	in.Do("PUT", "/users/"+alice.ID, map[string]any{"password": "looking-glass"})
	in.Login("alice2", "looking-glass")
	if r := in.Do("POST", "/auth/token", map[string]string{"username": "alice2", "password": "wonderland"}); r.Status != 403 {
		t.Errorf("old password still works: %d", r.Status)
	}
	// Permissions are replaced whole.
	got = user{}
	in.Do("PUT", "/users/"+alice.ID, map[string]any{"permissions": map[string][]string{"PLUGINS": {"READ"}}}).JSON(t, &got)
	if fmt.Sprint(got.Permissions) != "map[PLUGINS:[READ]]" {
		t.Errorf("after replacing permissions: %v", got.Permissions)
	}
	got = user{}
	in.Do("PUT", "/users/"+alice.ID, map[string]any{"permissions": map[string][]string{}}).JSON(t, &got)
	if len(got.Permissions) != 0 {
		t.Errorf("empty permissions must leave none, got %v", got.Permissions)
	}
	for _, tc := range []struct {
		name   string
		id     string
		body   any
		status int
	}{
		{"missing user", "nope", map[string]any{"username": "zed"}, 404},
		{"taken username", alice.ID, map[string]any{"username": "bob"}, 409},
		{"short password", alice.ID, map[string]any{"password": "1"}, 422},
		{"unknown field", alice.ID, map[string]any{"id": "x"}, 422},
	} {
		if r := in.Do("PUT", "/users/"+tc.id, tc.body); r.Status != tc.status {
			t.Errorf("update %s: %d, want %d: %s", tc.name, r.Status, tc.status, r.Body)
		}
	}

	// Delete answers the deleted user, then it is gone.
	r = in.Do("DELETE", "/users/"+alice.ID+"/", nil)
	r.JSON(t, &got)
	if r.Status != 200 || got.ID != alice.ID {
		t.Errorf("delete = %d %s", r.Status, r.Body)
	}
	if r := in.Do("DELETE", "/users/"+alice.ID, nil); r.Status != 404 {
		t.Errorf("second delete = %d, want 404", r.Status)
	}
	if r := in.Do("POST", "/auth/token", map[string]string{"username": "alice2", "password": "looking-glass"}); r.Status != 403 {
		t.Errorf("deleted user logs in: %d", r.Status)
	}
}

// TestPermissionMatrix: a base user gets 403 on every /users call, an
// admin does not; and permission edits take effect on the next request.
func TestPermissionMatrix(t *testing.T) {
	in := apptest.Start(t)
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	userTok := apptest.Bearer(in.Login("user", apptest.UserPassword))
	var alice user
	in.Do("POST", "/users", map[string]any{"username": "alice", "password": "wonderland"}, admin...).JSON(t, &alice)

	calls := []struct{ method, path string }{
		{"GET", "/users"},
		{"GET", "/users/" + alice.ID},
		{"POST", "/users"},
		{"PUT", "/users/" + alice.ID},
		{"DELETE", "/users/" + alice.ID},
	}
	bodies := map[string]any{"POST": map[string]any{"username": "x" + alice.ID[:4], "password": "secret1"}, "PUT": map[string]any{"username": "alice"}}
	for _, c := range calls {
		t.Run("base "+c.method+" "+c.path, func(t *testing.T) {
			r := in.Do(c.method, c.path, bodies[c.method], userTok...)
			if r.Status != http.StatusForbidden {
				t.Fatalf("base user: %d, want 403: %s", r.Status, r.Body)
			}
			if !strings.Contains(r.Detail(), "USERS") {
				t.Errorf("the refusal should say which permission is missing: %q", r.Detail())
			}
		})
	}
	for _, c := range calls[:4] {
		if r := in.Do(c.method, c.path, bodies[c.method], admin...); r.Status == http.StatusForbidden {
			t.Errorf("admin %s %s: 403", c.method, c.path)
		}
	}
	// The base user may read the status.
	if r := in.Do("GET", "/", nil, userTok...); r.Status != 200 {
		t.Errorf("base user GET /: %d", r.Status)
	}
	// Granting USERS LIST takes effect at once, on the same token:
	// permissions come from the store, not from the token.
	var u user
	in.Do("GET", "/users?limit=10", nil, admin...).JSON(t, &[]user{})
	var list []user
	in.Do("GET", "/users", nil, admin...).JSON(t, &list)
	for _, x := range list {
		if x.Username == "user" {
			u = x
		}
	}
	perms := u.Permissions
	perms["USERS"] = []string{"LIST"}
	in.Do("PUT", "/users/"+u.ID, map[string]any{"permissions": perms}, admin...)
	if r := in.Do("GET", "/users", nil, userTok...); r.Status != 200 {
		t.Errorf("after granting USERS LIST: %d %s", r.Status, r.Body)
	}
	if r := in.Do("GET", "/users/"+alice.ID, nil, userTok...); r.Status != 403 {
		t.Errorf("USERS LIST must not grant READ: %d", r.Status)
	}
	delete(perms, "USERS")
	in.Do("PUT", "/users/"+u.ID, map[string]any{"permissions": perms}, admin...)
	if r := in.Do("GET", "/users", nil, userTok...); r.Status != 403 {
		t.Errorf("after revoking USERS LIST: %d", r.Status)
	}
}

// TestUsersEditorCannotTakeOverAdmins: USERS EDIT and DELETE do not reach
// a user holding role:admin.
func TestUsersEditorCannotTakeOverAdmins(t *testing.T) {
	in := authRequired(t)
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	var list []user
	in.Do("GET", "/users", nil, admin...).JSON(t, &list)
	adminID := list[0].ID
	in.Do("POST", "/users", map[string]any{"username": "manager", "password": "manager-pw",
		"permissions": map[string][]string{"USERS": {"READ", "LIST", "EDIT", "DELETE", "WRITE"}, "AUTH_HANDLER": {"EDIT", "READ", "LIST"}}}, admin...)
	m := apptest.Bearer(in.Login("manager", "manager-pw"))
	if r := in.Do("PUT", "/users/"+adminID, map[string]any{"password": "taken-over"}, m...); r.Status != 403 {
		t.Errorf("manager resets the admin's password: %d", r.Status)
	}
	if r := in.Do("DELETE", "/users/"+adminID, nil, m...); r.Status != 403 {
		t.Errorf("manager deletes the admin: %d", r.Status)
	}
	if r := in.Do("PUT", "/users/"+list[1].ID, map[string]any{"username": "plain-user"}, m...); r.Status != 200 {
		t.Errorf("manager edits an ordinary user: %d %s", r.Status, r.Body)
	}
	if r := in.Do("PUT", "/auth_handler/settings/CoreOnlyAuthConfig", map[string]any{}, m...); r.Status != 403 {
		t.Errorf("manager changes the auth handler: %d", r.Status)
	}
	if r := in.Do("PUT", "/users/"+adminID, map[string]any{"username": "root"}, admin...); r.Status != 200 {
		t.Errorf("the admin edits themselves: %d", r.Status)
	}
}
