package auth

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"

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
type Login struct {
	users  *users.Store
	tokens *Tokens

	// FailDelay is how long a failed login waits before answering.
	FailDelay time.Duration
	throttle  *throttle
	clients   *clientLimits
	checks    *semaphore.Weighted
	waiting   atomic.Int64
	maxWait   int64
}

// NewLogin returns a login service with the Cat's one-second delay, a
// lockout from the sixth failure on, doubling from 2 s to 15 min, and
// limits (zero fields take their defaults).
func NewLogin(u *users.Store, t *Tokens, limits LoginLimits) *Login {
	limits = limits.withDefaults()
	return &Login{users: u, tokens: t, FailDelay: time.Second,
		throttle: newThrottle(5, 2*time.Second, 15*time.Minute),
		clients:  newClientLimits(limits.PerClient, rate.Limit(limits.ClientPerMinute/60), limits.ClientBurst),
		checks:   semaphore.NewWeighted(int64(limits.Concurrent)),
		maxWait:  int64(limits.Concurrent * QueuePerCheck),
	}
}

// Token checks the credentials of a login from client (the client's
// address, or any key naming who sends) and issues a token. Attempts for
// one username are taken one at a time, failure delay included, so a burst
// of guesses cannot all pass the lockout check before the failures count.
func (l *Login) Token(ctx context.Context, client, username, password string) (string, error) {
	leave, err := l.clients.enter(client)
	if err != nil {
		return "", err
	}
	defer leave()
	// One lockout per name however it is spelled: the store finds a user
	// by the NFC form, so NFC and NFD spellings must share their failures.
	key := users.NormalizeUsername(username)
	release, err := l.throttle.turn(ctx, key)
	if err != nil {
		return "", err
	}
	defer release()
	if wait := l.throttle.locked(key); wait > 0 {
		return "", &ThrottledError{RetryAfter: wait}
	}
	u, err := l.check(ctx, username, password)
	if errors.Is(err, users.ErrBadCredentials) {
		l.throttle.failure(key)
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
	l.throttle.success(key)
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

// clientLimits bounds the logins of each client: how many at once and how
// many a minute.
type clientLimits struct {
	perClient int
	every     rate.Limit
	burst     int
	now       func() time.Time

	mu      sync.Mutex
	clients map[string]*clientState
}

type clientState struct {
	limiter  *rate.Limiter
	inFlight int
}

func newClientLimits(perClient int, every rate.Limit, burst int) *clientLimits {
	return &clientLimits{perClient: perClient, every: every, burst: burst, now: time.Now, clients: map[string]*clientState{}}
}

// enter admits a login from client or says when to try again; leave ends
// the login.
func (c *clientLimits) enter(client string) (leave func(), err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	st := c.clients[client]
	if st == nil {
		if len(c.clients) >= maxTracked {
			c.sweep(now)
		}
		if len(c.clients) >= maxTracked {
			// Past the bound new clients go untracked; the limit on
			// password checks still holds for everyone.
			return func() {}, nil
		}
		st = &clientState{limiter: rate.NewLimiter(c.every, c.burst)}
		c.clients[client] = st
	}
	if st.inFlight >= c.perClient {
		return nil, &ThrottledError{RetryAfter: time.Second, Why: "too many logins at once from your address"}
	}
	r := st.limiter.ReserveN(now, 1)
	if wait := r.DelayFrom(now); !r.OK() || wait > 0 {
		r.CancelAt(now)
		return nil, &ThrottledError{RetryAfter: max(wait, time.Second), Why: "too many logins from your address"}
	}
	st.inFlight++
	return func() {
		c.mu.Lock()
		st.inFlight--
		c.mu.Unlock()
	}, nil
}

// sweep forgets clients with no login in progress whose rate has refilled:
// remembering them would change nothing.
func (c *clientLimits) sweep(now time.Time) {
	for k, st := range c.clients {
		if st.inFlight == 0 && st.limiter.TokensAt(now) >= float64(c.burst) {
			delete(c.clients, k)
		}
	}
}

// throttle counts failed logins per username.
type throttle struct {
	free      int
	base, max time.Duration
	now       func() time.Time

	mu      sync.Mutex
	entries map[string]*attempts
	turns   map[string]*turnLock
}

// turnLock orders the attempts for one username.
type turnLock struct {
	ch   chan struct{} // holds one token: the turn
	refs int
}

type attempts struct {
	failures int
	last     time.Time
	until    time.Time
}

// maxTracked bounds memory when someone sprays made-up usernames.
const maxTracked = 100_000

func newThrottle(free int, base, max time.Duration) *throttle {
	return &throttle{free: free, base: base, max: max, now: time.Now, entries: map[string]*attempts{}, turns: map[string]*turnLock{}}
}

// turn waits for the username's turn; release gives it to the next.
func (t *throttle) turn(ctx context.Context, user string) (release func(), err error) {
	t.mu.Lock()
	tl := t.turns[user]
	if tl == nil {
		tl = &turnLock{ch: make(chan struct{}, 1)}
		t.turns[user] = tl
	}
	tl.refs++
	t.mu.Unlock()
	done := func() {
		t.mu.Lock()
		if tl.refs--; tl.refs == 0 {
			delete(t.turns, user)
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

func (t *throttle) locked(user string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.entries[user]
	if a == nil {
		return 0
	}
	return max(a.until.Sub(t.now()), 0)
}

func (t *throttle) failure(user string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	a := t.entries[user]
	if a == nil || now.Sub(a.last) > t.max {
		if a == nil && len(t.entries) >= maxTracked {
			t.sweep(now)
			if len(t.entries) >= maxTracked {
				return
			}
		}
		a = &attempts{}
		t.entries[user] = a
	}
	a.failures++
	a.last = now
	if n := a.failures - t.free; n > 0 {
		d := t.max
		if n < 30 {
			d = min(t.base<<(n-1), t.max)
		}
		a.until = now.Add(d)
	}
}

func (t *throttle) success(user string) {
	t.mu.Lock()
	delete(t.entries, user)
	t.mu.Unlock()
}

// sweep forgets usernames whose failures are older than the longest
// lockout. Locked usernames are never forgotten, so spraying made-up names
// cannot lift a lock; past the bound, new names go untracked (they still
// wait their turn and the failure delay).
func (t *throttle) sweep(now time.Time) {
	for k, a := range t.entries {
		if now.Sub(a.last) > t.max && now.After(a.until) {
			delete(t.entries, k)
		}
	}
}
