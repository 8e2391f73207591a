package auth

import (
	"context"
	"crypto/rand"
	"database/sql"
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

// secretFile is where grin kept its generated JWT secret before it moved
// into the database (LoadOrCreateSecret).
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

// LoadOrCreateSecret returns grin's own JWT secret, kept in the database
// (table secrets), so every replica on one database signs and accepts the
// same tokens. The first start makes a random one: an insert that only the
// first replica's wins, and that every replica then reads. A secret an
// older grin kept in dataDir (jwt-secret) is moved into the database on
// the first start, so tokens issued before stay valid, and the file is
// removed.
//
// The secret is never logged, and no API returns it.
func LoadOrCreateSecret(ctx context.Context, db *sql.DB, dataDir string) ([]byte, error) {
	s, err := storedSecret(ctx, db)
	if err != nil || s != nil {
		return s, err
	}
	path := filepath.Join(dataDir, secretFile)
	candidate, err := readSecretFile(path)
	if err != nil {
		return nil, err
	}
	if candidate == nil {
		candidate = make([]byte, 48)
		if _, err := rand.Read(candidate); err != nil {
			return nil, fmt.Errorf("generate JWT secret: %w", err)
		}
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`,
		jwtSecretName, candidate, time.Now().UnixMilli()); err != nil {
		return nil, fmt.Errorf("store JWT secret: %w", err)
	}
	// Another replica's insert may have won: everyone uses the stored one.
	if s, err = storedSecret(ctx, db); err != nil {
		return nil, err
	}
	if s == nil {
		return nil, errors.New("store JWT secret: the database kept none")
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove %s, moved into the database: %w", path, err)
	}
	return s, nil
}

// jwtSecretName names the JWT secret in the secrets table.
const jwtSecretName = "jwt"

// storedSecret reads the JWT secret from db; nil when there is none yet.
func storedSecret(ctx context.Context, db *sql.DB) ([]byte, error) {
	var s []byte
	err := db.QueryRowContext(ctx, `SELECT value FROM secrets WHERE name = $1`, jwtSecretName).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read JWT secret: %w", err)
	}
	if len(s) < MinSecretBytes {
		return nil, fmt.Errorf("the JWT secret in the database is damaged (%d bytes); delete the row named %q of the table secrets to make a new one (every issued token stops working)", len(s), jwtSecretName)
	}
	return s, nil
}

// readSecretFile reads the secret an older grin kept at path; nil when
// there is no file.
func readSecretFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read JWT secret: %w", err)
	}
	s, err := base64.RawStdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(s) < MinSecretBytes {
		return nil, fmt.Errorf("the JWT secret in %s is damaged; delete it to make a new one (every issued token stops working)", path)
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
