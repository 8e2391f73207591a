package memory_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grin-ai/grin/integration/weaviatetest"
	"github.com/grin-ai/grin/platform/database"
	"github.com/grin-ai/grin/platform/memory"
	"github.com/grin-ai/grin/platform/memory/embedded"
	"github.com/grin-ai/grin/platform/memory/weaviate"
)

// The benchmarks compare the backends on what a chat turn does: recall
// from one user's episodic memory among many users, and store points.
// Vectors are random unit vectors of the offline embedder's size.
//
//	go test ./platform/memory -run '^$' -bench Backends -benchtime 2000x -timeout 60m
const (
	dims            = 512
	pointsPerTenant = 20
	benchEmbedder   = "bench"
)

func unit(rng *rand.Rand) []float32 {
	v := make([]float32, dims)
	var n float64
	for i := range v {
		v[i] = float32(rng.NormFloat64())
		n += float64(v[i] * v[i])
	}
	for i := range v {
		v[i] /= float32(math.Sqrt(n))
	}
	return v
}

type backend struct {
	name string
	open func(b *testing.B, prefix string) memory.Store
}

// backends returns the backends; the Weaviate server, started on first
// use, lives as long as outer.
func backends(outer *testing.B) []backend {
	var srv *weaviatetest.Server
	return []backend{
		{"embedded", func(b *testing.B, _ string) memory.Store {
			db, err := database.Open(context.Background(), b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			s, err := embedded.New(context.Background(), database.NewCommitter(db), db, 0)
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
		{"weaviate", func(b *testing.B, prefix string) memory.Store {
			if srv == nil {
				srv = weaviatetest.Start(outer)
			}
			s, err := weaviate.Open(context.Background(), weaviate.Config{URL: srv.URL, GRPCPort: srv.GRPCPort, Prefix: prefix})
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
	}
}

// hotLimit is how many tenants the benchmark lets stay hot at once: a hot
// tenant holds about 8 open files in Weaviate 1.35, and these machines
// allow a process 20,000 (measured; see docs/benchmarks.md). Beyond it the
// benchmark cools idle tenants as GRIN_WEAVIATE_COLD_AFTER would.
const hotLimit = 1500

// cooler returns what keeps a store's hot tenants under hotLimit: every
// call after the limit's worth of touched tenants cools them all.
func cooler(b *testing.B, s memory.Store, n int) func(touched int) {
	w, ok := s.(*weaviate.Store)
	if !ok || n <= hotLimit {
		return func(int) {}
	}
	since := 0
	return func(touched int) {
		if since += touched; since < hotLimit {
			return
		}
		since = 0
		if _, err := w.Cool(context.Background(), 0); err != nil {
			b.Fatal(err)
		}
	}
}

// fill gives each of n tenants pointsPerTenant points, in batches.
func fill(b *testing.B, s memory.Store, n int) time.Duration {
	cool := cooler(b, s, n)
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	start := time.Now()
	var batch []memory.Point
	for u := range n {
		for i := range pointsPerTenant {
			batch = append(batch, memory.Point{
				ID: strconv.Itoa(i), Collection: memory.Episodic, Partition: "user-" + strconv.Itoa(u),
				Content: "something user " + strconv.Itoa(u) + " said", Vector: unit(rng), Embedder: benchEmbedder,
				Metadata: map[string]any{"source": "user-" + strconv.Itoa(u), "when": memory.Now()},
			})
		}
		if len(batch) >= 1000 || u == n-1 {
			if err := s.Upsert(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
			cool(len(batch) / pointsPerTenant)
			batch = batch[:0]
		}
	}
	return time.Since(start)
}

// BenchmarkBackends: recall latency (p50, p99) among 1,000 and 10,000
// users, the time to fill them, and single-point inserts as a chat turn
// makes them.
func BenchmarkBackends(b *testing.B) {
	sizes := []int{1000, 10000}
	if s := os.Getenv("GRIN_BENCH_TENANTS"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, _ := strconv.Atoi(f)
			sizes = append(sizes, n)
		}
	}
	for _, be := range backends(b) {
		for _, n := range sizes {
			b.Run(fmt.Sprintf("%s/tenants=%d", be.name, n), func(b *testing.B) {
				s := be.open(b, fmt.Sprintf("Bench%d", n))
				took := fill(b, s, n)
				b.Logf("filled %d tenants × %d points in %v (%.0f points/s)", n, pointsPerTenant, took.Round(time.Millisecond), float64(n*pointsPerTenant)/took.Seconds())
				// "recall" asks for the matches' vectors, as GET
				// /memory/recall returns them; "recall-without-vectors"
				// does not, as a chat turn's recall.
				for _, omit := range []bool{false, true} {
					name := "recall"
					if omit {
						name = "recall-without-vectors"
					}
					b.Run(name, func(b *testing.B) {
						rng := rand.New(rand.NewPCG(2, 3))
						lat := make([]time.Duration, 0, b.N)
						cool := cooler(b, s, n)
						for b.Loop() {
							cool(1)
							user := "user-" + strconv.Itoa(rng.IntN(n))
							q := memory.Query{Vector: unit(rng), Embedder: benchEmbedder, K: 5, Threshold: -1, OmitVectors: omit}
							t0 := time.Now()
							got, err := s.Recall(context.Background(), memory.Episodic, []string{user}, q)
							lat = append(lat, time.Since(t0))
							if err != nil || len(got) != 5 {
								b.Fatalf("recall: %d %v", len(got), err)
							}
						}
						report(b, lat)
					})
				}
				b.Run("insert", func(b *testing.B) {
					rng := rand.New(rand.NewPCG(4, 5))
					lat := make([]time.Duration, 0, b.N)
					cool := cooler(b, s, n)
					i := 0
					for b.Loop() {
						cool(1)
						i++
						p := memory.Point{ID: "new-" + strconv.Itoa(i), Collection: memory.Episodic, Partition: "user-" + strconv.Itoa(rng.IntN(n)),
							Content: "a new message", Vector: unit(rng), Embedder: benchEmbedder, Metadata: map[string]any{}}
						t0 := time.Now()
						if err := s.Upsert(context.Background(), []memory.Point{p}); err != nil {
							b.Fatal(err)
						}
						lat = append(lat, time.Since(t0))
					}
					report(b, lat)
				})
				if w, ok := s.(*weaviate.Store); ok && n > hotLimit {
					b.Run("recall-hot", func(b *testing.B) { recallHot(b, w, n) })
				}
				if w, ok := s.(*weaviate.Store); ok {
					coldFootprint(b, w, n)
				}
			})
		}
	}
}

// recallHot measures recall as a busy node serves it: n tenants, of which
// hotLimit are in use (hot) and the rest cold, recalls landing on the ones
// in use. Every tenant is cooled first, then hotLimit of them are woken by
// their first recall (what a returning user's first message costs:
// cold-first-p50/p99), then the loop recalls among those, without vectors,
// as a chat turn does (p50/p99).
func recallHot(b *testing.B, w *weaviate.Store, n int) {
	ctx := context.Background()
	if _, err := w.Cool(ctx, 0); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(8, 9))
	hot := rng.Perm(n)[:hotLimit]
	woke := make([]time.Duration, 0, len(hot))
	for _, u := range hot {
		q := memory.Query{Vector: unit(rng), Embedder: benchEmbedder, K: 5, Threshold: -1, OmitVectors: true}
		t0 := time.Now()
		got, err := w.Recall(ctx, memory.Episodic, []string{"user-" + strconv.Itoa(u)}, q)
		woke = append(woke, time.Since(t0))
		if err != nil || len(got) != 5 {
			b.Fatalf("first recall of a cold tenant: %d %v", len(got), err)
		}
	}
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		user := "user-" + strconv.Itoa(hot[rng.IntN(len(hot))])
		q := memory.Query{Vector: unit(rng), Embedder: benchEmbedder, K: 5, Threshold: -1, OmitVectors: true}
		t0 := time.Now()
		got, err := w.Recall(ctx, memory.Episodic, []string{user}, q)
		lat = append(lat, time.Since(t0))
		if err != nil || len(got) != 5 {
			b.Fatalf("recall: %d %v", len(got), err)
		}
	}
	slices.Sort(woke)
	b.ReportMetric(float64(quantile(woke, 0.50).Microseconds()), "cold-first-p50-µs")
	b.ReportMetric(float64(quantile(woke, 0.99).Microseconds()), "cold-first-p99-µs")
	report(b, lat)
}

func quantile(sorted []time.Duration, f float64) time.Duration {
	return sorted[int(f*float64(len(sorted)-1))]
}

func report(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(quantile(lat, 0.50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(quantile(lat, 0.99).Microseconds()), "p99-µs")
	b.ReportMetric(0, "ns/op")
}

// coldFootprint logs the Weaviate process's resident memory and open
// files with every tenant hot, then cold: what a node keeps for users it
// is not serving.
func coldFootprint(b *testing.B, w *weaviate.Store, n int) {
	pid := weaviatePID(b)
	if pid == 0 {
		return
	}
	rss, files := footprint(pid)
	b.Logf("%d tenants, after the run: weaviate RSS %d MiB, %d open files", n, rss>>20, files)
	t0 := time.Now()
	cooled, err := w.Cool(context.Background(), 0)
	if err != nil {
		b.Fatal(err)
	}
	took := time.Since(t0)
	time.Sleep(5 * time.Second) // let Weaviate close the shards' files
	rss, files = footprint(pid)
	b.Logf("the %d hot ones cooled in %v: weaviate RSS %d MiB, %d open files", cooled, took.Round(time.Millisecond), rss>>20, files)
	rng := rand.New(rand.NewPCG(6, 7))
	var lat []time.Duration
	for range 50 {
		t0 := time.Now()
		if _, err := w.Recall(context.Background(), memory.Episodic, []string{"user-" + strconv.Itoa(rng.IntN(n))},
			memory.Query{Vector: unit(rng), Embedder: benchEmbedder, K: 5, Threshold: -1}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	b.Logf("first recall of a cold user (waking the tenant): p50 %v, p99 %v", lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)*99/100].Round(time.Microsecond))
}

// weaviatePID finds the benchmark's weaviate-server among this process's
// children.
func weaviatePID(b *testing.B) int {
	self := strconv.Itoa(os.Getpid())
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, d := range dirs {
		raw, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(raw)
		if !strings.Contains(s, "(weaviate-server)") {
			continue
		}
		fields := strings.Fields(s[strings.LastIndex(s, ")")+1:])
		if len(fields) > 1 && fields[1] == self {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(d)))
			return pid
		}
	}
	b.Log("weaviate-server process not found; no footprint figures")
	return 0
}

func footprint(pid int) (rss int64, files int) {
	raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			rss = kb << 10
		}
	}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return rss, len(fds)
}
