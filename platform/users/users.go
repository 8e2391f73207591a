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
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/mtibben/confusables"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/text/unicode/norm"

	"github.com/grin-ai/grin/platform/cluster"
	"github.com/grin-ai/grin/platform/database"
	"github.com/grin-ai/grin/policies"
)

// Sentinel errors; package api maps them to HTTP statuses.
var (
	ErrNotFound  = errors.New("user not found")
	ErrDuplicate = errors.New("username already taken")
	// ErrConfusable: the username looks like an existing one (UTS #39
	// confusables), such as "аdmin" with a Cyrillic "а" beside "admin".
	ErrConfusable     = errors.New("username too similar to an existing one")
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
	ID       string
	Username string
	// Permissions are what the user may actually do: granted, given by a
	// role or a rule, and not refused by a deny rule.
	Permissions policies.Dict
	// Denied are the permissions granted to the user (directly or through
	// roles) that a deny rule refuses.
	Denied policies.Dict
	// Roles are the policy roles the user holds beyond Cat permissions
	// (role:admin); they are granted in the policy.
	Roles     []string
	CreatedAt time.Time
	// LastLogin is when the user last logged in with a password; zero
	// for a user who never has.
	LastLogin time.Time
	// TokenEpoch is written into the user's tokens; tokens with an older
	// epoch were revoked (a password change, log out everywhere).
	TokenEpoch int64
}

// Changes are the fields of an update; nil fields stay as they are.
type Changes struct {
	Username    *string
	Password    *string
	Permissions policies.Dict // nil: unchanged; empty: no permissions
}

// Store is the user directory.
//
// Usernames are stored in Unicode NFC, and a new or changed username may
// not look like another user's (same confusables skeleton, UTS #39).
//
// Notes: safe for concurrent use. TokenEpoch is on every authenticated
// request and is answered from memory after the first lookup of an id.
type Store struct {
	db     *sql.DB
	engine database.Engine
	policy *policies.Enforcer
	cost   int
	logger *slog.Logger

	mu    sync.RWMutex
	known map[string]int64 // id -> token epoch of existing users; filled on demand, dropped on change

	dummyHash []byte // compared against when a username is unknown

	onDelete []func(ctx context.Context, id string) error
	onRevoke []func(ctx context.Context, id string, epoch int64)
	bus      cluster.Bus

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

// WithBus makes the store one of several replicas' on one database: it
// announces users created, renamed, deleted and tokens revoked, and drops
// what it remembers of a user (their token epoch) when another replica
// announces a change to them, so a revoked token or a deleted user fails
// on every replica. Follow starts listening.
func WithBus(b cluster.Bus) Option { return func(s *Store) { s.bus = b } }

// New returns a store over db whose permissions live in policy.
func New(db *sql.DB, policy *policies.Enforcer, opts ...Option) (*Store, error) {
	s := &Store{db: db, engine: database.EngineOf(db), policy: policy, cost: bcrypt.DefaultCost, logger: slog.New(slog.DiscardHandler), known: map[string]int64{},
		bus: cluster.Local{}}
	for _, o := range opts {
		o(s)
	}
	s.dummyHash = []byte(equalizerHash)
	if s.cost != bcrypt.DefaultCost {
		h, err := bcrypt.GenerateFromPassword([]byte("grin-timing-equalizer"), s.cost)
		if err != nil {
			return nil, fmt.Errorf("prepare password hashing: %w", err)
		}
		s.dummyHash = h
	}
	return s, nil
}

// equalizerHash is a bcrypt hash, at bcrypt.DefaultCost, of a string no
// one logs in with: a login naming an unknown user is compared against
// it, so that it takes as long as one naming a known user. Comparing
// costs the same whatever the salt, so it is computed once, here, rather
// than at every start, where it was most of the time to the first answer
// (one bcrypt at cost 10, about 60–100 ms on 2 vCPUs).
const equalizerHash = "$2a$10$NvLp6cLv/Taj2umQgKihAea54tc85PzJTJJYHMbvwOGPNG5BIBHfG"

// Bootstrap creates the default users on first start: "admin" with every
// permission and "user" with the base ones. The admin password is
// adminPassword, or when empty a random one that is returned so the caller
// can show it once; "user" gets userPassword, or when empty cannot log in
// with a password. It does nothing more when any user exists; it does
// give users created before usernames had skeletons theirs, so that new
// names are checked against every existing one.
func (s *Store) Bootstrap(ctx context.Context, adminPassword, userPassword string) (generated string, err error) {
	if err := s.fillSkeletons(ctx); err != nil {
		return "", err
	}
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

// fillSkeletons computes the skeleton of users stored without one.
func (s *Store) fillSkeletons(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `SELECT id, username FROM users WHERE username_skeleton IS NULL`)
	if err != nil {
		return fmt.Errorf("read usernames without skeletons: %w", err)
	}
	var todo [][2]string
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			rows.Close()
			return fmt.Errorf("read usernames without skeletons: %w", err)
		}
		todo = append(todo, [2]string{id, name})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read usernames without skeletons: %w", err)
	}
	// One connection: the rows are closed before the updates.
	for _, u := range todo {
		if _, err := s.db.ExecContext(ctx, `UPDATE users SET username_skeleton = $1 WHERE id = $2`, Skeleton(u[1]), u[0]); err != nil {
			return fmt.Errorf("store the skeleton of %q: %w", u[1], err)
		}
	}
	return nil
}

// NormalizeUsername returns the form a username is stored and looked up
// in: Unicode NFC, so that "é" typed as one code point or as "e" and a
// combining accent names the same user.
func NormalizeUsername(name string) string { return norm.NFC.String(name) }

// Skeleton is the Unicode confusables skeleton (UTS #39) of a username:
// names that look alike, such as "admin" and "аdmin" with a Cyrillic "а",
// have the same skeleton. It is for comparing, never for showing.
func Skeleton(name string) string { return confusables.Skeleton(NormalizeUsername(name)) }

// ValidateUsername and ValidatePassword say what is wrong with a value, in
// a sentence for the person who typed it. Usernames are checked as given
// and stored normalized (NormalizeUsername).
func ValidateUsername(name string) error {
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: the username is not valid UTF-8 text", ErrInvalid)
	}
	if strings.ContainsRune(name, utf8.RuneError) {
		// What a decoder leaves of invalid bytes: refused rather than
		// stored as a name no one can type.
		return fmt.Errorf("%w: the username must not contain U+FFFD, the replacement character left where text was not valid UTF-8", ErrInvalid)
	}
	name = NormalizeUsername(name)
	n := utf8.RuneCountInString(name)
	switch {
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("%w: the username must not start or end with spaces", ErrInvalid)
	case n < MinUsername:
		return fmt.Errorf("%w: the username must be at least %d characters", ErrInvalid, MinUsername)
	case n > MaxUsername:
		return fmt.Errorf("%w: the username must be at most %d characters", ErrInvalid, MaxUsername)
	case strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) >= 0:
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
	return s.create(ctx, NormalizeUsername(username), password, perms)
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
	skel := Skeleton(username)
	// One statement checks for a look-alike and inserts, so two creations
	// at once cannot both pass the check.
	res, err := s.namingWrite(ctx, skel,
		`INSERT INTO users (id, username, username_skeleton, password_hash, created_at)
		 SELECT $1, $2, $3, $4, CAST($5 AS BIGINT) WHERE NOT EXISTS (SELECT 1 FROM users WHERE username_skeleton = $3)`,
		u.ID, u.Username, skel, hash, u.CreatedAt.UnixMilli())
	if database.IsUniqueViolation(err) {
		return User{}, fmt.Errorf("%w: %q", ErrDuplicate, username)
	}
	if err != nil {
		return User{}, fmt.Errorf("create user %q: %w", username, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return User{}, s.lookAlike(ctx, username, skel, "")
	}
	if err := s.policy.SetPermissions(ctx, u.ID, perms); err != nil {
		// Leave no user without the permissions the caller asked for.
		s.db.ExecContext(context.WithoutCancel(ctx), `DELETE FROM users WHERE id = $1`, u.ID)
		return User{}, fmt.Errorf("create user %q: %w", username, err)
	}
	// Rules naming user:<username> apply to the new user from now on.
	if err := s.policy.UserAdded(ctx, username); err != nil {
		return User{}, fmt.Errorf("create user %q: %w", username, err)
	}
	s.announce(ctx, cluster.TopicUser, u.ID)
	return s.withPermissions(u)
}

// lookAlike explains why username, with skeleton skel, was refused: the
// user (other than except) whose name it is or resembles.
func (s *Store) lookAlike(ctx context.Context, username, skel, except string) error {
	var other string
	err := s.db.QueryRowContext(ctx, `SELECT username FROM users WHERE username_skeleton = $1 AND id <> $2 LIMIT 1`, skel, except).Scan(&other)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ErrNotFound // the user being renamed is gone
	case err != nil:
		return fmt.Errorf("look up usernames like %q: %w", username, err)
	case other == username:
		return fmt.Errorf("%w: %q", ErrDuplicate, username)
	}
	return fmt.Errorf("%w: %q looks like the existing username %q (Unicode confusables); choose a name that reads differently", ErrConfusable, username, other)
}

// userColumns are the columns scanOne reads.
const userColumns = `id, username, password_hash, created_at, token_epoch, last_login`

// Get returns the user with the given id.
func (s *Store) Get(ctx context.Context, id string) (User, error) {
	u, _, err := s.scanOne(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id)
	if err != nil {
		return User{}, err
	}
	return s.withPermissions(u)
}

// ByUsername returns the user with the given username.
func (s *Store) ByUsername(ctx context.Context, username string) (User, error) {
	u, _, err := s.byUsername(ctx, username)
	if err != nil {
		return User{}, err
	}
	return s.withPermissions(u)
}

// byUsername looks a username up in its stored form (NFC), and as given
// for names stored before usernames were normalized.
func (s *Store) byUsername(ctx context.Context, username string) (User, string, error) {
	const q = `SELECT ` + userColumns + ` FROM users WHERE username = $1`
	name := NormalizeUsername(username)
	u, hash, err := s.scanOne(ctx, q, name)
	if errors.Is(err, ErrNotFound) && name != username {
		u, hash, err = s.scanOne(ctx, q, username)
	}
	return u, hash, err
}

// Exists reports whether an internal user with this id exists.
func (s *Store) Exists(ctx context.Context, id string) (bool, error) {
	_, ok, err := s.TokenEpoch(ctx, id)
	return ok, err
}

// TokenEpoch returns the epoch a token of user id must carry to be valid,
// and whether the user exists. It is on the path of every JWT-authenticated
// request.
func (s *Store) TokenEpoch(ctx context.Context, id string) (epoch int64, ok bool, err error) {
	s.mu.RLock()
	epoch, ok = s.known[id]
	s.mu.RUnlock()
	if ok {
		return epoch, true, nil
	}
	if epoch, ok, err = s.lookUpEpoch(ctx, id); err != nil || !ok {
		return epoch, ok, err
	}
	// The first sight of a user on this replica: another replica may have
	// created them, or changed their grants, a moment ago, before its
	// news arrived here. Their grants are read now, so their first request
	// here is decided as it would be there.
	if s.engine == database.Postgres {
		if err := s.policy.SyncSubject(ctx, id); err != nil {
			return 0, false, err
		}
	}
	return epoch, true, nil
}

// lookUpEpoch reads and remembers an existing user's token epoch. It holds
// the lock across the lookup so that a Delete or a revocation cannot slip
// between the lookup and the remembering and leave a deleted id, or an old
// epoch, remembered.
func (s *Store) lookUpEpoch(ctx context.Context, id string) (epoch int64, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	err = s.db.QueryRowContext(ctx, `SELECT token_epoch FROM users WHERE id = $1`, id).Scan(&epoch)
	if errors.Is(err, sql.ErrNoRows) {
		// Only existing ids are remembered: a stream of made-up ids must
		// not grow the map.
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("look up user %q: %w", id, err)
	}
	s.known[id] = epoch
	return epoch, true, nil
}

// Follow drops, until ctx is done, what the store remembers of a user that
// another replica changed: created, renamed, deleted, or their tokens
// revoked. After a gap in the news (Missed) it forgets every user, which
// costs one lookup per user on their next request.
func (s *Store) Follow(ctx context.Context) {
	drop := func(_ context.Context, e cluster.Event) {
		s.mu.Lock()
		if e.Missed {
			clear(s.known)
		} else {
			delete(s.known, e.Key)
		}
		s.mu.Unlock()
	}
	for _, topic := range []string{cluster.TopicUser, cluster.TopicUserDeleted, cluster.TopicTokensRevoked} {
		context.AfterFunc(ctx, s.bus.Subscribe(topic, drop))
	}
}

// announce tells the other replicas of a change to user id. The change is
// stored already: a failure is logged, and they catch up when their bus
// reconnects (Missed).
func (s *Store) announce(ctx context.Context, topic, id string) {
	if err := s.bus.Publish(ctx, cluster.Event{Topic: topic, Key: id}); err != nil {
		s.logger.Error("the other replicas were not told of a change to a user", "topic", topic, "user", id, "err", err)
	}
}

// OnRevoke registers fn to run after a user's tokens were revoked, with
// the epoch tokens must now carry: it closes what was opened with the old
// ones (sockets). Register before serving.
func (s *Store) OnRevoke(fn func(ctx context.Context, id string, epoch int64)) {
	s.onRevoke = append(s.onRevoke, fn)
}

// RevokeTokens makes every token issued to the user so far invalid ("log
// out everywhere"); tokens issued afterwards work.
func (s *Store) RevokeTokens(ctx context.Context, id string) error {
	return s.revoke(ctx, id, `UPDATE users SET token_epoch = token_epoch + 1 WHERE id = $1`, id)
}

// forget runs query, which changes or deletes user id's row, and drops the
// user's cached token epoch. The cache entry goes under the lock that a
// lookup holds, so no lookup remembers the old row afterwards. It reports
// whether a row changed.
func (s *Store) forget(ctx context.Context, id, query string, args ...any) (bool, error) {
	s.mu.Lock()
	res, err := s.db.ExecContext(ctx, query, args...)
	if err == nil {
		delete(s.known, id)
	}
	s.mu.Unlock()
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n != 0, nil
}

// revoke runs query, which must move the user's token epoch on, and tells
// the OnRevoke functions.
func (s *Store) revoke(ctx context.Context, id, query string, args ...any) error {
	found, err := s.forget(ctx, id, query, args...)
	if err != nil {
		return fmt.Errorf("revoke the tokens of user %s: %w", id, err)
	}
	if !found {
		return ErrNotFound
	}
	epoch, ok, err := s.TokenEpoch(ctx, id)
	if err != nil || !ok {
		return err // deleted meanwhile: its tokens fail anyway
	}
	for _, fn := range s.onRevoke {
		fn(ctx, id, epoch)
	}
	return nil
}

// Sort is an order of users in List.
type Sort string

// The orders of List; a leading "-" reverses one. Users who never logged
// in come last by last login, in either direction.
const (
	ByCreated       Sort = "created_at"
	ByCreatedDesc   Sort = "-created_at"
	ByUsername      Sort = "username"
	ByUsernameDesc  Sort = "-username"
	ByLastLogin     Sort = "last_login"
	ByLastLoginDesc Sort = "-last_login"
)

// Sorts lists the orders List knows, for documentation and validation.
func Sorts() []Sort {
	return []Sort{ByCreated, ByCreatedDesc, ByUsername, ByUsernameDesc, ByLastLogin, ByLastLoginDesc}
}

// orderBy is the SQL of each Sort; ties keep creation order, so pages do
// not overlap.
var orderBy = map[Sort]string{
	ByCreated:       "seq",
	ByCreatedDesc:   "seq DESC",
	ByUsername:      foldedUsername + ", seq",
	ByUsernameDesc:  foldedUsername + " DESC, seq",
	ByLastLogin:     "last_login IS NULL, last_login, seq",
	ByLastLoginDesc: "last_login IS NULL, last_login DESC, seq",
}

// foldedUsername is the username with ASCII letters in lower case, for
// ordering and searching: SQLite's NOCASE and LIKE fold ASCII only, and
// PostgreSQL is made to do the same (its lower() and ILIKE fold every
// script, by the server's locale). On PostgreSQL it is rewritten
// (postgresFold); bytes compare in code-point order on both.
const foldedUsername = "username COLLATE NOCASE"

// postgresFold folds the username on PostgreSQL; ordered COLLATE "C".
const postgresFold = `translate(username, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')`

// Query selects a page of users for List.
type Query struct {
	Skip, Limit int
	// Search keeps the users whose username contains it (case-insensitive
	// for ASCII letters, compared in NFC) or whose id it is; empty keeps all.
	Search string
	// Sort orders the users; empty is creation order.
	Sort Sort
}

// List returns a page of the users q selects, and how many it selects in
// all.
func (s *Store) List(ctx context.Context, q Query) (page []User, total int, err error) {
	order, ok := orderBy[q.Sort]
	if q.Sort == "" {
		order, ok = orderBy[ByCreated], true
	}
	if !ok {
		return nil, 0, fmt.Errorf("%w: unknown order %q", ErrInvalid, q.Sort)
	}
	if s.engine == database.Postgres {
		order = strings.ReplaceAll(order, foldedUsername, postgresFold+` COLLATE "C"`)
	}
	where, args := "", []any{}
	if q.Search != "" {
		term := NormalizeUsername(q.Search)
		like := "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(term) + "%"
		// SQLite's LIKE ignores the case of ASCII letters; PostgreSQL's
		// compares the folded name with the folded term.
		match := `username LIKE $1 ESCAPE '\'`
		if s.engine == database.Postgres {
			match = postgresFold + ` LIKE $1 ESCAPE '\'`
			like = asciiLower(like)
		}
		where = ` WHERE ` + match + ` OR id = $2`
		args = append(args, like, term)
	}
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM users`+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count users: %w", err)
	}
	rows, err := s.db.QueryContext(ctx,
		`SELECT id, username, created_at, last_login FROM users`+where+` ORDER BY `+order+` LIMIT $`+strconv.Itoa(len(args)+1)+` OFFSET $`+strconv.Itoa(len(args)+2),
		append(args, q.Limit, q.Skip)...)
	if err != nil {
		return nil, 0, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var u User
		var ms int64
		var last sql.NullInt64
		if err := rows.Scan(&u.ID, &u.Username, &ms, &last); err != nil {
			return nil, 0, fmt.Errorf("list users: %w", err)
		}
		u.CreatedAt = time.UnixMilli(ms).UTC()
		u.LastLogin = lastLogin(last)
		page = append(page, u)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list users: %w", err)
	}
	for i := range page {
		if page[i], err = s.withPermissions(page[i]); err != nil {
			return nil, 0, err
		}
	}
	return page, total, nil
}

// RecordLogin notes that the user logged in at t (LastLogin).
func (s *Store) RecordLogin(ctx context.Context, id string, t time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE users SET last_login = $1 WHERE id = $2`, t.UnixMilli(), id); err != nil {
		return fmt.Errorf("record the login of user %s: %w", id, err)
	}
	return nil
}

// asciiLower is s with the ASCII letters in lower case, and only those.
func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

func lastLogin(ms sql.NullInt64) time.Time {
	if !ms.Valid {
		return time.Time{}
	}
	return time.UnixMilli(ms.Int64).UTC()
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
	before, err := s.Get(ctx, id)
	if err != nil {
		return User{}, err
	}
	// What can still be refused is asked before anything is written, so
	// a refused update changes nothing: a name another user's looks like,
	// then the permissions (the last administrator's keep check).
	if c.Username != nil {
		name := NormalizeUsername(*c.Username)
		if err := s.lookAlike(ctx, name, Skeleton(name), id); !errors.Is(err, ErrNotFound) {
			return User{}, err
		}
	}
	if c.Permissions != nil {
		release, err := s.administrators(ctx)
		if err != nil {
			return User{}, fmt.Errorf("update user %s: %w", id, err)
		}
		defer release()
		keep, err := s.keepAdministrator(ctx, "")
		if err != nil {
			return User{}, fmt.Errorf("update user %s: %w", id, err)
		}
		if err := s.policy.SetPermissions(ctx, id, c.Permissions, keep...); err != nil {
			return User{}, fmt.Errorf("update user %s: %w", id, err)
		}
	}
	if c.Username != nil {
		name := NormalizeUsername(*c.Username)
		skel := Skeleton(name)
		// A rename may not take a name that looks like another user's;
		// one statement checks and renames. The policy's rules naming the
		// user as user:<username> are renamed with it.
		err := s.policy.RenameUser(ctx, before.Username, name, func() error {
			res, err := s.namingWrite(ctx, skel,
				`UPDATE users SET username = $1, username_skeleton = $2 WHERE id = $3
				 AND NOT EXISTS (SELECT 1 FROM users WHERE username_skeleton = $2 AND id <> $3)`,
				name, skel, id)
			if database.IsUniqueViolation(err) {
				return fmt.Errorf("%w: %q", ErrDuplicate, name)
			}
			if err != nil {
				return fmt.Errorf("update user %s: %w", id, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return s.lookAlike(ctx, name, skel, id)
			}
			return nil
		})
		if err != nil {
			return User{}, err
		}
	}
	if c.Password != nil {
		h, err := bcrypt.GenerateFromPassword([]byte(*c.Password), s.cost)
		if err != nil {
			return User{}, fmt.Errorf("hash password: %w", err)
		}
		// A new password revokes every token issued with the old one.
		if err := s.revoke(ctx, id, `UPDATE users SET password_hash = $1, token_epoch = token_epoch + 1 WHERE id = $2`, string(h), id); err != nil {
			return User{}, fmt.Errorf("update user %s: %w", id, err)
		}
	}
	s.announce(ctx, cluster.TopicUser, id)
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
	if err := s.remove(ctx, id, u.Username); err != nil {
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

// remove deletes the user's row and grants, and retires the policy's rules
// naming the user, unless that would leave no policy administrator among
// the other users.
func (s *Store) remove(ctx context.Context, id, username string) error {
	release, err := s.administrators(ctx)
	if err != nil {
		return fmt.Errorf("delete user %s: %w", id, err)
	}
	defer release()
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
	// From here on the user's tokens fail: Exists answers false.
	found, err := s.forget(ctx, id, `DELETE FROM users WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete user %s: %w", id, err)
	}
	if !found {
		return ErrNotFound
	}
	if err := s.policy.RemoveUser(ctx, id, username); err != nil {
		return fmt.Errorf("delete user %s: %w", id, err)
	}
	return nil
}

// UpdatePolicy puts new policy documents in force (or, with dryRun, only
// validates them), refusing with ErrLastAdministrator documents under which
// no internal user could edit the policy any more.
func (s *Store) UpdatePolicy(ctx context.Context, docs policies.Documents, dryRun bool) error {
	_, err := s.ChangePolicy(ctx, policies.Replace(docs), dryRun)
	return err
}

// ChangePolicy applies one change to the policy (the whole documents, or
// one rule; see policies.Enforcer.Apply), or with dryRun only checks it,
// refusing with ErrLastAdministrator a change under which no internal user
// could edit the policy any more. It returns the documents the change
// makes.
func (s *Store) ChangePolicy(ctx context.Context, change policies.Change, dryRun bool) (policies.Documents, error) {
	release, err := s.administrators(ctx)
	if err != nil {
		return policies.Documents{}, fmt.Errorf("change policy: %w", err)
	}
	defer release()
	keep, err := s.keepAdministrator(ctx, "")
	if err != nil {
		return policies.Documents{}, fmt.Errorf("change policy: %w", err)
	}
	return s.policy.Apply(ctx, change, dryRun, keep...)
}

// administrators holds what a change that could take the last policy
// administrator away needs, until release: adminMu here, the same lock on
// every replica of the database, and this replica's policy brought up to
// the others' changes, so two replicas cannot each count on an
// administrator the other is removing.
func (s *Store) administrators(ctx context.Context) (release func(), err error) {
	s.adminMu.Lock()
	held, err := database.Hold(ctx, s.db, "grin.administrators")
	if err != nil {
		s.adminMu.Unlock()
		return nil, err
	}
	if s.engine == database.Postgres {
		if err := s.policy.CatchUp(ctx); err != nil {
			held()
			s.adminMu.Unlock()
			return nil, fmt.Errorf("read the other replicas' policy changes: %w", err)
		}
	}
	return func() {
		held()
		s.adminMu.Unlock()
	}, nil
}

// keepAdministrator returns the check that a change leaves at least one
// internal user (other than gone, who is being deleted) a policy
// administrator, or none when no internal user is one now: a change cannot
// take away what is not there, and grin run by OIDC or key administrators
// alone must still manage its users. The caller holds administrators.
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
// The username is looked up in its normalized form (NormalizeUsername).
func (s *Store) Authenticate(ctx context.Context, username, password string) (User, error) {
	u, hash, err := s.byUsername(ctx, username)
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
	var last sql.NullInt64
	err := s.db.QueryRowContext(ctx, query, arg).Scan(&u.ID, &u.Username, &hash, &ms, &u.TokenEpoch, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, "", ErrNotFound
	}
	if err != nil {
		return User{}, "", fmt.Errorf("look up user: %w", err)
	}
	u.CreatedAt = time.UnixMilli(ms).UTC()
	u.LastLogin = lastLogin(last)
	return u, hash, nil
}

// withPermissions fills in what the policy lets the user do: the Cat pairs
// allowed (whatever allows them), the roles held, and the pairs granted
// that a deny rule refuses.
func (s *Store) withPermissions(u User) (User, error) {
	granted, roles, err := s.policy.Access(u.ID)
	if err != nil {
		return User{}, err
	}
	may, err := s.policy.Effective(u.ID, u.ID)
	if err != nil {
		return User{}, err
	}
	u.Permissions, u.Roles, u.Denied = may.Normalized(), roles, granted.Minus(may)
	return u, nil
}

// namingWrite runs query, which gives a user a username whose skeleton is
// skel only if no other user has that skeleton, checking and writing in one
// statement. SQLite runs one writer at a time, so that is enough; on
// PostgreSQL two transactions could each miss the other's uncommitted row,
// so the statement runs under a lock on the skeleton (database.Locked).
func (s *Store) namingWrite(ctx context.Context, skel, query string, args ...any) (res sql.Result, err error) {
	if s.engine != database.Postgres {
		return s.db.ExecContext(ctx, query, args...)
	}
	err = database.Locked(ctx, s.db, "grin.username:"+skel, func(tx *sql.Tx) error {
		res, err = tx.ExecContext(ctx, query, args...)
		return err
	})
	return res, err
}
