package weaviate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/weaviate/weaviate/entities/models"

	"github.com/grin-ai/grin/platform/cluster"
	"github.com/grin-ai/grin/platform/memory"
)

// Tenant activity as Weaviate reports it (ACTIVE and INACTIVE are the
// older names of HOT and COLD).
const (
	hot  = "HOT"
	cold = "COLD"
)

// Cool sets the episodic tenants of users idle for at least idle to COLD:
// Weaviate unloads their files and index from memory until a request for
// them arrives, which auto-activation answers after loading them again.
// So a node holds many more users than it keeps in memory.
//
// A user is idle when neither this process nor, as far as it has heard
// (CoolIdle), another replica has served them for idle. A hot tenant this
// process has not seen used since it started is counted from the first
// call, and no tenant from before the bus last lost events. Cool returns
// how many tenants it cooled.
func (s *Store) Cool(ctx context.Context, idle time.Duration) (int, error) {
	class := s.classes[memory.Episodic]
	tenants, err := s.tenants(ctx, class)
	if err != nil {
		return 0, err
	}
	now := s.now()
	var idleOnes []models.Tenant
	listed := make(map[string]bool, len(tenants))
	s.mu.Lock()
	for _, t := range tenants {
		listed[t.Name] = true
		if t.ActivityStatus != hot && t.ActivityStatus != "ACTIVE" {
			// Cold (another replica cooled it): counted again from the
			// next use, or the sweep that finds it woken. Use heard before
			// would have it cooled again as soon as it wakes.
			if !s.used[t.Name].After(now) {
				delete(s.used, t.Name)
			}
			continue
		}
		last, ok := s.used[t.Name]
		if !ok {
			s.used[t.Name] = now
			last = now
		}
		if last.Before(s.gapAt) {
			last = s.gapAt
		}
		if now.Sub(last) >= idle {
			idleOnes = append(idleOnes, models.Tenant{Name: t.Name, ActivityStatus: cold})
		}
	}
	// Tenants deleted (another replica deleted their user) leave no trace.
	for name := range s.used {
		if !listed[name] {
			delete(s.used, name)
		}
	}
	s.mu.Unlock()
	n := 0
	for chunk := range slices.Chunk(idleOnes, 100) {
		if err := s.retry(ctx, func() error {
			return s.c().Schema().TenantsUpdater().WithClassName(class).WithTenants(chunk...).Do(ctx)
		}); err != nil {
			return n, fmt.Errorf("set %d %s tenants cold: %w", len(chunk), class, err)
		}
		n += len(chunk)
		// A cold tenant is counted again from its next request (or, if
		// another grin wakes it, from the sweep that finds it hot).
		s.mu.Lock()
		for _, t := range chunk {
			if !s.used[t.Name].After(now) {
				delete(s.used, t.Name)
			}
		}
		s.mu.Unlock()
	}
	return n, nil
}

// CoolIdle runs until ctx ends, cooling the tenants idle everywhere
// (Cool) every quarter of idle (at most a minute, at least 250 ms); idle
// <= 0 disables it. Each replica sees only its own requests: without
// hearing the others, it would cool every tenant another replica serves,
// and those users would pay a wake (20 ms at the median, 171 ms at the
// p99, docs/benchmarks.md) each idle period. So on each tick it also tells
// the replicas on bus which tenants it served since the last, and counts
// what they tell as use. A nil bus is a single grin's.
func (s *Store) CoolIdle(ctx context.Context, idle time.Duration, bus cluster.Bus) {
	if idle <= 0 {
		return
	}
	_, alone := bus.(cluster.Local)
	shared := bus != nil && !alone
	if shared {
		s.trackUse()
		defer s.hearUse(bus)()
	}
	// Others tell within a quarter of idle: a tenant they serve is never
	// idle here while the bus delivers.
	every := min(max(idle/4, 250*time.Millisecond), time.Minute)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if shared {
				if err := s.announceUse(ctx, bus); err != nil && ctx.Err() == nil {
					s.log.Warn("telling the other replicas which users' memories are in use", "err", err)
				}
			}
			n, err := s.Cool(ctx, idle)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("cooling idle tenants", "err", err)
			} else if n > 0 {
				s.log.Info("idle users' memories set cold", "tenants", n, "idle", idle)
			}
		}
	}
}

// trackUse starts keeping which tenants are used here, for announceUse.
func (s *Store) trackUse() {
	s.mu.Lock()
	s.fresh = map[string]struct{}{}
	s.mu.Unlock()
}

// announceBytes bounds the names of one announcement, so that each goes
// in one notification of the PostgreSQL bus (under 8,000 bytes with its
// header): the busiest replica's list never meets the bus's limit on an
// event, and a failure loses only its own batch.
const announceBytes = 7800

// announceUse publishes the episodic tenants used here since the last
// call, in batches. A batch the bus failed to take is kept for the next
// call.
func (s *Store) announceUse(ctx context.Context, bus cluster.Bus) error {
	s.mu.Lock()
	names := slices.Sorted(maps.Keys(s.fresh))
	clear(s.fresh)
	s.mu.Unlock()
	var errs []error
	for len(names) > 0 {
		size, n := 0, 0
		for n < len(names) && (n == 0 || size+len(names[n])+1 <= announceBytes) {
			size += len(names[n]) + 1
			n++
		}
		batch := names[:n]
		names = names[n:]
		err := bus.Publish(ctx, cluster.Event{Topic: cluster.TopicMemoryUsed, Data: []byte(strings.Join(batch, "\n"))})
		if err == nil {
			continue
		}
		errs = append(errs, fmt.Errorf("%d tenants in use: %w", len(batch), err))
		s.mu.Lock()
		for _, name := range batch {
			s.fresh[name] = struct{}{}
		}
		s.mu.Unlock()
	}
	return errors.Join(errs...)
}

// hearUse counts the other replicas' use of tenants as use here, from
// when it is heard; a gap in what the bus delivered counts as use of
// every tenant.
func (s *Store) hearUse(bus cluster.Bus) (cancel func()) {
	return bus.Subscribe(cluster.TopicMemoryUsed, func(_ context.Context, e cluster.Event) {
		now := s.now()
		s.mu.Lock()
		defer s.mu.Unlock()
		if e.Missed {
			s.gapAt = now
			return
		}
		for name := range strings.SplitSeq(string(e.Data), "\n") {
			if name != "" {
				s.used[name] = now
			}
		}
	})
}

// Activity returns a user's episodic tenant status (HOT, COLD, ...), or ""
// when the user has no tenant.
func (s *Store) Activity(ctx context.Context, partition string) (string, error) {
	tenants, err := s.tenants(ctx, s.classes[memory.Episodic])
	if err != nil {
		return "", err
	}
	name := TenantName(partition)
	for _, t := range tenants {
		if t.Name == name {
			switch t.ActivityStatus {
			case "ACTIVE":
				return hot, nil
			case "INACTIVE":
				return cold, nil
			}
			return t.ActivityStatus, nil
		}
	}
	return "", nil
}

// tenants lists a collection's tenants with their activity.
func (s *Store) tenants(ctx context.Context, class string) ([]models.Tenant, error) {
	var tenants []models.Tenant
	err := s.retry(ctx, func() (err error) {
		tenants, err = s.c().Schema().TenantsGetter().WithClassName(class).Do(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list %s tenants: %w", class, err)
	}
	return tenants, nil
}
