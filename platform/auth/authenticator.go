package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/grin-ai/grin/policies"
)

// Protocol is where a credential was presented.
type Protocol string

// Protocols.
const (
	HTTP      Protocol = "http"
	WebSocket Protocol = "websocket"
)

// Credentials are what a request presents.
type Credentials struct {
	Protocol Protocol
	// Token is the bearer token, the legacy access_token header, or the
	// WebSocket's ?token=; empty when none was given.
	Token string
	// UserID is the user_id header (HTTP) or path segment (WebSocket);
	// empty means DefaultUserID.
	UserID string
	// Resource and Permission are what the request wants, for handlers
	// that decide by them, as the Cat passes them to its handlers.
	Resource   policies.Resource
	Permission policies.Permission
}

// Handler is a custom authentication handler. Handlers are tried in order
// before the built-in ones, as in the Cat; the first identity returned wins.
//
// A handler returns (nil, nil) for credentials that are not its own, so the
// next one is tried, and an error for credentials it recognizes but refuses
// (an expired token of its issuer), which ends the search with a 403.
// Implementations must be safe for concurrent use.
type Handler interface {
	// Name identifies the handler in logs and in Identity.Handler.
	Name() string
	// FromToken is offered credentials that have the shape of a JWT.
	FromToken(ctx context.Context, c Credentials) (*Identity, error)
	// FromKey is offered every other credential, including none.
	FromKey(ctx context.Context, c Credentials) (*Identity, error)
}

// Keys are the built-in shared secrets. Empty means not set.
type Keys struct {
	// API is GRIN_API_KEY: full permissions on HTTP, acting as user_id.
	API string
	// WS is GRIN_API_KEY_WS: base permissions on WebSocket.
	WS string
	// Required (GRIN_AUTH=required) turns shadow users off even when no
	// key is set: every request then needs a JWT or a handler's approval.
	Required bool
}

// Open reports whether requests without credentials act as shadow users.
func (k Keys) Open() bool { return k.API == "" && !k.Required }

// UserChecker tells whether an internal user exists, and which of its
// tokens still count.
type UserChecker interface {
	// TokenEpoch returns the epoch the user's valid tokens carry (tokens
	// with another were revoked) and whether the user exists.
	TokenEpoch(ctx context.Context, id string) (epoch int64, ok bool, err error)
}

// Authenticator turns credentials into identities.
//
// Notes: safe for concurrent use. The configurable handler (from
// /auth_handler/settings) is swapped atomically.
type Authenticator struct {
	keys     Keys
	tokens   *Tokens
	users    UserChecker
	handlers []Handler
	selected atomic.Pointer[Handler]
}

// NewAuthenticator returns an authenticator; handlers are an embedder's
// own, tried first, in order.
func NewAuthenticator(keys Keys, tokens *Tokens, users UserChecker, handlers ...Handler) *Authenticator {
	return &Authenticator{keys: keys, tokens: tokens, users: users, handlers: handlers}
}

// Keys returns the configured keys.
func (a *Authenticator) Keys() Keys { return a.keys }

// Tokens returns the token service.
func (a *Authenticator) Tokens() *Tokens { return a.tokens }

// SetSelected installs the handler chosen through settings (nil for none).
// It is tried after the embedder's handlers and before the built-ins. The
// handler it replaces is closed when it is an io.Closer.
func (a *Authenticator) SetSelected(h Handler) {
	var p *Handler
	if h != nil {
		p = &h
	}
	if old := a.selected.Swap(p); old != nil {
		if c, ok := (*old).(io.Closer); ok {
			c.Close()
		}
	}
}

// Authenticate returns the identity the credentials prove, or an error
// wrapping ErrInvalidCredentials.
func (a *Authenticator) Authenticate(ctx context.Context, c Credentials) (Identity, error) {
	if c.UserID == "" {
		c.UserID = DefaultUserID
	}
	isJWT := LooksLikeJWT(c.Token)
	chain := a.handlers
	if p := a.selected.Load(); p != nil {
		chain = append(chain[:len(chain):len(chain)], *p)
	}
	for _, h := range chain {
		var id *Identity
		var err error
		if isJWT {
			id, err = h.FromToken(ctx, c)
		} else {
			id, err = h.FromKey(ctx, c)
		}
		if err != nil {
			return Identity{}, fmt.Errorf("%w: %s: %v", ErrInvalidCredentials, h.Name(), err)
		}
		if id != nil {
			if id.ID == "" || len(id.Subjects) == 0 {
				return Identity{}, fmt.Errorf("%w: handler %s returned an identity without id or subjects", ErrInvalidCredentials, h.Name())
			}
			id.Method, id.Handler = MethodHandler, h.Name()
			if id.Name == "" {
				id.Name = id.ID
			}
			return *id, nil
		}
	}
	if isJWT {
		return a.fromJWT(ctx, c.Token)
	}
	return a.fromKey(c)
}

func (a *Authenticator) fromJWT(ctx context.Context, token string) (Identity, error) {
	claims, err := a.tokens.Verify(token)
	if err != nil {
		return Identity{}, err
	}
	epoch, ok, err := a.users.TokenEpoch(ctx, claims.Subject)
	if err != nil {
		return Identity{}, fmt.Errorf("authenticate token: %w", err)
	}
	if !ok {
		return Identity{}, fmt.Errorf("%w: the token's user no longer exists", ErrInvalidCredentials)
	}
	if claims.Epoch != epoch {
		return Identity{}, ErrTokenRevoked
	}
	name := claims.Username
	if name == "" {
		name = claims.Subject
	}
	return Identity{ID: claims.Subject, Name: name, Method: MethodJWT, Subjects: []string{claims.Subject}, TokenEpoch: claims.Epoch}, nil
}

func (a *Authenticator) fromKey(c Credentials) (Identity, error) {
	id := Identity{ID: c.UserID, Name: c.UserID}
	switch c.Protocol {
	case WebSocket:
		if a.keys.WS != "" {
			if !equalSecret(c.Token, a.keys.WS) {
				return Identity{}, ErrInvalidCredentials
			}
			id.Method, id.Subjects = MethodWSKey, []string{SubjectWSKey}
			return id, nil
		}
	default:
		if a.keys.API != "" {
			if !equalSecret(c.Token, a.keys.API) {
				return Identity{}, ErrInvalidCredentials
			}
			id.Method, id.Subjects = MethodAPIKey, []string{SubjectAPIKey}
			return id, nil
		}
	}
	// No key for this protocol: shadow users only while authentication
	// is off everywhere. With GRIN_API_KEY set, a WebSocket without
	// GRIN_API_KEY_WS needs a JWT (the Cat leaves it open).
	if a.keys.Open() {
		id.Method, id.Subjects = MethodShadow, []string{SubjectAnonymous}
		return id, nil
	}
	return Identity{}, ErrInvalidCredentials
}

// equalSecret compares a presented credential with a configured secret in
// constant time.
func equalSecret(given, want string) bool {
	return subtle.ConstantTimeCompare([]byte(given), []byte(want)) == 1
}

// IsInvalidCredentials reports whether err is an authentication failure.
func IsInvalidCredentials(err error) bool { return errors.Is(err, ErrInvalidCredentials) }
