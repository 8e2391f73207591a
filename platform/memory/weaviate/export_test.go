package weaviate

import (
	"context"
	"time"

	"github.com/grin-ai/grin/platform/cluster"
)

// The steps of CoolIdle, for tests that take them one at a time on a
// clock of their own.

func (s *Store) SetClock(now func() time.Time) { s.now = now }

func (s *Store) TrackUse() { s.trackUse() }

func (s *Store) AnnounceUse(ctx context.Context, bus cluster.Bus) error {
	return s.announceUse(ctx, bus)
}

func (s *Store) HearUse(bus cluster.Bus) (cancel func()) { return s.hearUse(bus) }
