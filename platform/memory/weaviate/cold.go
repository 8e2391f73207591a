package weaviate

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/weaviate/weaviate/entities/models"

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
// A hot tenant this process has not seen used since it started is counted
// from the first call. Cool returns how many tenants it cooled.
func (s *Store) Cool(ctx context.Context, idle time.Duration) (int, error) {
	class := s.classes[memory.Episodic]
	tenants, err := s.tenants(ctx, class)
	if err != nil {
		return 0, err
	}
	now := time.Now()
	var idleOnes []models.Tenant
	s.mu.Lock()
	for _, t := range tenants {
		if t.ActivityStatus != hot && t.ActivityStatus != "ACTIVE" {
			continue
		}
		last, ok := s.used[t.Name]
		if !ok {
			s.used[t.Name] = now
			last = now
		}
		if now.Sub(last) >= idle {
			idleOnes = append(idleOnes, models.Tenant{Name: t.Name, ActivityStatus: cold})
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
			if s.used[t.Name].Before(now) || s.used[t.Name].Equal(now) {
				delete(s.used, t.Name)
			}
		}
		s.mu.Unlock()
	}
	return n, nil
}

// CoolIdle runs Cool every so often until ctx ends; idle <= 0 disables it.
func (s *Store) CoolIdle(ctx context.Context, idle time.Duration) {
	if idle <= 0 {
		return
	}
	every := min(max(idle/4, time.Second), time.Minute)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			n, err := s.Cool(ctx, idle)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("cooling idle tenants", "err", err)
			} else if n > 0 {
				s.log.Info("idle users' memories set cold", "tenants", n, "idle", idle)
			}
		}
	}
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
