package session

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

// sink is a socket that drops frames; it has a field so that every one is
// a distinct pointer (pointers to zero-size values may be equal).
type sink struct{ _ byte }

func (*sink) Send([]byte)  {}
func (*sink) Close(string) {}

// TestSocketLimitHoldsUnderConcurrency: many sockets of one user
// subscribing at once never overshoot the limit, other users keep their
// own places, and each unsubscribe frees exactly one.
func TestSocketLimitHoldsUnderConcurrency(t *testing.T) {
	const limit, tries = 8, 200
	r := NewRegistry(nil, 0, limit, nil)
	var admitted, refused atomic.Int64
	var mu sync.Mutex
	var unsubs []func()
	var wg sync.WaitGroup
	for range tries {
		wg.Go(func() {
			unsub, err := r.Subscribe("alice", &sink{})
			switch {
			case err == nil:
				admitted.Add(1)
				mu.Lock()
				unsubs = append(unsubs, unsub)
				mu.Unlock()
			case errors.Is(err, ErrTooManySockets):
				refused.Add(1)
			default:
				t.Errorf("subscribe: %v", err)
			}
		})
	}
	wg.Wait()
	if admitted.Load() != limit || refused.Load() != tries-limit {
		t.Fatalf("admitted %d, refused %d; want %d and %d", admitted.Load(), refused.Load(), limit, tries-limit)
	}
	if _, err := r.Subscribe("bob", &sink{}); err != nil {
		t.Errorf("another user: %v", err)
	}
	unsubs[0]()
	unsubs[0]() // twice changes nothing
	if _, err := r.Subscribe("alice", &sink{}); err != nil {
		t.Errorf("after one closed: %v", err)
	}
	if _, err := r.Subscribe("alice", &sink{}); !errors.Is(err, ErrTooManySockets) {
		t.Errorf("over the limit again: %v", err)
	}
}
