package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/grin-ai/grin/integration/pgtest"
	"github.com/grin-ai/grin/platform/database"
	"github.com/grin-ai/grin/platform/database/databasetest"
	"github.com/grin-ai/grin/platform/users"
	"github.com/grin-ai/grin/policies"
)

// t0 is the suite's clock: every time is given, none is read.
var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// testThrottle has grin's lockout (5 free failures, 2 s doubling to
// 15 min) and buckets of 3 logins refilled one a second.
func testThrottle(db *sql.DB) *throttle {
	return newThrottle(db, FreeFailures, 2*time.Second, 15*time.Minute, 60, 3)
}

// TestThrottleOnEachEngine runs the login throttle's behaviour suite on
// SQLite and on PostgreSQL: each case gets a new, empty database.
func TestThrottleOnEachEngine(t *testing.T) {
	databasetest.Suite(t, func(_ *testing.T, db *sql.DB) *throttle { return testThrottle(db) }, []databasetest.Case[*throttle]{
		{Name: "failures lock a username from the sixth, doubling up to 15 minutes", Run: testLockout},
		{Name: "failures older than the longest lockout are forgotten", Run: testFailuresForgotten},
		{Name: "a client may start a burst of logins, then one a second", Run: testClientBucket},
		{Name: "the sweep forgets what changes nothing, never a lock", Run: testSweep},
	}...)
}

func lockedFor(t *testing.T, th *throttle, user string, at time.Time) time.Duration {
	t.Helper()
	d, err := th.locked(context.Background(), user, at)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func fail(t *testing.T, th *throttle, user string, at time.Time) int {
	t.Helper()
	n, err := th.failure(context.Background(), user, at)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func testLockout(t *testing.T, th *throttle) {
	for i := 1; i <= FreeFailures; i++ {
		if n := fail(t, th, "alice", t0); n != i {
			t.Fatalf("failure %d counted as %d", i, n)
		}
		if d := lockedFor(t, th, "alice", t0); d != 0 {
			t.Fatalf("locked for %v after %d failures", d, i)
		}
	}
	for i, want := range []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second} {
		fail(t, th, "alice", t0)
		if d := lockedFor(t, th, "alice", t0); d != want {
			t.Errorf("after failure %d: locked for %v, want %v", FreeFailures+1+i, d, want)
		}
	}
	if d := lockedFor(t, th, "alice", t0.Add(3*time.Second)); d != 5*time.Second {
		t.Errorf("3 s later: locked for %v more, want 5s", d)
	}
	if d := lockedFor(t, th, "alice", t0.Add(9*time.Second)); d != 0 {
		t.Errorf("once the lock is over: %v", d)
	}
	for range 40 {
		fail(t, th, "alice", t0)
	}
	if d := lockedFor(t, th, "alice", t0); d != 15*time.Minute {
		t.Errorf("after 48 failures: locked for %v, want the cap of 15m", d)
	}
	if d := lockedFor(t, th, "bob", t0); d != 0 {
		t.Errorf("another username is locked for %v", d)
	}
	if err := th.success(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	if d, n := lockedFor(t, th, "alice", t0), fail(t, th, "alice", t0); d != 0 || n != 1 {
		t.Errorf("after a success: locked for %v, next failure counted as %d", d, n)
	}
}

func testFailuresForgotten(t *testing.T, th *throttle) {
	for range FreeFailures {
		fail(t, th, "alice", t0)
	}
	if n := fail(t, th, "alice", t0.Add(15*time.Minute+time.Second)); n != 1 {
		t.Errorf("a failure 15 minutes after the last counts as %d, want 1", n)
	}
	if d := lockedFor(t, th, "alice", t0.Add(15*time.Minute+time.Second)); d != 0 {
		t.Errorf("locked for %v", d)
	}
}

func take(t *testing.T, th *throttle, client string, at time.Time) time.Duration {
	t.Helper()
	wait, err := th.take(context.Background(), client, at)
	if err != nil {
		t.Fatal(err)
	}
	return wait
}

func testClientBucket(t *testing.T, th *throttle) {
	for i := range 3 {
		if w := take(t, th, "10.0.0.1", t0); w != 0 {
			t.Fatalf("login %d of the burst: wait %v", i+1, w)
		}
	}
	for range 2 { // a refusal takes nothing
		if w := take(t, th, "10.0.0.1", t0); w != time.Second {
			t.Errorf("past the burst: wait %v, want 1s", w)
		}
	}
	if w := take(t, th, "10.0.0.1", t0.Add(400*time.Millisecond)); w != 600*time.Millisecond {
		t.Errorf("0.4 s later: wait %v, want 600ms", w)
	}
	if w := take(t, th, "10.0.0.2", t0); w != 0 {
		t.Errorf("another client: wait %v", w)
	}
	if w := take(t, th, "10.0.0.1", t0.Add(time.Second)); w != 0 {
		t.Errorf("a second later: wait %v, want none", w)
	}
	if w := take(t, th, "10.0.0.1", t0.Add(time.Second)); w == 0 {
		t.Errorf("two logins from a second's refill")
	}
	// A clock behind (another replica's) refills nothing.
	if w := take(t, th, "10.0.0.1", t0); w == 0 {
		t.Errorf("a login admitted from a clock behind")
	}
	// An hour later the bucket is full, and no fuller.
	for i := range 4 {
		if w := take(t, th, "10.0.0.1", t0.Add(time.Hour)); (w == 0) != (i < 3) {
			t.Errorf("an hour later, login %d: wait %v", i+1, w)
		}
	}
}

func testSweep(t *testing.T, th *throttle) {
	ctx := context.Background()
	at := t0.Add(10 * time.Minute)
	for range FreeFailures + 10 { // locked from t0 for 15 minutes
		fail(t, th, "locked", t0)
	}
	fail(t, th, "stale", t0.Add(-16*time.Minute))
	fail(t, th, "recent", t0)
	take(t, th, "refilled", t0.Add(-16*time.Minute))
	take(t, th, "emptied", at)
	for range 2 { // a second sweep finds nothing more
		if err := th.sweep(ctx, at); err != nil {
			t.Fatal(err)
		}
		for table, want := range map[string]string{
			"login_failures WHERE username IN ('locked', 'recent')": "2", "login_failures": "2",
			"login_clients WHERE client = 'emptied'": "1", "login_clients": "1",
		} {
			var n int
			if err := th.db.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(n) != want {
				t.Errorf("after the sweep, %s: %d rows, want %s", table, n, want)
			}
		}
	}
	if d := lockedFor(t, th, "locked", at); d != 5*time.Minute {
		t.Errorf("after the sweep, the lock: %v, want 5m more", d)
	}
}

// twoHandles opens one new database of engine twice, as two replicas do.
func twoHandles(t *testing.T, engine database.Engine) (*sql.DB, *sql.DB) {
	t.Helper()
	ctx := context.Background()
	var open func() (*sql.DB, error)
	switch engine {
	case database.SQLite:
		dir := t.TempDir()
		open = func() (*sql.DB, error) { return database.Open(ctx, dir) }
	default:
		url := pgtest.Start(t).Database(t)
		open = func() (*sql.DB, error) { return database.OpenPostgres(ctx, url) }
	}
	var dbs [2]*sql.DB
	for i := range dbs {
		db, err := open()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs[i] = db
	}
	return dbs[0], dbs[1]
}

// TestThrottleAtOnceAddsUp: failures and logins counted at once through
// two handles on one database (two replicas) all count: none overwrites
// another's.
func TestThrottleAtOnceAddsUp(t *testing.T) {
	for _, engine := range []database.Engine{database.SQLite, database.Postgres} {
		t.Run(string(engine), func(t *testing.T) {
			a, b := twoHandles(t, engine)
			ths := []*throttle{testThrottle(a), testThrottle(b)}
			const each = 25
			var wg sync.WaitGroup
			var admitted atomic.Int64
			for i := range 2 * each {
				th := ths[i%2]
				wg.Go(func() {
					if _, err := th.failure(context.Background(), "alice", t0); err != nil {
						t.Error(err)
					}
					if w, err := th.take(context.Background(), "10.0.0.1", t0); err != nil {
						t.Error(err)
					} else if w == 0 {
						admitted.Add(1)
					}
				})
			}
			wg.Wait()
			if n := fail(t, ths[0], "alice", t0); n != 2*each+1 {
				t.Errorf("%d failures at once through two replicas counted as %d", 2*each, n-1)
			}
			if n := admitted.Load(); n != 3 {
				t.Errorf("%d logins at once admitted from a bucket of 3", n)
			}
		})
	}
}

// TestLoginsShareTheThrottle: two Logins on one PostgreSQL database, as
// two replicas: failures through both lock the user out on both, and one
// client's rate is counted across both.
func TestLoginsShareTheThrottle(t *testing.T) {
	a, b := twoHandles(t, database.Postgres)
	ctx := context.Background()
	policy, err := policies.Open(ctx, t.TempDir(), a, nil, policies.WithUsers(users.NewDirectory(a)))
	if err != nil {
		t.Fatal(err)
	}
	store, err := users.New(a, policy, users.WithBcryptCost(bcrypt.MinCost))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Bootstrap(ctx, "admin-password", "user-password"); err != nil {
		t.Fatal(err)
	}
	tokens, err := NewTokens([]byte("0123456789abcdef0123456789abcdef"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return t0 } // the lock lasts as long as the test
	logins := make([]*Login, 2)
	for i, db := range []*sql.DB{a, b} {
		logins[i] = NewLogin(db, store, tokens, LoginLimits{PerClient: 10, ClientPerMinute: 1, ClientBurst: 9})
		logins[i].FailDelay, logins[i].now = time.Millisecond, now
	}
	var throttled *ThrottledError
	// Six failures, half through each: the sixth locks "admin" on both.
	for i := range FreeFailures + 1 {
		if _, err := logins[i%2].Token(ctx, fmt.Sprintf("10.0.1.%d", i), "admin", "guess"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	for i, l := range logins {
		_, err := l.Token(ctx, "10.0.2.1", "admin", "admin-password")
		if !errors.As(err, &throttled) || throttled.RetryAfter != 2*time.Second || throttled.Why != "" {
			t.Errorf("the right password through login %d while locked: %v, want locked for 2 s", i+1, err)
		}
	}
	if _, err := logins[1].Token(ctx, "10.0.2.2", "user", "user-password"); err != nil {
		t.Errorf("another user through the second: %v", err)
	}
	// One client, 9 logins at most, wherever they land.
	admitted := 0
	for i := range 12 {
		_, err := logins[i%2].Token(ctx, "10.0.3.1", "user", "user-password")
		switch {
		case err == nil:
			admitted++
		case errors.As(err, &throttled) && throttled.Why == "too many logins from your address":
		default:
			t.Errorf("login %d from one client: %v", i+1, err)
		}
	}
	if admitted != 9 {
		t.Errorf("%d logins from one client through two replicas admitted, want the burst of 9", admitted)
	}
}
