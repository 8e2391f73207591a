package oidc_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/grin-ai/grin/internal/logbuf"
	"github.com/grin-ai/grin/platform/auth"
	"github.com/grin-ai/grin/platform/auth/oidc"
)

const (
	testIssuer   = "https://idp.example.test/realms/grin"
	testAudience = "grin-api"
)

// signer is a provider signing key: its private half signs tokens, its
// public half is published in the JWKS under kid.
type signer struct {
	kid    string
	method jwt.SigningMethod
	key    crypto.Signer
}

func newRSASigner(t *testing.T, kid string) signer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("generate RSA key: %v", err)
	}
	return signer{kid: kid, method: jwt.SigningMethodRS256, key: k}
}

func newECSigner(t *testing.T, kid string) signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate EC key: %v", err)
	}
	return signer{kid: kid, method: jwt.SigningMethodES256, key: k}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwk is the public key as a provider publishes it.
func (s signer) jwk(t *testing.T) map[string]any {
	t.Helper()
	switch pub := s.key.Public().(type) {
	case *rsa.PublicKey:
		return map[string]any{
			"kty": "RSA", "kid": s.kid, "alg": "RS256", "use": "sig",
			"n": b64(pub.N.Bytes()),
			"e": b64(big.NewInt(int64(pub.E)).Bytes()),
		}
	case *ecdsa.PublicKey:
		raw, err := pub.Bytes() // 0x04 || X || Y, each 32 bytes for P-256
		if err != nil {
			t.Fatalf("encode EC key: %v", err)
		}
		return map[string]any{
			"kty": "EC", "kid": s.kid, "alg": "ES256", "use": "sig", "crv": "P-256",
			"x": b64(raw[1:33]),
			"y": b64(raw[33:65]),
		}
	}
	t.Fatalf("unsupported key %T", s.key)
	return nil
}

// sign returns a compact JWT of claims with s's kid in the header.
func (s signer) sign(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(s.method, claims)
	tok.Header["kid"] = s.kid
	out, err := tok.SignedString(s.key)
	if err != nil {
		t.Fatalf("sign token: %v", err)
	}
	return out
}

// jwksServer serves a JWK Set over real HTTP; the set can be swapped while
// it runs, as a provider rotating its keys does.
type jwksServer struct {
	*httptest.Server
	mu   sync.Mutex
	body []byte
	hits atomic.Int64
}

func newJWKSServer(t *testing.T, keys ...signer) *jwksServer {
	t.Helper()
	return newJWKSServerAway(t, 0, keys...)
}

// newJWKSServerAway is newJWKSServer for a provider latency away, as a
// real one is: every answer takes that long to arrive.
func newJWKSServerAway(t *testing.T, latency time.Duration, keys ...signer) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.serve(t, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if latency > 0 {
			select {
			case <-time.After(latency):
			case <-r.Context().Done():
				return
			}
		}
		s.mu.Lock()
		body := s.body
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

// serve replaces the published set with keys.
func (s *jwksServer) serve(t *testing.T, keys ...signer) {
	t.Helper()
	set := map[string]any{"keys": []any{}}
	for _, k := range keys {
		set["keys"] = append(set["keys"].([]any), k.jwk(t))
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatalf("encode JWKS: %v", err)
	}
	s.mu.Lock()
	s.body = b
	s.mu.Unlock()
}

// claimsFor returns valid claims for sub, good for an hour.
func claimsFor(sub string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss":                testIssuer,
		"aud":                testAudience,
		"sub":                sub,
		"preferred_username": sub + "-name",
		"iat":                now.Unix(),
		"exp":                now.Add(time.Hour).Unix(),
	}
}

func config(jwksURL string) oidc.Config {
	return oidc.Config{Issuer: testIssuer, Audience: testAudience, JWKSURL: jwksURL}
}

func newHandler(t *testing.T, c oidc.Config) *oidc.Handler {
	t.Helper()
	h, err := oidc.New(t.Context(), t.Context(), c, nil)
	if err != nil {
		t.Fatalf("oidc.New: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func fromToken(h *oidc.Handler, ctx context.Context, token string) (*auth.Identity, error) {
	return h.FromToken(ctx, auth.Credentials{Protocol: auth.HTTP, Token: token})
}

func TestOIDCFromToken(t *testing.T) {
	rsaKey := newRSASigner(t, "rsa-1")
	ecKey := newECSigner(t, "ec-1")
	stranger := newRSASigner(t, "stranger")
	// forger holds a key of its own but names the published key's kid.
	forger := newRSASigner(t, rsaKey.kid)
	jwks := newJWKSServer(t, rsaKey, ecKey)

	with := func(c jwt.MapClaims, kv ...any) jwt.MapClaims {
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		return c
	}
	hour := time.Hour
	now := time.Now()

	noneToken := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, claimsFor("mallory"))
		tok.Header["kid"] = rsaKey.kid
		s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatalf("sign none token: %v", err)
		}
		return s
	}
	hmacToken := func(secret []byte) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claimsFor("grin-user")).SignedString(secret)
		if err != nil {
			t.Fatalf("sign HS256 token: %v", err)
		}
		return s
	}
	rsaModulus := rsaKey.key.Public().(*rsa.PublicKey).N.Bytes()
	// ES256-signed but naming the RSA key's kid: the published key says RS256.
	algMismatch := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, claimsFor("mallory"))
		tok.Header["kid"] = rsaKey.kid
		s, err := tok.SignedString(ecKey.key)
		if err != nil {
			t.Fatalf("sign token: %v", err)
		}
		return s
	}

	type want int
	const (
		accepted want = iota
		passedOn      // (nil, nil): not this handler's token
		refused       // an error: this handler's token, but not valid
	)
	tests := []struct {
		name     string
		token    string
		want     want
		wantID   string
		wantName string
		errHas   string
	}{
		{name: "valid RS256", token: rsaKey.sign(t, claimsFor("alice")), wantID: "oidc:alice", wantName: "alice-name"},
		{name: "valid ES256", token: ecKey.sign(t, claimsFor("bob")), wantID: "oidc:bob", wantName: "bob-name"},
		{name: "audience among several", token: rsaKey.sign(t, with(claimsFor("carol"), "aud", []string{"other", testAudience})), wantID: "oidc:carol", wantName: "carol-name"},
		{name: "no username claim leaves the name to grin", token: rsaKey.sign(t, with(claimsFor("dave"), "preferred_username", nil)), wantID: "oidc:dave", wantName: ""},
		{name: "token without kid is checked against every key", token: func() string {
			s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claimsFor("erin")).SignedString(rsaKey.key)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}(), wantID: "oidc:erin", wantName: "erin-name"},

		{name: "other issuer", token: rsaKey.sign(t, with(claimsFor("alice"), "iss", "https://other.example.test")), want: passedOn},
		{name: "no issuer", token: rsaKey.sign(t, with(claimsFor("alice"), "iss", nil)), want: passedOn},
		{name: "HS256 with the same issuer is grin's own", token: hmacToken([]byte("a-secret-of-grin-at-least-32-bytes-long")), want: passedOn},
		{name: "HS256 keyed with the provider's public key", token: hmacToken(rsaModulus), want: passedOn},
		{name: "not a JWT", token: "not.a.jwt", want: passedOn},

		{name: "wrong audience", token: rsaKey.sign(t, with(claimsFor("alice"), "aud", "someone-else")), want: refused, errHas: "aud"},
		{name: "no audience", token: rsaKey.sign(t, with(claimsFor("alice"), "aud", nil)), want: refused, errHas: "aud"},
		{name: "expired", token: rsaKey.sign(t, with(claimsFor("alice"), "exp", now.Add(-hour).Unix())), want: refused, errHas: "expired"},
		{name: "expired ES256", token: ecKey.sign(t, with(claimsFor("bob"), "exp", now.Add(-hour).Unix())), want: refused, errHas: "expired"},
		{name: "no expiry", token: rsaKey.sign(t, with(claimsFor("alice"), "exp", nil)), want: refused, errHas: "exp"},
		{name: "not valid yet", token: rsaKey.sign(t, with(claimsFor("alice"), "nbf", now.Add(hour).Unix())), want: refused, errHas: "not valid yet"},
		{name: "signed by a key not in the JWKS", token: stranger.sign(t, claimsFor("alice")), want: refused},
		{name: "forged with a published kid", token: forger.sign(t, claimsFor("alice")), want: refused, errHas: "signature"},
		{name: "payload altered after signing", token: func() string {
			good := strings.Split(rsaKey.sign(t, claimsFor("alice")), ".")
			evil := strings.Split(rsaKey.sign(t, claimsFor("root")), ".")
			return good[0] + "." + evil[1] + "." + good[2]
		}(), want: refused, errHas: "signature"},
		{name: "alg none", token: noneToken(), want: refused},
		{name: "ES256 token naming an RS256 key", token: algMismatch(), want: refused},
		{name: "no user id claim", token: rsaKey.sign(t, with(claimsFor("alice"), "sub", nil)), want: refused, errHas: `"sub"`},
		{name: "empty user id claim", token: rsaKey.sign(t, with(claimsFor("alice"), "sub", "")), want: refused, errHas: `"sub"`},
		{name: "numeric user id claim", token: rsaKey.sign(t, with(claimsFor("alice"), "sub", 42)), want: refused, errHas: `"sub"`},
	}

	// One handler for the whole table, as in a server: a refused token must
	// not spoil the next.
	h := newHandler(t, config(jwks.URL))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := fromToken(h, t.Context(), tt.token)
			switch tt.want {
			case accepted:
				if err != nil || id == nil {
					t.Fatalf("FromToken = %v, %v; want an identity", id, err)
				}
				if id.ID != tt.wantID {
					t.Errorf("ID = %q, want %q", id.ID, tt.wantID)
				}
				if id.Name != tt.wantName {
					t.Errorf("Name = %q, want %q", id.Name, tt.wantName)
				}
				if len(id.Subjects) == 0 || id.Subjects[0] != tt.wantID {
					t.Errorf("Subjects = %v, want the id %q first", id.Subjects, tt.wantID)
				}
				if !slices.Contains(id.Subjects, "role:base") {
					t.Errorf("Subjects = %v, want the default role:base", id.Subjects)
				}
				if slices.Contains(id.Subjects, "role:admin") {
					t.Errorf("Subjects = %v: nothing maps to role:admin here", id.Subjects)
				}
				if c, _ := id.Extra["claims"].(map[string]any); c["iss"] != testIssuer {
					t.Errorf("Extra[claims] = %v, want the token's claims", id.Extra["claims"])
				}
			case passedOn:
				if err != nil || id != nil {
					t.Fatalf("FromToken = %v, %v; want nil, nil so the next handler is tried", id, err)
				}
			case refused:
				if err == nil {
					t.Fatalf("FromToken = %+v, nil; want an error", id)
				}
				if id != nil {
					t.Errorf("FromToken returned identity %+v with error %v", id, err)
				}
				if !strings.Contains(err.Error(), tt.errHas) {
					t.Errorf("error %q does not mention %q", err, tt.errHas)
				}
			}
		})
	}

	t.Run("FromKey is never this handler's", func(t *testing.T) {
		id, err := h.FromKey(t.Context(), auth.Credentials{Protocol: auth.HTTP, Token: "some-api-key"})
		if id != nil || err != nil {
			t.Fatalf("FromKey = %v, %v; want nil, nil", id, err)
		}
	})
}

// TestOIDCThroughAuthenticator checks the handler's contract as grin uses
// it: provider tokens become handler identities, grin's own HS256 tokens
// still reach grin's verifier, and a refused provider token ends the search.
func TestOIDCThroughAuthenticator(t *testing.T) {
	key := newRSASigner(t, "k1")
	jwks := newJWKSServer(t, key)
	tokens, err := auth.NewTokens([]byte("0123456789abcdef0123456789abcdef"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	a := auth.NewAuthenticator(auth.Keys{Required: true}, tokens, usersFunc(func(id string) bool { return id == "internal-1" }))
	a.SetSelected(newHandler(t, config(jwks.URL)))

	id, err := a.Authenticate(t.Context(), auth.Credentials{Protocol: auth.HTTP, Token: key.sign(t, func() jwt.MapClaims {
		c := claimsFor("zoe")
		delete(c, "preferred_username")
		return c
	}())})
	if err != nil {
		t.Fatalf("provider token: %v", err)
	}
	if id.ID != "oidc:zoe" || id.Method != auth.MethodHandler || id.Handler != "oidc" || id.Name != "oidc:zoe" {
		t.Errorf("identity = %+v; want oidc:zoe by handler oidc, named by its id", id)
	}

	own, err := tokens.Issue("internal-1", "inside", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	id, err = a.Authenticate(t.Context(), auth.Credentials{Protocol: auth.HTTP, Token: own})
	if err != nil {
		t.Fatalf("grin's own token with an OIDC handler selected: %v", err)
	}
	if id.ID != "internal-1" || id.Method != auth.MethodJWT {
		t.Errorf("identity = %+v; want internal-1 by jwt", id)
	}

	expired := claimsFor("zoe")
	expired["exp"] = time.Now().Add(-time.Hour).Unix()
	if _, err := a.Authenticate(t.Context(), auth.Credentials{Protocol: auth.HTTP, Token: key.sign(t, expired)}); !auth.IsInvalidCredentials(err) {
		t.Errorf("expired provider token: err = %v; want invalid credentials", err)
	}
}

type usersFunc func(string) bool

func (f usersFunc) TokenEpoch(_ context.Context, id string) (int64, bool, error) {
	return 0, f(id), nil
}

func TestOIDCRoleMapping(t *testing.T) {
	key := newECSigner(t, "ec-roles")
	jwks := newJWKSServer(t, key)
	empty := ""
	custom := "acme|"

	tests := []struct {
		name     string
		cfg      func(c *oidc.Config)
		claims   func(c jwt.MapClaims)
		wantID   string
		want     []string // Subjects after the id
		wantName string
	}{
		{
			name: "groups list",
			cfg: func(c *oidc.Config) {
				c.RolesClaim = "groups"
				c.RoleMap = map[string]string{"grin-admins": "role:admin", "readers": "role:reader"}
			},
			claims: func(c jwt.MapClaims) { c["groups"] = []string{"grin-admins", "unmapped", "readers"} },
			wantID: "oidc:u1", want: []string{"role:admin", "role:base", "role:reader"}, wantName: "u1-name",
		},
		{
			name: "dotted path into realm_access.roles",
			cfg: func(c *oidc.Config) {
				c.RolesClaim = "realm_access.roles"
				c.RoleMap = map[string]string{"admin": "role:admin"}
			},
			claims: func(c jwt.MapClaims) {
				c["realm_access"] = map[string]any{"roles": []string{"offline_access", "admin"}}
			},
			wantID: "oidc:u1", want: []string{"role:admin", "role:base"}, wantName: "u1-name",
		},
		{
			name: "space-separated string claim",
			cfg: func(c *oidc.Config) {
				c.RolesClaim = "roles"
				c.RoleMap = map[string]string{"admin": "role:admin"}
			},
			claims: func(c jwt.MapClaims) { c["roles"] = "user admin" },
			wantID: "oidc:u1", want: []string{"role:admin", "role:base"}, wantName: "u1-name",
		},
		{
			name: "unmapped values grant nothing",
			cfg: func(c *oidc.Config) {
				c.RolesClaim = "groups"
				c.RoleMap = map[string]string{"grin-admins": "role:admin"}
			},
			claims: func(c jwt.MapClaims) { c["groups"] = []string{"Grin-Admins", "grin-admins-x", "role:admin"} },
			wantID: "oidc:u1", want: []string{"role:base"}, wantName: "u1-name",
		},
		{
			name: "roles claim missing",
			cfg: func(c *oidc.Config) {
				c.RolesClaim = "realm_access.roles"
				c.RoleMap = map[string]string{"admin": "role:admin"}
			},
			claims: func(c jwt.MapClaims) { c["realm_access"] = "admin" },
			wantID: "oidc:u1", want: []string{"role:base"}, wantName: "u1-name",
		},
		{
			name: "role map without roles claim is inert",
			cfg: func(c *oidc.Config) {
				c.RoleMap = map[string]string{"admin": "role:admin"}
			},
			claims: func(c jwt.MapClaims) { c["roles"] = []string{"admin"} },
			wantID: "oidc:u1", want: []string{"role:base"}, wantName: "u1-name",
		},
		{
			name: "custom default roles",
			cfg: func(c *oidc.Config) {
				c.DefaultRoles = []string{"role:guest", "role:base"}
			},
			wantID: "oidc:u1", want: []string{"role:base", "role:guest"}, wantName: "u1-name",
		},
		{
			name:   "no default roles",
			cfg:    func(c *oidc.Config) { c.DefaultRoles = []string{} },
			wantID: "oidc:u1", want: []string{}, wantName: "u1-name",
		},
		{
			name: "custom id and username claims, custom prefix",
			cfg: func(c *oidc.Config) {
				c.UserIDClaim = "email"
				c.UsernameClaim = "profile.display"
				c.IDPrefix = &custom
			},
			claims: func(c jwt.MapClaims) {
				c["email"] = "u1@example.test"
				c["profile"] = map[string]any{"display": "User One"}
			},
			wantID: "acme|u1@example.test", want: []string{"role:base"}, wantName: "User One",
		},
		{
			name:   "empty prefix uses the claim as it is",
			cfg:    func(c *oidc.Config) { c.IDPrefix = &empty },
			wantID: "u1", want: []string{"role:base"}, wantName: "u1-name",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config(jwks.URL)
			tt.cfg(&c)
			h := newHandler(t, c)
			claims := claimsFor("u1")
			if tt.claims != nil {
				tt.claims(claims)
			}
			id, err := fromToken(h, t.Context(), key.sign(t, claims))
			if err != nil || id == nil {
				t.Fatalf("FromToken = %v, %v; want an identity", id, err)
			}
			if id.ID != tt.wantID {
				t.Errorf("ID = %q, want %q", id.ID, tt.wantID)
			}
			if id.Name != tt.wantName {
				t.Errorf("Name = %q, want %q", id.Name, tt.wantName)
			}
			want := append([]string{tt.wantID}, tt.want...)
			if !slices.Equal(id.Subjects, want) {
				t.Errorf("Subjects = %q, want %q", id.Subjects, want)
			}
		})
	}
}

// providerLatency is how far the test's provider is: a JWKS answer takes
// this long, as over any real network. It is not a threshold: a handler
// that gives the key set fetch a sane time passes whatever the machine.
const providerLatency = 20 * time.Millisecond

func TestOIDCKeyRotation(t *testing.T) {
	keyA := newRSASigner(t, "key-A")
	keyB := newECSigner(t, "key-B")
	jwks := newJWKSServerAway(t, providerLatency, keyA)
	logs := &logbuf.Buffer{}
	h, err := oidc.New(t.Context(), t.Context(), config(jwks.URL), slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatalf("oidc.New: %v", err)
	}
	t.Cleanup(func() { h.Close() })

	id, err := fromToken(h, t.Context(), keyA.sign(t, claimsFor("alice")))
	if err != nil || id == nil || id.ID != "oidc:alice" {
		t.Fatalf("token of key A before rotation: %v, %v; want oidc:alice", id, err)
	}

	// The provider rotates: only key B is published from now on.
	jwks.serve(t, keyB)
	before := jwks.hits.Load()
	id, err = fromToken(h, t.Context(), keyB.sign(t, claimsFor("bob")))
	if err != nil || id == nil || id.ID != "oidc:bob" {
		t.Fatalf("token of the new key B (unknown kid, so the set is fetched again): %v, %v; want oidc:bob\n"+
			"JWKS requests for it: %d; handler log:\n%s", id, err, jwks.hits.Load()-before, logs)
	}
	if jwks.hits.Load() == before {
		t.Errorf("key B was accepted without fetching the JWKS again")
	}

	// Key A is no longer published: its tokens, even fresh ones, are refused.
	id, err = fromToken(h, t.Context(), keyA.sign(t, claimsFor("alice")))
	if err == nil {
		t.Fatalf("token of retired key A after rotation: %+v, nil; want an error", id)
	}
	if id != nil {
		t.Errorf("identity %+v returned with error %v", id, err)
	}
	// B keeps working.
	if id, err := fromToken(h, t.Context(), keyB.sign(t, claimsFor("bob"))); err != nil || id == nil || id.ID != "oidc:bob" {
		t.Errorf("token of key B after A was refused: %v, %v", id, err)
	}
}

func TestOIDCNewFailsClearly(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL + "/jwks"
	down.Close()

	empty := newJWKSServer(t)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "upstream trouble", http.StatusBadGateway)
	}))
	t.Cleanup(broken.Close)
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("<html>login page</html>"))
	}))
	t.Cleanup(garbage.Close)

	tests := []struct {
		name   string
		url    string
		errHas []string
	}{
		{"unreachable", downURL, []string{"fetch keys from " + downURL}},
		{"no keys", empty.URL, []string{"fetch keys from " + empty.URL, "no keys"}},
		{"error status", broken.URL, []string{"fetch keys from " + broken.URL, "502"}},
		{"not JSON", garbage.URL, []string{"fetch keys from " + garbage.URL}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := oidc.New(t.Context(), t.Context(), config(tt.url), nil)
			if err == nil {
				h.Close()
				t.Fatalf("New succeeded; want an error")
			}
			if h != nil {
				t.Errorf("New returned a handler with its error")
			}
			for _, s := range tt.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestOIDCConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		cfg    oidc.Config
		errHas []string
	}{
		{"valid", oidc.Config{Issuer: testIssuer, Audience: testAudience, JWKSURL: "https://idp.example.test/jwks"}, nil},
		{"everything missing", oidc.Config{}, []string{"issuer is required", "audience is required", "jwks_url"}},
		{"not http", oidc.Config{Issuer: testIssuer, Audience: testAudience, JWKSURL: "file:///etc/jwks.json"}, []string{"jwks_url"}},
		{"no host", oidc.Config{Issuer: testIssuer, Audience: testAudience, JWKSURL: "https:///jwks"}, []string{"jwks_url"}},
		{"empty role", oidc.Config{Issuer: testIssuer, Audience: testAudience, JWKSURL: "http://idp/jwks", RoleMap: map[string]string{"admins": " "}}, []string{`role_map["admins"]`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.errHas) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v; want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil; want an error mentioning %q", tt.errHas)
			}
			for _, s := range tt.errHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}

	// New refuses the same settings before contacting anyone.
	if _, err := oidc.New(t.Context(), t.Context(), oidc.Config{}, nil); err == nil || !strings.Contains(err.Error(), "issuer is required") {
		t.Errorf("New with empty settings: %v; want the validation error", err)
	}
}

func TestOIDCFactoryRefusesUnknownSettings(t *testing.T) {
	key := newRSASigner(t, "k")
	jwks := newJWKSServer(t, key)
	f := oidc.Factory(t.Context(), nil)
	if f.Name != oidc.Name || oidc.Name != "OIDCAuthConfig" {
		t.Fatalf("factory name = %q", f.Name)
	}

	// A typo (jwks_uri for jwks_url) must not be silently ignored.
	raw, _ := json.Marshal(map[string]any{"issuer": testIssuer, "audience": testAudience, "jwks_url": jwks.URL, "jwks_uri": jwks.URL})
	if h, err := f.Build(t.Context(), raw); err == nil {
		closeHandler(h)
		t.Fatalf("Build with an unknown field succeeded")
	} else if !strings.Contains(err.Error(), "jwks_uri") {
		t.Errorf("error %q does not name the unknown field", err)
	}

	raw, _ = json.Marshal(map[string]any{"issuer": testIssuer, "audience": testAudience, "jwks_url": jwks.URL})
	h, err := f.Build(t.Context(), raw)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	defer closeHandler(h)
	id, err := h.FromToken(t.Context(), auth.Credentials{Token: key.sign(t, claimsFor("f"))})
	if err != nil || id == nil || id.ID != "oidc:f" {
		t.Errorf("built handler: %v, %v; want oidc:f", id, err)
	}
}

func closeHandler(h auth.Handler) {
	if c, ok := h.(interface{ Close() error }); ok {
		c.Close()
	}
}

// TestOIDCRefusesIDsThatReadAsPolicySubjects: with an empty id_prefix, a
// provider user named like a role must not act as that role.
func TestOIDCRefusesIDsThatReadAsPolicySubjects(t *testing.T) {
	key := newRSASigner(t, "k1")
	jwks := newJWKSServer(t, key)
	c := config(jwks.URL)
	empty := ""
	c.IDPrefix = &empty
	h := newHandler(t, c)
	for _, sub := range []string{"role:admin", "perm:users:delete", "credential:api_key"} {
		id, err := fromToken(h, context.Background(), key.sign(t, claimsFor(sub)))
		if err == nil {
			t.Errorf("sub %q accepted as %+v", sub, id)
		}
	}
	if id, err := fromToken(h, context.Background(), key.sign(t, claimsFor("alice"))); err != nil || id.ID != "alice" {
		t.Errorf("plain id: %+v %v", id, err)
	}
}
