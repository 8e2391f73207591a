// Package session keeps one StrayCat per user: the conversation's recent
// turns and the user's open sockets.
//
// Sessions are keyed by identity id and nothing else, so one user's
// session, history and frames can never reach another's. The history is
// persisted (History), so a session evicted for idleness, or lost to a
// restart, comes back intact the next time its user speaks.
package session

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grin-ai/grin/platform/cluster"
	"github.com/grin-ai/grin/platform/database"
)

// ErrForgotten is returned by Acquire for a user whose data was erased
// (a deleted user): a request that was already on its way must not write
// anything after the erasure.
var ErrForgotten = errors.New("this user was deleted")

// ErrTooManySockets is returned by Subscribe for a user who already has
// as many sockets open as the registry allows: one user (one token) must
// not hold an unbounded share of the server's connections.
var ErrTooManySockets = errors.New("too many open sockets")

// WindowTurns is how many recent turns a session keeps at hand for
// prompts.
const WindowTurns = 20

// Sink is one open socket of a user.
//
// Notes: Send must not block: a socket that cannot keep up closes itself.
type Sink interface {
	Send(frame []byte)
	Close(reason string)
}

// Session is one user's StrayCat.
//
// Notes: a Session is used between Acquire and its release, by one turn at
// a time; its fields are the turn's to read and change.
type Session struct {
	UserID string
	// Recent holds the last WindowTurns turns, oldest first, without
	// their whys (History.Window): prompts use only who said what.
	Recent []Turn

	turn     sync.Mutex
	lastUsed time.Time
	gone     bool
	// loaded: Recent holds the persisted history as of at (at is kept
	// only among replicas, where another may have written since).
	loaded bool
	at     version
	held   *lease // among replicas, during a turn
}

// Registry holds the live sessions and sockets.
//
// Notes: safe for concurrent use.
type Registry struct {
	history    *History
	idle       time.Duration
	maxSockets int
	logger     *slog.Logger

	// With other replicas (Replicated): nil bus for one process.
	bus    cluster.Bus
	db     *sql.DB
	lease  time.Duration
	unsubs []func()
	leases atomic.Uint64 // numbers this replica's leases

	mu        sync.Mutex
	sessions  map[string]*Session
	sockets   map[string]map[Sink]struct{}
	forgotten map[string]time.Time
	rep       replica
	waiters   map[string]chan struct{} // turns waiting for a lease, by user
}

// NewRegistry returns a registry that evicts sessions idle longer than
// idle (when positive) while Run runs, and lets each user have at most
// maxSockets sockets open (no limit when zero or negative).
func NewRegistry(h *History, idle time.Duration, maxSockets int, logger *slog.Logger, opts ...Option) *Registry {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Registry{history: h, idle: idle, maxSockets: maxSockets, logger: logger,
		sessions: map[string]*Session{}, sockets: map[string]map[Sink]struct{}{}, forgotten: map[string]time.Time{},
		waiters: map[string]chan struct{}{}}
	for _, o := range opts {
		o(r)
	}
	if r.bus != nil {
		r.join()
	}
	return r
}

// History returns the persisted history store.
func (r *Registry) History() *History { return r.history }

// Acquire returns the user's session, loading its recent history when it
// is not live, and holds it for one turn: a user's messages are answered
// one after another, in order. Among replicas the turn is also held
// against the others (a lease in the database), and a window another
// replica made stale is loaded again. Call release when the turn is done.
func (r *Registry) Acquire(ctx context.Context, userID string) (s *Session, release func(), err error) {
	for {
		r.mu.Lock()
		if _, gone := r.forgotten[userID]; gone {
			r.mu.Unlock()
			return nil, nil, ErrForgotten
		}
		s = r.sessions[userID]
		if s == nil {
			s = &Session{UserID: userID}
			r.sessions[userID] = s
		}
		r.mu.Unlock()
		s.turn.Lock()
		r.mu.Lock()
		gone := s.gone
		if !gone {
			s.lastUsed = time.Now()
		}
		r.mu.Unlock()
		if gone {
			// Evicted or forgotten while we waited: take the next one.
			s.turn.Unlock()
			continue
		}
		var l *lease
		if r.bus != nil {
			if l, err = r.take(ctx, userID); err != nil {
				s.turn.Unlock()
				return nil, nil, err
			}
		}
		if !s.loaded || (l != nil && l.at != s.at) {
			recent, err := r.history.Window(ctx, userID, WindowTurns)
			if err != nil {
				if l != nil {
					r.release(l)
				}
				s.turn.Unlock()
				return nil, nil, fmt.Errorf("load session of %q: %w", userID, err)
			}
			s.Recent, s.loaded = recent, true
			if l != nil {
				s.at = l.at
			}
		}
		s.held = l
		return s, func() {
			r.mu.Lock()
			s.lastUsed = time.Now()
			r.mu.Unlock()
			s.held = nil
			if l != nil {
				r.release(l)
			}
			s.turn.Unlock()
		}, nil
	}
}

// Record appends turns to the session and its persisted history, in one
// transaction with the writes in with (a chat turn's episodic memory): all
// of them are committed, or none. The session's window takes the turns
// only once they are committed.
func (r *Registry) Record(ctx context.Context, s *Session, turns []Turn, with ...database.Op) error {
	ops := append([]database.Op{r.history.AppendOp(s.UserID, turns...)}, with...)
	if err := r.history.commit.Do(ctx, ops...); err != nil {
		return err
	}
	for _, t := range turns {
		t.Why = nil
		s.Recent = append(s.Recent, t)
	}
	s.at.seq += int64(len(turns)) // the lease's holder numbers them
	if over := len(s.Recent) - WindowTurns; over > 0 {
		// The window moves within its own array: the session's fields
		// are its turn's alone, so nothing else holds the array, and a
		// new one every turn was a sixteenth of a turn's allocations.
		// The turns that leave are cleared, so their texts can go.
		n := copy(s.Recent, s.Recent[over:])
		clear(s.Recent[n:])
		s.Recent = s.Recent[:n]
	}
	return nil
}

// ClearHistory erases a user's conversation, in the database and in the
// live session.
func (r *Registry) ClearHistory(ctx context.Context, userID string) error {
	s, release, err := r.Acquire(ctx, userID)
	if errors.Is(err, ErrForgotten) {
		return r.history.Delete(ctx, userID) // nothing live to clear
	}
	if err != nil {
		return err
	}
	defer release()
	if err := r.history.Delete(ctx, userID); err != nil {
		return err
	}
	s.Recent = nil
	if r.bus != nil {
		// Turn numbers start again from 1: the epoch tells the other
		// replicas' windows apart from the new conversation.
		at, err := r.cleared(ctx, s.held)
		if err != nil {
			s.loaded = false
			return err
		}
		s.at = at
	}
	return nil
}

// Subscribe attaches a socket to a user; Send reaches every socket the
// user has open. Call the returned function when the socket closes. A
// user who already has the registry's maximum open is refused with
// ErrTooManySockets, and closing one of them frees a place.
func (r *Registry) Subscribe(userID string, sink Sink) (unsubscribe func(), err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	set := r.sockets[userID]
	if r.maxSockets > 0 && len(set) >= r.maxSockets {
		return nil, fmt.Errorf("%w: %d are open, the most one user may have", ErrTooManySockets, len(set))
	}
	if set == nil {
		set = map[Sink]struct{}{}
	}
	set[sink] = struct{}{}
	if len(set) == 1 {
		r.sockets[userID] = set
		r.announceLocked(userID, "+")
		if r.bus != nil {
			// The socket is answered only once the other replicas are
			// told of it, so a message its user sends at once through
			// another replica streams to it too.
			r.waitPublishedLocked()
		}
	}
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if set := r.sockets[userID]; set != nil {
			if _, ok := set[sink]; !ok {
				return
			}
			delete(set, sink)
			if len(set) == 0 {
				delete(r.sockets, userID)
				r.announceLocked(userID, "-")
			}
		}
	}, nil
}

// CloseSockets closes with reason the user's sockets that match reports
// true for, and returns how many. They are closed now, not when they next
// send: a revoked credential ends its sockets at once.
func (r *Registry) CloseSockets(userID, reason string, match func(Sink) bool) int {
	r.mu.Lock()
	var closing []Sink
	for s := range r.sockets[userID] {
		if match(s) {
			closing = append(closing, s)
		}
	}
	r.mu.Unlock()
	for _, s := range closing {
		s.Close(reason)
	}
	return len(closing)
}

// RevokedReason closes the sockets of revoked tokens.
const RevokedReason = "your credentials were revoked: log in again"

// Revocable is a socket opened with a token that a revocation can end.
type Revocable interface {
	// OpenedBefore says whether the socket was opened with a token
	// issued before the given token epoch (one a revocation ends).
	OpenedBefore(epoch int64) bool
}

// Revoke closes with RevokedReason the user's sockets opened with tokens
// older than epoch (the user changed their password or logged out
// everywhere), here and on every other replica, and returns how many
// closed here. Sockets opened otherwise (keys) stay open.
func (r *Registry) Revoke(userID string, epoch int64) int {
	n := r.revokeHere(userID, epoch)
	if r.bus != nil {
		r.mu.Lock()
		r.publishLocked(cluster.Event{Topic: cluster.TopicTokensRevoked, Key: userID, Data: []byte(strconv.FormatInt(epoch, 10))})
		r.mu.Unlock()
	}
	return n
}

func (r *Registry) revokeHere(userID string, epoch int64) int {
	return r.CloseSockets(userID, RevokedReason, func(s Sink) bool {
		k, ok := s.(Revocable)
		return ok && k.OpenedBefore(epoch)
	})
}

// MaxSockets is how many sockets one user may have open (0: no limit).
func (r *Registry) MaxSockets() int { return r.maxSockets }

// appender is a frame that encodes itself to the bytes json.Marshal would
// give, faster (the chat frame: hooks.Reply).
type appender interface {
	AppendJSON(b []byte) ([]byte, error)
}

// Send encodes frame once and queues it on every socket of the user, here
// and on the other replicas that have one.
func (r *Registry) Send(userID string, frame any) {
	var b []byte
	var err error
	if a, ok := frame.(appender); ok {
		b, err = a.AppendJSON(nil)
	} else {
		b, err = json.Marshal(frame)
	}
	if err != nil {
		r.logger.Error("encode frame", "err", err)
		return
	}
	r.deliver(userID, b, true)
}

// announceLocked tells the other replicas that the user's first socket
// here opened ("+") or the last closed ("-"); r.mu is held.
func (r *Registry) announceLocked(userID, what string) {
	if r.bus != nil {
		r.publishLocked(cluster.Event{Topic: cluster.TopicPresence, Key: userID, Data: []byte(what)})
	}
}

// deliver queues an encoded frame on the user's sockets here and, when
// publish is set and another replica has a socket of the user, for the
// other replicas, under one lock so that both keep the order sent.
func (r *Registry) deliver(userID string, b []byte, publish bool) {
	r.mu.Lock()
	if publish && r.elsewhereLocked(userID) {
		r.publishLocked(cluster.Event{Topic: cluster.TopicFrame, Key: userID, Data: b})
	}
	sinks := make([]Sink, 0, len(r.sockets[userID]))
	for s := range r.sockets[userID] {
		sinks = append(sinks, s)
	}
	r.mu.Unlock()
	for _, s := range sinks {
		s.Send(b)
	}
}

// Live counts the sessions in memory.
func (r *Registry) Live() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sessions)
}

// Sockets counts the sockets open, every user's together.
func (r *Registry) Sockets() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, set := range r.sockets {
		n += len(set)
	}
	return n
}

// Forget ends everything of a user that lives here: the sockets are closed
// with reason, the session is dropped once its turn in progress ends, and
// the history is erased. From then on Acquire refuses the user, so a
// request already past authentication cannot write after the erasure;
// call it before erasing the user's other data. Among replicas it waits
// for a turn in progress on another replica too, leaves the user's lease
// marked deleted (so no replica starts a turn for them), and tells the
// others to close the user's sockets and drop their session.
func (r *Registry) Forget(ctx context.Context, userID, reason string) error {
	r.forgetHere(userID, reason)
	if r.bus != nil {
		l, err := r.take(ctx, userID)
		switch {
		case errors.Is(err, ErrForgotten): // erased through another replica
		case err != nil:
			return err
		default:
			if err := r.forget(ctx, l); err != nil {
				return err
			}
		}
		r.mu.Lock()
		r.publishLocked(cluster.Event{Topic: cluster.TopicUserDeleted, Key: userID, Data: []byte(reason)})
		r.mu.Unlock()
	}
	return r.history.Delete(ctx, userID)
}

// forgetHere closes the user's sockets here, waits for a turn in progress
// here and drops the session, and refuses the user from now on.
func (r *Registry) forgetHere(userID, reason string) {
	r.mu.Lock()
	r.forgotten[userID] = time.Now()
	sinks := r.sockets[userID]
	delete(r.sockets, userID)
	if len(sinks) > 0 {
		r.announceLocked(userID, "-")
	}
	s := r.sessions[userID]
	r.mu.Unlock()
	for sink := range sinks {
		sink.Close(reason)
	}
	if s != nil {
		s.turn.Lock() // wait for a turn in progress
		r.mu.Lock()
		s.gone = true
		if r.sessions[userID] == s {
			delete(r.sessions, userID)
		}
		r.mu.Unlock()
		s.turn.Unlock()
	}
}

// Run evicts idle sessions until ctx is done. Their history stays in the
// database and comes back on the next Acquire.
func (r *Registry) Run(ctx context.Context) {
	if r.idle <= 0 {
		return
	}
	t := time.NewTicker(max(r.idle/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.EvictIdle(time.Now().Add(-r.idle))
		}
	}
}

// EvictIdle drops sessions unused since before cutoff and not in a turn,
// and forgets deletions older than a day (a deleted user's id is a uuid
// that no one gets again; the tombstone only has to outlive requests in
// flight).
func (r *Registry) EvictIdle(cutoff time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, at := range r.forgotten {
		if time.Since(at) > 24*time.Hour {
			delete(r.forgotten, id)
		}
	}
	n := 0
	for id, s := range r.sessions {
		if s.lastUsed.Before(cutoff) && s.turn.TryLock() {
			s.gone = true
			delete(r.sessions, id)
			s.turn.Unlock()
			n++
		}
	}
	return n
}
