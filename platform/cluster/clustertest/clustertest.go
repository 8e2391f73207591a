// Package clustertest is an in-memory cluster.Bus for the tests of
// packages that follow other replicas, when a PostgreSQL bus is more than
// the test is about: replicas joined to one Hub hear each other's events,
// can be cut off (losing events) and brought back (told Missed), and the
// hub records everything published.
package clustertest

import (
	"context"
	"sync"

	"github.com/grin-ai/grin/platform/cluster"
)

// Hub links the replicas joined to it.
type Hub struct {
	// Synchronous delivers an event to every other replica's subscribers
	// before Publish returns. Otherwise each subscription receives its
	// events in order on a goroutine of its own, as the PostgreSQL bus
	// delivers them.
	Synchronous bool

	mu        sync.Mutex
	members   []*Member
	published []cluster.Event
}

// Join adds a replica named id.
func (h *Hub) Join(id string) *Member {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := &Member{hub: h, id: id, subs: map[string][]*subscription{}}
	h.members = append(h.members, m)
	return m
}

// Published lists every event published through the hub, in order.
func (h *Hub) Published() []cluster.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]cluster.Event(nil), h.published...)
}

// Member is one replica's bus.
type Member struct {
	hub  *Hub
	id   string
	mu   sync.Mutex
	cut  bool
	subs map[string][]*subscription
}

type subscription struct {
	fn    func(context.Context, cluster.Event)
	queue chan cluster.Event // nil when the hub is synchronous
	done  chan struct{}
}

var _ cluster.Bus = (*Member)(nil)

// ID is the name the replica joined with.
func (m *Member) ID() string { return m.id }

// Publish hands e to every other replica that is not cut off.
func (m *Member) Publish(ctx context.Context, e cluster.Event) error {
	e.Origin = m.id
	m.hub.mu.Lock()
	m.hub.published = append(m.hub.published, e)
	members := append([]*Member(nil), m.hub.members...)
	m.hub.mu.Unlock()
	for _, o := range members {
		if o != m {
			o.deliver(ctx, e)
		}
	}
	return nil
}

func (m *Member) deliver(ctx context.Context, e cluster.Event) {
	m.mu.Lock()
	if m.cut {
		m.mu.Unlock()
		return
	}
	subs := append([]*subscription(nil), m.subs[e.Topic]...)
	m.mu.Unlock()
	for _, s := range subs {
		s.take(ctx, e)
	}
}

func (s *subscription) take(ctx context.Context, e cluster.Event) {
	if s.queue == nil {
		s.fn(ctx, e)
		return
	}
	select {
	case s.queue <- e:
	case <-s.done:
	}
}

// Subscribe calls fn for every event of topic other replicas publish.
func (m *Member) Subscribe(topic string, fn func(context.Context, cluster.Event)) (cancel func()) {
	s := &subscription{fn: fn, done: make(chan struct{})}
	if !m.hub.Synchronous {
		s.queue = make(chan cluster.Event, 1024)
		go func() {
			for {
				select {
				case e := <-s.queue:
					fn(context.Background(), e)
				case <-s.done:
					return
				}
			}
		}()
	}
	m.mu.Lock()
	m.subs[topic] = append(m.subs[topic], s)
	m.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			m.mu.Lock()
			list := m.subs[topic]
			for i, x := range list {
				if x == s {
					m.subs[topic] = append(list[:i:i], list[i+1:]...)
					break
				}
			}
			m.mu.Unlock()
			close(s.done)
		})
	}
}

// Cut cuts the replica off (events to it are lost), or brings it back
// with a Missed event for every subscription, as a bus that reconnected.
func (m *Member) Cut(cut bool) {
	m.mu.Lock()
	m.cut = cut
	var subs []*subscription
	var topics []string
	if !cut {
		for topic, list := range m.subs {
			for _, s := range list {
				subs, topics = append(subs, s), append(topics, topic)
			}
		}
	}
	m.mu.Unlock()
	for i, s := range subs {
		s.take(context.Background(), cluster.Event{Topic: topics[i], Missed: true})
	}
}
