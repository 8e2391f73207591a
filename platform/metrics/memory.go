package metrics

import (
	"context"
	"database/sql"
	"time"

	"github.com/grin-ai/grin/platform/database"
	"github.com/grin-ai/grin/platform/memory"
)

// InstrumentMemory returns store timing every operation under backend's
// name (embedded, weaviate): the latency of the vector store as the chat,
// the rabbit hole and the API meet it. With a nil m it returns store.
func (m *Metrics) InstrumentMemory(store memory.Store, backend string) memory.Store {
	if m == nil {
		return store
	}
	t := &timedStore{next: store, m: m, backend: backend}
	if staged, ok := store.(memory.Staged); ok {
		// Keep what the wrapped store can do beyond memory.Store: the
		// chat commits an embedded store's point with the turn's history
		// only when it sees memory.Staged.
		return &timedStagedStore{timedStore: t, staged: staged}
	}
	return t
}

// timedStagedStore is a timedStore over a store that is also
// memory.Staged. A staged upsert is timed as an upsert when the commit
// runs its write inside the shared transaction.
type timedStagedStore struct {
	*timedStore
	staged memory.Staged
}

var _ memory.Staged = (*timedStagedStore)(nil)

func (s *timedStagedStore) UpsertOp(points []memory.Point) (database.Op, error) {
	op, err := s.staged.UpsertOp(points)
	if err != nil || op.Write == nil {
		return op, err
	}
	write := op.Write
	op.Write = func(ctx context.Context, tx *sql.Tx) (err error) {
		defer func(t time.Time) { s.done("upsert", t, err) }(time.Now())
		return write(ctx, tx)
	}
	return op, nil
}

// timedStore is a memory.Store that times each call of the store it wraps.
type timedStore struct {
	next    memory.Store
	m       *Metrics
	backend string
}

var _ memory.Store = (*timedStore)(nil)

func (s *timedStore) done(op string, start time.Time, err error) {
	s.m.observeMemory(s.backend, op, err, time.Since(start))
}

func (s *timedStore) Upsert(ctx context.Context, points []memory.Point) (err error) {
	defer func(t time.Time) { s.done("upsert", t, err) }(time.Now())
	return s.next.Upsert(ctx, points)
}

func (s *timedStore) Recall(ctx context.Context, collection string, partitions []string, q memory.Query) (_ []memory.Match, err error) {
	defer func(t time.Time) { s.done("recall", t, err) }(time.Now())
	return s.next.Recall(ctx, collection, partitions, q)
}

func (s *timedStore) Get(ctx context.Context, collection, partition, id string) (_ memory.Point, err error) {
	defer func(t time.Time) { s.done("get", t, err) }(time.Now())
	return s.next.Get(ctx, collection, partition, id)
}

func (s *timedStore) List(ctx context.Context, collection string, partitions []string, filter map[string]any, offset, limit int) (_ []memory.Point, err error) {
	defer func(t time.Time) { s.done("list", t, err) }(time.Now())
	return s.next.List(ctx, collection, partitions, filter, offset, limit)
}

func (s *timedStore) Delete(ctx context.Context, collection, partition string, ids []string) (_ int, err error) {
	defer func(t time.Time) { s.done("delete", t, err) }(time.Now())
	return s.next.Delete(ctx, collection, partition, ids)
}

func (s *timedStore) DeleteWhere(ctx context.Context, collection string, partitions []string, filter map[string]any) (_ int, err error) {
	defer func(t time.Time) { s.done("delete_where", t, err) }(time.Now())
	return s.next.DeleteWhere(ctx, collection, partitions, filter)
}

func (s *timedStore) Count(ctx context.Context, collection string, partitions []string) (_ int, err error) {
	defer func(t time.Time) { s.done("count", t, err) }(time.Now())
	return s.next.Count(ctx, collection, partitions)
}

func (s *timedStore) CountWhere(ctx context.Context, collection string, partitions []string, filter map[string]any) (_ int, err error) {
	defer func(t time.Time) { s.done("count_where", t, err) }(time.Now())
	return s.next.CountWhere(ctx, collection, partitions, filter)
}

func (s *timedStore) Partitions(ctx context.Context, collection string) (_ []string, err error) {
	defer func(t time.Time) { s.done("partitions", t, err) }(time.Now())
	return s.next.Partitions(ctx, collection)
}
