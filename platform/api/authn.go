package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/danielgtaylor/huma/v2"

	"github.com/grin-ai/grin/platform/auth"
	"github.com/grin-ai/grin/policies"
)

// Credentials is a username and password.
type Credentials struct {
	Username string `json:"username" minLength:"1" maxLength:"128" doc:"The user's name."`
	Password string `json:"password" minLength:"1" maxLength:"1024" doc:"The user's password."`
}

// TokenInput is the body of POST /auth/token.
type TokenInput struct {
	Body Credentials
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
			"repeated failures for one username lock it for a growing time (429 with Retry-After).",
		Tags:   []string{"Auth"},
		Errors: []int{http.StatusForbidden, http.StatusTooManyRequests},
	}, public, func(ctx context.Context, in *TokenInput) (*TokenOutput, error) {
		tok, err := s.deps.Login.Token(ctx, in.Body.Username, in.Body.Password)
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
		OperationID: "getAvailablePermissions",
		Method:      http.MethodGet,
		Path:        "/auth/available-permissions",
		Summary:     "Every resource and permission",
		Tags:        []string{"Auth"},
	}, public, func(ctx context.Context, _ *struct{}) (*PermissionsOutput, error) {
		return &PermissionsOutput{Body: permissionSetOf(policies.FullDict())}, nil
	})
}
