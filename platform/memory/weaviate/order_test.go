package weaviate

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/grin-ai/grin/integration/weaviatetest"
	"github.com/grin-ai/grin/platform/memory"
)

// TestListingWithTiedOrder: two grin processes may give points the same
// insertion number; listings still return every point once, in a stable
// order, across pages.
func TestListingWithTiedOrder(t *testing.T) {
	srv := weaviatetest.Start(t)
	ctx := context.Background()
	open := func() *Store {
		s, err := Open(ctx, Config{URL: srv.URL, GRPCPort: srv.GRPCPort, Prefix: "Tied"})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := open(), open()
	// Both processes' clocks say the same: their points share seqs.
	future := time.Now().Add(time.Hour).UnixMicro()
	a.seq.Store(future)
	b.seq.Store(future)
	var want []string
	for i := range 25 {
		for _, s := range []*Store{a, b} {
			id := fmt.Sprintf("%s-%02d", map[*Store]string{a: "a", b: "b"}[s], i)
			want = append(want, id)
			if err := s.Upsert(ctx, []memory.Point{{ID: id, Collection: memory.Declarative, Partition: "shared", Content: id, Vector: []float32{1, 0}, Embedder: "e"}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var got []string
	for offset := 0; ; offset += 7 {
		page, err := a.List(ctx, memory.Declarative, []string{"shared"}, nil, offset, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, p := range page {
			got = append(got, p.ID)
		}
	}
	// a-i and b-i share a seq: ties go by id, so the order is exactly
	// the writes' order here.
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("pages of 7 gave\n%v\nwant\n%v", got, want)
	}
}
