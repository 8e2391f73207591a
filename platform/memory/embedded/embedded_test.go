package embedded_test

import (
	"context"
	"testing"

	"github.com/grin-ai/grin/platform/database"
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
