package auth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/grin-ai/grin/policies"
)

// MinSecretBytes is the shortest JWT secret grin accepts: HS256 wants a key
// as long as its hash.
const MinSecretBytes = 32

// secretFile keeps the generated JWT secret in the data directory.
const secretFile = "jwt-secret"

// Tokens issues and verifies grin's own JWTs (HS256).
//
// Notes: safe for concurrent use; immutable after NewTokens.
type Tokens struct {
	secret []byte
	ttl    time.Duration
	now    func() time.Time
}

// NewTokens returns a token service. secret must be at least MinSecretBytes
// long; ttl is the lifetime of issued tokens.
func NewTokens(secret []byte, ttl time.Duration) (*Tokens, error) {
	if len(secret) < MinSecretBytes {
		return nil, fmt.Errorf("the JWT secret is %d bytes; use at least %d (or leave GRIN_JWT_SECRET unset and grin generates one)", len(secret), MinSecretBytes)
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("the token lifetime must be positive, got %v", ttl)
	}
	return &Tokens{secret: secret, ttl: ttl, now: time.Now}, nil
}

// LoadOrCreateSecret returns the secret kept in dir, creating a random one
// (readable by the owner only) on first use, so restarts keep tokens valid
// and no one can forge them with a well-known default.
func LoadOrCreateSecret(dir string) ([]byte, error) {
	path := filepath.Join(dir, secretFile)
	b, err := os.ReadFile(path)
	if err == nil {
		s, err := base64.RawStdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(s) < MinSecretBytes {
			return nil, fmt.Errorf("the JWT secret in %s is damaged; delete it to make a new one (every issued token stops working)", path)
		}
		return s, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read JWT secret: %w", err)
	}
	s := make([]byte, 48)
	if _, err := rand.Read(s); err != nil {
		return nil, fmt.Errorf("generate JWT secret: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store JWT secret: %w", err)
	}
	if _, err := f.WriteString(base64.RawStdEncoding.EncodeToString(s) + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("store JWT secret: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("store JWT secret: %w", err)
	}
	return s, nil
}

// Claims are the claims of a grin token, as the Cat writes them.
type Claims struct {
	Username    string        `json:"username"`
	Permissions policies.Dict `json:"permissions"`
	// Epoch is the user's token epoch at issue (grin's own claim); a token
	// whose epoch is no longer the user's was revoked. Tokens without it
	// carry epoch 0, which stays valid until the user's first revocation.
	Epoch int64 `json:"grin_epoch,omitempty"`
	jwt.RegisteredClaims
}

// Issue signs a token for an internal user whose token epoch is epoch.
func (t *Tokens) Issue(userID, username string, perms policies.Dict, epoch int64) (string, error) {
	now := t.now()
	c := Claims{
		Username:    username,
		Permissions: perms,
		Epoch:       epoch,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   userID,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(t.ttl)),
		},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.secret)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// Verify checks a token's signature, algorithm and expiry. Only HS256 is
// accepted: "none", RS/HS confusion and every other algorithm fail.
func (t *Tokens) Verify(token string) (Claims, error) {
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return t.secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(t.now),
	)
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %v", ErrInvalidCredentials, err)
	}
	if c.Subject == "" {
		return Claims{}, fmt.Errorf("%w: the token names no user", ErrInvalidCredentials)
	}
	return c, nil
}

// LooksLikeJWT reports whether a credential has the shape of a JWT (three
// base64url parts), which decides between the token and the key path, as
// in the Cat.
func LooksLikeJWT(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return false
	}
	for _, p := range parts {
		for _, r := range p {
			if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '=') {
				return false
			}
		}
	}
	return true
}
