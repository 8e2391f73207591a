package session

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/grin-ai/grin/platform/cluster"
)

// A turn lease is a row of turn_leases: while a replica holds a user's
// (holder set, expires_at ahead), no other replica answers that user.
// The database's clock decides expiry, so replicas' clocks need not agree.
// Only replicas take leases (Replicated); one process serializes turns
// with the session's mutex alone.
const (
	// takeLease takes a free or expired lease in one statement and returns
	// the history's epoch (bumped by a clear).
	takeLease = `INSERT INTO turn_leases AS l (user_id, holder, expires_at)
		VALUES ($1, $2, clock_timestamp() + $3::double precision * interval '1 millisecond')
		ON CONFLICT (user_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE l.expires_at < clock_timestamp()
		RETURNING l.epoch`
	// lastTurn is the user's last turn number, read in a statement of its
	// own once the lease is held. Not in takeLease's RETURNING: that
	// statement's snapshot is taken when it starts, and it may start before
	// the previous holder's last turn commits and then wait on its lease
	// row until the release; the lease it gets is the newest row, but the
	// history it would read is from before that turn, and a window cached
	// here would wrongly pass for current.
	lastTurn    = `SELECT coalesce(max(seq), 0) FROM conversation_history WHERE user_id = $1`
	leaseHolder = `SELECT holder, greatest(0, extract(epoch FROM expires_at - clock_timestamp()) * 1000)::bigint
		FROM turn_leases WHERE user_id = $1`
	renewLease = `UPDATE turn_leases SET expires_at = clock_timestamp() + $3::double precision * interval '1 millisecond'
		WHERE user_id = $1 AND holder = $2`
	releaseLease = `UPDATE turn_leases SET holder = '', expires_at = 'epoch' WHERE user_id = $1 AND holder = $2`
	// forgetLease leaves a deleted user's lease held by nobody for a day:
	// a replica that has not heard of the deletion yet refuses the user
	// (ErrForgotten) instead of writing after the erasure.
	forgetLease = `UPDATE turn_leases SET holder = $3, expires_at = clock_timestamp() + interval '1 day'
		WHERE user_id = $1 AND holder = $2`
	bumpEpoch = `UPDATE turn_leases SET epoch = epoch + 1 WHERE user_id = $1 AND holder = $2 RETURNING epoch`
)

// forgottenHolder holds a deleted user's lease.
const forgottenHolder = "(deleted)"

// version says which state of a user's history a window reflects.
type version struct{ epoch, seq int64 }

// lease is one held turn lease.
type lease struct {
	userID, holder string
	at             version // the history when it was taken
	stop           chan struct{}
}

// take waits until this replica holds userID's turn lease, or ctx ends.
func (r *Registry) take(ctx context.Context, userID string) (*lease, error) {
	holder := r.bus.ID() + "/" + strconv.FormatUint(r.leases.Add(1), 10)
	for {
		// Listen for the release before looking, so that one between the
		// look and the wait is not missed.
		wake := r.waiter(userID)
		var at version
		err := r.db.QueryRowContext(ctx, takeLease, userID, holder, r.lease.Milliseconds()).Scan(&at.epoch)
		if err == nil {
			l := &lease{userID: userID, holder: holder, stop: make(chan struct{})}
			go r.renew(l)
			if err := r.db.QueryRowContext(ctx, lastTurn, userID).Scan(&at.seq); err != nil {
				r.release(l)
				return nil, fmt.Errorf("read the last turn of %q: %w", userID, err)
			}
			l.at = at
			return l, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("take the turn of %q: %w", userID, err)
		}
		var who string
		var left int64
		err = r.db.QueryRowContext(ctx, leaseHolder, userID).Scan(&who, &left)
		switch {
		case errors.Is(err, sql.ErrNoRows), err == nil && left == 0:
			continue // released or expired since: try again
		case err != nil:
			return nil, fmt.Errorf("take the turn of %q: %w", userID, err)
		case who == forgottenHolder:
			return nil, ErrForgotten
		}
		// Woken by the holder's release; else at its expiry (a replica
		// that died), or after a lease's time (a release not heard).
		timer := time.NewTimer(min(time.Duration(left+1)*time.Millisecond, r.lease))
		select {
		case <-wake:
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("wait for the turn of %q: %w", userID, ctx.Err())
		}
		timer.Stop()
	}
}

// renew keeps l from expiring while its turn runs.
func (r *Registry) renew(l *lease) {
	t := time.NewTicker(r.lease / 3)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), r.lease/3)
		res, err := r.db.ExecContext(ctx, renewLease, l.userID, l.holder, r.lease.Milliseconds())
		cancel()
		if err != nil {
			r.logger.Warn("renew a turn lease", "user", l.userID, "err", err)
			continue
		}
		if n, _ := res.RowsAffected(); n == 0 {
			r.logger.Error("a turn outlived its lease: another replica may answer this user meanwhile", "user", l.userID, "lease", r.lease)
			return
		}
	}
}

// release frees l and wakes the replicas waiting for it.
func (r *Registry) release(l *lease) {
	close(l.stop)
	ctx, cancel := context.WithTimeout(context.Background(), r.lease)
	defer cancel()
	if _, err := r.db.ExecContext(ctx, releaseLease, l.userID, l.holder); err != nil {
		// It expires by itself.
		r.logger.Warn("release a turn lease", "user", l.userID, "err", err)
	}
	r.mu.Lock()
	r.wakeLocked(l.userID) // waiters here
	r.publishLocked(cluster.Event{Topic: cluster.TopicTurn, Key: l.userID})
	r.mu.Unlock()
}

// forget turns l into a deleted user's tombstone.
func (r *Registry) forget(ctx context.Context, l *lease) error {
	close(l.stop)
	if _, err := r.db.ExecContext(ctx, forgetLease, l.userID, l.holder, forgottenHolder); err != nil {
		return fmt.Errorf("mark %q deleted for the other replicas: %w", l.userID, err)
	}
	return nil
}

// cleared records that l's user's history was erased: other replicas'
// windows of it are stale whatever turn numbers come next.
func (r *Registry) cleared(ctx context.Context, l *lease) (version, error) {
	var v version
	if err := r.db.QueryRowContext(ctx, bumpEpoch, l.userID, l.holder).Scan(&v.epoch); err != nil {
		return v, fmt.Errorf("mark the history of %q cleared: %w", l.userID, err)
	}
	return v, nil
}

// waiter returns a channel closed when userID's lease is next released.
func (r *Registry) waiter(userID string) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := r.waiters[userID]
	if ch == nil {
		ch = make(chan struct{})
		r.waiters[userID] = ch
	}
	return ch
}

func (r *Registry) wakeLocked(userID string) {
	if ch := r.waiters[userID]; ch != nil {
		close(ch)
		delete(r.waiters, userID)
	}
}

// onTurn wakes the turns waiting for a lease another replica released.
func (r *Registry) onTurn(_ context.Context, e cluster.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.Missed {
		for u := range r.waiters {
			r.wakeLocked(u)
		}
		return
	}
	r.wakeLocked(e.Key)
}

// deletedAmong returns which of users were deleted (their lease says so).
func (r *Registry) deletedAmong(ctx context.Context, users []string) ([]string, error) {
	if len(users) == 0 {
		return nil, nil
	}
	rows, err := r.db.QueryContext(ctx, `SELECT user_id FROM turn_leases WHERE holder = $1 AND user_id = ANY($2)`, forgottenHolder, users)
	if err != nil {
		return nil, fmt.Errorf("look for deleted users: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			return nil, fmt.Errorf("look for deleted users: %w", err)
		}
		out = append(out, u)
	}
	return out, rows.Err()
}
