package weaviate

import (
	"context"
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

// CoolIdle runs until ctx ends. Every so often it tells the replicas on
// bus which users' tenants this one served since it last said, and,
// unless idle <= 0, cools the tenants idle everywhere (Cool). Each replica
// sees only its own requests: without hearing the others, it would cool
// every tenant another replica serves, and those users would pay a wake
// (20 ms at the median, a tenth of a second in the tail) each idle
// period. A nil bus is a single grin's.
func (s *Store) CoolIdle(ctx context.Context, idle time.Duration, bus cluster.Bus) {
	if bus == nil {
		bus = cluster.Local{}
	}
	s.trackUse()
	// Others tell within a quarter of idle: a tenant they serve is never
	// idle here.
	every := time.Minute
	if idle > 0 {
		every = min(max(idle/4, time.Second), time.Minute)
		defer s.hearUse(bus)()
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := s.announceUse(ctx, bus); err != nil && ctx.Err() == nil {
				s.log.Warn("telling the other replicas which users' memories are in use", "err", err)
			}
			if idle <= 0 {
				continue
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

// announceUse publishes the episodic tenants used here since the last
// call. Those it could not publish are kept for the next.
func (s *Store) announceUse(ctx context.Context, bus cluster.Bus) error {
	s.mu.Lock()
	names := slices.Sorted(maps.Keys(s.fresh))
	clear(s.fresh)
	s.mu.Unlock()
	if len(names) == 0 {
		return nil
	}
	err := bus.Publish(ctx, cluster.Event{Topic: cluster.TopicMemoryUsed, Data: []byte(strings.Join(names, "\n"))})
	if err != nil {
		s.mu.Lock()
		for _, n := range names {
			s.fresh[n] = struct{}{}
		}
		s.mu.Unlock()
		return fmt.Errorf("publish %d tenants in use: %w", len(names), err)
	}
	return nil
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
