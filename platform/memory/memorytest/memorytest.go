// Package memorytest is the behaviour suite every memory.Store backend
// must pass, so that switching backends changes where memories live and
// never who can see them.
package memorytest

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/grin-ai/grin/platform/memory"
)

// Run runs the suite; newStore returns an empty store for each test.
func Run(t *testing.T, newStore func(t *testing.T) memory.Store) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s memory.Store)
	}{
		{"UpsertGet", testUpsertGet},
		{"RecallOrderThresholdK", testRecall},
		{"RecallMetadataFilter", testMetadataFilter},
		{"RecallFilterBeforeK", testFilterBeforeK},
		{"RecallWithoutVectors", testRecallWithoutVectors},
		{"PartitionsIsolate", testPartitionsIsolate},
		{"EmbeddersNeverMix", testEmbedders},
		{"ListPagesAndFilters", testList},
		{"DeleteAndDeleteWhere", testDelete},
		{"ConcurrentWritesAndRecalls", testConcurrent},
		{"RecallWhileReplacing", testRecallWhileReplacing},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

const emb = "test-embedder"

// vec makes a unit-ish vector pointing mostly along axis i of 4.
func vec(i int, wobble float32) []float32 {
	v := []float32{wobble, wobble, wobble, wobble}
	v[i] = 1
	return v
}

func point(col, part, id string, v []float32, meta map[string]any) memory.Point {
	if meta == nil {
		meta = map[string]any{}
	}
	return memory.Point{ID: id, Collection: col, Partition: part, Content: "text of " + id, Metadata: meta, Vector: v, Embedder: emb}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ids(ms []memory.Match) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

func testUpsertGet(t *testing.T, s memory.Store) {
	ctx := context.Background()
	p := point(memory.Episodic, "alice", "p1", vec(0, 0), map[string]any{"source": "alice", "when": 1700000000.5})
	must(t, s.Upsert(ctx, []memory.Point{p}))
	got, err := s.Get(ctx, memory.Episodic, "alice", "p1")
	must(t, err)
	if got.Content != p.Content || got.Metadata["source"] != "alice" || len(got.Vector) != 4 {
		t.Errorf("got %+v", got)
	}
	if got.When().Unix() != 1700000000 {
		t.Errorf("when = %v", got.When())
	}
	p.Content = "changed"
	must(t, s.Upsert(ctx, []memory.Point{p}))
	got, _ = s.Get(ctx, memory.Episodic, "alice", "p1")
	if got.Content != "changed" {
		t.Errorf("upsert did not replace: %q", got.Content)
	}
	if n, _ := s.Count(ctx, memory.Episodic, []string{"alice"}); n != 1 {
		t.Errorf("count after replacing = %d, want 1", n)
	}
	if _, err := s.Get(ctx, memory.Episodic, "bob", "p1"); err != memory.ErrNotFound {
		t.Errorf("another partition's point: %v, want ErrNotFound", err)
	}
}

func testRecall(t *testing.T, s memory.Store) {
	ctx := context.Background()
	must(t, s.Upsert(ctx, []memory.Point{
		point(memory.Declarative, "shared", "near", vec(0, 0.1), nil),
		point(memory.Declarative, "shared", "nearer", vec(0, 0.01), nil),
		point(memory.Declarative, "shared", "far", vec(1, 0), nil),
	}))
	q := memory.Query{Vector: vec(0, 0), Embedder: emb, K: 10, Threshold: 0.5}
	got, err := s.Recall(ctx, memory.Declarative, []string{"shared"}, q)
	must(t, err)
	if fmt.Sprint(ids(got)) != "[nearer near]" {
		t.Errorf("recall = %v, want best first and 'far' under the threshold", ids(got))
	}
	if got[0].Score < got[1].Score || got[0].Score > 1.0001 {
		t.Errorf("scores %v %v", got[0].Score, got[1].Score)
	}
	q.K = 1
	got, _ = s.Recall(ctx, memory.Declarative, []string{"shared"}, q)
	if len(got) != 1 || got[0].ID != "nearer" {
		t.Errorf("k=1: %v", ids(got))
	}
	q.K, q.Threshold = 10, 0
	got, _ = s.Recall(ctx, memory.Declarative, []string{"shared"}, q)
	if len(got) != 3 {
		t.Errorf("threshold 0: %v", ids(got))
	}
}

func testMetadataFilter(t *testing.T, s memory.Store) {
	ctx := context.Background()
	must(t, s.Upsert(ctx, []memory.Point{
		point(memory.Declarative, "shared", "a", vec(0, 0), map[string]any{"author": "alice", "page": 1}),
		point(memory.Declarative, "shared", "b", vec(0, 0), map[string]any{"author": "bob", "page": 1}),
		point(memory.Declarative, "shared", "c", vec(0, 0), map[string]any{"author": "alice", "page": 2}),
	}))
	for _, tc := range []struct {
		filter map[string]any
		want   string
	}{
		{map[string]any{"author": "alice"}, "[a c]"},
		{map[string]any{"author": "alice", "page": 1}, "[a]"},
		{map[string]any{"author": "alice", "page": 1.0}, "[a]"},
		{map[string]any{"author": "carol"}, "[]"},
		{map[string]any{"missing": "x"}, "[]"},
		{nil, "[a b c]"},
	} {
		got, err := s.Recall(ctx, memory.Declarative, []string{"shared"}, memory.Query{Vector: vec(0, 0), Embedder: emb, K: 10, Metadata: tc.filter})
		must(t, err)
		names := ids(got)
		slices.Sort(names)
		if fmt.Sprint(names) != tc.want && !(tc.want == "[]" && len(names) == 0) {
			t.Errorf("filter %v: %v, want %s", tc.filter, names, tc.want)
		}
		n, err := s.CountWhere(ctx, memory.Declarative, []string{"shared", "other"}, tc.filter)
		must(t, err)
		if want := len(strings.Fields(strings.Trim(tc.want, "[]"))); n != want {
			t.Errorf("CountWhere %v: %d, want %d", tc.filter, n, want)
		}
	}
}

// testFilterBeforeK: k counts the points that pass the filter: when the
// best points fail it, the recall returns the k best of those that pass,
// best first, not fewer.
func testFilterBeforeK(t *testing.T, s memory.Store) {
	ctx := context.Background()
	must(t, s.Upsert(ctx, []memory.Point{
		point(memory.Declarative, "shared", "bob1", vec(0, 0), map[string]any{"author": "bob"}),
		point(memory.Declarative, "shared", "bob2", vec(0, 0.02), map[string]any{"author": "bob"}),
		point(memory.Declarative, "shared", "alice3", vec(0, 0.2), map[string]any{"author": "alice"}),
		point(memory.Declarative, "shared", "alice1", vec(0, 0.05), map[string]any{"author": "alice"}),
		point(memory.Declarative, "shared", "alice2", vec(0, 0.1), map[string]any{"author": "alice"}),
		point(memory.Declarative, "shared", "carol", vec(0, 0.01), map[string]any{"author": "carol"}),
	}))
	for _, tc := range []struct {
		k    int
		want string
	}{{1, "[alice1]"}, {2, "[alice1 alice2]"}, {5, "[alice1 alice2 alice3]"}} {
		got, err := s.Recall(ctx, memory.Declarative, []string{"shared"}, memory.Query{Vector: vec(0, 0), Embedder: emb, K: tc.k, Metadata: map[string]any{"author": "alice"}})
		must(t, err)
		if fmt.Sprint(ids(got)) != tc.want {
			t.Errorf("k=%d, filter author=alice: %v, want %s", tc.k, ids(got), tc.want)
		}
	}
}

// testRecallWithoutVectors: a recall that omits the vectors finds the same
// points with the same scores and content, across partitions, without
// their vectors; one that does not omit them gets them.
func testRecallWithoutVectors(t *testing.T, s memory.Store) {
	ctx := context.Background()
	must(t, s.Upsert(ctx, []memory.Point{
		point(memory.Declarative, "shared", "s1", vec(0, 0), nil),
		point(memory.Declarative, "legal", "l1", vec(0, 0.1), nil),
		point(memory.Declarative, "legal", "l2", vec(1, 0), nil),
	}))
	q := memory.Query{Vector: vec(0, 0), Embedder: emb, K: 10, Threshold: -1}
	with, err := s.Recall(ctx, memory.Declarative, []string{"shared", "legal"}, q)
	must(t, err)
	q.OmitVectors = true
	without, err := s.Recall(ctx, memory.Declarative, []string{"shared", "legal"}, q)
	must(t, err)
	if fmt.Sprint(ids(with)) != fmt.Sprint(ids(without)) || len(with) != 3 {
		t.Fatalf("recalled %v with vectors, %v without", ids(with), ids(without))
	}
	for i := range with {
		if len(with[i].Vector) != len(vec(0, 0)) {
			t.Errorf("%s recalled with a vector of %d numbers, want %d", with[i].ID, len(with[i].Vector), len(vec(0, 0)))
		}
		if without[i].Vector != nil {
			t.Errorf("%s recalled with its vector although the query omits them", without[i].ID)
		}
		if math.Abs(with[i].Score-without[i].Score) > 1e-6 || with[i].Content != without[i].Content {
			t.Errorf("%s: score %v and content %q without vectors, %v and %q with", with[i].ID, without[i].Score, without[i].Content, with[i].Score, with[i].Content)
		}
	}
}

func testPartitionsIsolate(t *testing.T, s memory.Store) {
	ctx := context.Background()
	must(t, s.Upsert(ctx, []memory.Point{
		point(memory.Episodic, "alice", "a1", vec(0, 0), nil),
		point(memory.Episodic, "bob", "b1", vec(0, 0), nil),
		point(memory.Episodic, "alice:x", "ax", vec(0, 0), nil),
	}))
	q := memory.Query{Vector: vec(0, 0), Embedder: emb, K: 10}
	got, _ := s.Recall(ctx, memory.Episodic, []string{"alice"}, q)
	if fmt.Sprint(ids(got)) != "[a1]" {
		t.Errorf("alice recalls %v", ids(got))
	}
	got, _ = s.Recall(ctx, memory.Episodic, []string{"alice", "bob"}, q)
	if len(got) != 2 {
		t.Errorf("two partitions merged: %v", ids(got))
	}
	if got, _ := s.Recall(ctx, memory.Declarative, []string{"alice"}, q); len(got) != 0 {
		t.Errorf("another collection's partition: %v", ids(got))
	}
	parts, _ := s.Partitions(ctx, memory.Episodic)
	if fmt.Sprint(parts) != "[alice alice:x bob]" {
		t.Errorf("partitions = %v", parts)
	}
	if n, _ := s.DeleteWhere(ctx, memory.Episodic, []string{"alice"}, nil); n != 1 {
		t.Errorf("dropping alice deleted %d", n)
	}
	if n, _ := s.Count(ctx, memory.Episodic, []string{"bob", "alice:x"}); n != 2 {
		t.Errorf("dropping alice touched others: %d left of 2", n)
	}
}

func testEmbedders(t *testing.T, s memory.Store) {
	ctx := context.Background()
	other := point(memory.Declarative, "shared", "other", vec(0, 0), nil)
	other.Embedder = "another-embedder"
	must(t, s.Upsert(ctx, []memory.Point{point(memory.Declarative, "shared", "mine", vec(0, 0), nil), other}))
	got, _ := s.Recall(ctx, memory.Declarative, []string{"shared"}, memory.Query{Vector: vec(0, 0), Embedder: emb, K: 10})
	if fmt.Sprint(ids(got)) != "[mine]" {
		t.Errorf("recall mixed embedders: %v", ids(got))
	}
}

func testList(t *testing.T, s memory.Store) {
	ctx := context.Background()
	var ps []memory.Point
	for i := range 7 {
		ps = append(ps, point(memory.Declarative, "shared", fmt.Sprintf("p%d", i), vec(i%4, 0), map[string]any{"even": i%2 == 0}))
	}
	must(t, s.Upsert(ctx, ps))
	page, _ := s.List(ctx, memory.Declarative, []string{"shared"}, nil, 2, 3)
	var names []string
	for _, p := range page {
		names = append(names, p.ID)
	}
	if fmt.Sprint(names) != "[p2 p3 p4]" {
		t.Errorf("offset 2 limit 3 = %v, want insertion order", names)
	}
	even, _ := s.List(ctx, memory.Declarative, []string{"shared"}, map[string]any{"even": true}, 0, 100)
	if len(even) != 4 {
		t.Errorf("filtered list: %d, want 4", len(even))
	}
}

func testDelete(t *testing.T, s memory.Store) {
	ctx := context.Background()
	must(t, s.Upsert(ctx, []memory.Point{
		point(memory.Episodic, "alice", "a1", vec(0, 0), map[string]any{"tag": "x"}),
		point(memory.Episodic, "alice", "a2", vec(0, 0), map[string]any{"tag": "y"}),
		point(memory.Episodic, "bob", "a1", vec(0, 0), map[string]any{"tag": "x"}),
	}))
	n, err := s.Delete(ctx, memory.Episodic, "alice", []string{"a1", "nope"})
	must(t, err)
	if n != 1 {
		t.Errorf("deleted %d, want 1", n)
	}
	if _, err := s.Get(ctx, memory.Episodic, "bob", "a1"); err != nil {
		t.Errorf("bob's point with the same id was deleted: %v", err)
	}
	n, _ = s.DeleteWhere(ctx, memory.Episodic, []string{"alice", "bob"}, map[string]any{"tag": "x"})
	if n != 1 {
		t.Errorf("delete where tag=x: %d, want 1 (bob's)", n)
	}
	got, _ := s.Recall(ctx, memory.Episodic, []string{"alice", "bob"}, memory.Query{Vector: vec(0, 0), Embedder: emb, K: 10})
	if fmt.Sprint(ids(got)) != "[a2]" {
		t.Errorf("after deletes recall = %v", ids(got))
	}
}

// testConcurrent writes to many partitions while recalling them; every
// partition must end with exactly its own points.
func testConcurrent(t *testing.T, s memory.Store) {
	ctx := context.Background()
	const users, each = 8, 20
	var wg sync.WaitGroup
	for u := range users {
		wg.Go(func() {
			part := fmt.Sprintf("user-%d", u)
			for i := range each {
				p := point(memory.Episodic, part, fmt.Sprintf("%s-%d", part, i), vec(i%4, 0.2), map[string]any{"source": part})
				if err := s.Upsert(ctx, []memory.Point{p}); err != nil {
					t.Error(err)
					return
				}
				got, err := s.Recall(ctx, memory.Episodic, []string{part}, memory.Query{Vector: vec(0, 0), Embedder: emb, K: 100})
				if err != nil {
					t.Error(err)
					return
				}
				for _, m := range got {
					if m.Metadata["source"] != part {
						t.Errorf("%s recalled %s's point", part, m.Metadata["source"])
					}
				}
				if len(got) != i+1 {
					t.Errorf("%s: recall after write %d sees %d points", part, i+1, len(got))
				}
			}
		})
	}
	wg.Wait()
	for u := range users {
		if n, _ := s.Count(ctx, memory.Episodic, []string{fmt.Sprintf("user-%d", u)}); n != each {
			t.Errorf("user-%d has %d points, want %d", u, n, each)
		}
	}
}

// testRecallWhileReplacing recalls a partition while new points are added
// to it and its points replaced: every recall sees each point whole, in
// one of its versions, and once the writes are done recall sees the last.
// (The embedded store appends a new point to the cached partition that
// recalls may be reading, and copies it to replace one: run with -race.)
func testRecallWhileReplacing(t *testing.T, s memory.Store) {
	ctx := context.Background()
	const first, rounds = 4, 6
	version := func(i, round int) memory.Point {
		id := fmt.Sprintf("p%d", i)
		p := point(memory.Episodic, "alice", id, vec(i%4, float32(round)/10), map[string]any{"round": round})
		p.Content = fmt.Sprintf("%s in round %d", id, round)
		return p
	}
	var ps []memory.Point
	for i := range first {
		ps = append(ps, version(i, 0))
	}
	must(t, s.Upsert(ctx, ps))
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				got, err := s.Recall(ctx, memory.Episodic, []string{"alice"}, memory.Query{Vector: vec(0, 0), Embedder: emb, K: 100})
				if err != nil {
					t.Error(err)
					return
				}
				for _, m := range got {
					if want := fmt.Sprintf("%s in round %v", m.ID, m.Metadata["round"]); m.Content != want {
						t.Errorf("recalled %q with metadata of %q", m.Content, want)
						return
					}
				}
			}
		})
	}
	for round := 1; round <= rounds; round++ {
		// A new point on its own, then every point replaced.
		must(t, s.Upsert(ctx, []memory.Point{version(first+round-1, round)}))
		ps = ps[:0]
		for i := range first + round {
			ps = append(ps, version(i, round))
		}
		must(t, s.Upsert(ctx, ps))
	}
	close(done)
	wg.Wait()
	got, err := s.Recall(ctx, memory.Episodic, []string{"alice"}, memory.Query{Vector: vec(0, 0), Embedder: emb, K: 100})
	must(t, err)
	if len(got) != first+rounds {
		t.Fatalf("recall after the writes sees %d points, want %d", len(got), first+rounds)
	}
	for _, m := range got {
		if want := fmt.Sprintf("%s in round %d", m.ID, rounds); m.Content != want {
			t.Errorf("recall after the writes sees %q, want %q", m.Content, want)
		}
	}
}
