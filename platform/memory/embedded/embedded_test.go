package embedded_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/grin-ai/grin/platform/database"
	"github.com/grin-ai/grin/platform/database/databasetest"
	"github.com/grin-ai/grin/platform/memory"
	"github.com/grin-ai/grin/platform/memory/embedded"
	"github.com/grin-ai/grin/platform/memory/memorytest"
)

func TestBehaviour(t *testing.T) {
	memorytest.Run(t, func(t *testing.T) memory.Store {
		db, err := database.Open(context.Background(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		s, err := embedded.New(context.Background(), database.NewCommitter(db), db, 0)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestSurvivesReopen: memories are in the file, not only in the cache.
func TestSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, _ := database.Open(ctx, dir)
	s, _ := embedded.New(ctx, database.NewCommitter(db), db, 0)
	s.Upsert(ctx, []memory.Point{{ID: "x", Collection: memory.Episodic, Partition: "alice", Content: "remember me", Vector: []float32{1, 0}, Embedder: "e"}})
	db.Close()
	db, _ = database.Open(ctx, dir)
	defer db.Close()
	s, _ = embedded.New(ctx, database.NewCommitter(db), db, 0)
	got, err := s.Recall(ctx, memory.Episodic, []string{"alice"}, memory.Query{Vector: []float32{1, 0}, Embedder: "e", K: 1})
	if err != nil || len(got) != 1 || got[0].Content != "remember me" {
		t.Errorf("after reopening: %+v %v", got, err)
	}
}

// TestSmallCacheStaysCorrect: with room for fewer vectors than two
// partitions hold, recalls alternating between them evict and reload the
// cache, and each still finds exactly its own points.
func TestSmallCacheStaysCorrect(t *testing.T) {
	ctx := context.Background()
	db, err := database.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := embedded.New(ctx, database.NewCommitter(db), db, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"ann", "bob"} {
		for i := range 2 {
			p := memory.Point{ID: u + string(rune('0'+i)), Collection: memory.Episodic, Partition: u, Content: u, Vector: []float32{1, float32(i)}, Embedder: "e"}
			if err := s.Upsert(ctx, []memory.Point{p}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 6 {
		u := []string{"ann", "bob"}[i%2]
		got, err := s.Recall(ctx, memory.Episodic, []string{u}, memory.Query{Vector: []float32{1, 0}, Embedder: "e", K: 10})
		if err != nil || len(got) != 2 {
			t.Fatalf("recall %d of %s: %d points, %v", i, u, len(got), err)
		}
		for _, m := range got {
			if m.Content != u {
				t.Errorf("%s recalled %s's point", u, m.Content)
			}
		}
	}
}

// TestPartitionsKeptInMemory: the list of partitions is read once, then
// answered from memory, and stays right through every kind of write: a new
// partition appears on its first point, one emptied by Delete or
// DeleteWhere goes, one still holding points stays, and a write that is
// not committed changes nothing. With the read connections closed after
// the first listing, every later one still answers: none asks the
// database. Nor does a new user's recall, before or after their first
// memory: their partition is known to be empty, then to hold that point.
func TestPartitionsKeptInMemory(t *testing.T) {
	ctx := context.Background()
	dir, db := databasetest.SQLite(t)
	reads, err := database.OpenReads(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	commit := database.NewCommitter(db)
	s, err := embedded.New(ctx, commit, reads, 0)
	if err != nil {
		t.Fatal(err)
	}
	point := func(space, id string) memory.Point {
		return memory.Point{ID: id, Collection: memory.Declarative, Partition: space, Content: id, Vector: []float32{1, 0}, Embedder: "e"}
	}
	if err := s.Upsert(ctx, []memory.Point{point("shared", "a"), point("shared", "b"), point("team", "c")}); err != nil {
		t.Fatal(err)
	}
	list := func() string {
		t.Helper()
		ps, err := s.Partitions(ctx, memory.Declarative)
		if err != nil {
			t.Fatalf("partitions: %v", err)
		}
		return strings.Join(ps, ",")
	}
	if got := list(); got != "shared,team" {
		t.Fatalf("partitions %q", got)
	}
	if _, err := s.Partitions(ctx, memory.Episodic); err != nil {
		t.Fatal(err)
	}
	reads.Close() // from here on, a query would fail

	// A user whose episodic memory is known to be empty: their first
	// recall, and the one after their first memory, read nothing.
	q := memory.Query{Vector: []float32{1, 0}, Embedder: "e", K: 3}
	if got, err := s.Recall(ctx, memory.Episodic, []string{"newcomer"}, q); err != nil || len(got) != 0 {
		t.Errorf("a new user's first recall: %v, %v; want nothing, without reading", got, err)
	}
	first := memory.Point{ID: "m1", Collection: memory.Episodic, Partition: "newcomer", Content: "hello", Vector: []float32{1, 0}, Embedder: "e"}
	if err := s.Upsert(ctx, []memory.Point{first}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Recall(ctx, memory.Episodic, []string{"newcomer"}, q); err != nil || len(got) != 1 || got[0].Content != "hello" {
		t.Errorf("the recall after a new user's first memory: %v, %v; want it, without reading", got, err)
	}

	steps := []struct {
		name string
		do   func() error
		want string
	}{
		{"a new space", func() error { return s.Upsert(ctx, []memory.Point{point("docs", "d")}) }, "docs,shared,team"},
		{"one of two points deleted", func() error { _, err := s.Delete(ctx, memory.Declarative, "shared", []string{"a"}); return err }, "docs,shared,team"},
		{"the last point deleted", func() error { _, err := s.Delete(ctx, memory.Declarative, "team", []string{"c"}); return err }, "docs,shared"},
		{"a space wiped", func() error {
			_, err := s.DeleteWhere(ctx, memory.Declarative, []string{"docs"}, nil)
			return err
		}, "shared"},
		{"a write that fails", func() error {
			// Committed with a write that fails: neither is kept.
			op, err := s.UpsertOp([]memory.Point{point("never", "n")})
			if err != nil {
				return err
			}
			fail := database.Op{Write: func(context.Context, *sql.Tx) error { return errors.New("refused") }}
			if err := commit.Do(ctx, op, fail); err == nil {
				return errors.New("a failing write was committed")
			}
			return nil
		}, "shared"},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := list(); got != st.want {
			t.Errorf("after %s: partitions %q, want %q", st.name, got, st.want)
		}
	}
	// And the database agrees, read afresh.
	s2, err := embedded.New(ctx, commit, db, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s2.Partitions(ctx, memory.Declarative); strings.Join(got, ",") != "shared" {
		t.Errorf("the database holds partitions %q", got)
	}
}

// TestCachedVectorsStayTheirOwn: the cache keeps a partition's vectors side
// by side in slabs; every point, whether read from the database or
// written since, added one by one or replaced, keeps its own vector, and
// a caller changing the vector it wrote or read changes nothing stored.
func TestCachedVectorsStayTheirOwn(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := database.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const dims = 8
	unit := func(i int) []float32 { // a vector of its own for each point
		v := make([]float32, dims)
		v[i%dims] = 1
		v[(i/dims)%dims] += 0.5
		v[(i/(dims*dims))%dims] += 0.25
		return v
	}
	id := func(i int) string {
		return "p" + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	check := func(s *embedded.Store, n int, what string) {
		t.Helper()
		for i := range n {
			got, err := s.Recall(ctx, memory.Episodic, []string{"alice"}, memory.Query{Vector: unit(i), Embedder: "e", K: 1, Threshold: 0.9999})
			if err != nil || len(got) != 1 || got[0].ID != id(i) {
				t.Fatalf("%s: point %d's own vector recalls %+v, %v", what, i, got, err)
			}
			p, err := s.Get(ctx, memory.Episodic, "alice", id(i))
			if err != nil || fmt.Sprint(p.Vector) != fmt.Sprint(unit(i)) {
				t.Fatalf("%s: point %d's vector %v, %v; want %v", what, i, p.Vector, err, unit(i))
			}
		}
	}
	s, err := embedded.New(ctx, database.NewCommitter(db), db, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Written one by one into a partition whose cache starts empty.
	for i := range 40 {
		v := unit(i)
		if err := s.Upsert(ctx, []memory.Point{{ID: id(i), Collection: memory.Episodic, Partition: "alice", Content: "c", Vector: v, Embedder: "e"}}); err != nil {
			t.Fatal(err)
		}
		clear(v) // the caller's vector is the caller's
		check(s, i+1, "written one by one")
	}
	// A point replaced in the middle, and the recall's copy changed.
	if err := s.Upsert(ctx, []memory.Point{{ID: id(7), Collection: memory.Episodic, Partition: "alice", Content: "again", Vector: unit(7), Embedder: "e"}}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Recall(ctx, memory.Episodic, []string{"alice"}, memory.Query{Vector: unit(3), Embedder: "e", K: 1})
	clear(got[0].Vector)
	check(s, 40, "after a replacement")
	// Read back from the database by a new store, then more written.
	s, err = embedded.New(ctx, database.NewCommitter(db), db, 0)
	if err != nil {
		t.Fatal(err)
	}
	check(s, 40, "read from the database")
	for i := 40; i < 90; i++ {
		if err := s.Upsert(ctx, []memory.Point{{ID: id(i), Collection: memory.Episodic, Partition: "alice", Content: "c", Vector: unit(i), Embedder: "e"}}); err != nil {
			t.Fatal(err)
		}
	}
	check(s, 90, "written after the read")
}
