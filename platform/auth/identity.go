// Package auth turns a request's credentials into an Identity: who is
// asking, how they proved it, and which policy subjects they act as.
//
// Identity is the only way code below the API learns who is asking:
// sessions and memories are keyed by Identity.ID, and authorization asks the
// policy about Identity.Subjects with Identity.ID as "{self}".
package auth

import (
	"context"
	"errors"
	"fmt"

	"github.com/grin-ai/grin/policies"
)

// Method says how an identity authenticated.
type Method string

// Authentication methods.
const (
	// MethodJWT: a token grin issued to an internal user.
	MethodJWT Method = "jwt"
	// MethodAPIKey: GRIN_API_KEY on HTTP, acting as the user_id header's user.
	MethodAPIKey Method = "api_key"
	// MethodWSKey: GRIN_API_KEY_WS on a WebSocket, acting as the path's user.
	MethodWSKey Method = "ws_key"
	// MethodShadow: authentication is off; the user_id header names the user.
	MethodShadow Method = "shadow"
	// MethodHandler: a custom Handler vouched for the caller.
	MethodHandler Method = "handler"
)

// Policy subjects of identities that are not internal users. The default
// policy gives them the Cat's rights: full for the API key and for shadow
// users, base for the WebSocket key.
const (
	SubjectAPIKey    = policies.SubjectAPIKey
	SubjectWSKey     = policies.SubjectWSKey
	SubjectAnonymous = policies.SubjectAnonymous
)

// DefaultUserID names the user when a request names none, as in the Cat.
const DefaultUserID = "user"

// Identity is who is asking.
type Identity struct {
	// ID is stable and keys everything the user owns: an internal user's
	// uuid, the user_id a key or shadow user gives, or what a handler says.
	ID string `json:"id"`
	// Name is for people: the username, or the id.
	Name string `json:"name"`
	// Method is how the identity authenticated.
	Method Method `json:"method"`
	// Handler names the custom handler for MethodHandler.
	Handler string `json:"handler,omitempty"`
	// Subjects are the policy subjects the identity acts as; a request is
	// allowed when any of them is.
	Subjects []string `json:"subjects"`
	// Extra carries what a custom handler wants its own code to see.
	Extra map[string]any `json:"extra,omitempty"`
	// TokenEpoch is the token epoch a MethodJWT identity's token carries;
	// revoking the user's tokens moves the user past it.
	TokenEpoch int64 `json:"-"`
}

// Errors of authentication; package api maps them to 403 or 429.
var (
	ErrInvalidCredentials = errors.New("Invalid Credentials")
	// ErrTokenRevoked: the token was valid but its user's tokens were
	// revoked since (a password change, log out everywhere). It is an
	// ErrInvalidCredentials whose holder may be told why.
	ErrTokenRevoked = fmt.Errorf("%w: your credentials were revoked: log in again", ErrInvalidCredentials)
)

type identityKey struct{}

// WithIdentity returns a context that carries id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext returns the identity the context carries.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}
