package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/grin-ai/grin/platform/audit"
	"github.com/grin-ai/grin/platform/auth"
	"github.com/grin-ai/grin/policies"
)

// Credentials is a username and password.
type Credentials struct {
	Username Text `json:"username" minLength:"1" maxLength:"128" doc:"The user's name, UTF-8; compared in Unicode NFC."`
	Password Text `json:"password" minLength:"1" maxLength:"1024" doc:"The user's password, UTF-8."`
}

// TokenInput is the body of POST /auth/token.
type TokenInput struct {
	Body Credentials

	// remote and forwarded name the client, for the login limits.
	remote, forwarded string
}

// Resolve keeps what names the client: the peer address, and the
// X-Forwarded-For header for when the peer is a trusted proxy.
func (in *TokenInput) Resolve(ctx huma.Context) []error {
	in.remote, in.forwarded = ctx.RemoteAddr(), ctx.Header("X-Forwarded-For")
	return nil
}

// Token is an issued JWT.
type Token struct {
	AccessToken string `json:"access_token" doc:"An HS256 JWT; send it as Authorization: Bearer."`
	TokenType   string `json:"token_type" enum:"bearer" doc:"Always \"bearer\"."`
}

// TokenOutput is the answer of POST /auth/token.
type TokenOutput struct {
	Body Token
}

// PermissionsOutput is the Cat's full permission dictionary.
type PermissionsOutput struct {
	Body PermissionSet
}

func (s *Server) registerAuth() {
	register(s, huma.Operation{
		OperationID: "createToken",
		Method:      http.MethodPost,
		Path:        "/auth/token",
		Summary:     "Log in",
		Description: "Exchanges a username and password for a JWT. A wrong password answers 403 after a delay; " +
			"repeated failures for one username lock it for a growing time, and too many logins from one address, " +
			"or more than the server checks at once, are refused (429 with Retry-After).",
		Tags:   []string{"Auth"},
		Errors: []int{http.StatusForbidden, http.StatusTooManyRequests},
	}, public.audited(audit.Login), func(ctx context.Context, in *TokenInput) (*TokenOutput, error) {
		// Who tried, never with what password.
		rec := auditOf(ctx)
		rec.actor(audit.Actor{Kind: audit.ActorUser, Name: string(in.Body.Username)})
		rec.target(string(in.Body.Username))
		client := clientKey(in.remote, in.forwarded, s.deps.TrustedProxies)
		tok, err := s.deps.Login.Token(ctx, client, string(in.Body.Username), string(in.Body.Password))
		// The user's id too, when the name is a user's: a failed login
		// against an account is found by the account.
		if u, err := s.deps.Users.ByUsername(ctx, string(in.Body.Username)); err == nil {
			rec.actor(audit.Actor{Kind: audit.ActorUser, ID: u.ID, Name: u.Username})
			rec.target(u.ID)
		}
		var throttled *auth.ThrottledError
		switch {
		case errors.As(err, &throttled):
			secs := int(throttled.RetryAfter.Seconds() + 0.999)
			return nil, huma.ErrorWithHeaders(huma.Error429TooManyRequests(throttled.Error()),
				http.Header{"Retry-After": {strconv.Itoa(secs)}})
		case errors.Is(err, auth.ErrInvalidCredentials):
			return nil, huma.Error403Forbidden("Invalid Credentials")
		case err != nil:
			return nil, s.internal(ctx, "log in", err)
		}
		return &TokenOutput{Body: Token{AccessToken: tok, TokenType: "bearer"}}, nil
	})

	register(s, huma.Operation{
		OperationID: "logout",
		Method:      http.MethodPost,
		Path:        "/auth/logout",
		Summary:     "Log out everywhere",
		Description: "Revokes every token issued to the caller so far, on every device: requests with them fail " +
			"and sockets opened with them close (1008). Log in again for a new token. Needs a token from POST /auth/token; " +
			"an administrator revokes another user's tokens with DELETE /users/{id}/tokens.",
		Tags:   []string{"Auth"},
		Errors: []int{http.StatusBadRequest},
	}, authenticated.audited(audit.TokensRevoke), func(ctx context.Context, _ *struct{}) (*struct{}, error) {
		id := identity(ctx)
		rec := auditOf(ctx)
		rec.target(id.ID)
		rec.detail("the user logged out everywhere")
		if id.Method != auth.MethodJWT {
			return nil, huma.Error400BadRequest(fmt.Sprintf("log out revokes the tokens grin issues (POST /auth/token); "+
				"this request was authenticated by %s, which grin cannot revoke", id.Method))
		}
		if err := s.deps.Users.RevokeTokens(ctx, id.ID); err != nil {
			return nil, s.userError(ctx, err)
		}
		return nil, nil
	})

	register(s, huma.Operation{
		OperationID: "getAvailablePermissions",
		Method:      http.MethodGet,
		Path:        "/auth/available-permissions",
		Summary:     "Every resource and permission",
		Tags:        []string{"Auth"},
	}, public, func(ctx context.Context, _ *struct{}) (*PermissionsOutput, error) {
		return &PermissionsOutput{Body: permissionSetOf(policies.FullDict())}, nil
	})
}

// clientKey names the client of a login for its limits: its address
// (clientAddr), with IPv6 clients keyed by their /64, the smallest block
// one subscriber is given.
func clientKey(remote, forwarded string, trusted []netip.Prefix) string {
	addr := clientAddr(remote, forwarded, trusted)
	if !addr.IsValid() {
		return remote
	}
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

// clientAddr is the address of a request's client: the peer's, or when
// the peer is a trusted proxy, the address it forwards for (the right-most
// X-Forwarded-For entry that is not itself a trusted proxy).
// X-Forwarded-For from anyone else is ignored: a client could write any
// address there. It is the zero Addr when the peer's address is not one.
func clientAddr(remote, forwarded string, trusted []netip.Prefix) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}
	}
	addr := ap.Addr().Unmap()
	if forwarded != "" && isTrusted(addr, trusted) {
		hops := strings.Split(forwarded, ",")
		for i := len(hops) - 1; i >= 0; i-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break // the proxy we trust did not write this
			}
			addr = hop.Unmap()
			if !isTrusted(addr, trusted) {
				break
			}
		}
	}
	return addr
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
