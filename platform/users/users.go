// Package users keeps grin's internal users: the accounts that log in with a
// username and password and are named by a uuid4.
//
// A user's Cat permission dictionary is not a column here: it lives in the
// policy as grouping rules (see package policies), so what /users shows and
// what the enforcer decides are the same data.
package users

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/grin-ai/grin/policies"
)

// Sentinel errors; package api maps them to HTTP statuses.
var (
	ErrNotFound       = errors.New("user not found")
	ErrDuplicate      = errors.New("username already taken")
	ErrInvalid        = errors.New("invalid user")
	ErrBadCredentials = errors.New("invalid credentials")
	// ErrLastAdministrator refuses a change that would leave no internal
	// user able to edit the policy.
	ErrLastAdministrator = errors.New("no user would be left to administer the policy")
)

// AdminRole is the policy role of administrators.
const AdminRole = "role:admin"

// Limits on usernames and passwords, as the Cat has them; bcrypt reads at
// most 72 bytes, so a longer password is refused rather than cut.
const (
	MinUsername    = 2
	MaxUsername    = 128
	MinPassword    = 5
	MaxPasswordLen = 72
)

// User is an internal user as the API shows it: never with its password.
type User struct {
	ID          string
	Username    string
	Permissions policies.Dict
	// Roles are the policy roles the user holds beyond Cat permissions
	// (role:admin); they are granted in the policy.
	Roles     []string
	CreatedAt time.Time
}

// Changes are the fields of an update; nil fields stay as they are.
type Changes struct {
	Username    *string
	Password    *string
	Permissions policies.Dict // nil: unchanged; empty: no permissions
}

// Store is the user directory.
//
// Notes: safe for concurrent use. Exists is on every authenticated request
// and is answered from memory after the first lookup of an id.
type Store struct {
	db     *sql.DB
	policy *policies.Enforcer
	cost   int
	logger *slog.Logger

	mu    sync.RWMutex
	known map[string]bool // id -> exists; filled on demand, kept exact on change

	dummyHash []byte // compared against when a username is unknown

	onDelete []func(ctx context.Context, id string) error

	// adminMu serializes the changes that can take the last policy
	// administrator away (permission updates, deletions, policy
	// updates), so two of them cannot each count on the other's admin.
	adminMu sync.Mutex
}

// Option configures a Store.
type Option func(*Store)

// WithBcryptCost sets the bcrypt cost (default bcrypt.DefaultCost). Tests
// lower it; production should not.
func WithBcryptCost(cost int) Option { return func(s *Store) { s.cost = cost } }

// WithLogger sets the store's logger.
func WithLogger(l *slog.Logger) Option { return func(s *Store) { s.logger = l } }

// New returns a store over db whose permissions live in policy.
func New(db *sql.DB, policy *policies.Enforcer, opts ...Option) (*Store, error) {
	s := &Store{db: db, policy: policy, cost: bcrypt.DefaultCost, logger: slog.New(slog.DiscardHandler), known: map[string]bool{}}
	for _, o := range opts {
		o(s)
	}
	h, err := bcrypt.GenerateFromPassword([]byte("grin-timing-equalizer"), s.cost)
	if err != nil {
		return nil, fmt.Errorf("prepare password hashing: %w", err)
	}
	s.dummyHash = h
	return s, nil
}

// Bootstrap creates the default users on first start: "admin" with every
// permission and "user" with the base ones. The admin password is
// adminPassword, or when empty a random one that is returned so the caller
// can show it once; "user" gets userPassword, or when empty cannot log in
// with a password. It does nothing when any user exists.
func (s *Store) Bootstrap(ctx context.Context, adminPassword, userPassword string) (generated string, err error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
		return "", fmt.Errorf("count users: %w", err)
	}
	if n > 0 {
		return "", nil
	}
	if adminPassword == "" {
		b := make([]byte, 18)
		rand.Read(b)
		adminPassword = base64.RawURLEncoding.EncodeToString(b)
		generated = adminPassword
	}
	admin, err := s.Create(ctx, "admin", adminPassword, policies.FullDict())
	if err != nil {
		return "", fmt.Errorf("create default admin: %w", err)
	}
	// The Cat's full dictionary covers the Cat's resources; role:admin
	// also reaches the policy itself and every user's data.
	if err := s.policy.Grant(ctx, admin.ID, AdminRole); err != nil {
		return "", fmt.Errorf("create default admin: %w", err)
	}
	if userPassword != "" {
		_, err = s.Create(ctx, "user", userPassword, policies.BaseDict())
	} else {
		_, err = s.create(ctx, "user", "", policies.BaseDict())
	}
	if err != nil {
		return "", fmt.Errorf("create default user: %w", err)
	}
	return generated, nil
}

// ValidateUsername and ValidatePassword say what is wrong with a value, in
// a sentence for the person who typed it.
func ValidateUsername(name string) error {
	n := utf8.RuneCountInString(name)
	switch {
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("%w: the username must not start or end with spaces", ErrInvalid)
	case n < MinUsername:
		return fmt.Errorf("%w: the username must be at least %d characters", ErrInvalid, MinUsername)
	case n > MaxUsername:
		return fmt.Errorf("%w: the username must be at most %d characters", ErrInvalid, MaxUsername)
	case !utf8.ValidString(name) || strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) >= 0:
		return fmt.Errorf("%w: the username must be printable text, without control characters", ErrInvalid)
	}
	return nil
}

// ValidatePassword checks the Cat's minimum and bcrypt's maximum.
func ValidatePassword(pw string) error {
	switch {
	case utf8.RuneCountInString(pw) < MinPassword:
		return fmt.Errorf("%w: the password must be at least %d characters", ErrInvalid, MinPassword)
	case len(pw) > MaxPasswordLen:
		return fmt.Errorf("%w: the password must be at most %d bytes", ErrInvalid, MaxPasswordLen)
	}
	return nil
}

// Create adds a user with a fresh uuid4.
func (s *Store) Create(ctx context.Context, username, password string, perms policies.Dict) (User, error) {
	if err := errors.Join(ValidateUsername(username), ValidatePassword(password)); err != nil {
		return User{}, err
	}
	return s.create(ctx, username, password, perms)
}

func (s *Store) create(ctx context.Context, username, password string, perms policies.Dict) (User, error) {
	if perms == nil {
		perms = policies.BaseDict()
	}
	if err := perms.Validate(); err != nil {
		return User{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	hash := ""
	if password != "" {
		h, err := bcrypt.GenerateFromPassword([]byte(password), s.cost)
		if err != nil {
			return User{}, fmt.Errorf("hash password: %w", err)
		}
		hash = string(h)
	}
	u := User{ID: uuid.NewString(), Username: username, CreatedAt: time.Now().UTC()}
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO users (id, username, password_hash, created_at) VALUES (?, ?, ?, ?)`,
		u.ID, u.Username, hash, u.CreatedAt.UnixMilli())
	if isUniqueViolation(err) {
		return User{}, fmt.Errorf("%w: %q", ErrDuplicate, username)
	}
	if err != nil {
		return User{}, fmt.Errorf("create user %q: %w", username, err)
	}
	if err := s.policy.SetPermissions(ctx, u.ID, perms); err != nil {
		// Leave no user without the permissions the caller asked for.
		s.db.ExecContext(context.WithoutCancel(ctx), `DELETE FROM users WHERE id = ?`, u.ID)
		return User{}, fmt.Errorf("create user %q: %w", username, err)
	}
	return s.withPermissions(u)
}

// Get returns the user with the given id.
func (s *Store) Get(ctx context.Context, id string) (User, error) {
	u, _, err := s.scanOne(ctx, `SELECT id, username, password_hash, created_at FROM users WHERE id = ?`, id)
	if err != nil {
		return User{}, err
	}
	return s.withPermissions(u)
}

// ByUsername returns the user with the given username.
func (s *Store) ByUsername(ctx context.Context, username string) (User, error) {
	u, _, err := s.scanOne(ctx, `SELECT id, username, password_hash, created_at FROM users WHERE username = ?`, username)
	if err != nil {
		return User{}, err
	}
	return s.withPermissions(u)
}

// Exists reports whether an internal user with this id exists. It is on
// the path of every JWT-authenticated request.
func (s *Store) Exists(ctx context.Context, id string) (bool, error) {
	s.mu.RLock()
	ok := s.known[id]
	s.mu.RUnlock()
	if ok {
		return true, nil
	}
	// A miss holds the lock across the lookup so that a Delete cannot
	// slip between the lookup and the remembering and leave a deleted id
	// remembered as existing.
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE id = ?`, id).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("look up user %q: %w", id, err)
	}
	if n > 0 {
		// Only existing ids are remembered: a stream of made-up ids must
		// not grow the map.
		s.known[id] = true
	}
	return n > 0, nil
}

// List returns users in creation order.
func (s *Store) List(ctx context.Context, skip, limit int) ([]User, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT id, username, created_at FROM users ORDER BY seq LIMIT ? OFFSET ?`, limit, skip)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		var u User
		var ms int64
		if err := rows.Scan(&u.ID, &u.Username, &ms); err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		u.CreatedAt = time.UnixMilli(ms).UTC()
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	for i := range out {
		if out[i], err = s.withPermissions(out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Update changes the given fields of a user.
func (s *Store) Update(ctx context.Context, id string, c Changes) (User, error) {
	var errs []error
	if c.Username != nil {
		errs = append(errs, ValidateUsername(*c.Username))
	}
	if c.Password != nil {
		errs = append(errs, ValidatePassword(*c.Password))
	}
	if c.Permissions != nil {
		if err := c.Permissions.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%w: %v", ErrInvalid, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return User{}, err
	}
	if _, err := s.Get(ctx, id); err != nil {
		return User{}, err
	}
	if c.Username != nil {
		_, err := s.db.ExecContext(ctx, `UPDATE users SET username = ? WHERE id = ?`, *c.Username, id)
		if isUniqueViolation(err) {
			return User{}, fmt.Errorf("%w: %q", ErrDuplicate, *c.Username)
		}
		if err != nil {
			return User{}, fmt.Errorf("update user %s: %w", id, err)
		}
	}
	if c.Password != nil {
		h, err := bcrypt.GenerateFromPassword([]byte(*c.Password), s.cost)
		if err != nil {
			return User{}, fmt.Errorf("hash password: %w", err)
		}
		if _, err := s.db.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE id = ?`, string(h), id); err != nil {
			return User{}, fmt.Errorf("update user %s: %w", id, err)
		}
	}
	if c.Permissions != nil {
		s.adminMu.Lock()
		defer s.adminMu.Unlock()
		keep, err := s.keepAdministrator(ctx, "")
		if err != nil {
			return User{}, fmt.Errorf("update user %s: %w", id, err)
		}
		if err := s.policy.SetPermissions(ctx, id, c.Permissions, keep...); err != nil {
			return User{}, fmt.Errorf("update user %s: %w", id, err)
		}
	}
	return s.Get(ctx, id)
}

// OnDelete registers fn to erase what other packages keep of a user
// (memories, history, sessions) when the user is deleted. Register before
// serving; fn runs after the user's row is gone, so no new request of the
// user can add data while it runs.
func (s *Store) OnDelete(fn func(ctx context.Context, id string) error) {
	s.onDelete = append(s.onDelete, fn)
}

// Delete removes a user and its grants, erases what OnDelete functions
// keep of it, and returns the user as it was. The user's tokens stop
// working at once.
func (s *Store) Delete(ctx context.Context, id string) (User, error) {
	u, err := s.Get(ctx, id)
	if err != nil {
		return User{}, err
	}
	if err := s.remove(ctx, id); err != nil {
		return User{}, err
	}
	var errs []error
	for _, fn := range s.onDelete {
		errs = append(errs, fn(ctx, id))
	}
	if err := errors.Join(errs...); err != nil {
		return User{}, fmt.Errorf("erase the data of deleted user %s: %w", id, err)
	}
	return u, nil
}

// remove deletes the user's row and grants, unless that would leave no
// policy administrator among the other users.
func (s *Store) remove(ctx context.Context, id string) error {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	keep, err := s.keepAdministrator(ctx, id)
	if err != nil {
		return fmt.Errorf("delete user %s: %w", id, err)
	}
	for _, k := range keep {
		// The row and grants go together below, so the policy in force,
		// without the deleted user, is what stands after.
		if err := k(func(sub string) (bool, error) { return s.policy.IsAdministrator([]string{sub}, sub) }); err != nil {
			return fmt.Errorf("delete user %s: %w", id, err)
		}
	}
	s.mu.Lock()
	res, err := s.db.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, id)
	if err == nil {
		// From here on the user's tokens fail: Exists answers false.
		delete(s.known, id)
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("delete user %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	if err := s.policy.RemoveSubject(ctx, id); err != nil {
		return fmt.Errorf("delete user %s: %w", id, err)
	}
	return nil
}

// UpdatePolicy puts new policy documents in force (or, with dryRun, only
// validates them), refusing with ErrLastAdministrator documents under which
// no internal user could edit the policy any more.
func (s *Store) UpdatePolicy(ctx context.Context, docs policies.Documents, dryRun bool) error {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	keep, err := s.keepAdministrator(ctx, "")
	if err != nil {
		return fmt.Errorf("update policy: %w", err)
	}
	if dryRun {
		return s.policy.Validate(ctx, docs, keep...)
	}
	return s.policy.Update(ctx, docs, keep...)
}

// keepAdministrator returns the check that a change leaves at least one
// internal user (other than gone, who is being deleted) a policy
// administrator, or none when no internal user is one now: a change cannot
// take away what is not there, and grin run by OIDC or key administrators
// alone must still manage its users. The caller holds adminMu.
//
// Policy administrators found now are asked first, so the check usually
// costs one decision; only when they all lose the right are the others
// asked, in creation order.
func (s *Store) keepAdministrator(ctx context.Context, gone string) ([]policies.Keep, error) {
	ids, err := s.allIDs(ctx)
	if err != nil {
		return nil, err
	}
	first := -1
	for i, id := range ids {
		ok, err := s.policy.IsAdministrator([]string{id}, id)
		if err != nil {
			return nil, err
		}
		if ok {
			first = i
			break
		}
	}
	if first < 0 {
		return nil, nil
	}
	ids[0], ids[first] = ids[first], ids[0]
	keep := func(isAdmin func(string) (bool, error)) error {
		for _, id := range ids {
			if id == gone {
				continue
			}
			ok, err := isAdmin(id)
			if err != nil {
				return err
			}
			if ok {
				return nil
			}
		}
		return ErrLastAdministrator
	}
	return []policies.Keep{keep}, nil
}

// allIDs lists every user's id in creation order.
func (s *Store) allIDs(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM users ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("list user ids: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("list user ids: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list user ids: %w", err)
	}
	return ids, nil
}

// Authenticate checks a username and password. Unknown usernames take as
// long as wrong passwords, so timing does not tell which usernames exist.
func (s *Store) Authenticate(ctx context.Context, username, password string) (User, error) {
	u, hash, err := s.scanOne(ctx, `SELECT id, username, password_hash, created_at FROM users WHERE username = ?`, username)
	if errors.Is(err, ErrNotFound) {
		bcrypt.CompareHashAndPassword(s.dummyHash, []byte(password))
		return User{}, ErrBadCredentials
	}
	if err != nil {
		return User{}, err
	}
	if hash == "" {
		// No password login for this user; still spend the time.
		bcrypt.CompareHashAndPassword(s.dummyHash, []byte(password))
		return User{}, ErrBadCredentials
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return User{}, ErrBadCredentials
	}
	return s.withPermissions(u)
}

func (s *Store) scanOne(ctx context.Context, query string, arg string) (User, string, error) {
	var u User
	var hash string
	var ms int64
	err := s.db.QueryRowContext(ctx, query, arg).Scan(&u.ID, &u.Username, &hash, &ms)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, "", ErrNotFound
	}
	if err != nil {
		return User{}, "", fmt.Errorf("look up user: %w", err)
	}
	u.CreatedAt = time.UnixMilli(ms).UTC()
	return u, hash, nil
}

func (s *Store) withPermissions(u User) (User, error) {
	d, roles, err := s.policy.Access(u.ID)
	if err != nil {
		return User{}, err
	}
	u.Permissions, u.Roles = d, roles
	return u, nil
}

// isUniqueViolation recognizes SQLite's UNIQUE constraint error without
// importing the driver's internals.
func isUniqueViolation(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}
