package session

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/grin-ai/grin/platform/cluster"
)

// Option changes how NewRegistry builds a registry.
type Option func(*Registry)

// DefaultTurnLease is how long a replica's hold on a user's turn lasts
// without renewal: a replica that dies during a turn delays that user's
// next message by at most this long.
const DefaultTurnLease = 30 * time.Second

// maxOutboxBytes bounds the frames waiting to be published to other
// replicas; past it frames are dropped (frames are delivered at most once
// anyway), never queued without end behind a slow database.
const maxOutboxBytes = 16 << 20

// Replicated makes the registry one of several replicas on one PostgreSQL
// database (db) that tell each other through bus: a user's frames reach
// their sockets on every replica, and their turns are taken one at a
// time across replicas under a lease in db that lasts lease without
// renewal (DefaultTurnLease when zero or negative). Call Close when done.
// With a Local bus (one process) it changes nothing.
func Replicated(bus cluster.Bus, db *sql.DB, lease time.Duration) Option {
	return func(r *Registry) {
		if _, local := bus.(cluster.Local); local || bus == nil {
			return
		}
		if lease <= 0 {
			lease = DefaultTurnLease
		}
		r.bus, r.db, r.lease = bus, db, lease
	}
}

// replica is what a registry keeps of the other replicas.
type replica struct {
	// remote: the users with sockets elsewhere, and on which replicas.
	remote    map[string]map[string]struct{}
	byReplica map[string]map[string]struct{}

	// outbox: events to publish, in order, by one goroutine at a time.
	outbox  []cluster.Event
	frames  int // bytes of frames in outbox
	leading bool
	drained *sync.Cond // on r.mu: a batch of the outbox went, or all of it
	closed  bool
	// queued and published count the events put in the outbox and those
	// handed to the bus, so a caller can wait for its own to go.
	queued, published uint64
}

// join subscribes the registry to what the other replicas publish, and
// asks them which users have sockets with them. r.mu need not be held: it
// runs in NewRegistry.
func (r *Registry) join() {
	r.rep = replica{remote: map[string]map[string]struct{}{}, byReplica: map[string]map[string]struct{}{}, drained: sync.NewCond(&r.mu)}
	r.unsubs = append(r.unsubs,
		r.bus.Subscribe(cluster.TopicPresence, r.onPresence),
		r.bus.Subscribe(cluster.TopicFrame, r.onFrame),
		r.bus.Subscribe(cluster.TopicTurn, r.onTurn),
		r.bus.Subscribe(cluster.TopicUserDeleted, r.onUserDeleted),
		r.bus.Subscribe(cluster.TopicTokensRevoked, r.onRevoked),
	)
	r.mu.Lock()
	r.publishLocked(cluster.Event{Topic: cluster.TopicPresence, Data: []byte("?")})
	r.mu.Unlock()
}

// Close stops listening to the other replicas, publishes what is still
// queued for them and then tells them this replica has no sockets any
// more. A registry of one process has nothing to close.
func (r *Registry) Close() {
	if r.bus == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rep.closed {
		return
	}
	for _, cancel := range r.unsubs {
		cancel()
	}
	r.publishLocked(cluster.Event{Topic: cluster.TopicPresence, Data: []byte("=[]")})
	r.rep.closed = true // nothing more after the goodbye
	for r.rep.leading {
		r.rep.drained.Wait()
	}
}

// waitPublishedLocked waits until every event queued so far is handed to
// the bus (or the registry closed); r.mu is held, and released meanwhile.
func (r *Registry) waitPublishedLocked() {
	for want := r.rep.queued; r.rep.published < want && !r.rep.closed; {
		r.rep.drained.Wait()
	}
}

// Elsewhere reports on how many other replicas userID has a socket, as
// far as this one has heard. A socket opened elsewhere gets this replica's
// frames of the user once its presence has arrived here: frames sent
// before (a few milliseconds on a healthy bus) do not reach it, and the
// reply they carried is in the user's history.
func (r *Registry) Elsewhere(userID string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bus == nil {
		return 0
	}
	return len(r.rep.remote[userID])
}

// elsewhereLocked says whether another replica has a socket of userID; r.mu is
// held.
func (r *Registry) elsewhereLocked(userID string) bool {
	return r.bus != nil && len(r.rep.remote[userID]) > 0
}

// onPresence keeps the map of remote sockets.
func (r *Registry) onPresence(ctx context.Context, e cluster.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case e.Missed:
		// Announcements were lost: ask again. What is known stays
		// meanwhile; a stale entry costs a frame published for nobody, a
		// dropped one would lose frames.
		r.publishLocked(cluster.Event{Topic: cluster.TopicPresence, Data: []byte("?")})
	case e.Key == "" && string(e.Data) == "?":
		users := make([]string, 0, len(r.sockets))
		for u := range r.sockets {
			users = append(users, u)
		}
		b, _ := json.Marshal(users)
		r.publishLocked(cluster.Event{Topic: cluster.TopicPresence, Data: append([]byte("="), b...)})
	case e.Key == "" && bytes.HasPrefix(e.Data, []byte("=")):
		var users []string
		if err := json.Unmarshal(e.Data[1:], &users); err != nil {
			r.logger.Warn("a replica's list of users with sockets does not parse", "replica", e.Origin, "err", err)
			return
		}
		for u := range r.rep.byReplica[e.Origin] {
			r.rep.drop(u, e.Origin)
		}
		for _, u := range users {
			r.rep.add(u, e.Origin)
		}
	case string(e.Data) == "+":
		r.rep.add(e.Key, e.Origin)
	case string(e.Data) == "-":
		r.rep.drop(e.Key, e.Origin)
	}
}

func (p *replica) add(userID, origin string) {
	if p.remote[userID] == nil {
		p.remote[userID] = map[string]struct{}{}
	}
	p.remote[userID][origin] = struct{}{}
	if p.byReplica[origin] == nil {
		p.byReplica[origin] = map[string]struct{}{}
	}
	p.byReplica[origin][userID] = struct{}{}
}

func (p *replica) drop(userID, origin string) {
	delete(p.remote[userID], origin)
	if len(p.remote[userID]) == 0 {
		delete(p.remote, userID)
	}
	delete(p.byReplica[origin], userID)
	if len(p.byReplica[origin]) == 0 {
		delete(p.byReplica, origin)
	}
}

// onFrame delivers another replica's frames to the sockets here. Data
// holds one or more encoded frames, one a line (JSON never holds a raw
// newline).
func (r *Registry) onFrame(ctx context.Context, e cluster.Event) {
	if e.Missed {
		return // frames are not kept: nothing to reload
	}
	for frame := range bytes.SplitSeq(e.Data, []byte("\n")) {
		if len(frame) > 0 {
			r.deliver(e.Key, frame, false)
		}
	}
}

// publishLocked queues e for the other replicas; r.mu is held. Events are
// published in the order queued, by one goroutine at a time, so Send
// never waits for the database.
func (r *Registry) publishLocked(e cluster.Event) {
	if r.rep.closed {
		return
	}
	if e.Topic == cluster.TopicFrame {
		if r.rep.frames+len(e.Data) > maxOutboxBytes {
			r.logger.Warn("frames for other replicas are dropped: the bus cannot keep up", "user", e.Key)
			return
		}
		r.rep.frames += len(e.Data)
	}
	r.rep.outbox = append(r.rep.outbox, e)
	r.rep.queued++
	if !r.rep.leading {
		r.rep.leading = true
		go r.drain()
	}
}

// drain publishes the outbox until it is empty. Consecutive frames of one
// user go as one event.
func (r *Registry) drain() {
	ctx := context.Background()
	var sent uint64 // events of the last batch, now handed to the bus
	for {
		r.mu.Lock()
		r.rep.published += sent
		r.rep.drained.Broadcast()
		batch := r.rep.outbox
		sent = uint64(len(batch))
		r.rep.outbox, r.rep.frames = nil, 0
		if len(batch) == 0 {
			r.rep.leading = false
			r.rep.drained.Broadcast()
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		for i := 0; i < len(batch); {
			e := batch[i]
			i++
			if e.Topic == cluster.TopicFrame {
				var data []byte
				data = append(data, e.Data...)
				for i < len(batch) && batch[i].Topic == cluster.TopicFrame && batch[i].Key == e.Key &&
					len(data)+len(batch[i].Data) < cluster.MaxEventBytes/2 {
					data = append(append(data, '\n'), batch[i].Data...)
					i++
				}
				e.Data = data
			}
			if err := r.bus.Publish(ctx, e); err != nil {
				r.logger.Warn("publish to the other replicas", "topic", e.Topic, "user", e.Key, "err", err)
			}
		}
	}
}

// onUserDeleted closes a user's sockets here and drops their session when
// another replica deleted them. After a gap, the users with sockets here
// are looked up among the deleted (their leases say so).
func (r *Registry) onUserDeleted(ctx context.Context, e cluster.Event) {
	if !e.Missed {
		r.forgetHere(e.Key, string(e.Data))
		return
	}
	r.mu.Lock()
	users := make([]string, 0, len(r.sockets)+len(r.sessions))
	for u := range r.sockets {
		users = append(users, u)
	}
	for u := range r.sessions {
		users = append(users, u)
	}
	r.mu.Unlock()
	deleted, err := r.deletedAmong(ctx, users)
	if err != nil {
		r.logger.Warn("look for users deleted while the bus was away", "err", err)
		return
	}
	for _, u := range deleted {
		r.forgetHere(u, "this user was deleted")
	}
}

// onRevoked closes the sockets here of tokens another replica revoked.
// After a gap nothing can be said of the epochs missed: a socket of a
// revoked token then lasts until it next sends (its message is refused).
func (r *Registry) onRevoked(_ context.Context, e cluster.Event) {
	if e.Missed {
		return
	}
	epoch, err := strconv.ParseInt(string(e.Data), 10, 64)
	if err != nil {
		r.logger.Warn("a revocation without its epoch", "replica", e.Origin, "user", e.Key)
		return
	}
	r.revokeHere(e.Key, epoch)
}
