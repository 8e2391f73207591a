package api_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/grin-ai/grin/platform/app/apptest"
)

// listed is a user as GET /users shows it, with the grin extensions.
type listed struct {
	ID        string     `json:"id"`
	Username  string     `json:"username"`
	CreatedAt time.Time  `json:"created_at"`
	LastLogin *time.Time `json:"last_login"`
}

func usernames(list []listed) string {
	var names []string
	for _, u := range list {
		names = append(names, u.Username)
	}
	return strings.Join(names, " ")
}

// An administrator of many users finds one by part of the name, sorts by
// name or last login, and pages through with the total in a header.
func TestUsersSearchSortAndPage(t *testing.T) {
	in := apptest.Start(t)
	for _, name := range []string{"Zoe", "alice", "bob", "alicia", "ma_x", "max"} {
		if r := in.Do("POST", "/users", map[string]any{"username": name, "password": "pw-" + name, "permissions": map[string]any{}}); r.Status != http.StatusOK {
			t.Fatalf("create %s: %d %s", name, r.Status, r.Body)
		}
	}
	// Two logins, in order: bob, then alice.
	in.Login("bob", "pw-bob")
	in.Login("alice", "pw-alice")

	for _, c := range []struct {
		query, want string
		total       int
	}{
		{"", "admin user Zoe alice bob alicia ma_x max", 8},
		{"sort=-created_at", "max ma_x alicia bob alice Zoe user admin", 8},
		{"sort=username", "admin alice alicia bob ma_x max user Zoe", 8},
		{"sort=-username", "Zoe user max ma_x bob alicia alice admin", 8},
		{"search=ALI", "alice alicia", 2},
		{"search=ali&sort=-username", "alicia alice", 2},
		{"search=" + url.QueryEscape("a_x"), "ma_x", 1}, // _ is a character, not a wildcard
		{"search=" + url.QueryEscape("%"), "", 0},
		{"search=nobody", "", 0},
		{"sort=username&skip=2&limit=3", "alicia bob ma_x", 8},
		{"sort=-last_login&limit=2", "alice bob", 8},
		{"sort=last_login", "bob alice admin user Zoe alicia ma_x max", 8},
	} {
		r := in.Do("GET", "/users?"+c.query, nil)
		var list []listed
		r.JSON(t, &list)
		if got := usernames(list); got != c.want {
			t.Errorf("GET /users?%s = %q, want %q", c.query, got, c.want)
		}
		if got := r.Header.Get("X-Total-Count"); got != fmt.Sprint(c.total) {
			t.Errorf("GET /users?%s: X-Total-Count %q, want %d", c.query, got, c.total)
		}
	}

	// A user's id finds them too, as the panel's copyable ids are pasted.
	var all []listed
	in.Do("GET", "/users?search=bob", nil).JSON(t, &all)
	var byID []listed
	in.Do("GET", "/users?search="+all[0].ID, nil).JSON(t, &byID)
	if usernames(byID) != "bob" {
		t.Errorf("search by bob's id found %q", usernames(byID))
	}

	// last_login is recorded at login and shown; null for who never did.
	in.Do("GET", "/users?search=bob", nil).JSON(t, &all)
	bob := all[0]
	if bob.LastLogin == nil || bob.LastLogin.Before(bob.CreatedAt) {
		t.Errorf("bob's last login %v (created %v)", bob.LastLogin, bob.CreatedAt)
	}
	var max listed
	in.Do("GET", "/users?search=max", nil).JSON(t, &[]*listed{&max})
	if max.LastLogin != nil {
		t.Errorf("max never logged in, last_login %v", max.LastLogin)
	}
	r := in.Do("GET", "/users/"+bob.ID, nil)
	if m := r.Map(t); m["last_login"] == nil || m["created_at"] == nil {
		t.Errorf("GET /users/{id} lacks created_at or last_login: %s", r.Body)
	}
	// A wrong password records nothing.
	before := *bob.LastLogin
	in.Do("POST", "/auth/token", map[string]string{"username": "bob", "password": "wrong"})
	in.Do("GET", "/users/"+bob.ID, nil).JSON(t, &bob)
	if !bob.LastLogin.Equal(before) {
		t.Errorf("a failed login moved bob's last login from %v to %v", before, bob.LastLogin)
	}

	// Bad parameters are refused in words.
	for _, q := range []string{"sort=password", "sort=name", "search=" + strings.Repeat("x", 129), "limit=0", "skip=-1"} {
		r := in.Do("GET", "/users?"+q, nil)
		if r.Status != http.StatusUnprocessableEntity || !strings.Contains(string(r.Body), "expected") {
			t.Errorf("GET /users?%s = %d %s, want 422 saying what is expected", q, r.Status, r.Body)
		}
	}
}
