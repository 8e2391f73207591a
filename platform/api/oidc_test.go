package api_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/grin-ai/grin/platform/app/apptest"
	"github.com/grin-ai/grin/platform/config"
)

const (
	oidcIssuer   = "https://idp.example.test/realms/grin"
	oidcAudience = "grin"
	oidcKID      = "provider-key-1"
)

// provider is an OpenID Connect provider as grin sees it: a JWKS over HTTP
// and tokens signed with the key it publishes.
type provider struct {
	url string
	key *rsa.PrivateKey
}

func startProvider(t *testing.T) *provider {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	set, err := json.Marshal(map[string]any{"keys": []any{map[string]any{
		"kty": "RSA", "kid": oidcKID, "alg": "RS256", "use": "sig",
		"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(set)
	}))
	t.Cleanup(srv.Close)
	return &provider{url: srv.URL + "/protocol/openid-connect/certs", key: key}
}

// token signs a provider token for sub in groups; ttl < 0 makes it expired.
func (p *provider) token(t *testing.T, sub string, ttl time.Duration, groups ...string) string {
	t.Helper()
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": oidcIssuer, "aud": oidcAudience, "sub": sub, "preferred_username": sub,
		"groups": groups, "iat": now.Unix(), "exp": now.Add(ttl).Unix(),
	})
	tok.Header["kid"] = oidcKID
	s, err := tok.SignedString(p.key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

func (p *provider) settings(jwksURL string) map[string]any {
	return map[string]any{
		"issuer": oidcIssuer, "audience": oidcAudience, "jwks_url": jwksURL,
		"roles_claim": "groups", "role_map": map[string]string{"grin-admins": "role:admin"},
	}
}

type handlerSettings struct {
	Settings []struct {
		Name  string         `json:"name"`
		Value map[string]any `json:"value"`
	} `json:"settings"`
	SelectedConfiguration string `json:"selected_configuration"`
}

// listSettings reads GET /auth_handler/settings and returns it with the
// OIDC configuration's saved value.
func listSettings(t *testing.T, in *apptest.Instance, admin string) (handlerSettings, map[string]any) {
	t.Helper()
	r := in.Do("GET", "/auth_handler/settings", nil, apptest.Bearer(admin)...)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /auth_handler/settings: %d %s", r.Status, r.Body)
	}
	var s handlerSettings
	r.JSON(t, &s)
	for _, c := range s.Settings {
		if c.Name == "OIDCAuthConfig" {
			return s, c.Value
		}
	}
	t.Fatalf("GET /auth_handler/settings does not offer OIDCAuthConfig: %s", r.Body)
	return s, nil
}

func TestOIDCEndToEnd(t *testing.T) {
	idp := startProvider(t)
	cfg := apptest.Config(t.TempDir())
	cfg.APIKey = config.Secret("an-api-key-for-tests-only")
	cfg.AuthRequired = true
	in := apptest.StartWith(t, cfg)

	adminToken := idp.token(t, "ada", time.Hour, "staff", "grin-admins")
	userToken := idp.token(t, "bert", time.Hour, "staff")
	expect := func(t *testing.T, method, path, token string, want int) apptest.Response {
		t.Helper()
		var h []string
		if token != "" {
			h = apptest.Bearer(token)
		}
		r := in.Do(method, path, nil, h...)
		if r.Status != want {
			t.Fatalf("%s %s: %d %s; want %d", method, path, r.Status, r.Body, want)
		}
		return r
	}

	// Authentication is required: no credential, no entry.
	expect(t, "GET", "/", "", http.StatusForbidden)

	admin := in.Login("admin", apptest.AdminPassword)
	if s, _ := listSettings(t, in, admin); s.SelectedConfiguration != "CoreOnlyAuthConfig" {
		t.Fatalf("selected before any PUT = %q; want CoreOnlyAuthConfig", s.SelectedConfiguration)
	}
	// Before the provider is configured, its tokens mean nothing to grin.
	expect(t, "GET", "/", adminToken, http.StatusForbidden)

	r := in.Do("PUT", "/auth_handler/settings/OIDCAuthConfig", idp.settings(idp.url), apptest.Bearer(admin)...)
	if r.Status != http.StatusOK {
		t.Fatalf("PUT OIDCAuthConfig: %d %s", r.Status, r.Body)
	}
	if v, _ := r.Map(t)["value"].(map[string]any); v["jwks_url"] != idp.url || v["issuer"] != oidcIssuer {
		t.Errorf("PUT answered value %v; want the saved settings", v)
	}
	s, saved := listSettings(t, in, admin)
	if s.SelectedConfiguration != "OIDCAuthConfig" {
		t.Fatalf("selected_configuration = %q; want OIDCAuthConfig", s.SelectedConfiguration)
	}
	if saved["jwks_url"] != idp.url || saved["audience"] != oidcAudience || saved["roles_claim"] != "groups" {
		t.Errorf("saved OIDC settings = %v", saved)
	}

	t.Run("provider admin group maps to role:admin", func(t *testing.T) {
		r := expect(t, "GET", "/users", adminToken, http.StatusOK)
		var users []map[string]any
		r.JSON(t, &users)
		if len(users) == 0 {
			t.Errorf("GET /users as a provider admin listed no users: %s", r.Body)
		}
	})
	t.Run("provider user without the group has base rights only", func(t *testing.T) {
		r := expect(t, "GET", "/users", userToken, http.StatusForbidden)
		if !strings.Contains(r.Detail(), "Permission denied") {
			t.Errorf("403 detail = %q; want a permission refusal, not an authentication one", r.Detail())
		}
		r = expect(t, "GET", "/", userToken, http.StatusOK)
		if st, _ := r.Map(t)["status"].(string); st == "" {
			t.Errorf("GET / body %s has no status", r.Body)
		}
	})
	t.Run("expired provider token is refused", func(t *testing.T) {
		r := expect(t, "GET", "/", idp.token(t, "ada", -time.Hour, "grin-admins"), http.StatusForbidden)
		if r.Detail() != "Invalid Credentials" {
			t.Errorf("403 detail = %q; want Invalid Credentials", r.Detail())
		}
	})
	t.Run("grin's own tokens still work", func(t *testing.T) {
		expect(t, "GET", "/users", admin, http.StatusOK)
	})

	t.Run("unreachable JWKS is refused and changes nothing", func(t *testing.T) {
		down := httptest.NewServer(http.NotFoundHandler())
		downURL := down.URL + "/certs"
		down.Close()
		r := in.Do("PUT", "/auth_handler/settings/OIDCAuthConfig", idp.settings(downURL), apptest.Bearer(admin)...)
		if r.Status != http.StatusUnprocessableEntity {
			t.Fatalf("PUT with unreachable jwks_url: %d %s; want 422", r.Status, r.Body)
		}
		if !strings.Contains(r.Detail(), downURL) {
			t.Errorf("422 detail %q does not name the URL that failed", r.Detail())
		}
		s, saved := listSettings(t, in, admin)
		if s.SelectedConfiguration != "OIDCAuthConfig" || saved["jwks_url"] != idp.url {
			t.Errorf("after a refused PUT: selected %q, jwks_url %v; want OIDCAuthConfig with %s", s.SelectedConfiguration, saved["jwks_url"], idp.url)
		}
		expect(t, "GET", "/users", adminToken, http.StatusOK)
	})

	t.Run("incomplete settings are refused", func(t *testing.T) {
		r := in.Do("PUT", "/auth_handler/settings/OIDCAuthConfig", map[string]any{"issuer": oidcIssuer}, apptest.Bearer(admin)...)
		if r.Status != http.StatusUnprocessableEntity {
			t.Fatalf("PUT without audience and jwks_url: %d %s; want 422", r.Status, r.Body)
		}
		if s, saved := listSettings(t, in, admin); s.SelectedConfiguration != "OIDCAuthConfig" || saved["jwks_url"] != idp.url {
			t.Errorf("after a refused PUT: selected %q, jwks_url %v", s.SelectedConfiguration, saved["jwks_url"])
		}
	})

	t.Run("unknown configuration is 404", func(t *testing.T) {
		r := in.Do("PUT", "/auth_handler/settings/NoSuchConfig", map[string]any{}, apptest.Bearer(admin)...)
		if r.Status != http.StatusNotFound {
			t.Fatalf("PUT NoSuchConfig: %d %s; want 404", r.Status, r.Body)
		}
		if s, _ := listSettings(t, in, admin); s.SelectedConfiguration != "OIDCAuthConfig" {
			t.Errorf("after PUT NoSuchConfig: selected %q", s.SelectedConfiguration)
		}
	})

	t.Run("provider user cannot reconfigure authentication", func(t *testing.T) {
		r := in.Do("PUT", "/auth_handler/settings/CoreOnlyAuthConfig", map[string]any{}, apptest.Bearer(userToken)...)
		if r.Status != http.StatusForbidden {
			t.Fatalf("PUT CoreOnlyAuthConfig as a base provider user: %d %s; want 403", r.Status, r.Body)
		}
	})

	t.Run("back to core only turns provider tokens off", func(t *testing.T) {
		r := in.Do("PUT", "/auth_handler/settings/CoreOnlyAuthConfig", map[string]any{}, apptest.Bearer(admin)...)
		if r.Status != http.StatusOK {
			t.Fatalf("PUT CoreOnlyAuthConfig: %d %s", r.Status, r.Body)
		}
		expect(t, "GET", "/", adminToken, http.StatusForbidden)
		expect(t, "GET", "/users", admin, http.StatusOK)
	})
}
