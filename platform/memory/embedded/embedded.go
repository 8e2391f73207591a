// Package embedded is the memory backend of a single-binary deployment:
// points live in grin's SQLite file and recall is an exact cosine search in
// process.
//
// Each partition's points are decoded once and cached; upserts update the
// cached copy, deletes drop it so the next recall reads it again. The cache
// is bounded by the number of vectors it holds. The list of each
// collection's partitions is read once and kept in step with every write
// and delete: a chat turn asks for the declarative spaces and must not
// query for them.
//
// Writes go through the database's single writer (database.Committer),
// which commits many callers' writes together; reads go to the read-only
// connections. Statements are prepared once.
package embedded

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unique"

	"github.com/grin-ai/grin/platform/database"
	"github.com/grin-ai/grin/platform/memory"
)

// Store is the embedded memory.Store.
//
// Notes: safe for concurrent use.
type Store struct {
	commit *database.Committer
	reads  *sql.DB
	seq    atomic.Int64
	stmts  statements

	// parts is what is known of each collection's partitions: read once
	// (from New, in the background) and kept in step with every write and
	// delete since, so that listing spaces costs no query and a partition
	// known to be empty (a new user's episodic memory) costs no read.
	partsMu sync.Mutex
	parts   map[string]*database.KnownSet

	mu    sync.Mutex
	cache map[partKey][]cached
	gen   map[partKey]uint64 // bumped by every write to the partition
	// slabs hold the cached vectors of each partition side by side, so
	// that a recall reads them as one stream from memory, not a scattered
	// 2 KB at a time: at 400 points a user, reading the vectors, not
	// multiplying them, was most of a recall.
	slabs    map[partKey]*slab
	cached   int // vectors in cache
	maxCache int
}

type partKey struct{ collection, partition string }

// cached is a point held in the cache, with its vector's norm: recall
// compares each point with a query, and the point's half of the cosine is
// computed once.
type cached struct {
	memory.Point
	norm float64
	// idHash is a hash of the point's id, which an upsert looks for
	// among the partition's points without reading each id's bytes.
	idHash uint64
}

// newCached makes p, which the cache owns from now on, a cached point.
// The embedder's name is interned: every point of an embedder then shares
// one string with the query's, and a recall compares them by address,
// without reading the bytes of each.
func newCached(p memory.Point) cached {
	p.Embedder = unique.Make(p.Embedder).Value()
	return cached{p, memory.Norm(p.Vector), idHash(p.ID)}
}

// slab is room for a partition's vectors, one after another. A vector
// placed in it never moves; when it is full the next ones go to a new
// slab, and the old one lives as long as points in it do. A new slab has
// room for half as many vectors as the partition holds (at least 2, at
// most 256): the room left unused stays under half the partition's
// vectors and 256, and a small partition wastes at most one.
type slab struct{ free []float32 }

// room is how many vectors a new slab of a partition of n points holds.
func room(n int) int { return min(max(n/2, 2), 256) }

// place copies v into the slab, n being the partition's points, and
// returns the copy.
func (s *slab) place(v []float32, n int) []float32 {
	if len(v) > cap(s.free)-len(s.free) {
		s.free = make([]float32, 0, room(n)*len(v))
	}
	start := len(s.free)
	s.free = append(s.free, v...)
	return s.free[start:len(s.free):len(s.free)]
}

// idSeed seeds idHash; hashes live only in this process's memory.
var idSeed = maphash.MakeSeed()

func idHash(id string) uint64 { return maphash.String(idSeed, id) }

type statements struct {
	upsert, remove, removeAll, exists *sql.Stmt // writing connection
	get, load, partitions             *sql.Stmt // read-only connections
}

// New returns a store over grin's database: writes through commit, reads
// on reads (the writing handle itself will do, e.g. in tests).
// maxCachedVectors bounds the decoded vectors kept in memory (0: one
// million).
func New(ctx context.Context, commit *database.Committer, reads *sql.DB, maxCachedVectors int) (*Store, error) {
	if maxCachedVectors <= 0 {
		maxCachedVectors = 1_000_000
	}
	s := &Store{commit: commit, reads: reads, cache: map[partKey][]cached{}, gen: map[partKey]uint64{}, slabs: map[partKey]*slab{},
		maxCache: maxCachedVectors, parts: map[string]*database.KnownSet{}}
	w := commit.DB()
	for _, p := range []struct {
		stmt **sql.Stmt
		db   *sql.DB
		sql  string
	}{
		{&s.stmts.upsert, w, `INSERT INTO memory_points (collection, partition, id, content, metadata, embedder, vector, seq)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (collection, partition, id) DO UPDATE SET
			content = excluded.content, metadata = excluded.metadata, embedder = excluded.embedder, vector = excluded.vector`},
		{&s.stmts.remove, w, `DELETE FROM memory_points WHERE collection = ? AND partition = ? AND id = ?`},
		{&s.stmts.removeAll, w, `DELETE FROM memory_points WHERE collection = ? AND partition = ?`},
		{&s.stmts.exists, w, `SELECT EXISTS (SELECT 1 FROM memory_points WHERE collection = ? AND partition = ?)`},
		{&s.stmts.get, reads, `SELECT id, content, metadata, embedder, vector FROM memory_points
			WHERE collection = ? AND partition = ? AND id = ?`},
		{&s.stmts.load, reads, `SELECT id, content, metadata, embedder, vector FROM memory_points
			WHERE collection = ? AND partition = ? ORDER BY seq`},
		// A skip scan along the (collection, partition, ...) key: one
		// index lookup per partition, however many points each holds.
		{&s.stmts.partitions, reads, `WITH RECURSIVE p(x) AS (
				SELECT min(partition) FROM memory_points WHERE collection = ?1
				UNION ALL
				SELECT (SELECT min(partition) FROM memory_points WHERE collection = ?1 AND partition > x) FROM p WHERE x IS NOT NULL)
			SELECT x FROM p WHERE x IS NOT NULL`},
	} {
		stmt, err := p.db.PrepareContext(ctx, p.sql)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("open embedded memory: %w", err)
		}
		*p.stmt = stmt
	}
	var max sql.NullInt64
	if err := w.QueryRowContext(ctx, `SELECT max(seq) FROM memory_points`).Scan(&max); err != nil {
		s.Close()
		return nil, fmt.Errorf("open embedded memory: %w", err)
	}
	s.seq.Store(max.Int64)
	// Without waiting: the first recalls read from the database as before
	// until the lists are in.
	s.partsMu.Lock()
	for _, c := range memory.Collections() {
		s.listLocked(c)
	}
	s.partsMu.Unlock()
	return s, nil
}

// Close releases the prepared statements.
func (s *Store) Close() error {
	s.partsMu.Lock()
	lists := slices.Collect(maps.Values(s.parts))
	s.partsMu.Unlock()
	for _, l := range lists {
		l.Close()
	}
	var errs []error
	for _, st := range []*sql.Stmt{s.stmts.upsert, s.stmts.remove, s.stmts.removeAll, s.stmts.exists, s.stmts.get, s.stmts.load, s.stmts.partitions} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

// Upsert implements memory.Store.
func (s *Store) Upsert(ctx context.Context, points []memory.Point) error {
	op, err := s.UpsertOp(points)
	if err != nil {
		return err
	}
	if err := s.commit.Do(ctx, op); err != nil {
		return fmt.Errorf("store memories: %w", err)
	}
	return nil
}

// UpsertOp implements memory.Staged: the write that stores points, for a
// caller that commits it with writes of its own (a chat turn's history).
// Points are checked and encoded now; the caches follow once committed.
func (s *Store) UpsertOp(points []memory.Point) (database.Op, error) {
	type row struct {
		p    memory.Point
		meta string
		vec  []byte
	}
	rows := make([]row, 0, len(points))
	for _, p := range points {
		if !memory.ValidCollection(p.Collection) || p.ID == "" {
			return database.Op{}, fmt.Errorf("store memory %q: collection %q or id is not valid", p.ID, p.Collection)
		}
		meta, err := json.Marshal(nonNil(p.Metadata))
		if err != nil {
			return database.Op{}, fmt.Errorf("store memory %q: metadata: %w", p.ID, err)
		}
		rows = append(rows, row{p, string(meta), encode(p.Vector)})
	}
	return database.Op{
		Write: func(ctx context.Context, tx *sql.Tx) error {
			stmt := tx.StmtContext(ctx, s.stmts.upsert)
			for _, r := range rows {
				p := r.p
				if _, err := stmt.ExecContext(ctx, p.Collection, p.Partition, p.ID, p.Content, r.meta, p.Embedder, r.vec, s.seq.Add(1)); err != nil {
					return fmt.Errorf("store memory %q: %w", p.ID, err)
				}
			}
			return nil
		},
		Committed: func() {
			s.merge(points)
			for _, p := range points {
				s.partitionChanged(p.Collection, p.Partition, true)
			}
		},
	}, nil
}

// merge brings cached partitions up to date after an upsert, without
// reading them again: a chat turn writes one point to the partition it
// recalls from next. A recall may hold the slice it read: a new point is
// appended past its end (never seen by it), and a replaced one goes into a
// copy.
func (s *Store) merge(points []memory.Point) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range points {
		key := partKey{p.Collection, p.Partition}
		s.gen[key]++
		held, ok := s.cache[key]
		if !ok {
			// A partition that held nothing holds this point alone: a new
			// user's second turn recalls without reading the database.
			if s.knownEmpty(p.Collection, p.Partition) {
				s.cache[key] = []cached{s.ownLocked(key, p, 1)}
				s.cached++
			}
			continue
		}
		h := idHash(p.ID)
		i := slices.IndexFunc(held, func(c cached) bool { return c.idHash == h && c.ID == p.ID })
		if i < 0 {
			s.cache[key] = append(held, s.ownLocked(key, p, len(held)))
			s.cached++
			continue
		}
		next := slices.Clone(held)
		next[i] = s.ownLocked(key, p, len(held))
		s.cache[key] = next
	}
}

// ownLocked copies p into the cache of partition key: its metadata, and
// its vector into the partition's slab. s.mu is held.
func (s *Store) ownLocked(key partKey, p memory.Point, n int) cached {
	sl := s.slabs[key]
	if sl == nil {
		sl = &slab{}
		s.slabs[key] = sl
	}
	md := make(map[string]any, len(p.Metadata))
	for k, v := range p.Metadata {
		md[k] = v
	}
	p.Metadata = md
	p.Vector = sl.place(p.Vector, n)
	return newCached(p)
}

// Recall implements memory.Store.
func (s *Store) Recall(ctx context.Context, collection string, partitions []string, q memory.Query) ([]memory.Match, error) {
	if q.K <= 0 {
		return nil, nil
	}
	type candidate struct {
		p     *cached
		score float64
	}
	var found []candidate
	qn := memory.Norm(q.Vector)
	embedder := unique.Make(q.Embedder).Value()
	for _, part := range partitions {
		points, err := s.partition(ctx, collection, part)
		if err != nil {
			return nil, err
		}
		if found == nil {
			found = make([]candidate, 0, len(points))
		}
		for i := range points {
			p := &points[i]
			if len(p.Vector) != len(q.Vector) || p.Embedder != embedder {
				continue
			}
			score := memory.Cosine(q.Vector, p.Vector, qn, p.norm)
			if score < q.Threshold || math.IsNaN(score) {
				continue
			}
			found = append(found, candidate{p, score})
		}
	}
	// Best first; equal scores in the order of the partitions and points.
	slices.SortStableFunc(found, func(a, b candidate) int { return cmp.Compare(b.score, a.score) })
	// The metadata filter last, on the best until k pass. A point's
	// metadata is a map strewn over the heap: testing it on every point
	// cost twice the products themselves at 400 points a user (a
	// profile of 100 users × 400 messages). Filtering after the sort
	// keeps the order, so the result is the same.
	out := make([]memory.Match, 0, min(len(found), q.K))
	for _, c := range found {
		if len(out) == q.K {
			break
		}
		if !memory.Matches(c.p.Metadata, q.Metadata) {
			continue
		}
		// Callers get copies: the cache's maps are not theirs to change.
		p := c.p.Point
		if q.OmitVectors {
			p.Vector = nil
		}
		out = append(out, memory.Match{Point: clonePoint(p), Score: c.score})
	}
	return out, nil
}

// Get implements memory.Store.
func (s *Store) Get(ctx context.Context, collection, partition, id string) (memory.Point, error) {
	row := s.stmts.get.QueryRowContext(ctx, collection, partition, id)
	p, err := scan(row.Scan, collection, partition)
	if errors.Is(err, sql.ErrNoRows) {
		return memory.Point{}, memory.ErrNotFound
	}
	return p, err
}

// List implements memory.Store.
func (s *Store) List(ctx context.Context, collection string, partitions []string, filter map[string]any, offset, limit int) ([]memory.Point, error) {
	var out []memory.Point
	skipped := 0
	for _, part := range partitions {
		points, err := s.partition(ctx, collection, part)
		if err != nil {
			return nil, err
		}
		for _, p := range points {
			if !memory.Matches(p.Metadata, filter) {
				continue
			}
			if skipped < offset {
				skipped++
				continue
			}
			if len(out) == limit {
				return out, nil
			}
			out = append(out, clonePoint(p.Point))
		}
	}
	return out, nil
}

// Delete implements memory.Store. The points go together or not at all.
func (s *Store) Delete(ctx context.Context, collection, partition string, ids []string) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	n := 0
	err := s.commit.Do(ctx, s.deleteOp(collection, partition, func(ctx context.Context, tx *sql.Tx) error {
		n = 0
		stmt := tx.StmtContext(ctx, s.stmts.remove)
		for _, id := range ids {
			res, err := stmt.ExecContext(ctx, collection, partition, id)
			if err != nil {
				return fmt.Errorf("delete memory %q: %w", id, err)
			}
			k, _ := res.RowsAffected()
			n += int(k)
		}
		return nil
	}))
	if err != nil {
		return 0, err
	}
	return n, nil
}

// deleteOp wraps a delete from one partition: once committed, the cached
// partition is dropped and, when nothing is left in it, the partition
// leaves the list.
func (s *Store) deleteOp(collection, partition string, del func(context.Context, *sql.Tx) error) database.Op {
	var left bool
	return database.Op{
		Write: func(ctx context.Context, tx *sql.Tx) error {
			if err := del(ctx, tx); err != nil {
				return err
			}
			if err := tx.StmtContext(ctx, s.stmts.exists).QueryRowContext(ctx, collection, partition).Scan(&left); err != nil {
				return fmt.Errorf("delete %s memories of %q: %w", collection, partition, err)
			}
			return nil
		},
		Committed: func() {
			s.forget(partKey{collection, partition})
			s.partitionChanged(collection, partition, left)
		},
	}
}

// DeleteWhere implements memory.Store.
func (s *Store) DeleteWhere(ctx context.Context, collection string, partitions []string, filter map[string]any) (int, error) {
	n := 0
	for _, part := range partitions {
		if len(filter) == 0 {
			k := 0
			err := s.commit.Do(ctx, s.deleteOp(collection, part, func(ctx context.Context, tx *sql.Tx) error {
				res, err := tx.StmtContext(ctx, s.stmts.removeAll).ExecContext(ctx, collection, part)
				if err != nil {
					return fmt.Errorf("delete %s memories of %q: %w", collection, part, err)
				}
				r, _ := res.RowsAffected()
				k = int(r)
				return nil
			}))
			if err != nil {
				return n, err
			}
			n += k
		} else {
			points, err := s.partition(ctx, collection, part)
			if err != nil {
				return n, err
			}
			var ids []string
			for _, p := range points {
				if memory.Matches(p.Metadata, filter) {
					ids = append(ids, p.ID)
				}
			}
			k, err := s.Delete(ctx, collection, part, ids)
			n += k
			if err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// Count implements memory.Store.
func (s *Store) Count(ctx context.Context, collection string, partitions []string) (int, error) {
	if len(partitions) == 0 {
		return 0, nil
	}
	args := []any{collection}
	for _, p := range partitions {
		args = append(args, p)
	}
	var n int
	q := `SELECT count(*) FROM memory_points WHERE collection = ? AND partition IN (?` + strings.Repeat(",?", len(partitions)-1) + `)`
	if err := s.reads.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count %s memories: %w", collection, err)
	}
	return n, nil
}

// CountWhere implements memory.Store. With a filter it counts over the
// cached partitions, which recall reads anyway.
func (s *Store) CountWhere(ctx context.Context, collection string, partitions []string, filter map[string]any) (int, error) {
	if len(filter) == 0 {
		return s.Count(ctx, collection, partitions)
	}
	n := 0
	for _, part := range partitions {
		points, err := s.partition(ctx, collection, part)
		if err != nil {
			return 0, err
		}
		for _, p := range points {
			if memory.Matches(p.Metadata, filter) {
				n++
			}
		}
	}
	return n, nil
}

// Partitions implements memory.Store. The list is read from the database
// once per collection and kept in step with every write and delete since.
func (s *Store) Partitions(ctx context.Context, collection string) ([]string, error) {
	s.partsMu.Lock()
	l := s.listLocked(collection)
	s.partsMu.Unlock()
	if err := l.Wait(ctx); err != nil {
		return nil, fmt.Errorf("list %s partitions: %w", collection, err)
	}
	return l.Keys(), nil
}

// listLocked returns what is known of collection's partitions, starting
// to read them when nothing is, or the last read failed; partsMu is held.
func (s *Store) listLocked(collection string) *database.KnownSet {
	if l := s.parts[collection]; l != nil && !l.Failed() {
		return l
	}
	l := database.LoadKnownSet(database.KeysOf(s.stmts.partitions, collection))
	s.parts[collection] = l
	return l
}

// partitionChanged records, after a commit, whether a partition holds
// points.
func (s *Store) partitionChanged(collection, partition string, holds bool) {
	s.partsMu.Lock()
	l := s.parts[collection]
	s.partsMu.Unlock()
	if l != nil {
		l.Set(partition, holds)
	}
}

// knownEmpty says whether a partition is known to hold no points, so that
// reading it can be skipped.
func (s *Store) knownEmpty(collection, partition string) bool {
	s.partsMu.Lock()
	l := s.parts[collection]
	s.partsMu.Unlock()
	return l != nil && l.Absent(partition)
}

// partition returns a partition's points, oldest first, from the cache or
// the database.
func (s *Store) partition(ctx context.Context, collection, part string) ([]cached, error) {
	key := partKey{collection, part}
	s.mu.Lock()
	points, ok := s.cache[key]
	gen := s.gen[key]
	s.mu.Unlock()
	if ok {
		return points, nil
	}
	if s.knownEmpty(collection, part) {
		return nil, nil
	}
	rows, err := s.stmts.load.QueryContext(ctx, collection, part)
	if err != nil {
		return nil, fmt.Errorf("read %s memories: %w", collection, err)
	}
	defer rows.Close()
	points = nil
	for rows.Next() {
		p, err := scan(rows.Scan, collection, part)
		if err != nil {
			return nil, err
		}
		points = append(points, newCached(p))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s memories: %w", collection, err)
	}
	s.mu.Lock()
	// Cache only what no write has overtaken since the read began.
	if s.gen[key] == gen {
		if s.cached+len(points) > s.maxCache {
			clear(s.cache)
			clear(s.slabs)
			s.cached = 0
		}
		if _, dup := s.cache[key]; !dup {
			// The vectors read go side by side in a slab of their own,
			// with room for the partition's next few.
			n := 0
			for _, p := range points {
				n += len(p.Vector)
			}
			sl := &slab{}
			if len(points) > 0 {
				sl.free = make([]float32, 0, n+room(len(points))*len(points[0].Vector))
			}
			for i := range points {
				points[i].Vector = sl.place(points[i].Vector, len(points))
			}
			s.slabs[key] = sl
			s.cache[key] = points
			s.cached += len(points)
		}
	}
	s.mu.Unlock()
	return points, nil
}

// forget drops a cached partition after a write and bumps its generation,
// so a read that began before the write does not cache what it read.
func (s *Store) forget(key partKey) {
	s.mu.Lock()
	s.gen[key]++
	if pts, ok := s.cache[key]; ok {
		s.cached -= len(pts)
		delete(s.cache, key)
		delete(s.slabs, key)
	}
	s.mu.Unlock()
}

// Cursor is a position in Scan's order: by collection, partition, then
// the order points were first stored in. The zero Cursor is before every
// point.
type Cursor struct {
	Collection string `json:"collection"`
	Partition  string `json:"partition"`
	Seq        int64  `json:"seq"`
	ID         string `json:"id"`
}

// Scan reads the points of every collection and partition straight from
// grin's database, for copying them elsewhere: up to limit points after
// the cursor, and the cursor of the last one read (after itself when
// none). Each partition's points come oldest first, and replacing a point
// keeps its place, so a scan resumed from a cursor reads each point once.
// Pages follow an index: reading one costs its size, whatever the offset.
//
// It reads the page whole before returning, so the caller may use the
// database (one connection) between pages.
func Scan(ctx context.Context, db *sql.DB, after Cursor, limit int) ([]memory.Point, Cursor, error) {
	rows, err := db.QueryContext(ctx, `SELECT collection, partition, id, content, metadata, embedder, vector, seq FROM memory_points
		WHERE (collection, partition, seq, id) > (?, ?, ?, ?) ORDER BY collection, partition, seq, id LIMIT ?`,
		after.Collection, after.Partition, after.Seq, after.ID, limit)
	if err != nil {
		return nil, after, fmt.Errorf("read memories: %w", err)
	}
	defer rows.Close()
	var out []memory.Point
	last := after
	for rows.Next() {
		var c Cursor
		p, err := scan(func(dest ...any) error {
			return rows.Scan(slices.Concat([]any{&c.Collection, &c.Partition}, dest, []any{&c.Seq})...)
		}, "", "")
		if err != nil {
			return nil, after, fmt.Errorf("read memories: %w", err)
		}
		p.Collection, p.Partition = c.Collection, c.Partition
		if len(p.Vector) == 0 {
			p.Vector = nil
		}
		c.ID = p.ID
		out, last = append(out, p), c
	}
	if err := rows.Err(); err != nil {
		return nil, after, fmt.Errorf("read memories: %w", err)
	}
	return out, last, nil
}

// CountAfter counts the points Scan reads after the cursor.
func CountAfter(ctx context.Context, db *sql.DB, after Cursor) (int, error) {
	var n int
	err := db.QueryRowContext(ctx, `SELECT count(*) FROM memory_points WHERE (collection, partition, seq, id) > (?, ?, ?, ?)`,
		after.Collection, after.Partition, after.Seq, after.ID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count memories: %w", err)
	}
	return n, nil
}

// PartitionCount is how many points one partition of a collection holds.
type PartitionCount struct {
	Collection, Partition string
	Points                int
}

// Census counts the points of every partition in grin's database, by
// collection and partition.
func Census(ctx context.Context, db *sql.DB) ([]PartitionCount, error) {
	rows, err := db.QueryContext(ctx, `SELECT collection, partition, count(*) FROM memory_points
		GROUP BY collection, partition ORDER BY collection, partition`)
	if err != nil {
		return nil, fmt.Errorf("count memories: %w", err)
	}
	defer rows.Close()
	var out []PartitionCount
	for rows.Next() {
		var c PartitionCount
		if err := rows.Scan(&c.Collection, &c.Partition, &c.Points); err != nil {
			return nil, fmt.Errorf("count memories: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count memories: %w", err)
	}
	return out, nil
}

func scan(scanFn func(...any) error, collection, partition string) (memory.Point, error) {
	var p memory.Point
	var meta string
	var vec []byte
	if err := scanFn(&p.ID, &p.Content, &meta, &p.Embedder, &vec); err != nil {
		return memory.Point{}, err
	}
	p.Collection, p.Partition = collection, partition
	if err := json.Unmarshal([]byte(meta), &p.Metadata); err != nil {
		return memory.Point{}, fmt.Errorf("memory %q: metadata: %w", p.ID, err)
	}
	p.Vector = decode(vec)
	return p, nil
}

func encode(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func decode(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

func nonNil(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// clonePoint copies what of a point could be changed in place, its
// metadata and its vector, so that a point in the cache is nobody else's:
// its norm stays its vector's, and what callers get they may change.
func clonePoint(p memory.Point) memory.Point {
	md := make(map[string]any, len(p.Metadata))
	for k, v := range p.Metadata {
		md[k] = v
	}
	p.Metadata = md
	p.Vector = slices.Clone(p.Vector)
	return p
}

var (
	_ memory.Store  = (*Store)(nil)
	_ memory.Staged = (*Store)(nil)
)
