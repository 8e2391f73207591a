// Package oidc authenticates bearer tokens issued by an OpenID Connect
// provider, verified against the provider's JWKS.
//
// It is grin's shipped example of a custom auth handler: an operator selects
// it by configuration (GRIN_AUTH_HANDLER=oidc) or through the Cat-compatible
// /auth_handler/settings endpoints. Keys are fetched from the JWKS URL,
// refreshed hourly, and fetched again when a token names a key id the set
// does not have, so a provider's key rotation needs nothing from grin.
package oidc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/grin-ai/grin/platform/auth"
	"github.com/grin-ai/grin/platform/settings"
)

// Name is the configuration's name in /auth_handler/settings.
const Name = "OIDCAuthConfig"

// Config is the handler's settings document.
type Config struct {
	// Issuer must equal the tokens' "iss"; tokens of other issuers are
	// left to the next handler.
	Issuer string `json:"issuer"`
	// Audience must be among the tokens' "aud".
	Audience string `json:"audience"`
	// JWKSURL is where the provider publishes its keys.
	JWKSURL string `json:"jwks_url"`
	// UserIDClaim names the claim that identifies the user (default "sub").
	UserIDClaim string `json:"user_id_claim,omitempty"`
	// UsernameClaim names the claim shown as the user's name (default
	// "preferred_username", falling back to the id).
	UsernameClaim string `json:"username_claim,omitempty"`
	// IDPrefix is put before the claim's value to make the grin user id,
	// so a provider's subjects can never collide with internal users'
	// ids (default "oidc:"; set "" to use the claim as it is).
	IDPrefix *string `json:"id_prefix,omitempty"`
	// RolesClaim names a claim holding a string or a list of strings
	// ("roles", "groups", or a dotted path such as "realm_access.roles").
	RolesClaim string `json:"roles_claim,omitempty"`
	// RoleMap maps values of RolesClaim to policy subjects
	// ("grin-admins": "role:admin"); unmapped values grant nothing.
	RoleMap map[string]string `json:"role_map,omitempty"`
	// DefaultRoles are given to every user the provider vouches for
	// (default ["role:base"], the Cat's base permissions).
	DefaultRoles []string `json:"default_roles,omitempty"`
}

// algorithms are the asymmetric algorithms accepted: a provider's public
// key can never serve as an HMAC secret.
var algorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Schema is the JSON Schema of Config.
var schema = map[string]any{
	"type":                 "object",
	"title":                "OpenID Connect",
	"description":          "Accept bearer tokens of an OpenID Connect provider, verified with its JWKS.",
	"required":             []string{"issuer", "audience", "jwks_url"},
	"additionalProperties": false,
	"properties": map[string]any{
		"issuer":         map[string]any{"type": "string", "description": "The tokens' iss, exactly."},
		"audience":       map[string]any{"type": "string", "description": "Must be among the tokens' aud."},
		"jwks_url":       map[string]any{"type": "string", "format": "uri", "description": "The provider's JWKS (http or https)."},
		"user_id_claim":  map[string]any{"type": "string", "default": "sub"},
		"username_claim": map[string]any{"type": "string", "default": "preferred_username"},
		"id_prefix":      map[string]any{"type": "string", "default": "oidc:", "description": "Put before the user id claim to form grin's user id."},
		"roles_claim":    map[string]any{"type": "string", "description": "Claim with the user's roles or groups; a dotted path reaches into objects."},
		"role_map":       map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "string"}, "description": "Claim value to policy subject, e.g. {\"grin-admins\": \"role:admin\"}."},
		"default_roles":  map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "default": []string{"role:base"}},
	},
}

// Factory offers the handler to the auth handler settings. Keys are refreshed in
// the background until base is done.
func Factory(base context.Context, logger *slog.Logger) settings.Factory[auth.Handler] {
	return settings.Factory[auth.Handler]{
		Name:     Name,
		Schema:   schema,
		Defaults: json.RawMessage(`{"issuer":"","audience":"","jwks_url":""}`),
		Build: func(ctx context.Context, raw json.RawMessage) (auth.Handler, error) {
			var c Config
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&c); err != nil {
				return nil, fmt.Errorf("read settings: %w", err)
			}
			return New(ctx, base, c, logger)
		},
	}
}

// Handler verifies provider tokens.
//
// Notes: safe for concurrent use. Close stops the background key refresh.
type Handler struct {
	cfg        Config
	keys       keyfunc.Keyfunc
	cancel     context.CancelFunc
	parser     *jwt.Parser
	unknownKID *rate.Limiter
}

// Validate reports every problem of the settings at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Issuer == "" {
		errs = append(errs, errors.New("issuer is required"))
	}
	if c.Audience == "" {
		errs = append(errs, errors.New("audience is required"))
	}
	if u, err := url.Parse(c.JWKSURL); c.JWKSURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, errors.New("jwks_url must be an http or https URL"))
	}
	for k, v := range c.RoleMap {
		if strings.TrimSpace(v) == "" {
			errs = append(errs, fmt.Errorf("role_map[%q] is empty", k))
		}
	}
	return errors.Join(errs...)
}

func (c *Config) setDefaults() {
	if c.UserIDClaim == "" {
		c.UserIDClaim = "sub"
	}
	if c.UsernameClaim == "" {
		c.UsernameClaim = "preferred_username"
	}
	if c.IDPrefix == nil {
		p := "oidc:"
		c.IDPrefix = &p
	}
	if c.DefaultRoles == nil {
		c.DefaultRoles = []string{"role:base"}
	}
}

// New validates c, fetches the provider's keys once (failing when it
// cannot, within 10 seconds) and returns a ready handler. Background
// refresh runs until base is done or the handler is closed.
func New(ctx, base context.Context, c Config, logger *slog.Logger) (*Handler, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c.setDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	refreshCtx, cancel := context.WithCancel(base)
	noSilentFirstFailure := false
	k, err := keyfunc.NewDefaultOverrideCtx(refreshCtx, []string{c.JWKSURL}, keyfunc.Override{
		HTTPTimeout:               10 * time.Second,
		NoErrorReturnFirstHTTPReq: &noSilentFirstFailure,
		// Handler.unknownKID decides whether a token naming an unknown key
		// may fetch the set again; keyfunc itself never waits. Its
		// RateLimitWaitMax also bounds the fetch, so it must be long enough
		// for a real provider to answer.
		RefreshUnknownKID: rate.NewLimiter(rate.Inf, 1),
		RateLimitWaitMax:  10 * time.Second,
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(_ context.Context, err error) {
				logger.Warn("refresh OIDC keys", "url", u, "err", err)
			}
		},
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("fetch keys from %s: %w", c.JWKSURL, err)
	}
	if all, err := k.Storage().KeyReadAll(ctx); err != nil || len(all) == 0 {
		cancel()
		if err == nil {
			err = errors.New("the set has no keys")
		}
		return nil, fmt.Errorf("fetch keys from %s: %w", c.JWKSURL, err)
	}
	return &Handler{
		cfg:    c,
		keys:   k,
		cancel: cancel,
		// A token naming an unknown key fetches the set again at most
		// every 10 seconds; past that such tokens are refused at once, so
		// a stream of made-up key ids neither waits nor floods the provider.
		unknownKID: rate.NewLimiter(rate.Every(10*time.Second), 1),
		parser: jwt.NewParser(
			jwt.WithValidMethods(algorithms),
			jwt.WithIssuer(c.Issuer),
			jwt.WithAudience(c.Audience),
			jwt.WithExpirationRequired(),
			jwt.WithLeeway(5*time.Second),
		),
	}, nil
}

// Name implements auth.Handler.
func (h *Handler) Name() string { return "oidc" }

// Close stops the background key refresh.
func (h *Handler) Close() error {
	h.cancel()
	return nil
}

// FromToken implements auth.Handler: tokens of other issuers, and
// HMAC-signed tokens (grin's own), are not this handler's.
func (h *Handler) FromToken(ctx context.Context, c auth.Credentials) (*auth.Identity, error) {
	var peek jwt.MapClaims
	tok, _, err := jwt.NewParser().ParseUnverified(c.Token, &peek)
	if err != nil {
		return nil, nil
	}
	if iss, _ := peek["iss"].(string); iss != h.cfg.Issuer {
		return nil, nil
	}
	if alg, _ := tok.Header["alg"].(string); strings.HasPrefix(alg, "HS") {
		return nil, nil
	}
	if kid, ok := tok.Header["kid"].(string); ok && !h.knownKey(ctx, kid) && !h.unknownKID.Allow() {
		return nil, fmt.Errorf("the token names key %q, which the provider does not publish", kid)
	}
	var claims jwt.MapClaims
	if _, err := h.parser.ParseWithClaims(c.Token, &claims, h.keys.KeyfuncCtx(ctx)); err != nil {
		return nil, err
	}
	raw, ok := lookup(claims, h.cfg.UserIDClaim)
	sub, _ := raw.(string)
	if !ok || sub == "" {
		return nil, fmt.Errorf("the token has no %q claim to identify the user", h.cfg.UserIDClaim)
	}
	id := &auth.Identity{ID: *h.cfg.IDPrefix + sub, Extra: map[string]any{"claims": map[string]any(claims)}}
	if reservedSubject(id.ID) {
		// With an empty prefix a provider user named "role:admin" would
		// otherwise act as that role.
		return nil, fmt.Errorf("the user id %q looks like a policy role or credential; set id_prefix", id.ID)
	}
	if n, ok := lookup(claims, h.cfg.UsernameClaim); ok {
		id.Name, _ = n.(string)
	}
	id.Subjects = append([]string{id.ID}, h.roles(claims)...)
	return id, nil
}

func (h *Handler) knownKey(ctx context.Context, kid string) bool {
	_, err := h.keys.Storage().KeyRead(ctx, kid)
	return err == nil
}

// reservedSubject reports whether an id would read as a policy role,
// permission, credential, plugin or user:<username> subject.
func reservedSubject(id string) bool {
	for _, p := range []string{"role:", "perm:", "credential:", "plugin:", "user:"} {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	return false
}

// FromKey implements auth.Handler: keys are never this handler's.
func (h *Handler) FromKey(context.Context, auth.Credentials) (*auth.Identity, error) {
	return nil, nil
}

func (h *Handler) roles(claims jwt.MapClaims) []string {
	set := map[string]bool{}
	for _, r := range h.cfg.DefaultRoles {
		set[r] = true
	}
	if h.cfg.RolesClaim != "" {
		v, _ := lookup(claims, h.cfg.RolesClaim)
		var values []string
		switch v := v.(type) {
		case string:
			values = strings.Fields(v)
		case []any:
			for _, x := range v {
				if s, ok := x.(string); ok {
					values = append(values, s)
				}
			}
		}
		for _, val := range values {
			if r, ok := h.cfg.RoleMap[val]; ok {
				set[r] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for r := range set {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// lookup reads a claim by name, or by a dotted path into nested objects.
func lookup(claims map[string]any, path string) (any, bool) {
	if v, ok := claims[path]; ok {
		return v, true
	}
	var cur any = claims
	for _, part := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

var _ auth.Handler = (*Handler)(nil)
