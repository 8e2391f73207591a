package weaviate_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grin-ai/grin/integration/weaviatetest"
	"github.com/grin-ai/grin/internal/logbuf"
	"github.com/grin-ai/grin/platform/cluster"
	"github.com/grin-ai/grin/platform/cluster/clustertest"
	"github.com/grin-ai/grin/platform/memory"
	"github.com/grin-ai/grin/platform/memory/memorytest"
	"github.com/grin-ai/grin/platform/memory/weaviate"
)

// TestWeaviate runs everything against one real weaviate-server; each
// store gets its own collections through a fresh prefix.
func TestWeaviate(t *testing.T) {
	srv := weaviatetest.Start(t)
	var n atomic.Int64
	open := func(t *testing.T) *weaviate.Store {
		t.Helper()
		s, err := weaviate.Open(context.Background(), weaviate.Config{
			URL: srv.URL, GRPCPort: srv.GRPCPort, Prefix: fmt.Sprintf("T%d", n.Add(1)),
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	t.Run("Behaviour", func(t *testing.T) {
		memorytest.Run(t, func(t *testing.T) memory.Store { return open(t) })
	})

	t.Run("ListBeyondTheQueryLimit", func(t *testing.T) {
		// Weaviate refuses queries whose offset and limit pass 10,000;
		// grin's listing pages through any partition.
		ctx := context.Background()
		s := open(t)
		const n = 10050
		var ps []memory.Point
		for i := range n {
			ps = append(ps, memory.Point{ID: fmt.Sprintf("p%05d", i), Collection: memory.Declarative, Partition: "big",
				Content: "chunk", Vector: []float32{1, float32(i % 7)}, Embedder: "e", Metadata: map[string]any{"odd": i%2 == 1}})
		}
		for chunk := range slices.Chunk(ps, 1000) {
			must(t, s.Upsert(ctx, chunk))
		}
		page, err := s.List(ctx, memory.Declarative, []string{"big"}, nil, 10020, 20)
		must(t, err)
		if len(page) != 20 || page[0].ID != "p10020" || page[19].ID != "p10039" || len(page[0].Vector) != 2 {
			t.Fatalf("offset 10020: %d points, first %+v", len(page), page[0])
		}
		odd, err := s.List(ctx, memory.Declarative, []string{"big"}, map[string]any{"odd": true}, 5020, 3)
		must(t, err)
		if len(odd) != 3 || odd[0].ID != "p10041" || odd[2].ID != "p10045" {
			t.Errorf("filtered, offset 5020: %v", odd)
		}
		if all, _ := s.List(ctx, memory.Declarative, []string{"big"}, nil, 0, n+10); len(all) != n {
			t.Errorf("everything: %d points, want %d", len(all), n)
		}
	})

	t.Run("ANodeDownIsPassedOver", func(t *testing.T) {
		// Two addresses, the first dead: grin starts on the second and
		// every call goes there.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		must(t, err)
		dead := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		ctx := context.Background()
		s, err := weaviate.Open(ctx, weaviate.Config{
			URL:       fmt.Sprintf("http://127.0.0.1:%d,%s", dead, srv.URL),
			GRPCPorts: []int{dead, srv.GRPCPort}, Prefix: "Failover",
		})
		must(t, err)
		must(t, s.Upsert(ctx, []memory.Point{{ID: "1", Collection: memory.Episodic, Partition: "ann", Content: "hello", Vector: []float32{1, 0}, Embedder: "e"}}))
		if got, err := s.Get(ctx, memory.Episodic, "ann", "1"); err != nil || got.Content != "hello" {
			t.Errorf("get through the live node: %+v %v", got, err)
		}
		// Every node dead: the error names each.
		_, err = weaviate.Open(ctx, weaviate.Config{URL: fmt.Sprintf("http://127.0.0.1:%d,http://127.0.0.1:%d", dead, dead+1)})
		if err == nil || strings.Count(err.Error(), "is not reachable") != 2 {
			t.Errorf("all nodes down: %v", err)
		}
		_, err = weaviate.Open(ctx, weaviate.Config{URL: srv.URL + "," + srv.URL, GRPCPorts: []int{1, 2, 3}})
		if err == nil || !strings.Contains(err.Error(), "3 gRPC ports for 2 URLs") {
			t.Errorf("ports and URLs disagree: %v", err)
		}
	})

	t.Run("ForeignCollectionsAreRefused", func(t *testing.T) {
		// Collections under the prefix that grin did not lay out (another
		// tool, or Weaviate's auto-schema) are refused, naming what differs.
		for _, tc := range []struct{ prefix, class, want string }{
			{"Other", `{"class": "OtherEpisodic"}`, "multi-tenancy"},
			{"Typed", `{"class": "TypedProcedural", "properties": [{"name": "pointId", "dataType": ["text"], "tokenization": "word"}]}`, `property "pointId" is tokenized "word"`},
		} {
			resp, err := http.Post(srv.URL+"/v1/schema", "application/json", strings.NewReader(tc.class))
			must(t, err)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("create %s: %s", tc.class, resp.Status)
			}
			_, err = weaviate.Open(context.Background(), weaviate.Config{URL: srv.URL, GRPCPort: srv.GRPCPort, Prefix: tc.prefix})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "GRIN_WEAVIATE_PREFIX") {
				t.Errorf("prefix %s: %v, want an error naming %q", tc.prefix, err, tc.want)
			}
		}
	})

	t.Run("LongIdsGetHashedTenants", func(t *testing.T) {
		ctx := context.Background()
		s := open(t)
		long := strings.Repeat("ü", 40) // 80 bytes: no readable tenant name fits
		must(t, s.Upsert(ctx, []memory.Point{
			{ID: "1", Collection: memory.Episodic, Partition: long, Content: "mine", Vector: []float32{1, 0}, Embedder: "e"},
			{ID: "1", Collection: memory.Episodic, Partition: "short", Content: "theirs", Vector: []float32{1, 0}, Embedder: "e"},
		}))
		got, err := s.Recall(ctx, memory.Episodic, []string{long}, memory.Query{Vector: []float32{1, 0}, Embedder: "e", K: 5})
		must(t, err)
		if len(got) != 1 || got[0].Content != "mine" || got[0].Partition != long {
			t.Errorf("recall in the hashed tenant: %+v", got)
		}
		// A fresh store (no cache) names the partitions back.
		again, err := weaviate.Open(ctx, weaviate.Config{URL: srv.URL, GRPCPort: srv.GRPCPort, Prefix: s.Class(memory.Episodic)[:len(s.Class(memory.Episodic))-len("Episodic")]})
		must(t, err)
		parts, err := again.Partitions(ctx, memory.Episodic)
		must(t, err)
		if fmt.Sprint(parts) != fmt.Sprint([]string{"short", long}) {
			t.Errorf("partitions = %q", parts)
		}
	})

	t.Run("ChangedEmbedderIsExplained", func(t *testing.T) {
		ctx := context.Background()
		s := open(t)
		must(t, s.Upsert(ctx, []memory.Point{{ID: "a", Collection: memory.Declarative, Partition: "shared", Content: "x", Vector: []float32{1, 0, 0}, Embedder: "small"}}))
		err := s.Upsert(ctx, []memory.Point{{ID: "b", Collection: memory.Declarative, Partition: "shared", Content: "y", Vector: []float32{1, 0, 0, 0}, Embedder: "big"}})
		if !errors.Is(err, memory.ErrDimensions) || !strings.Contains(err.Error(), `embedder "small"`) || !strings.Contains(err.Error(), "3-dimensional") {
			t.Fatalf("a vector of another size: %v", err)
		}
		// Recall with the other embedder finds nothing rather than failing.
		got, err := s.Recall(ctx, memory.Declarative, []string{"shared"}, memory.Query{Vector: []float32{1, 0, 0, 0}, Embedder: "big", K: 5})
		if err != nil || len(got) != 0 {
			t.Errorf("recall with another embedder: %v %v", got, err)
		}
		if err := s.CheckEmbedder(ctx, "big", 4); !errors.Is(err, memory.ErrDimensions) {
			t.Errorf("CheckEmbedder(big, 4) = %v", err)
		}
		if err := s.CheckEmbedder(ctx, "small", 3); err != nil {
			t.Errorf("CheckEmbedder(small, 3) = %v", err)
		}
		// The record outlives the process.
		fresh, err := weaviate.Open(ctx, weaviate.Config{URL: srv.URL, GRPCPort: srv.GRPCPort, Prefix: strings.TrimSuffix(s.Class(memory.Episodic), "Episodic")})
		must(t, err)
		if err := fresh.CheckEmbedder(ctx, "big", 4); !errors.Is(err, memory.ErrDimensions) {
			t.Errorf("after reopening, CheckEmbedder(big, 4) = %v", err)
		}
	})

	t.Run("FirstWritesAtOnceAllLand", func(t *testing.T) {
		// The first point of a collection records its vectors; when many
		// writers (users' first turns, two grin processes) store their
		// first points at once, the losers of that race must take the
		// winner's record, not fail the write. Several fresh collections,
		// two processes each, eight writers a process.
		ctx := context.Background()
		for round := range 8 {
			first := open(t)
			second, err := weaviate.Open(ctx, weaviate.Config{URL: srv.URL, GRPCPort: srv.GRPCPort,
				Prefix: strings.TrimSuffix(first.Class(memory.Episodic), "Episodic")})
			must(t, err)
			var wg sync.WaitGroup
			errs := make(chan error, 32)
			for i := range 32 {
				s := []*weaviate.Store{first, second}[i%2]
				wg.Go(func() {
					errs <- s.Upsert(ctx, []memory.Point{{ID: "p", Collection: memory.Episodic, Partition: fmt.Sprintf("user-%d", i),
						Content: "hello", Vector: []float32{1, float32(i)}, Embedder: "e"}})
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Errorf("round %d: a first write failed: %v", round, err)
				}
			}
			if n, err := second.Count(ctx, memory.Episodic, []string{"user-3", "user-4"}); err != nil || n != 2 {
				t.Errorf("round %d: two writers' points: %d, %v", round, n, err)
			}
		}
	})

	t.Run("AnotherProcessesFirstPointsAreRecalled", func(t *testing.T) {
		// A replica that found a collection empty a moment ago must still
		// recall what another replica stored first since: a user whose
		// first turn went through one grin recalls it through the next.
		ctx := context.Background()
		for _, tc := range []struct {
			name   string
			stored []float32 // the other replica's first vector
			want   int       // points the recall finds
		}{
			{"same embedder", []float32{1, 0}, 1},
			{"another size: nothing to compare, no error", []float32{1, 0, 0}, 0},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var logs logbuf.Buffer
				here, err := weaviate.Open(ctx, weaviate.Config{URL: srv.URL, GRPCPort: srv.GRPCPort,
					Prefix: fmt.Sprintf("T%d", n.Add(1)), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
				must(t, err)
				// A clock that stands still: the absence "here" found is
				// never old enough to be asked again.
				at := time.Now()
				here.SetClock(func() time.Time { return at })
				there, err := weaviate.Open(ctx, weaviate.Config{URL: srv.URL, GRPCPort: srv.GRPCPort,
					Prefix: strings.TrimSuffix(here.Class(memory.Episodic), "Episodic")})
				must(t, err)
				q := memory.Query{Vector: []float32{1, 0}, Embedder: "e", K: 5, Threshold: -1}
				if got, err := here.Recall(ctx, memory.Episodic, []string{"dora"}, q); err != nil || len(got) != 0 {
					t.Fatalf("recall of an empty collection: %v %v", got, err)
				}
				must(t, there.Upsert(ctx, []memory.Point{{ID: "1", Collection: memory.Episodic, Partition: "dora",
					Content: "dora's first", Vector: tc.stored, Embedder: "e"}}))
				got, err := here.Recall(ctx, memory.Episodic, []string{"dora"}, q)
				if err != nil || len(got) != tc.want {
					t.Errorf("recall after the other replica's first write: %d points, %v; want %d", len(got), err, tc.want)
				}
				// A vector of the wrong size is final: not asked again.
				if strings.Contains(logs.String(), "trying again") {
					t.Errorf("the recall was retried:\n%s", logs.String())
				}
			})
		}
	})

	t.Run("IdleTenantsGoColdAndWake", func(t *testing.T) {
		ctx := context.Background()
		s := open(t)
		for _, u := range []string{"alice", "bob"} {
			must(t, s.Upsert(ctx, []memory.Point{{ID: "1", Collection: memory.Episodic, Partition: u, Content: u + "'s", Vector: []float32{1, 0}, Embedder: "e"}}))
		}
		n, err := s.Cool(ctx, 0)
		must(t, err)
		if n != 2 {
			t.Fatalf("cooled %d tenants, want 2", n)
		}
		for _, u := range []string{"alice", "bob"} {
			if st, _ := s.Activity(ctx, u); st != "COLD" {
				t.Errorf("%s is %q after cooling, want COLD", u, st)
			}
		}
		got, err := s.Recall(ctx, memory.Episodic, []string{"alice"}, memory.Query{Vector: []float32{1, 0}, Embedder: "e", K: 5})
		must(t, err)
		if len(got) != 1 || got[0].Content != "alice's" {
			t.Errorf("recall from a cold tenant: %+v", got)
		}
		if st, _ := s.Activity(ctx, "alice"); st != "HOT" {
			t.Errorf("alice is %q after her request, want HOT", st)
		}
		if st, _ := s.Activity(ctx, "bob"); st != "COLD" {
			t.Errorf("bob is %q, want still COLD", st)
		}
		// A long idle time cools nobody who was just used.
		if n, _ := s.Cool(ctx, 1<<40); n != 0 {
			t.Errorf("cooled %d recently used tenants", n)
		}
	})

	t.Run("ReplicasDoNotCoolWhatAnotherServes", func(t *testing.T) {
		// Two replicas on one set of collections, telling each other
		// which tenants they serve over a bus, on one clock the test
		// moves. Alice is served by "here" only; "there" must not cool
		// her tenant while she is, and must once she stops.
		ctx := context.Background()
		here := open(t)
		there, err := weaviate.Open(ctx, weaviate.Config{URL: srv.URL, GRPCPort: srv.GRPCPort,
			Prefix: strings.TrimSuffix(here.Class(memory.Episodic), "Episodic")})
		must(t, err)
		var hub clustertest.Hub
		hub.Synchronous = true
		hereBus, thereBus := hub.Join("here"), hub.Join("there")
		now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		clock := func() time.Time { return now }
		here.SetClock(clock)
		there.SetClock(clock)
		here.TrackUse()
		defer there.HearUse(thereBus)()
		for _, u := range []string{"alice", "bob"} {
			must(t, here.Upsert(ctx, []memory.Point{{ID: "1", Collection: memory.Episodic, Partition: u, Content: u + "'s", Vector: []float32{1, 0}, Embedder: "e"}}))
		}
		const idle = 10 * time.Minute
		status := func(u string) string {
			t.Helper()
			st, err := there.Activity(ctx, u)
			must(t, err)
			return st
		}
		cool := func(want ...string) {
			t.Helper()
			before := map[string]string{}
			for _, u := range []string{"alice", "bob"} {
				before[u] = status(u)
			}
			if _, err := there.Cool(ctx, idle); err != nil {
				t.Fatal(err)
			}
			var cooled []string
			for _, u := range []string{"alice", "bob"} {
				if st := status(u); st == "COLD" && before[u] != "COLD" {
					cooled = append(cooled, u)
				}
			}
			if !slices.Equal(cooled, want) {
				t.Errorf("at %s, the other replica cooled %v, want %v", now.Format("15:04"), cooled, want)
			}
		}
		// 09:00: "here" tells of its writes; "there" counts both from now.
		must(t, here.AnnounceUse(ctx, hereBus))
		cool()
		// 09:09: alice is served by "here", who says so.
		now = now.Add(9 * time.Minute)
		if _, err := here.Recall(ctx, memory.Episodic, []string{"alice"}, memory.Query{Vector: []float32{1, 0}, Embedder: "e", K: 1}); err != nil {
			t.Fatal(err)
		}
		must(t, here.AnnounceUse(ctx, hereBus))
		// 09:11: bob has been idle 11 minutes everywhere; alice 2.
		now = now.Add(2 * time.Minute)
		cool("bob")
		// 09:20: alice idle for 11 minutes: cooled.
		now = now.Add(9 * time.Minute)
		cool("alice")

		// A gap in the bus: what "there" may have missed counts as use.
		// 09:20: alice is back, and "there" hears it.
		must(t, here.Upsert(ctx, []memory.Point{{ID: "2", Collection: memory.Episodic, Partition: "alice", Content: "again", Vector: []float32{1, 0}, Embedder: "e"}}))
		must(t, here.AnnounceUse(ctx, hereBus))
		// 09:25: served again, but the news is lost; at 09:26 "there"
		// is told it missed events.
		thereBus.Cut(true)
		now = now.Add(5 * time.Minute)
		if _, err := here.Recall(ctx, memory.Episodic, []string{"alice"}, memory.Query{Vector: []float32{1, 0}, Embedder: "e", K: 1}); err != nil {
			t.Fatal(err)
		}
		must(t, here.AnnounceUse(ctx, hereBus))
		now = now.Add(time.Minute)
		thereBus.Cut(false)
		// 09:31: 11 minutes since "there" last heard of alice, 5 since
		// the gap: kept.
		now = now.Add(5 * time.Minute)
		cool()
		// 09:37: 11 minutes since the gap.
		now = now.Add(6 * time.Minute)
		cool("alice")

		// Use heard of a tenant another replica then cooled is forgotten:
		// when that replica wakes it, "there" counts it afresh rather than
		// cooling it again before the news arrives.
		// 09:38: bob is back through "here", and "there" hears it.
		now = now.Add(time.Minute)
		must(t, here.Upsert(ctx, []memory.Point{{ID: "2", Collection: memory.Episodic, Partition: "bob", Content: "back", Vector: []float32{1, 0}, Embedder: "e"}}))
		must(t, here.AnnounceUse(ctx, hereBus))
		// 09:50: "here" cools him; at 09:51 "there" finds him cold.
		now = now.Add(12 * time.Minute)
		if _, err := here.Cool(ctx, idle); err != nil {
			t.Fatal(err)
		}
		if st := status("bob"); st != "COLD" {
			t.Fatalf("bob is %q after the replica serving him cooled him", st)
		}
		now = now.Add(time.Minute)
		cool()
		// 09:52: "here" wakes him; "there" sweeps before it is told.
		now = now.Add(time.Minute)
		must(t, here.Upsert(ctx, []memory.Point{{ID: "3", Collection: memory.Episodic, Partition: "bob", Content: "again", Vector: []float32{1, 0}, Embedder: "e"}}))
		cool()
	})

	t.Run("UseIsToldInBatchesTheBusCarries", func(t *testing.T) {
		// A busy replica's list of tenants in use goes in several events,
		// each within one notification of the PostgreSQL bus, and none
		// is lost.
		ctx := context.Background()
		s := open(t)
		var hub clustertest.Hub
		hub.Synchronous = true
		bus := hub.Join("busy")
		s.TrackUse()
		var parts, want []string
		for i := range 500 {
			// Ids too long to spell out get 44-byte hashed tenant names.
			p := fmt.Sprintf("user-%03d-%s", i, strings.Repeat("x", 70))
			parts = append(parts, p)
			want = append(want, weaviate.TenantName(p))
		}
		if _, err := s.Count(ctx, memory.Episodic, parts); err != nil {
			t.Fatal(err)
		}
		must(t, s.AnnounceUse(ctx, bus))
		var told []string
		events := hub.Published()
		for _, e := range events {
			if e.Topic != cluster.TopicMemoryUsed {
				continue
			}
			if len(e.Data) > 7800 {
				t.Errorf("an event of %d bytes", len(e.Data))
			}
			told = append(told, strings.Split(string(e.Data), "\n")...)
		}
		slices.Sort(told)
		slices.Sort(want)
		if len(events) < 3 || !slices.Equal(told, want) {
			t.Errorf("%d events told %d tenants, want all %d", len(events), len(told), len(want))
		}
		// Told once: the next announcement has nothing new.
		must(t, s.AnnounceUse(ctx, bus))
		if again := hub.Published(); len(again) != len(events) {
			t.Errorf("%d more events with nothing used since", len(again)-len(events))
		}
	})

	t.Run("DeletingAPartitionDeletesItsTenant", func(t *testing.T) {
		ctx := context.Background()
		s := open(t)
		must(t, s.Upsert(ctx, []memory.Point{{ID: "1", Collection: memory.Episodic, Partition: "carol", Content: "c", Vector: []float32{1, 0}, Embedder: "e"}}))
		if st, _ := s.Activity(ctx, "carol"); st != "HOT" {
			t.Fatalf("carol's tenant is %q", st)
		}
		n, err := s.DeleteWhere(ctx, memory.Episodic, []string{"carol"}, nil)
		must(t, err)
		if n != 1 {
			t.Errorf("deleted %d", n)
		}
		if st, _ := s.Activity(ctx, "carol"); st != "" {
			t.Errorf("carol's tenant still exists: %q", st)
		}
	})
}

func TestOpenNamesTheURL(t *testing.T) {
	_, err := weaviate.Open(context.Background(), weaviate.Config{URL: "http://127.0.0.1:1"})
	if err == nil || !strings.Contains(err.Error(), "http://127.0.0.1:1") {
		t.Errorf("Open of nothing: %v", err)
	}
	for _, bad := range []string{"", "localhost:8080", "ftp://x"} {
		if _, err := weaviate.Open(context.Background(), weaviate.Config{URL: bad}); err == nil || !strings.Contains(err.Error(), "want http://") {
			t.Errorf("Open(%q): %v", bad, err)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
