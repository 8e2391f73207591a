package api_test

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/grin-ai/grin/platform/app/apptest"
)

// TestUsersWithTheSameDictionaryChangeAlone: users granted the same
// permission dictionary share one list of roles in the policy in force
// (loaded so at a restart), and a change of one user's permissions, or
// their deletion, reaches that user alone: the others keep exactly what
// they had, in what GET /users/{id} says and in what they may do.
func TestUsersWithTheSameDictionaryChangeAlone(t *testing.T) {
	cfg := apptest.Config(t.TempDir())
	cfg.APIKey = testAPIKey
	in := apptest.StartWith(t, cfg)
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	same := map[string][]string{"USERS": {"LIST"}, "MEMORY": {"READ"}}
	ids := map[string]string{}
	for _, name := range []string{"alice", "bob", "carol"} {
		var u user
		in.Do("POST", "/users", map[string]any{"username": name, "password": "password-" + name, "permissions": same}, admin...).JSON(t, &u)
		if u.ID == "" {
			t.Fatalf("%s was not created", name)
		}
		ids[name] = u.ID
	}
	// A restart: the grants are read back, the three sharing one list.
	in.Close()
	in = apptest.StartWith(t, cfg)
	admin = apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	tok := map[string][]string{}
	for name := range ids {
		tok[name] = apptest.Bearer(in.Login(name, "password-"+name))
	}
	status := func(name, path string) int {
		t.Helper()
		return in.Do("GET", path, nil, tok[name]...).Status
	}
	perms := func(name string) map[string][]string {
		t.Helper()
		var u user
		in.Do("GET", "/users/"+ids[name], nil, admin...).JSON(t, &u)
		return u.Permissions
	}
	must := func(method, path string, body any) {
		t.Helper()
		if r := in.Do(method, path, body, admin...); r.Status != http.StatusOK {
			t.Fatalf("%s %s: %d %s", method, path, r.Status, r.Body)
		}
	}
	for name := range ids {
		if got := status(name, "/users"); got != http.StatusOK {
			t.Fatalf("%s, granted USERS LIST, lists users: %d", name, got)
		}
	}

	// alice loses USERS LIST, bob gains USERS READ; carol keeps hers.
	must("PUT", "/users/"+ids["alice"], map[string]any{"permissions": map[string][]string{"MEMORY": {"READ"}}})
	must("PUT", "/users/"+ids["bob"], map[string]any{"permissions": map[string][]string{"USERS": {"LIST", "READ"}, "MEMORY": {"READ"}}})
	checks := []struct {
		who, path string
		want      int
	}{
		{"alice", "/users", http.StatusForbidden},
		{"bob", "/users", http.StatusOK},
		{"bob", "/users/" + ids["carol"], http.StatusOK},
		{"carol", "/users", http.StatusOK},
		{"carol", "/users/" + ids["bob"], http.StatusForbidden},
	}
	for _, c := range checks {
		if got := status(c.who, c.path); got != c.want {
			t.Errorf("%s GET %s: %d, want %d", c.who, c.path, got, c.want)
		}
	}
	if got := perms("carol"); !reflect.DeepEqual(got, same) {
		t.Errorf("carol's permissions after the others changed: %v, want %v", got, same)
	}

	// bob goes; carol keeps what she had.
	must("DELETE", "/users/"+ids["bob"], nil)
	if got := status("carol", "/users"); got != http.StatusOK {
		t.Errorf("carol lists users after bob was deleted: %d", got)
	}
	if got := perms("carol"); !reflect.DeepEqual(got, same) {
		t.Errorf("carol's permissions after bob was deleted: %v, want %v", got, same)
	}
}
