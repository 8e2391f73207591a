package embedded_test

import (
	"context"
	"testing"

	"grin/platform/database"
	"grin/platform/memory"
	"grin/platform/memory/embedded"
	"grin/platform/memory/memorytest"
)

func TestBehaviour(t *testing.T) {
	memorytest.Run(t, func(t *testing.T) memory.Store {
		db, err := database.Open(context.Background(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		s, err := embedded.New(context.Background(), db, 0)
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
	s, _ := embedded.New(ctx, db, 0)
	s.Upsert(ctx, []memory.Point{{ID: "x", Collection: memory.Episodic, Partition: "alice", Content: "remember me", Vector: []float32{1, 0}, Embedder: "e"}})
	db.Close()
	db, _ = database.Open(ctx, dir)
	defer db.Close()
	s, _ = embedded.New(ctx, db, 0)
	got, err := s.Recall(ctx, memory.Episodic, []string{"alice"}, memory.Query{Vector: []float32{1, 0}, Embedder: "e", K: 1})
	if err != nil || len(got) != 1 || got[0].Content != "remember me" {
		t.Errorf("after reopening: %+v %v", got, err)
	}
}
