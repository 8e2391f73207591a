package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/grin-ai/grin/platform/users"
)

// ErrThrottled is returned while a login is refused for now: its username
// is locked out after repeated failures, its client sends too many, or the
// server is checking as many passwords as it may; see ThrottledError for
// when to try again.
var ErrThrottled = errors.New("too many logins")

// ThrottledError says why a login was refused for now and when to try
// again.
type ThrottledError struct {
	RetryAfter time.Duration
	// Why is the sentence's start, such as "too many failed logins for
	// this username".
	Why string
}

func (e *ThrottledError) Error() string {
	why := e.Why
	if why == "" {
		why = "too many failed logins for this username"
	}
	return fmt.Sprintf("%s; try again in %d seconds", why, int(e.RetryAfter.Seconds()+0.999))
}

func (e *ThrottledError) Unwrap() error { return ErrThrottled }

// LoginLimits bound the work that logins make the server do: a password
// check (bcrypt) takes tens of milliseconds of CPU on purpose, so a spray of
// logins would otherwise take the CPU from everyone else. Every limit
// applies before the username is looked up, so known and unknown usernames
// are treated alike.
type LoginLimits struct {
	// Concurrent is how many password checks run at once, for all
	// clients together; 0 means half the CPUs (GOMAXPROCS/2), at least
	// one. Up to QueuePerCheck logins per check wait for their turn;
	// more are refused.
	Concurrent int
	// PerClient is how many logins one client address may have in
	// progress at once (the failure delay included); 0 means 2.
	PerClient int
	// ClientPerMinute and ClientBurst are the rate of logins one client
	// address may start: ClientBurst at once, then ClientPerMinute a
	// minute. 0 means 30 and 10.
	ClientPerMinute float64
	ClientBurst     int
}

// QueuePerCheck is how many logins may wait for each concurrent password
// check before more are refused: with bcrypt's tens of milliseconds a
// check, a waiting login is answered within a fraction of a second.
const QueuePerCheck = 4

// withDefaults fills unset limits.
func (l LoginLimits) withDefaults() LoginLimits {
	if l.Concurrent <= 0 {
		l.Concurrent = max(1, runtime.GOMAXPROCS(0)/2)
	}
	if l.PerClient <= 0 {
		l.PerClient = 2
	}
	if l.ClientPerMinute <= 0 {
		l.ClientPerMinute = 30
	}
	if l.ClientBurst <= 0 {
		l.ClientBurst = 10
	}
	return l
}

// Login exchanges a username and password for a token.
//
// A failed login answers only after FailDelay, spent waiting on a timer so
// other requests go on meanwhile; after FreeFailures failures in a row a
// username is locked for a time that doubles with each further failure,
// whatever password is tried, so guessing is slow even from many sockets.
// LoginLimits bound the logins of one client and the password checks of
// all.
//
// The failures, lockouts and each client's rate of logins are kept in the
// database, so replicas on one database share them; how many logins run
// at once (in all, per client, per username) is bounded per process.
type Login struct {
	users  *users.Store
	tokens *Tokens

	// FailDelay is how long a failed login waits before answering.
	FailDelay time.Duration
	throttle  *throttle
	turns     *turns
	clients   *clientsInFlight
	checks    *semaphore.Weighted
	waiting   atomic.Int64
	maxWait   int64
	now       func() time.Time
}

// FreeFailures is how many failed logins in a row a username may have
// before it is locked out.
const FreeFailures = 5

// NewLogin returns a login service with the Cat's one-second delay, a
// lockout from the sixth failure on, doubling from 2 s to 15 min, and
// limits (zero fields take their defaults). The throttle is kept in db.
func NewLogin(db *sql.DB, u *users.Store, t *Tokens, limits LoginLimits) *Login {
	limits = limits.withDefaults()
	return &Login{users: u, tokens: t, FailDelay: time.Second,
		throttle: newThrottle(db, FreeFailures, 2*time.Second, 15*time.Minute, limits.ClientPerMinute, limits.ClientBurst),
		turns:    &turns{m: map[string]*turnLock{}},
		clients:  &clientsInFlight{limit: limits.PerClient, n: map[string]int{}},
		checks:   semaphore.NewWeighted(int64(limits.Concurrent)),
		maxWait:  int64(limits.Concurrent * QueuePerCheck),
		now:      time.Now,
	}
}

// Token checks the credentials of a login from client (the client's
// address, or any key naming who sends) and issues a token. Attempts for
// one username are taken one at a time in this process, failure delay
// included, so a burst of guesses cannot all pass the lockout check
// before the failures count.
func (l *Login) Token(ctx context.Context, client, username, password string) (string, error) {
	leave, err := l.clients.enter(client)
	if err != nil {
		return "", err
	}
	defer leave()
	wait, err := l.throttle.take(ctx, client, l.now())
	if err != nil {
		return "", err
	}
	if wait > 0 {
		return "", &ThrottledError{RetryAfter: max(wait, time.Second), Why: "too many logins from your address"}
	}
	// One lockout per name however it is spelled: the store finds a user
	// by the NFC form, so NFC and NFD spellings must share their failures.
	key := users.NormalizeUsername(username)
	release, err := l.turns.turn(ctx, key)
	if err != nil {
		return "", err
	}
	defer release()
	wait, err = l.throttle.locked(ctx, key, l.now())
	if err != nil {
		return "", err
	}
	if wait > 0 {
		return "", &ThrottledError{RetryAfter: wait}
	}
	u, err := l.check(ctx, username, password)
	if errors.Is(err, users.ErrBadCredentials) {
		if _, err := l.throttle.failure(ctx, key, l.now()); err != nil {
			return "", err
		}
		t := time.NewTimer(l.FailDelay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		return "", ErrInvalidCredentials
	}
	if err != nil {
		return "", err
	}
	if err := l.throttle.success(ctx, key); err != nil {
		return "", err
	}
	if err := l.users.RecordLogin(ctx, u.ID, time.Now()); err != nil {
		return "", err
	}
	return l.tokens.Issue(u.ID, u.Username, u.Permissions, u.TokenEpoch)
}

// check runs the password check once a check slot is free; when too many
// logins already wait for one, it refuses at once instead.
func (l *Login) check(ctx context.Context, username, password string) (users.User, error) {
	if l.waiting.Add(1) > l.maxWait {
		l.waiting.Add(-1)
		return users.User{}, &ThrottledError{RetryAfter: time.Second, Why: "the server is busy checking other logins"}
	}
	err := l.checks.Acquire(ctx, 1)
	l.waiting.Add(-1)
	if err != nil {
		return users.User{}, err
	}
	defer l.checks.Release(1)
	return l.users.Authenticate(ctx, username, password)
}

// clientsInFlight bounds how many logins each client has in progress in
// this process.
type clientsInFlight struct {
	limit int
	mu    sync.Mutex
	n     map[string]int // only clients with a login in progress
}

// enter admits a login from client or says to try again; leave ends it.
func (c *clientsInFlight) enter(client string) (leave func(), err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[client] >= c.limit {
		return nil, &ThrottledError{RetryAfter: time.Second, Why: "too many logins at once from your address"}
	}
	c.n[client]++
	return func() {
		c.mu.Lock()
		if c.n[client]--; c.n[client] <= 0 {
			delete(c.n, client)
		}
		c.mu.Unlock()
	}, nil
}

// turns orders the attempts for each username in this process.
type turns struct {
	mu sync.Mutex
	m  map[string]*turnLock
}

// turnLock orders the attempts for one username.
type turnLock struct {
	ch   chan struct{} // holds one token: the turn
	refs int
}

// turn waits for the username's turn; release gives it to the next.
func (t *turns) turn(ctx context.Context, user string) (release func(), err error) {
	t.mu.Lock()
	tl := t.m[user]
	if tl == nil {
		tl = &turnLock{ch: make(chan struct{}, 1)}
		t.m[user] = tl
	}
	tl.refs++
	t.mu.Unlock()
	done := func() {
		t.mu.Lock()
		if tl.refs--; tl.refs == 0 {
			delete(t.m, user)
		}
		t.mu.Unlock()
	}
	select {
	case tl.ch <- struct{}{}:
		return func() { <-tl.ch; done() }, nil
	case <-ctx.Done():
		done()
		return nil, ctx.Err()
	}
}
