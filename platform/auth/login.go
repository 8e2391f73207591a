package auth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/grin-ai/grin/platform/users"
)

// ErrThrottled is returned while a username is locked out after repeated
// failures; see ThrottledError for when to try again.
var ErrThrottled = errors.New("too many failed logins")

// ThrottledError says how long a username stays locked.
type ThrottledError struct{ RetryAfter time.Duration }

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed logins for this username; try again in %d seconds", int(e.RetryAfter.Seconds()+0.999))
}

func (e *ThrottledError) Unwrap() error { return ErrThrottled }

// Login exchanges a username and password for a token.
//
// A failed login answers only after FailDelay, spent waiting on a timer so
// other requests go on meanwhile; after FreeFailures failures in a row a
// username is locked for a time that doubles with each further failure,
// whatever password is tried, so guessing is slow even from many sockets.
type Login struct {
	users  *users.Store
	tokens *Tokens

	// FailDelay is how long a failed login waits before answering.
	FailDelay time.Duration
	throttle  *throttle
}

// NewLogin returns a login service with the Cat's one-second delay and a
// lockout from the sixth failure on, doubling from 2 s to 15 min.
func NewLogin(u *users.Store, t *Tokens) *Login {
	return &Login{users: u, tokens: t, FailDelay: time.Second,
		throttle: newThrottle(5, 2*time.Second, 15*time.Minute)}
}

// Token checks the credentials and issues a token. Attempts for one
// username are taken one at a time, failure delay included, so a burst of
// guesses cannot all pass the lockout check before the failures count.
func (l *Login) Token(ctx context.Context, username, password string) (string, error) {
	release, err := l.throttle.turn(ctx, username)
	if err != nil {
		return "", err
	}
	defer release()
	if wait := l.throttle.locked(username); wait > 0 {
		return "", &ThrottledError{RetryAfter: wait}
	}
	u, err := l.users.Authenticate(ctx, username, password)
	if errors.Is(err, users.ErrBadCredentials) {
		l.throttle.failure(username)
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
	l.throttle.success(username)
	return l.tokens.Issue(u.ID, u.Username, u.Permissions)
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
