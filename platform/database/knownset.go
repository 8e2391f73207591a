package database

import (
	"context"
	"database/sql"
	"slices"
	"sync"
)

// KnownSet is a set of keys read once from the database, in the
// background, and kept in step with the changes committed since: which
// users have a history, which partitions of a collection hold memories.
// Its point is the reads it saves: a key known to be absent (a new user)
// needs no query. Until the first read is in, nothing is known and
// callers read as they would without it.
//
// It is right only while one process writes the keys' tables: on SQLite,
// where grin's data directory belongs to one process. Replicas on
// PostgreSQL write each other's rows, so none is kept there.
//
// Notes: safe for concurrent use.
type KnownSet struct {
	mu    sync.Mutex
	keys  map[string]struct{}
	ready chan struct{} // closed once keys is read, or the read failed
	err   error
	// changes are those committed while keys was being read, applied over
	// it in order once read: whether the read saw them or not, the last
	// one says whether the key is present.
	changes []change
	done    sync.WaitGroup
}

type change struct {
	key     string
	present bool
}

// LoadKnownSet starts reading the set with read, which runs once on a
// goroutine of its own, so a caller giving up does not fail the others
// waiting. A change committed after read's query starts must reach Set,
// and Set must be called from the moment LoadKnownSet returns.
func LoadKnownSet(read func(context.Context) (map[string]struct{}, error)) *KnownSet {
	k := &KnownSet{ready: make(chan struct{})}
	k.done.Add(1)
	go func() {
		defer k.done.Done()
		keys, err := read(context.Background())
		k.mu.Lock()
		defer k.mu.Unlock()
		if err == nil {
			if keys == nil {
				keys = map[string]struct{}{}
			}
			for _, c := range k.changes {
				if c.present {
					keys[c.key] = struct{}{}
				} else {
					delete(keys, c.key)
				}
			}
			k.keys = keys
		}
		k.err, k.changes = err, nil
		close(k.ready)
	}()
	return k
}

// KeysOf returns a read for LoadKnownSet: the first column of every row
// stmt answers with args.
func KeysOf(stmt *sql.Stmt, args ...any) func(context.Context) (map[string]struct{}, error) {
	return func(ctx context.Context) (map[string]struct{}, error) {
		rows, err := stmt.QueryContext(ctx, args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		keys := map[string]struct{}{}
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				return nil, err
			}
			keys[k] = struct{}{}
		}
		return keys, rows.Err()
	}
}

// Wait waits until the set is read and returns the read's error, or ctx's.
func (k *KnownSet) Wait(ctx context.Context) error {
	select {
	case <-k.ready:
		return k.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close waits for the read to end (the statements it uses may then be
// closed).
func (k *KnownSet) Close() { k.done.Wait() }

// Failed says whether the read failed; such a set never knows anything
// and its owner may load another.
func (k *KnownSet) Failed() bool {
	select {
	case <-k.ready:
		return k.err != nil
	default:
		return false
	}
}

// loadedLocked says whether the keys are in; k.mu is held.
func (k *KnownSet) loadedLocked() bool {
	select {
	case <-k.ready:
		return k.err == nil
	default:
		return false
	}
}

// Absent says whether key is known not to be in the set: false while the
// set is being read, or when its read failed.
func (k *KnownSet) Absent(key string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.loadedLocked() {
		return false
	}
	_, in := k.keys[key]
	return !in
}

// Set records a committed change: key is now present or not.
func (k *KnownSet) Set(key string, present bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case k.Failed():
	case !k.loadedLocked():
		k.changes = append(k.changes, change{key, present})
	case present:
		k.keys[key] = struct{}{}
	default:
		delete(k.keys, key)
	}
}

// Keys returns the keys in order; call it after Wait returned nil.
func (k *KnownSet) Keys() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]string, 0, len(k.keys))
	for key := range k.keys {
		out = append(out, key)
	}
	slices.Sort(out)
	return out
}
