package embedded_test

import (
	"context"
	"database/sql"
	"errors"
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
