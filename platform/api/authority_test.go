package api_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/grin-ai/grin/platform/app/apptest"
)

// everything is the Cat's full permission dictionary.
var everything = map[string][]string{
	"STATUS": {"READ"}, "MEMORY": {"READ", "LIST", "WRITE", "EDIT", "DELETE"}, "CONVERSATION": {"READ", "LIST", "WRITE", "EDIT", "DELETE"},
	"SETTINGS": {"READ", "LIST", "WRITE", "EDIT", "DELETE"}, "LLM": {"READ", "LIST", "WRITE", "EDIT", "DELETE"},
	"EMBEDDER": {"READ", "LIST", "WRITE", "EDIT", "DELETE"}, "AUTH_HANDLER": {"READ", "LIST", "WRITE", "EDIT", "DELETE"},
	"USERS": {"READ", "LIST", "WRITE", "EDIT", "DELETE"}, "UPLOAD": {"READ", "LIST", "WRITE", "EDIT", "DELETE"},
	"PLUGINS": {"READ", "LIST", "WRITE", "EDIT", "DELETE"}, "STATIC": {"READ", "LIST", "WRITE", "EDIT", "DELETE"},
}

func userNamed(t *testing.T, in *apptest.Instance, name string, headers ...string) user {
	t.Helper()
	var list []user
	in.Do("GET", "/users", nil, headers...).JSON(t, &list)
	for _, u := range list {
		if u.Username == name {
			return u
		}
	}
	t.Fatalf("no user %q in %+v", name, list)
	return user{}
}

// TestEscalationChainIsClosed: a user who may edit users cannot raise
// herself or anyone else above what she holds, cannot hand out USERS EDIT
// or PLUGINS WRITE, cannot take over or strip a user who holds more, and so
// never gets to upload the plugin that would read every user's messages.
func TestEscalationChainIsClosed(t *testing.T) {
	in := authRequired(t)
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	var mallory, pete user
	in.Do("POST", "/users", map[string]any{"username": "mallory", "password": "mallory-pw",
		"permissions": map[string][]string{"USERS": {"READ", "LIST", "WRITE", "EDIT"}, "STATUS": {"READ"}}}, admin...).JSON(t, &mallory)
	in.Do("POST", "/users", map[string]any{"username": "pete", "password": "pete-pw",
		"permissions": map[string][]string{"PLUGINS": {"WRITE", "LIST"}, "STATUS": {"READ"}}}, admin...).JSON(t, &pete)
	// A right the policy gives otherwise than by the Cat dictionary counts
	// as held.
	var docs documents
	in.Do("GET", "/policies", nil, admin...).JSON(t, &docs)
	docs.Policy += "\np, " + mallory.ID + ", settings, read\n"
	if r := in.Do("PUT", "/policies", docs, admin...); r.Status != 200 {
		t.Fatalf("policy edit: %d %s", r.Status, r.Body)
	}
	m := apptest.Bearer(in.Login("mallory", "mallory-pw"))
	plain := userNamed(t, in, "user", admin...)

	for _, tc := range []struct {
		name   string
		method string
		path   string
		body   any
		status int
		says   []string
	}{
		{"every permission for herself", "PUT", "/users/" + mallory.ID, map[string]any{"permissions": everything}, 403,
			[]string{"you cannot grant PLUGINS WRITE, PLUGINS EDIT: only a policy administrator can", "SETTINGS EDIT", "USERS DELETE", "you do not hold them yourself"}},
		{"a new user with PLUGINS WRITE", "POST", "/users", map[string]any{"username": "eve", "password": "eve-pw1",
			"permissions": map[string][]string{"PLUGINS": {"WRITE"}}}, 403,
			[]string{"you cannot grant PLUGINS WRITE: only a policy administrator can"}},
		{"a new user with USERS EDIT, which she holds", "POST", "/users", map[string]any{"username": "eve", "password": "eve-pw1",
			"permissions": map[string][]string{"USERS": {"EDIT"}}}, 403,
			[]string{"you cannot grant USERS EDIT: only a policy administrator can"}},
		{"a new user with PLUGINS EDIT, which reads plugins' logs", "POST", "/users", map[string]any{"username": "eve", "password": "eve-pw1",
			"permissions": map[string][]string{"PLUGINS": {"EDIT"}}}, 403,
			[]string{"you cannot grant PLUGINS EDIT: only a policy administrator can"}},
		{"herself USERS DELETE and SETTINGS EDIT besides what she has", "PUT", "/users/" + mallory.ID, map[string]any{"permissions": map[string][]string{
			"USERS": {"READ", "LIST", "WRITE", "EDIT", "DELETE"}, "STATUS": {"READ"}, "SETTINGS": {"EDIT"}}}, 403,
			[]string{"you cannot grant SETTINGS EDIT, USERS DELETE: you do not hold them yourself"}},
		{"a new user with the base permissions she lacks", "POST", "/users", map[string]any{"username": "eve", "password": "eve-pw1"}, 403,
			[]string{"CONVERSATION WRITE", "you do not hold them yourself", "without \"permissions\" a new user gets the Cat's base permissions"}},
		{"take the base permissions from user", "PUT", "/users/" + plain.ID, map[string]any{"permissions": map[string][]string{}}, 403,
			[]string{"you cannot take", "CONVERSATION DELETE", "from user"}},
		{"reset the password of a plugin writer", "PUT", "/users/" + pete.ID, map[string]any{"password": "mine-now"}, 403,
			[]string{"you cannot change the password of pete: they hold PLUGINS WRITE, PLUGINS LIST, which you do not"}},
		{"delete a plugin writer", "DELETE", "/users/" + pete.ID, nil, 403, []string{"USERS DELETE"}},
		{"reset the admin's password", "PUT", "/users/" + userNamed(t, in, "admin", admin...).ID, map[string]any{"password": "mine-now"}, 403,
			[]string{"only a policy administrator"}},
		{"a new user with what she holds", "POST", "/users", map[string]any{"username": "helper", "password": "helper-pw",
			"permissions": map[string][]string{"USERS": {"LIST", "READ"}, "STATUS": {"READ"}, "SETTINGS": {"READ"}}}, 200, nil},
		{"herself less", "PUT", "/users/" + mallory.ID, map[string]any{"permissions": map[string][]string{
			"USERS": {"READ", "LIST", "WRITE", "EDIT"}}}, 200, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := in.Do(tc.method, tc.path, tc.body, m...)
			if r.Status != tc.status {
				t.Fatalf("%d, want %d: %s", r.Status, tc.status, r.Body)
			}
			for _, s := range tc.says {
				if !strings.Contains(r.Detail(), s) {
					t.Errorf("answer %q does not say %q", r.Detail(), s)
				}
			}
		})
	}
	// Deleting needs the deleted user's permissions too, or USERS DELETE
	// would strip anyone.
	in.Do("POST", "/users", map[string]any{"username": "dora", "password": "dora-pw",
		"permissions": map[string][]string{"USERS": {"DELETE", "LIST", "READ"}}}, admin...)
	d := apptest.Bearer(in.Login("dora", "dora-pw"))
	if r := in.Do("DELETE", "/users/"+pete.ID, nil, d...); r.Status != http.StatusForbidden ||
		!strings.Contains(r.Detail(), "you cannot delete pete: they hold STATUS READ, PLUGINS WRITE, PLUGINS LIST, which you do not") {
		t.Errorf("dora deletes pete: %d %s", r.Status, r.Body)
	}
	// Nothing refused happened.
	if got := userNamed(t, in, "pete", admin...); len(got.Permissions["PLUGINS"]) != 2 {
		t.Errorf("pete after the refusals: %+v", got)
	}
	in.Login("pete", "pete-pw")
	if got := userNamed(t, in, "user", admin...); len(got.Permissions["CONVERSATION"]) != 5 {
		t.Errorf("user after the refusals: %+v", got)
	}
	var list []user
	in.Do("GET", "/users", nil, admin...).JSON(t, &list)
	if slices.ContainsFunc(list, func(u user) bool { return u.Username == "eve" }) {
		t.Error("eve was created")
	}
	if got := userNamed(t, in, "mallory", admin...); len(got.Permissions["PLUGINS"]) != 0 || len(got.Permissions["USERS"]) != 4 {
		t.Errorf("mallory holds %v", got.Permissions)
	}

	// The end of the chain: mallory still cannot upload a plugin, which
	// an administrator can.
	manifest, err := os.ReadFile("../../wasmhooks/examples/author/manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	archive := zipPlugin(t, string(manifest), buildWasm(t, "../../wasmhooks/examples/author"))
	if r := uploadPlugin(t, in, archive, m...); r.Status != http.StatusForbidden || !strings.Contains(r.Detail(), "PLUGINS WRITE") {
		t.Errorf("mallory uploads a plugin: %d %s", r.Status, r.Body)
	}
	if r := uploadPlugin(t, in, archive, admin...); r.Status != 200 {
		t.Errorf("the admin uploads the same plugin: %d %s", r.Status, r.Body)
	}

	// Credentials with full permissions keep the Cat's workflow: the API
	// key grants anything.
	key := []string{"Authorization", "Bearer " + testAPIKey}
	if r := in.Do("PUT", "/users/"+mallory.ID, map[string]any{"permissions": everything}, key...); r.Status != 200 {
		t.Errorf("the API key grants everything: %d %s", r.Status, r.Body)
	}
}

// TestLastAdministratorStays: the last user who may edit the policy can be
// neither deleted nor demoted, by the users API or by the policy API.
func TestLastAdministratorStays(t *testing.T) {
	in := authRequired(t)
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	adminUser := userNamed(t, in, "admin", admin...)
	var original documents
	in.Do("GET", "/policies", nil, admin...).JSON(t, &original)

	// Demoting every administrator through the policy: the policy is what
	// is wrong, so 422, as for any policy that would not do.
	demoted := documents{original.Model, strings.Replace(original.Policy, "p, role:admin, *, *", "p, role:admin, users, *", 1)}
	for _, path := range []string{"/policies?dry_run=true", "/policies"} {
		r := in.Do("PUT", path, demoted, admin...)
		if r.Status != http.StatusUnprocessableEntity || !strings.Contains(r.Detail(), "no user able to edit") {
			t.Errorf("PUT %s without administrators: %d %s", path, r.Status, r.Body)
		}
	}
	var now documents
	in.Do("GET", "/policies", nil, admin...).JSON(t, &now)
	if now.Policy != original.Policy {
		t.Error("a refused policy was put in force")
	}
	// Deleting the only one, even by itself or the API key.
	for _, h := range [][]string{admin, {"Authorization", "Bearer " + testAPIKey}} {
		if r := in.Do("DELETE", "/users/"+adminUser.ID, nil, h...); r.Status != http.StatusConflict || !strings.Contains(r.Detail(), "last policy administrator") {
			t.Errorf("deleting the last administrator: %d %s", r.Status, r.Body)
		}
	}

	// With a second administrator, whose right comes from a permission
	// the policy ties to editing it, the first may go...
	withPerm := documents{original.Model, original.Policy + "\np, perm:embedder:delete, policies, edit\n"}
	if r := in.Do("PUT", "/policies", withPerm, admin...); r.Status != 200 {
		t.Fatalf("policy edit: %d %s", r.Status, r.Body)
	}
	var carol user
	in.Do("POST", "/users", map[string]any{"username": "carol", "password": "carol-pw",
		"permissions": map[string][]string{"EMBEDDER": {"DELETE"}, "USERS": {"READ", "LIST", "EDIT", "DELETE"}}}, admin...).JSON(t, &carol)
	if r := in.Do("DELETE", "/users/"+adminUser.ID, nil, admin...); r.Status != 200 {
		t.Fatalf("deleting one of two administrators: %d %s", r.Status, r.Body)
	}
	// ...but the second, now the last, can neither lose the permission nor go.
	c := apptest.Bearer(in.Login("carol", "carol-pw"))
	r := in.Do("PUT", "/users/"+carol.ID, map[string]any{"permissions": map[string][]string{"USERS": {"READ", "LIST", "EDIT", "DELETE"}}}, c...)
	if r.Status != http.StatusConflict || !strings.Contains(r.Detail(), "last policy administrator") {
		t.Errorf("demoting the last administrator: %d %s", r.Status, r.Body)
	}
	if got := userNamed(t, in, "carol", c...); len(got.Permissions["EMBEDDER"]) != 1 {
		t.Errorf("carol after the refused demotion: %v", got.Permissions)
	}
	// Refused with a new name and password beside it, nothing of it is
	// applied: her name, password and tokens stay as they were.
	r = in.Do("PUT", "/users/"+carol.ID, map[string]any{"username": "carol-renamed", "password": "carol-pw-new",
		"permissions": map[string][]string{"USERS": {"READ", "LIST", "EDIT", "DELETE"}}}, c...)
	if r.Status != http.StatusConflict {
		t.Errorf("demoting the last administrator with a rename: %d %s", r.Status, r.Body)
	}
	if got := userNamed(t, in, "carol", c...); got.ID != carol.ID {
		t.Errorf("a refused update renamed carol (her token still works: %v)", got.ID != "")
	}
	c = apptest.Bearer(in.Login("carol", "carol-pw"))
	if r := in.Do("DELETE", "/users/"+carol.ID, nil, c...); r.Status != http.StatusConflict {
		t.Errorf("deleting the last administrator: %d %s", r.Status, r.Body)
	}
	// Other changes to her go through.
	if r := in.Do("PUT", "/users/"+carol.ID, map[string]any{"username": "carol2", "password": "carol-pw2"}, c...); r.Status != 200 {
		t.Errorf("renaming the last administrator: %d %s", r.Status, r.Body)
	}
}

// TestWebSocketKeyActsOnlyAsShadowUsers: GRIN_API_KEY_WS names any shadow
// user, as in the Cat, but an internal user only when the policy says so.
func TestWebSocketKeyActsOnlyAsShadowUsers(t *testing.T) {
	const wsKey = "ws-key-0123456789abcdef"
	in := authRequired(t, func(c *configT) { c.APIKeyWS = wsKey })
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	adminID := userNamed(t, in, "admin", admin...).ID

	chatAs := func(path, want string) {
		t.Helper()
		c := dial(t, in, path)
		c.send(map[string]string{"text": "hello"})
		if r, _ := c.reply(); r.UserID != want {
			t.Errorf("%s chats as %q, want %q", path, r.UserID, want)
		}
	}
	// Shadow ids, the default one and a username among them (a shadow
	// user named "admin" is not the admin: its memories are its own).
	chatAs("/ws/some-shadow?token="+wsKey, "some-shadow")
	chatAs("/ws?token="+wsKey, "user")
	chatAs("/ws/admin?token="+wsKey, "admin")

	// An internal user's id is refused before the upgrade, saying why.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(in.URL, "http")+"/ws/"+adminID+"?token="+wsKey, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("the WS key acting as the admin: %v, want a refused handshake (403)", err)
	}
	body, _ := io.ReadAll(resp.Body)
	for _, s := range []string{"cannot act as " + adminID, "internal user", "act_as:*"} {
		if !strings.Contains(string(body), s) {
			t.Errorf("refusal %s does not say %q", body, s)
		}
	}

	// Once the policy lets the key act as internal users, it does.
	var docs documents
	in.Do("GET", "/policies", nil, admin...).JSON(t, &docs)
	docs.Policy += "\np, credential:ws_key, act_as:*, write\n"
	if r := in.Do("PUT", "/policies", docs, admin...); r.Status != 200 {
		t.Fatalf("policy edit: %d %s", r.Status, r.Body)
	}
	chatAs("/ws/"+adminID+"?token="+wsKey, adminID)
}
