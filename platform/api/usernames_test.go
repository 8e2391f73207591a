package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/grin-ai/grin/platform/app/apptest"
	"github.com/grin-ai/grin/platform/database"
)

// TestUsernamesThatAreNotText: a username (or password) that is not valid
// UTF-8 is refused with a sentence, never stored with U+FFFD in its place.
func TestUsernamesThatAreNotText(t *testing.T) {
	in := apptest.Start(t)
	var bob user
	in.Do("POST", "/users", map[string]string{"username": "bob", "password": "builder"}).JSON(t, &bob)
	for _, tc := range []struct{ name, method, path, body string }{
		{"create, a byte that is no UTF-8", "POST", "/users", "{\"username\": \"ad\xffmin\", \"password\": \"secret1\"}"},
		{"create, an unpaired surrogate escape", "POST", "/users", `{"username": "ad\ud800min", "password": "secret1"}`},
		{"create, a password that is not UTF-8", "POST", "/users", "{\"username\": \"eve\", \"password\": \"sec\xc3ret1\"}"},
		{"rename", "PUT", "/users/" + bob.ID, "{\"username\": \"b\xffb\"}"},
		{"log in", "POST", "/auth/token", "{\"username\": \"b\xffb\", \"password\": \"builder\"}"},
	} {
		r := in.Do(tc.method, tc.path, tc.body)
		if r.Status != http.StatusUnprocessableEntity || !strings.Contains(string(r.Body), "not valid UTF-8") {
			t.Errorf("%s: %d %s, want 422 saying the text is not valid UTF-8", tc.name, r.Status, r.Body)
		}
	}
	var list []user
	in.Do("GET", "/users", nil).JSON(t, &list)
	for _, u := range list {
		if strings.ContainsRune(u.Username, '\uFFFD') {
			t.Errorf("stored username %q holds U+FFFD", u.Username)
		}
	}
	// The replacement character itself, sent as valid UTF-8, is refused too.
	if r := in.Do("POST", "/users", map[string]string{"username": "ad\uFFFDmin", "password": "secret1"}); r.Status != http.StatusUnprocessableEntity {
		t.Errorf("a username with U+FFFD: %d %s, want 422", r.Status, r.Body)
	}
}

// TestLookAlikeUsernames: a new or renamed user may not take a name that
// looks like another's (Unicode confusables, UTS #39).
func TestLookAlikeUsernames(t *testing.T) {
	in := apptest.Start(t)
	for _, tc := range []struct{ name, username, like string }{
		{"Cyrillic а", "\u0430dmin", "admin"},
		{"Cyrillic е", "us\u0435r", "user"},
		{"mathematical letters", "\U0001d41a\U0001d41d\U0001d426\U0001d422\U0001d427", "admin"},
		{"rn for m", "adrnin", "admin"},
	} {
		r := in.Do("POST", "/users", map[string]string{"username": tc.username, "password": "secret1"})
		if r.Status != http.StatusConflict || !strings.Contains(r.Detail(), `looks like the existing username "`+tc.like+`"`) {
			t.Errorf("%s: %d %q, want 409 naming %q", tc.name, r.Status, r.Detail(), tc.like)
		}
	}
	var carol user
	if r := in.Do("POST", "/users", map[string]string{"username": "carol", "password": "secret1"}); r.Status != 200 {
		t.Fatalf("a name like no other: %d %s", r.Status, r.Body)
	} else {
		r.JSON(t, &carol)
	}
	if r := in.Do("PUT", "/users/"+carol.ID, map[string]string{"username": "\u0430dmin"}); r.Status != http.StatusConflict || !strings.Contains(r.Detail(), `"admin"`) {
		t.Errorf("rename to a look-alike: %d %q, want 409", r.Status, r.Detail())
	}
	if r := in.Do("POST", "/users", map[string]string{"username": "admin", "password": "secret1"}); r.Status != http.StatusConflict || !strings.Contains(r.Detail(), "already taken") {
		t.Errorf("the same name: %d %q, want 409 already taken", r.Status, r.Detail())
	}
	if r := in.Do("PUT", "/users/"+carol.ID, map[string]string{"username": "Carol"}); r.Status != 200 {
		t.Errorf("rename to a name unlike others: %d %s", r.Status, r.Body)
	}
}

// TestUsernamesAreNFC: "é" sent decomposed (e and a combining accent) is
// stored composed, and either form logs in.
func TestUsernamesAreNFC(t *testing.T) {
	in := apptest.Start(t)
	const nfd, nfc = "re\u0301my", "r\u00e9my"
	var u user
	in.Do("POST", "/users", map[string]string{"username": nfd, "password": "secret1"}).JSON(t, &u)
	if u.Username != nfc {
		t.Errorf("stored %q, want the NFC form %q", u.Username, nfc)
	}
	for _, name := range []string{nfd, nfc} {
		if r := in.Do("POST", "/auth/token", map[string]string{"username": name, "password": "secret1"}); r.Status != 200 {
			t.Errorf("login as %q: %d %s", name, r.Status, r.Body)
		}
	}
	if r := in.Do("POST", "/users", map[string]string{"username": nfc, "password": "secret1"}); r.Status != http.StatusConflict {
		t.Errorf("the composed form again: %d, want 409", r.Status)
	}
}

// TestExistingUsernamesKept: users created before names were normalized
// and compared keep their names and log in as before, even look-alikes of
// each other; new names are checked against them.
func TestExistingUsernamesKept(t *testing.T) {
	apptest.SQLiteOnly(t, "rows written by an older grin, which only ran on SQLite")
	dir := t.TempDir()
	apptest.StartWith(t, apptest.Config(dir)).Close()
	// Rows as an older grin wrote them: no skeleton, names as sent.
	db, err := database.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	hash, _ := bcrypt.GenerateFromPassword([]byte("secret1"), bcrypt.MinCost)
	for i, name := range []string{"paypal", "p\u0430ypal", "re\u0301my"} {
		if _, err := db.Exec(`INSERT INTO users (id, username, password_hash, created_at, username_skeleton) VALUES (?, ?, ?, 0, NULL)`,
			"legacy-"+string(rune('a'+i)), name, string(hash)); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	in := apptest.StartWith(t, apptest.Config(dir))
	for _, name := range []string{"paypal", "p\u0430ypal", "re\u0301my"} {
		if r := in.Do("POST", "/auth/token", map[string]string{"username": name, "password": "secret1"}); r.Status != 200 {
			t.Errorf("existing user %q logs in: %d %s", name, r.Status, r.Body)
		}
	}
	var list []user
	in.Do("GET", "/users", nil).JSON(t, &list)
	names := map[string]bool{}
	for _, u := range list {
		names[u.Username] = true
	}
	if !names["p\u0430ypal"] || !names["re\u0301my"] {
		t.Errorf("existing names changed: %v", names)
	}
	if r := in.Do("POST", "/users", map[string]string{"username": "\u0440aypal", "password": "secret1"}); r.Status != http.StatusConflict {
		t.Errorf("a new look-alike of existing names: %d %s, want 409", r.Status, r.Body)
	}
}
