package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grin-ai/grin/integration/pgtest"
	"github.com/grin-ai/grin/platform/cluster"
	"github.com/grin-ai/grin/platform/database"
)

// wait bounds how long a test waits for what must happen; it measures
// nothing.
const wait = 30 * time.Second

// replicaSet is several registries on one PostgreSQL database, each with
// its own connections and bus, as separate grin processes have.
type replicaSet struct {
	url  string
	regs []*Registry
	bus  []*countingBus
}

func startReplicas(t testing.TB, server *pgtest.Server, n int, lease time.Duration) *replicaSet {
	t.Helper()
	rs := &replicaSet{url: server.Database(t)}
	for range n {
		rs.add(t, lease)
	}
	return rs
}

// add starts one more replica.
func (rs *replicaSet) add(t testing.TB, lease time.Duration) *Registry {
	t.Helper()
	ctx := context.Background()
	db, err := database.OpenPostgres(ctx, rs.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	h, err := NewHistory(ctx, database.NewCommitter(db), db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	pg, err := cluster.NewPostgres(ctx, cluster.PostgresConfig{URL: rs.url, DB: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	bus := &countingBus{Postgres: pg, published: map[string]int{}}
	r := NewRegistry(h, 0, 0, nil, Replicated(bus, db, lease))
	t.Cleanup(r.Close)
	rs.regs = append(rs.regs, r)
	rs.bus = append(rs.bus, bus)
	return r
}

// countingBus counts what a replica publishes, by topic.
type countingBus struct {
	*cluster.Postgres
	mu        sync.Mutex
	published map[string]int
}

func (b *countingBus) Publish(ctx context.Context, e cluster.Event) error {
	b.mu.Lock()
	b.published[e.Topic]++
	b.mu.Unlock()
	return b.Postgres.Publish(ctx, e)
}

func (b *countingBus) count(topic string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.published[topic]
}

// recorder is a socket that keeps what it is sent.
type recorder struct {
	frames chan string
	closed chan string
}

func newRecorder() *recorder {
	return &recorder{frames: make(chan string, 10000), closed: make(chan string, 1)}
}

func (s *recorder) Send(b []byte)       { s.frames <- string(b) }
func (s *recorder) Close(reason string) { s.closed <- reason }

func (s *recorder) next(t *testing.T) string {
	t.Helper()
	select {
	case f := <-s.frames:
		return f
	case <-time.After(wait):
		t.Fatalf("no frame within %s", wait)
		return ""
	}
}

func subscribe(t *testing.T, r *Registry, user string, s Sink) func() {
	t.Helper()
	unsub, err := r.Subscribe(user, s)
	if err != nil {
		t.Fatal(err)
	}
	return unsub
}

// knows waits until r knows that n other replicas have sockets of user.
func knows(t testing.TB, r *Registry, user string, n int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		r.mu.Lock()
		got := len(r.rep.remote[user])
		r.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s this replica knows %d replicas with sockets of %q, want %d", wait, got, user, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func frame(i int, size int) map[string]any {
	return map[string]any{"type": "chat_token", "n": i, "content": strings.Repeat("ü", size)}
}

func TestFramesAcrossReplicas(t *testing.T) {
	server := pgtest.Start(t)

	t.Run("a user's frames reach their sockets on every replica, in order, once", func(t *testing.T) {
		rs := startReplicas(t, server, 3, 0)
		a, b, c := rs.regs[0], rs.regs[1], rs.regs[2]
		a1, a2, b1, bob := newRecorder(), newRecorder(), newRecorder(), newRecorder()
		subscribe(t, a, "alice", a1)
		subscribe(t, a, "alice", a2)
		subscribe(t, b, "alice", b1)
		subscribe(t, b, "bob", bob)
		knows(t, c, "alice", 2)
		knows(t, a, "alice", 1)
		const n = 100
		for i := range n {
			size := 3
			if i%25 == 3 {
				size = 10000 // 20 KB of text: a split event
			}
			c.Send("alice", frame(i, size))
		}
		for _, s := range []*recorder{a1, a2, b1} {
			for i := range n {
				if f := s.next(t); !strings.Contains(f, fmt.Sprintf(`"n":%d,`, i)) {
					t.Fatalf("frame %d arrived as %.60s", i, f)
				}
			}
		}
		// Sent on a replica with sockets: each of them gets it once.
		for i := range n {
			a.Send("alice", frame(n+i, 3))
		}
		for i := range n {
			want := fmt.Sprintf(`"n":%d,`, n+i)
			for _, s := range []*recorder{a1, a2, b1} {
				if f := s.next(t); !strings.Contains(f, want) {
					t.Fatalf("frame %d arrived as %.60s", n+i, f)
				}
			}
		}
		// Had a got its own frames back from the bus, they would come
		// before this one, published after b received them all.
		c.Send("alice", frame(-1, 3))
		for _, s := range []*recorder{a1, a2, b1} {
			if f := s.next(t); !strings.Contains(f, `"n":-1,`) {
				t.Errorf("a socket got %.60s, want the frame sent after the others (a duplicate?)", f)
			}
		}
		c.Send("bob", frame(-2, 3))
		if f := bob.next(t); !strings.Contains(f, `"n":-2,`) {
			t.Errorf("bob's socket got %.60s: another user's frame", f)
		}
	})

	t.Run("frames are published only while another replica has a socket of the user", func(t *testing.T) {
		rs := startReplicas(t, server, 2, 0)
		a, b := rs.regs[0], rs.regs[1]
		alice, bob := newRecorder(), newRecorder()
		subscribe(t, a, "alice", alice)
		unsubBob := subscribe(t, b, "bob", bob)
		knows(t, a, "bob", 1)
		for i := range 50 {
			a.Send("alice", frame(i, 3))
		}
		for range 50 {
			alice.next(t)
		}
		if n := rs.bus[0].count(cluster.TopicFrame); n != 0 {
			t.Errorf("a published %d frame events for a user with no socket elsewhere, want 0", n)
		}
		a.Send("bob", frame(1, 3))
		if f := bob.next(t); !strings.Contains(f, `"n":1,`) {
			t.Errorf("bob got %.60s", f)
		}
		unsubBob()
		knows(t, a, "bob", 0)
		before := rs.bus[0].count(cluster.TopicFrame)
		a.Send("bob", frame(2, 3))
		a.Send("alice", frame(3, 3))
		alice.next(t)
		if n := rs.bus[0].count(cluster.TopicFrame); n != before {
			t.Errorf("a published %d frame events after bob's last socket closed, want none", n-before)
		}
	})

	t.Run("a replica started later learns the sockets already open, and a closed one forgets its own", func(t *testing.T) {
		rs := startReplicas(t, server, 1, 0)
		a := rs.regs[0]
		s := newRecorder()
		subscribe(t, a, "alice", s)
		late := rs.add(t, 0)
		knows(t, late, "alice", 1)
		late.Send("alice", frame(7, 3))
		if f := s.next(t); !strings.Contains(f, `"n":7,`) {
			t.Errorf("got %.60s", f)
		}
		a.Close()
		knows(t, late, "alice", 0)
	})
}

// counter is a socket that counts its frames.
type counter struct {
	mu   sync.Mutex
	n    int
	seen chan struct{}
	want int
}

func (c *counter) Send([]byte) {
	c.mu.Lock()
	c.n++
	if c.n == c.want {
		close(c.seen)
	}
	c.mu.Unlock()
}
func (*counter) Close(string) {}

// BenchmarkSend is the cost of one frame to a user with a socket here:
// in one process, among replicas when no other has a socket of the user
// (nothing is published), and when one has (every frame published, timed
// until the other replica's socket has them all).
//
//	go test ./platform/session -run '^$' -bench Send -benchtime 20000x
func BenchmarkSend(b *testing.B) {
	server := pgtest.Start(b)
	for _, c := range []struct {
		name     string
		replicas int
		remote   bool
	}{{"one process", 0, false}, {"replicas, no socket elsewhere", 2, false}, {"replicas, a socket elsewhere", 2, true}} {
		b.Run(c.name, func(b *testing.B) {
			var here, there *Registry
			if c.replicas == 0 {
				here = NewRegistry(nil, 0, 0, nil)
			} else {
				rs := startReplicas(b, server, c.replicas, 0)
				here, there = rs.regs[0], rs.regs[1]
			}
			local := &counter{seen: make(chan struct{}), want: -1}
			if _, err := here.Subscribe("alice", local); err != nil {
				b.Fatal(err)
			}
			remote := &counter{seen: make(chan struct{}), want: b.N}
			if c.remote {
				if _, err := there.Subscribe("alice", remote); err != nil {
					b.Fatal(err)
				}
				knows(b, here, "alice", 1)
			}
			f := frame(1, 40)
			b.ResetTimer()
			for range b.N {
				here.Send("alice", f)
			}
			if c.remote {
				<-remote.seen
			}
		})
	}
}

func TestTurnsAcrossReplicas(t *testing.T) {
	server := pgtest.Start(t)
	ctx := context.Background()

	t.Run("a user's turns run one at a time across replicas, each seeing the one before", func(t *testing.T) {
		rs := startReplicas(t, server, 3, 0)
		const workers, turns = 6, 10
		var (
			mu     sync.Mutex
			inTurn int
			last   string
			errs   = make(chan error, workers*turns)
			wg     sync.WaitGroup
		)
		for w := range workers {
			wg.Go(func() {
				for i := range turns {
					r := rs.regs[(w+i)%len(rs.regs)] // as a load balancer spreads them
					s, release, err := r.Acquire(ctx, "alice")
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					inTurn++
					overlap, seen, want := inTurn, "", last
					mu.Unlock()
					if n := len(s.Recent); n > 0 {
						seen = s.Recent[n-1].Text
					}
					text := fmt.Sprintf("worker %d turn %d", w, i)
					if overlap != 1 {
						errs <- fmt.Errorf("%s ran beside %d other turns", text, overlap-1)
					}
					if seen != want {
						errs <- fmt.Errorf("%s saw %q as the last turn, want %q", text, seen, want)
					}
					err = r.Record(ctx, s, []Turn{{Who: Human, Text: text, When: 1}})
					mu.Lock()
					inTurn--
					if err == nil {
						last = text
					}
					mu.Unlock()
					release()
					if err != nil {
						errs <- fmt.Errorf("record %s: %w", text, err)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		all, err := rs.regs[0].History().Recent(ctx, "alice", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != workers*turns || all[len(all)-1].Text != last {
			t.Errorf("the history holds %d turns ending with %q, want %d ending with %q", len(all), all[len(all)-1].Text, workers*turns, last)
		}
	})

	t.Run("a lease taken as the last holder's turn commits reads that turn", func(t *testing.T) {
		// The race, made to happen: b asks for bob's lease while a holds
		// it; a's release is under way (its row locked) when a's last turn
		// commits. b's statement began before that commit, and b must
		// still see the turn rather than take its cached window for current.
		rs := startReplicas(t, server, 2, 0)
		a, b := rs.regs[0], rs.regs[1]
		record := func(r *Registry, text string) {
			t.Helper()
			s, release, err := r.Acquire(ctx, "bob")
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			if err := r.Record(ctx, s, []Turn{{Who: Human, Text: text, When: 1}}); err != nil {
				t.Fatal(err)
			}
		}
		record(a, "one")
		record(b, "two") // b's window: one, two
		sa, releaseA, err := a.Acquire(ctx, "bob")
		if err != nil {
			t.Fatal(err)
		}
		db, err := database.OpenPostgres(ctx, rs.url)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, `UPDATE turn_leases SET holder = '', expires_at = 'epoch' WHERE user_id = 'bob'`); err != nil {
			t.Fatal(err)
		}
		type acquired struct {
			s       *Session
			release func()
			err     error
		}
		got := make(chan acquired, 1)
		go func() {
			s, release, err := b.Acquire(ctx, "bob")
			got <- acquired{s, release, err}
		}()
		for deadline := time.Now().Add(wait); ; time.Sleep(5 * time.Millisecond) {
			var n int
			if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("b never waited on the lease's row")
			}
		}
		if err := a.Record(ctx, sa, []Turn{{Who: Human, Text: "three", When: 1}}); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		g := <-got
		if g.err != nil {
			t.Fatal(g.err)
		}
		defer g.release()
		releaseA()
		if n := len(g.s.Recent); n == 0 || g.s.Recent[n-1].Text != "three" {
			t.Errorf("b's window after a's last turn: %+v, want it to end with three", g.s.Recent)
		}
	})

	t.Run("a replica that dies in a turn holds the user only until its lease expires", func(t *testing.T) {
		rs := startReplicas(t, server, 1, 300*time.Millisecond)
		db, err := database.OpenPostgres(ctx, rs.url)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		// The lease a replica killed during a turn leaves behind.
		if _, err := db.ExecContext(ctx, `INSERT INTO turn_leases (user_id, holder, expires_at)
			VALUES ('alice', 'dead/1', clock_timestamp() + interval '300 milliseconds')`); err != nil {
			t.Fatal(err)
		}
		s, release, err := rs.regs[0].Acquire(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		defer release()
		var holder string
		if err := db.QueryRowContext(ctx, `SELECT holder FROM turn_leases WHERE user_id = 'alice'`).Scan(&holder); err != nil {
			t.Fatal(err)
		}
		if holder == "dead/1" || s == nil {
			t.Errorf("the lease is still %q's", holder)
		}
	})

	t.Run("a window cleared and rewritten on another replica is loaded again", func(t *testing.T) {
		rs := startReplicas(t, server, 2, 0)
		a, b := rs.regs[0], rs.regs[1]
		turn := func(r *Registry, text string) []Turn {
			t.Helper()
			s, release, err := r.Acquire(ctx, "alice")
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			seen := append([]Turn(nil), s.Recent...)
			if err := r.Record(ctx, s, []Turn{{Who: Human, Text: text, When: 1}}); err != nil {
				t.Fatal(err)
			}
			return seen
		}
		turn(a, "old")
		if err := b.ClearHistory(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		turn(b, "new") // turn number 1 again
		if seen := turn(a, "next"); len(seen) != 1 || seen[0].Text != "new" {
			t.Errorf("after a clear and a turn elsewhere, a's window is %v, want only the new turn", seen)
		}
		if seen := turn(b, "last"); len(seen) != 2 || seen[1].Text != "next" {
			t.Errorf("b's window is %v, want the new turn and a's", seen)
		}
	})

	t.Run("a user deleted on one replica is refused and disconnected on every other", func(t *testing.T) {
		rs := startReplicas(t, server, 2, 0)
		a, b := rs.regs[0], rs.regs[1]
		sock := newRecorder()
		subscribe(t, b, "alice", sock)
		knows(t, a, "alice", 1)
		_, release, err := b.Acquire(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		release()
		if err := a.Forget(ctx, "alice", "this user was deleted"); err != nil {
			t.Fatal(err)
		}
		// Refused at once, whether b has heard of it yet or not.
		if _, _, err := b.Acquire(ctx, "alice"); !errors.Is(err, ErrForgotten) {
			t.Errorf("b's Acquire after the deletion: %v, want ErrForgotten", err)
		}
		select {
		case reason := <-sock.closed:
			if reason != "this user was deleted" {
				t.Errorf("the socket closed with %q", reason)
			}
		case <-time.After(wait):
			t.Fatal("the deleted user's socket on the other replica stayed open")
		}
		knows(t, a, "alice", 0)
	})
}

// tokenSocket is a socket opened with a token of some epoch.
type tokenSocket struct {
	*recorder
	epoch int64
}

func (s tokenSocket) OpenedBefore(epoch int64) bool { return s.epoch < epoch }

func TestRevocationAcrossReplicas(t *testing.T) {
	server := pgtest.Start(t)
	rs := startReplicas(t, server, 2, 0)
	a, b := rs.regs[0], rs.regs[1]
	old, current, key := tokenSocket{newRecorder(), 1}, tokenSocket{newRecorder(), 2}, newRecorder()
	subscribe(t, b, "alice", old)
	subscribe(t, b, "alice", current)
	subscribe(t, b, "alice", key) // opened with a key: no token to revoke
	here := tokenSocket{newRecorder(), 1}
	subscribe(t, a, "alice", here)
	if n := a.Revoke("alice", 2); n != 1 {
		t.Errorf("Revoke closed %d sockets here, want 1", n)
	}
	for _, s := range []*recorder{here.recorder, old.recorder} {
		select {
		case reason := <-s.closed:
			if reason != RevokedReason {
				t.Errorf("closed with %q", reason)
			}
		case <-time.After(wait):
			t.Fatal("a socket of a revoked token stayed open")
		}
	}
	select {
	case <-current.closed:
		t.Error("the socket of a token issued since the revocation closed")
	default:
	}
	// A later revocation ends the token of epoch 2 on b; b handles the
	// revocations in order, so the first was done by then.
	a.Revoke("alice", 3)
	select {
	case <-current.closed:
	case <-time.After(wait):
		t.Fatal("the socket of epoch 2 stayed open after epoch 3's revocation")
	}
	select {
	case <-key.closed:
		t.Error("a socket opened with a key closed on a revocation of tokens")
	default:
	}
}
