package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// throttle keeps the login throttle in grin's database, SQLite or
// PostgreSQL, so every replica on one database counts the same failures
// and the same logins per client: failed logins in a row per username,
// with the lockout they earn, and each client's token bucket of logins.
//
// Every change is one statement (a count is incremented, a token taken,
// by the database), so logins at once, on any replica, add up instead of
// overwriting each other. Times are the callers' clocks, in Unix
// milliseconds: replicas' clocks are assumed to agree to well within a
// second (NTP), and a clock behind another's never refills a bucket
// backwards.
//
// Notes: safe for concurrent use.
type throttle struct {
	db *sql.DB
	// free failures in a row are allowed; the next locks the username
	// for base, doubling with each further failure up to max.
	free      int
	base, max time.Duration
	// perMS and burst are each client's logins: burst at once, then
	// perMS a millisecond.
	perMS float64
	burst int

	lastSweep atomic.Int64 // Unix ms of this process's last sweep
}

// sweepEvery is how often a process deletes rows that would change
// nothing; the sweep runs in the call that finds it due.
const sweepEvery = time.Minute

func newThrottle(db *sql.DB, free int, base, max time.Duration, perMinute float64, burst int) *throttle {
	return &throttle{db: db, free: free, base: base, max: max, perMS: perMinute / 60_000, burst: burst}
}

// locked says how long user stays locked out at now (0: not locked).
func (t *throttle) locked(ctx context.Context, user string, now time.Time) (time.Duration, error) {
	var until int64
	err := t.db.QueryRowContext(ctx, `SELECT locked_until FROM login_failures WHERE username = $1`, user).Scan(&until)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the login throttle: %w", err)
	}
	return max(time.Duration(until-now.UnixMilli())*time.Millisecond, 0), nil
}

// failure counts a failed login of user at now, locking the username
// from the (free+1)th failure in a row, and returns the count. Failures
// older than the longest lockout are forgotten: the count starts again.
func (t *throttle) failure(ctx context.Context, user string, now time.Time) (int, error) {
	t.maybeSweep(ctx, now)
	ms := now.UnixMilli()
	var n int
	if err := t.db.QueryRowContext(ctx, `INSERT INTO login_failures (username, failures, last_at, locked_until) VALUES ($1, 1, $2, 0)
		ON CONFLICT (username) DO UPDATE SET
			failures = CASE WHEN excluded.last_at - login_failures.last_at > $3 THEN 1 ELSE login_failures.failures + 1 END,
			last_at = CASE WHEN excluded.last_at > login_failures.last_at THEN excluded.last_at ELSE login_failures.last_at END
		RETURNING failures`, user, ms, t.max.Milliseconds()).Scan(&n); err != nil {
		return 0, fmt.Errorf("count a failed login: %w", err)
	}
	if over := n - t.free; over > 0 {
		d := t.max
		if over < 30 {
			d = min(t.base<<(over-1), t.max)
		}
		// Only ever later: a replica that counted fewer failures at once
		// cannot shorten the lock another set.
		if _, err := t.db.ExecContext(ctx, `UPDATE login_failures SET locked_until = $2 WHERE username = $1 AND locked_until < $2`,
			user, now.Add(d).UnixMilli()); err != nil {
			return n, fmt.Errorf("lock out a username: %w", err)
		}
	}
	return n, nil
}

// success forgets user's failures.
func (t *throttle) success(ctx context.Context, user string) error {
	if _, err := t.db.ExecContext(ctx, `DELETE FROM login_failures WHERE username = $1`, user); err != nil {
		return fmt.Errorf("clear failed logins: %w", err)
	}
	return nil
}

// The tokens a client's bucket holds at excluded.at: what it held, plus
// what the time since gave ($3 a millisecond), at most the burst ($4).
const (
	refilled = `(login_clients.tokens + (CASE WHEN excluded.at > login_clients.at THEN excluded.at - login_clients.at ELSE 0 END) * CAST($3 AS DOUBLE PRECISION))`
	capped   = `(CASE WHEN ` + refilled + ` > CAST($4 AS DOUBLE PRECISION) THEN CAST($4 AS DOUBLE PRECISION) ELSE ` + refilled + ` END)`
)

// take takes one login from client's bucket at now; when it is empty it
// takes nothing and says how long until it holds one.
func (t *throttle) take(ctx context.Context, client string, now time.Time) (wait time.Duration, err error) {
	t.maybeSweep(ctx, now)
	ms := now.UnixMilli()
	var left float64
	err = t.db.QueryRowContext(ctx, `INSERT INTO login_clients (client, tokens, at) VALUES ($1, CAST($4 AS DOUBLE PRECISION) - 1, $2)
		ON CONFLICT (client) DO UPDATE SET
			tokens = `+capped+` - 1,
			at = CASE WHEN excluded.at > login_clients.at THEN excluded.at ELSE login_clients.at END
		WHERE `+capped+` >= 1
		RETURNING tokens`, client, ms, t.perMS, float64(t.burst)).Scan(&left)
	if err == nil {
		return 0, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("count a client's logins: %w", err)
	}
	// Refused: say when the bucket will hold a login again.
	var tokens float64
	var at int64
	if err := t.db.QueryRowContext(ctx, `SELECT tokens, at FROM login_clients WHERE client = $1`, client).Scan(&tokens, &at); err != nil {
		return 0, fmt.Errorf("count a client's logins: %w", err)
	}
	have := tokens + float64(max(ms-at, 0))*t.perMS
	return time.Duration(math.Ceil((1-have)/t.perMS)) * time.Millisecond, nil
}

// maybeSweep sweeps when this process has not for sweepEvery. A failed
// sweep is tried again next time: it only keeps rows longer.
func (t *throttle) maybeSweep(ctx context.Context, now time.Time) {
	last := t.lastSweep.Load()
	if now.UnixMilli()-last < sweepEvery.Milliseconds() || !t.lastSweep.CompareAndSwap(last, now.UnixMilli()) {
		return
	}
	if err := t.sweep(ctx, now); err != nil {
		t.lastSweep.Store(last)
	}
}

// sweep deletes what would change nothing: failures older than the
// longest lockout whose lock is over (a locked username is kept, so
// spraying made-up names cannot lift a lock), and buckets full again.
func (t *throttle) sweep(ctx context.Context, now time.Time) error {
	ms := now.UnixMilli()
	if _, err := t.db.ExecContext(ctx, `DELETE FROM login_failures WHERE last_at < $1 AND locked_until < $2`,
		ms-t.max.Milliseconds(), ms); err != nil {
		return fmt.Errorf("sweep failed logins: %w", err)
	}
	if _, err := t.db.ExecContext(ctx, `DELETE FROM login_clients WHERE tokens + ($1 - at) * CAST($2 AS DOUBLE PRECISION) >= CAST($3 AS DOUBLE PRECISION)`,
		ms, t.perMS, float64(t.burst)); err != nil {
		return fmt.Errorf("sweep clients' login counts: %w", err)
	}
	return nil
}
