package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/grin-ai/grin/platform/app/apptest"
	"github.com/grin-ai/grin/platform/auth"
	"github.com/grin-ai/grin/platform/config"
)

const testAPIKey = "test-api-key-0123456789"

func claimsOf(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("%q is not a JWT", token)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTokenClaims(t *testing.T) {
	in := apptest.Start(t)
	tok := in.Login("admin", apptest.AdminPassword)
	c := claimsOf(t, tok)
	var list []user
	in.Do("GET", "/users", nil).JSON(t, &list)
	if c["sub"] != list[0].ID || c["username"] != "admin" {
		t.Errorf("claims sub=%v username=%v, want the admin's id and name", c["sub"], c["username"])
	}
	perms, _ := c["permissions"].(map[string]any)
	if len(perms) != 11 {
		t.Errorf("permissions claim = %v, want the admin's full dictionary", c["permissions"])
	}
	exp, _ := c["exp"].(float64)
	if d := time.Until(time.Unix(int64(exp), 0)); d < 55*time.Minute || d > 61*time.Minute {
		t.Errorf("exp is %v away, want the configured hour", d)
	}
	header, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if !strings.Contains(string(header), `"HS256"`) {
		t.Errorf("header %s, want HS256", header)
	}
}

// authRequired starts grin with the API key set, so that every request
// needs a credential.
type configT = config.Config

func authRequired(t *testing.T, edit ...func(*config.Config)) *apptest.Instance {
	cfg := apptest.Config(t.TempDir())
	cfg.APIKey = testAPIKey
	for _, e := range edit {
		e(&cfg)
	}
	return apptest.StartWith(t, cfg)
}

func TestTokenExpiry(t *testing.T) {
	in := authRequired(t, func(c *config.Config) {
		c.JWTExpire = time.Duration(0.02 * float64(time.Minute)) // GRIN_JWT_EXPIRE_MINUTES=0.02
	})
	tok := in.Login("admin", apptest.AdminPassword)
	if r := in.Do("GET", "/users", nil, apptest.Bearer(tok)...); r.Status != 200 {
		t.Fatalf("fresh token: %d %s", r.Status, r.Body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := in.Do("GET", "/users", nil, apptest.Bearer(tok)...)
		if r.Status == http.StatusForbidden {
			if r.Detail() != "Invalid Credentials" {
				t.Errorf("expired token detail %q", r.Detail())
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a token of 1.2 s still works after 10 s: %d", r.Status)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestForgedTokensRefused(t *testing.T) {
	in := authRequired(t)
	good := in.Login("admin", apptest.AdminPassword)
	c := claimsOf(t, good)
	claims := jwt.MapClaims{"sub": c["sub"], "username": "admin", "permissions": c["permissions"], "exp": time.Now().Add(time.Hour).Unix()}
	secret := secretOf(t, in)

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(m jwt.SigningMethod, key any, cl jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, cl).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	expired := jwt.MapClaims{"sub": c["sub"], "username": "admin", "exp": time.Now().Add(-time.Minute).Unix()}
	noExp := jwt.MapClaims{"sub": c["sub"], "username": "admin"}
	ghost := jwt.MapClaims{"sub": "00000000-0000-4000-8000-000000000000", "username": "ghost", "exp": time.Now().Add(time.Hour).Unix()}
	parts := strings.Split(good, ".")
	tamperedClaims := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"` + c["sub"].(string) + `","username":"admin","exp":9999999999,"x":1}`))

	for name, tok := range map[string]string{
		"wrong secret":       sign(jwt.SigningMethodHS256, []byte("another-secret-another-secret-123"), claims),
		"alg none":           sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims),
		"RS256 own key":      sign(jwt.SigningMethodRS256, rsaKey, claims),
		"HS512 right secret": sign(jwt.SigningMethodHS512, secret, claims),
		"expired":            sign(jwt.SigningMethodHS256, secret, expired),
		"no exp":             sign(jwt.SigningMethodHS256, secret, noExp),
		"unknown user":       sign(jwt.SigningMethodHS256, secret, ghost),
		"tampered claims":    parts[0] + "." + tamperedClaims + "." + parts[2],
		"garbage":            "not.a.jwt",
		"empty":              "",
	} {
		t.Run(name, func(t *testing.T) {
			r := in.Do("GET", "/users", nil, "Authorization", "Bearer "+tok)
			if r.Status != http.StatusForbidden || r.Detail() != "Invalid Credentials" {
				t.Fatalf("%d %q, want 403 Invalid Credentials", r.Status, r.Detail())
			}
		})
	}
	// The real token still works, also through the legacy header.
	if r := in.Do("GET", "/users", nil, "access_token", good); r.Status != 200 {
		t.Errorf("access_token header: %d", r.Status)
	}
}

// secretOf reads the generated JWT secret, as someone with the database
// could; the test uses it to forge tokens the server must still refuse.
func secretOf(t *testing.T, in *apptest.Instance) []byte {
	t.Helper()
	var s []byte
	if err := in.Database().QueryRow(`SELECT value FROM secrets WHERE name = 'jwt'`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDeletedUserTokenStopsAtOnce(t *testing.T) {
	in := authRequired(t)
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	var bob user
	in.Do("POST", "/users", map[string]any{"username": "bob", "password": "builder", "permissions": map[string][]string{"STATUS": {"READ"}}}, admin...).JSON(t, &bob)
	tok := apptest.Bearer(in.Login("bob", "builder"))
	if r := in.Do("GET", "/", nil, tok...); r.Status != 200 {
		t.Fatalf("bob before deletion: %d", r.Status)
	}
	in.Do("DELETE", "/users/"+bob.ID, nil, admin...)
	if r := in.Do("GET", "/", nil, tok...); r.Status != http.StatusForbidden {
		t.Errorf("bob's token after deletion: %d, want 403", r.Status)
	}
}

func TestAPIKeyRules(t *testing.T) {
	in := authRequired(t)
	userTok := in.Login("user", apptest.UserPassword)
	for _, tc := range []struct {
		name    string
		headers []string
		status  int
	}{
		{"no credential", nil, 403},
		{"wrong key", []string{"Authorization", "Bearer wrong-key-0123456789"}, 403},
		{"key with a prefix", []string{"Authorization", "Bearer " + testAPIKey + "x"}, 403},
		{"basic scheme", []string{"Authorization", "Basic " + testAPIKey}, 403},
		{"key as bearer", []string{"Authorization", "Bearer " + testAPIKey}, 200},
		{"key as access_token", []string{"access_token", testAPIKey}, 200},
		{"key acting as a user", []string{"Authorization", "Bearer " + testAPIKey, "user_id", "alice"}, 200},
		// A JWT ignores the user_id header: the base user stays a base
		// user even when naming the admin.
		{"jwt with user_id", []string{"Authorization", "Bearer " + userTok, "user_id", "admin"}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := in.Do("GET", "/users", nil, tc.headers...)
			if r.Status != tc.status {
				t.Fatalf("%d, want %d: %s", r.Status, tc.status, r.Body)
			}
		})
	}
	// Public operations need nothing.
	if r := in.Do("GET", "/auth/available-permissions", nil); r.Status != 200 || len(r.Map(t)) != 11 {
		t.Errorf("available-permissions: %d %s", r.Status, r.Body)
	}
	if strings.Contains(in.Logs.String(), testAPIKey) {
		t.Error("the API key appears in the log")
	}
}

func TestAuthRequiredWithoutKey(t *testing.T) {
	in := authRequired(t, func(c *config.Config) { c.APIKey, c.AuthRequired = "", true })
	if r := in.Do("GET", "/", nil, "user_id", "alice"); r.Status != 403 {
		t.Errorf("GRIN_AUTH=required without a token: %d, want 403", r.Status)
	}
	if r := in.Do("GET", "/", nil, apptest.Bearer(in.Login("user", apptest.UserPassword))...); r.Status != 200 {
		t.Errorf("with a token: %d", r.Status)
	}
}

func TestShadowUsersWhenAuthOff(t *testing.T) {
	in := apptest.Start(t)
	// The Cat's behaviour: without keys, anyone acts as the named user
	// with full permissions (grin only allows this on loopback).
	for _, h := range [][]string{nil, {"user_id", "alice"}} {
		if r := in.Do("GET", "/users", nil, h...); r.Status != 200 {
			t.Errorf("shadow user %v: %d", h, r.Status)
		}
	}
	// A JWT is still honoured, with its user's permissions.
	if r := in.Do("GET", "/users", nil, apptest.Bearer(in.Login("user", apptest.UserPassword))...); r.Status != 403 {
		t.Errorf("base user's JWT with auth off: %d, want 403", r.Status)
	}
}

func TestFailedLoginDelaysOnlyItself(t *testing.T) {
	in := apptest.Start(t)
	var wg sync.WaitGroup
	var failedAt time.Time
	var status int
	wg.Go(func() {
		status = in.Do("POST", "/auth/token", map[string]string{"username": "admin", "password": "wrong!"}).Status
		failedAt = time.Now()
	})
	time.Sleep(50 * time.Millisecond) // let the failing login start
	for range 5 {
		if r := in.Do("GET", "/", nil); r.Status != 200 {
			t.Fatalf("status during a failed login: %d", r.Status)
		}
	}
	in.Login("user", apptest.UserPassword)
	servedAt := time.Now()
	wg.Wait()
	if status != http.StatusForbidden {
		t.Errorf("failed login: %d, want 403", status)
	}
	if !servedAt.Before(failedAt) {
		t.Errorf("other requests waited for the failed login (served %v, failed %v)", servedAt, failedAt)
	}
}

func TestLoginThrottle(t *testing.T) {
	in := apptest.Start(t)
	in.App.Login.FailDelay = time.Millisecond
	bad := map[string]string{"username": "admin", "password": "guess"}
	for i := range 5 {
		if r := in.Do("POST", "/auth/token", bad); r.Status != 403 {
			t.Fatalf("failure %d: %d, want 403", i+1, r.Status)
		}
	}
	in.Do("POST", "/auth/token", bad) // the sixth failure locks the username
	r := in.Do("POST", "/auth/token", map[string]string{"username": "admin", "password": apptest.AdminPassword})
	if r.Status != http.StatusTooManyRequests {
		t.Fatalf("right password while locked: %d, want 429", r.Status)
	}
	if r.Header.Get("Retry-After") == "" || !strings.Contains(r.Detail(), "try again") {
		t.Errorf("429 without Retry-After or advice: %v %q", r.Header, r.Detail())
	}
	// Other usernames are not affected.
	in.Login("user", apptest.UserPassword)
	// The lock lifts.
	deadline := time.Now().Add(10 * time.Second)
	for in.Do("POST", "/auth/token", map[string]string{"username": "admin", "password": apptest.AdminPassword}).Status != 200 {
		if time.Now().After(deadline) {
			t.Fatal("the admin is still locked out after 10 s")
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func TestLoginBadInput(t *testing.T) {
	in := apptest.Start(t)
	for _, body := range []any{
		map[string]string{"username": "admin"},
		map[string]any{"username": "admin", "password": 5},
		"[]",
		"",
		map[string]string{"username": "admin", "password": "x", "extra": "y"},
	} {
		r := in.Do("POST", "/auth/token", body)
		if r.Status < 400 || r.Status >= 500 {
			t.Errorf("body %v: %d, want a 4xx", body, r.Status)
		}
	}
}

// TestJWTSecretPersists: the generated secret is kept in the database,
// not beside it, so a restart (or another replica on the database) keeps
// tokens valid, and an instance with its own database does not take them.
func TestJWTSecretPersists(t *testing.T) {
	dir := t.TempDir()
	cfg := apptest.Config(dir)
	cfg.APIKey = testAPIKey
	first := apptest.StartWith(t, cfg)
	tok := first.Login("admin", apptest.AdminPassword)
	if _, err := os.Stat(dir + "/jwt-secret"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("jwt-secret in the data directory: %v, want none", err)
	}
	if s := secretOf(t, first); len(s) < auth.MinSecretBytes {
		t.Errorf("the stored secret has %d bytes", len(s))
	}
	second := apptest.StartWith(t, cfg) // same database: a restart, or a replica
	if r := second.Do("GET", "/users", nil, apptest.Bearer(tok)...); r.Status != 200 {
		t.Errorf("token after restart: %d, want it still valid", r.Status)
	}
	third := apptest.StartWith(t, apptest.Config(t.TempDir()))
	if r := third.Do("GET", "/users", nil, apptest.Bearer(tok)...); r.Status != 403 {
		t.Errorf("token on another instance with its own secret: %d, want 403", r.Status)
	}
	for _, in := range []*apptest.Instance{first, second} {
		s := secretOf(t, in)
		for _, form := range []string{string(s), base64.RawStdEncoding.EncodeToString(s), base64.StdEncoding.EncodeToString(s), fmt.Sprintf("%x", s)} {
			if strings.Contains(in.Logs.String(), form) {
				t.Errorf("the JWT secret is in the log")
			}
		}
	}
}

// TestJWTSecretMovesIntoTheDatabase: the secret an older grin kept in the
// data directory moves into the database at the first start: tokens it
// signed stay valid, the file goes, and a restart needs the database alone.
func TestJWTSecretMovesIntoTheDatabase(t *testing.T) {
	dir := t.TempDir()
	old := bytes.Repeat([]byte("an older grin's secret "), 3)
	if err := os.WriteFile(dir+"/jwt-secret", []byte(base64.RawStdEncoding.EncodeToString(old)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	in := apptest.StartWith(t, apptest.Config(dir))
	if s := secretOf(t, in); !bytes.Equal(s, old) {
		t.Fatalf("the database holds another secret than the file's")
	}
	if _, err := os.Stat(dir + "/jwt-secret"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("jwt-secret after the move: %v, want it gone", err)
	}
	// A token as the older grin signed it.
	signer, err := auth.NewTokens(old, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := in.App.Users.ByUsername(context.Background(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := signer.Issue(admin.ID, admin.Username, admin.Permissions, admin.TokenEpoch)
	if err != nil {
		t.Fatal(err)
	}
	in.Close()
	again := apptest.StartWith(t, apptest.Config(dir))
	if r := again.Do("GET", "/users", nil, apptest.Bearer(tok)...); r.Status != 200 {
		t.Errorf("a token signed with the moved secret, after a restart: %d %s", r.Status, r.Body)
	}
}

// TestOpenModeRefusesOtherSites: with authentication off, a web page the
// operator visits must not drive grin, neither cross-site nor by DNS
// rebinding.
func TestOpenModeRefusesOtherSites(t *testing.T) {
	in := apptest.Start(t)
	do := func(host, origin string) int {
		req, _ := http.NewRequest("POST", in.URL+"/message", strings.NewReader(`{"text":"hi"}`))
		if host != "" {
			req.Host = host
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name, host, origin string
		want               int
	}{
		{"no origin (a program)", "", "", 200},
		{"same origin", "", in.URL, 200},
		{"localhost name", "localhost:1865", "", 200},
		{"another site", "", "https://evil.example", 403},
		{"rebound name", "evil.example:1865", "", 403},
	} {
		if got := do(tc.host, tc.origin); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	// With authentication on, credentials decide instead.
	keyed := authRequired(t)
	req, _ := http.NewRequest("GET", keyed.URL+"/", nil)
	req.Host = "grin.example.org"
	req.Header.Set("Authorization", "Bearer "+testAPIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("a public name with auth on: %d", resp.StatusCode)
	}
}

// TestLoginBurstIsThrottled: a burst of concurrent guesses for one
// username gets no more tries before the lockout than one guess at a time.
func TestLoginBurstIsThrottled(t *testing.T) {
	in := apptest.Start(t)
	in.App.Login.FailDelay = 5 * time.Millisecond
	var wg sync.WaitGroup
	var mu sync.Mutex
	forbidden := 0
	for range 30 {
		wg.Go(func() {
			r := in.Do("POST", "/auth/token", map[string]string{"username": "admin", "password": "guess"})
			mu.Lock()
			if r.Status == http.StatusForbidden {
				forbidden++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if forbidden > 6 {
		t.Errorf("%d guesses were checked before the lockout, want at most 6", forbidden)
	}
}
