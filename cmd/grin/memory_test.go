package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/grin-ai/grin/integration/weaviatetest"
	"github.com/grin-ai/grin/platform/database"
	"github.com/grin-ai/grin/platform/memory"
	"github.com/grin-ai/grin/platform/memory/embedded"
	"github.com/grin-ai/grin/platform/memory/weaviate"
)

func TestMemoryMigrateUsage(t *testing.T) {
	withDB := t.TempDir()
	db, err := database.Open(context.Background(), withDB)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	url := map[string]string{"GRIN_DATA_DIR": withDB, "GRIN_WEAVIATE_URL": "http://127.0.0.1:1"}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		says string // in stderr
	}{
		{"no subcommand", url, []string{"memory"}, 2, "grin memory migrate"},
		{"unknown subcommand", url, []string{"memory", "export"}, 2, "grin memory migrate"},
		{"from elsewhere", url, []string{"memory", "migrate", "--from", "qdrant"}, 2, `--from embedded --to weaviate only, not --from "qdrant" --to "weaviate"`},
		{"to elsewhere", url, []string{"memory", "migrate", "--to", "embedded"}, 2, `--from embedded --to weaviate only`},
		{"backwards", url, []string{"memory", "migrate", "--from", "weaviate", "--to", "embedded"}, 2, `--from embedded --to weaviate only`},
		{"no URL", map[string]string{"GRIN_DATA_DIR": withDB}, []string{"memory", "migrate"}, 2, "needs GRIN_WEAVIATE_URL (or --weaviate-url)"},
		{"no database", map[string]string{"GRIN_DATA_DIR": filepath.Join(withDB, "typo"), "GRIN_WEAVIATE_URL": "http://127.0.0.1:1"}, []string{"memory", "migrate"}, 2, "no grin database in"},
		{"positional", url, []string{"memory", "migrate", "everything"}, 2, "grin memory migrate takes no arguments"},
		{"bad setting", url, []string{"memory", "migrate", "--weaviate-prefix", "lower"}, 2, "--weaviate-prefix"},
		{"unreachable", url, []string{"memory", "migrate"}, 2, "http://127.0.0.1:1 is not reachable"},
		{"help", url, []string{"memory", "migrate", "-h"}, 0, "Usage: grin memory migrate [--from embedded] [--to weaviate]"},
		{"help on sizes", url, []string{"memory", "migrate", "-h"}, 0, "-skip-mismatched"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runGrin(t, tc.env, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.says) {
				t.Errorf("exit %d, want %d with %q:\n%s", code, tc.code, tc.says, stderr)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(withDB, "typo")); !os.IsNotExist(err) {
		t.Errorf("a mistyped data directory was created: %v", err)
	}
}

// Partitions of the migration's fixture: odd characters, and an id too
// long for a readable tenant name.
var (
	bob  = "oidc:bob@example.com"
	long = "oidc:" + strings.Repeat("someone-with-a-long-id/", 4)
)

// seedMemories fills an embedded store in a fresh data directory and
// returns it with the points in the order a migration reads them.
func seedMemories(t *testing.T) (string, []memory.Point) {
	t.Helper()
	ctx := context.Background()
	dir, db, store := newEmbedded(t)
	defer db.Close()
	var points []memory.Point
	add := func(collection, partition string, ids ...string) {
		for _, id := range ids {
			i := len(points)
			points = append(points, memory.Point{
				ID: id, Collection: collection, Partition: partition,
				Content:  collection + " memory " + id + " of " + partition,
				Metadata: map[string]any{"source": "seed", "when": 1.7e9 + float64(i), "n": i, "who": partition, "tags": []any{"a", 1.5}},
				Vector:   []float32{float32(i + 1), 1, float32(i % 3), -0.5}, Embedder: "test-embedder",
			})
		}
	}
	add(memory.Episodic, "alice", "1", "a2", "a3")
	add(memory.Episodic, bob, "1", "b2")
	add(memory.Episodic, long, "l1", "l2")
	add(memory.Declarative, memory.DefaultSpace, "doc1", "doc2", "doc3")
	add(memory.Declarative, "team:research", "r1", "r2")
	add(memory.Procedural, "", "tool1", "form1")
	// One Upsert per point, so each is numbered after the one before.
	for _, p := range points {
		if err := store.Upsert(ctx, []memory.Point{p}); err != nil {
			t.Fatal(err)
		}
	}
	// Replacing a point keeps its place (and its content changes).
	points[0].Content = "alice's first memory, edited"
	if err := store.Upsert(ctx, points[:1]); err != nil {
		t.Fatal(err)
	}
	scanned, _, err := embedded.Scan(ctx, db, embedded.Cursor{}, 1000)
	if err != nil || len(scanned) != len(points) {
		t.Fatalf("scan: %d points, %v", len(scanned), err)
	}
	return dir, scanned
}

func TestMemoryMigrate(t *testing.T) {
	srv := weaviatetest.Shared(t) // each run into its own prefix
	ctx := context.Background()
	dir, points := seedMemories(t)
	checkpointPath := filepath.Join(dir, checkpointName)
	env := func(prefix string) map[string]string {
		return map[string]string{
			"GRIN_DATA_DIR": dir, "GRIN_WEAVIATE_URL": srv.URL, "GRIN_WEAVIATE_GRPC_PORT": strconv.Itoa(srv.GRPCPort),
			"GRIN_WEAVIATE_PREFIX": prefix,
		}
	}
	open := func(t *testing.T, prefix string) *weaviate.Store {
		t.Helper()
		s, err := weaviate.Open(ctx, weaviate.Config{URL: srv.URL, GRPCPort: srv.GRPCPort, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	t.Run("CopiesEverything", func(t *testing.T) {
		// A checkpoint of a migration elsewhere, near the end: ignored.
		if err := writeCheckpoint(checkpointPath, checkpoint{To: "weaviate", URL: srv.URL, Prefix: "Elsewhere", After: embedded.Cursor{Collection: "procedural"}, Done: 12}); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := runGrin(t, env("Migrate1"), "memory", "migrate", "--from", "embedded", "--to", "weaviate", "--weaviate-url", srv.URL+"/")
		if code != 0 {
			t.Fatalf("exit %d:\n%s\n%s", code, stdout, stderr)
		}
		if !strings.Contains(stderr, "ignoring the checkpoint") || !strings.Contains(stderr, "(prefix Elsewhere)") || strings.Contains(stderr, "resuming") {
			t.Errorf("a checkpoint for another destination must be ignored, saying so:\n%s", stderr)
		}
		for _, want := range []string{
			"copied 14 points to Weaviate at " + srv.URL + " (prefix Migrate1), 14 of them in this run: 3 collections, 6 partitions",
			"episodic          3 partitions         7 points",
			"declarative       2 partitions         5 points",
			"procedural        1 partition          2 points",
			"verified",
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("summary lacks %q:\n%s", want, stdout)
			}
		}
		if _, err := os.Stat(checkpointPath); !os.IsNotExist(err) {
			t.Errorf("the checkpoint outlived a verified migration: %v", err)
		}

		dst := open(t, "Migrate1")
		for _, p := range points {
			got, err := dst.Get(ctx, p.Collection, p.Partition, p.ID)
			if err != nil {
				t.Errorf("get %s %q %s: %v", p.Collection, p.Partition, p.ID, err)
				continue
			}
			if !reflect.DeepEqual(got, p) {
				t.Errorf("%s %q %s in Weaviate:\n got %+v\nwant %+v", p.Collection, p.Partition, p.ID, got, p)
			}
		}
		if got, _ := dst.Get(ctx, memory.Episodic, "alice", "1"); got.Content != "alice's first memory, edited" {
			t.Errorf("alice's point 1 is %q", got.Content)
		}
		// Partitions stay apart: bob recalls his own, never alice's "1".
		q := memory.Query{Vector: points[0].Vector, Embedder: "test-embedder", K: 10}
		for part, want := range map[string][]string{"alice": {"1", "a2", "a3"}, bob: {"1", "b2"}, long: {"l1", "l2"}} {
			got, err := dst.Recall(ctx, memory.Episodic, []string{part}, q)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, m := range got {
				if m.Partition != part || m.Metadata["who"] != part {
					t.Errorf("recall in %q found %+v", part, m.Point)
				}
				ids = append(ids, m.ID)
			}
			if len(ids) != len(want) {
				t.Errorf("recall in %q: %v, want %v", part, ids, want)
			}
		}
		// Each partition lists oldest first, as it did before.
		list, err := dst.List(ctx, memory.Declarative, []string{memory.DefaultSpace}, nil, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		var order []string
		for _, p := range list {
			order = append(order, p.ID)
		}
		if strings.Join(order, " ") != "doc1 doc2 doc3" {
			t.Errorf("list order in Weaviate: %v", order)
		}
		parts, err := dst.Partitions(ctx, memory.Episodic)
		if err != nil || !reflect.DeepEqual(parts, []string{"alice", bob, long}) {
			t.Errorf("episodic partitions in Weaviate: %q %v", parts, err)
		}

		// Run again: nothing new, still verified (upserts replace).
		code, stdout, stderr = runGrin(t, env("Migrate1"), "memory", "migrate", "--quiet")
		if code != 0 || !strings.Contains(stdout, "verified") || stderr != "" {
			t.Errorf("second run: exit %d\n%s\n%s", code, stdout, stderr)
		}

		// A point Weaviate held before, in a migrated partition: the
		// counts differ and the message says why.
		extra := points[5] // alice's "1"
		extra.ID = "already-there"
		if err := dst.Upsert(ctx, []memory.Point{extra}); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr = runGrin(t, env("Migrate1"), "memory", "migrate", "--quiet")
		if code == 0 || !strings.Contains(stdout, `episodic "alice": 3 in the data directory, 4 in Weaviate (Weaviate already held 1 other point)`) ||
			!strings.Contains(stderr, "the counts differ in 1 of 6 partitions") || !strings.Contains(stderr, "fresh GRIN_WEAVIATE_PREFIX") {
			t.Errorf("more in Weaviate: exit %d\n%s\n%s", code, stdout, stderr)
		}
	})

	t.Run("Resumes", func(t *testing.T) {
		// Interrupted (as by ^C) once two pages of three are in.
		ictx, cancel := context.WithCancel(ctx)
		defer cancel()
		small := func(m *migration) {
			m.pageSize = 3
			m.afterPage = func(done int) {
				if done >= 6 {
					cancel()
				}
			}
		}
		var stdout, stderr strings.Builder
		e := env("Migrate2")
		err := memoryMigrate(ictx, []string{"--quiet"}, func(k string) string { return e[k] }, &stdout, &stderr, small)
		if err == nil || !strings.Contains(err.Error(), "context canceled") ||
			!strings.Contains(err.Error(), "6 of 14 points are in Weaviate; run the same command again to resume") {
			t.Fatalf("interrupted run: %v\n%s\n%s", err, stdout.String(), stderr.String())
		}
		raw, err := os.ReadFile(checkpointPath)
		if err != nil {
			t.Fatal(err)
		}
		var cp checkpoint
		if err := json.Unmarshal(raw, &cp); err != nil || cp.Done != 6 || cp.Prefix != "Migrate2" || cp.URL != srv.URL ||
			cp.After != (embedded.Cursor{Collection: points[5].Collection, Partition: points[5].Partition, Seq: cp.After.Seq, ID: points[5].ID}) {
			t.Fatalf("checkpoint %s (%v)", raw, err)
		}
		dst := open(t, "Migrate2")
		if n := total(t, dst); n != 6 {
			t.Fatalf("%d points in Weaviate after two pages", n)
		}
		// Take a copied point away: a resumed run does not send it again,
		// so verification finds it missing.
		if n, err := dst.Delete(ctx, points[0].Collection, points[0].Partition, []string{points[0].ID}); n != 1 || err != nil {
			t.Fatalf("delete: %d %v", n, err)
		}
		code, out, errOut := runGrin(t, e, "memory", "migrate")
		if !strings.Contains(errOut, "resuming after 6 of 14 points") {
			t.Errorf("the resumed run must say so:\n%s", errOut)
		}
		if code == 0 || !strings.Contains(out, "8 of them in this run") ||
			!strings.Contains(out, `declarative "shared": 3 in the data directory, 2 in Weaviate (1 point missing)`) ||
			!strings.Contains(errOut, "the counts differ in 1 of 6 partitions (listed above): run the same command again to copy everything again") {
			t.Fatalf("resumed run: exit %d\n%s\n%s", code, out, errOut)
		}
		// After a mismatch the checkpoint is gone: the next run copies
		// everything, and verifies.
		code, out, errOut = runGrin(t, e, "memory", "migrate")
		if code != 0 || strings.Contains(errOut, "resuming") || !strings.Contains(out, "14 of them in this run") || !strings.Contains(out, "verified") {
			t.Fatalf("rerun: exit %d\n%s\n%s", code, out, errOut)
		}
		// (A fresh store: dst caches the partitions it listed.)
		if n := total(t, open(t, "Migrate2")); n != 14 {
			t.Errorf("%d points in Weaviate, want 14", n)
		}
		if _, err := os.Stat(checkpointPath); !os.IsNotExist(err) {
			t.Errorf("checkpoint left: %v", err)
		}
	})
}

// seedMixedSizes fills an embedded store whose episodic memory holds
// vectors of two sizes, as after a change of embedder: three 3-dimensional
// ones by "old-embedder", two 4-dimensional ones by "new-embedder", and a
// point without a vector; declarative memory holds 4-dimensional ones
// only. It returns the data directory and the points by id.
func seedMixedSizes(t *testing.T) (string, map[string]memory.Point) {
	t.Helper()
	ctx := context.Background()
	dir, db, store := newEmbedded(t)
	defer db.Close()
	points := map[string]memory.Point{}
	add := func(collection, partition, id, embedder string, vector ...float32) {
		p := memory.Point{
			ID: id, Collection: collection, Partition: partition, Content: "memory " + id,
			Metadata: map[string]any{"who": partition}, Vector: vector, Embedder: embedder,
		}
		if err := store.Upsert(ctx, []memory.Point{p}); err != nil {
			t.Fatal(err)
		}
		points[id] = p
	}
	// In the order a migration reads them: declarative first, then
	// episodic by partition.
	add(memory.Declarative, memory.DefaultSpace, "d1", "new-embedder", 1, 0, 0, 0)
	add(memory.Declarative, memory.DefaultSpace, "d2", "new-embedder", 0, 1, 0, 0)
	add(memory.Episodic, "alice", "o1", "old-embedder", 1, 2, 3)
	add(memory.Episodic, "alice", "n1", "new-embedder", 1, 2, 3, 4)
	add(memory.Episodic, "alice", "bare", "")
	add(memory.Episodic, "bob", "o2", "old-embedder", 3, 2, 1)
	add(memory.Episodic, "carol", "o3", "old-embedder", 1, 1, 1)
	add(memory.Episodic, "carol", "n2", "new-embedder", 4, 3, 2, 1)
	return dir, points
}

// A collection holding vectors of two sizes: Weaviate keeps one. Without
// --skip-mismatched nothing is copied and the message says why; with it
// the others are left behind, deterministically across a resumption.
func TestMemoryMigrateMismatchedSizes(t *testing.T) {
	srv := weaviatetest.Shared(t)
	ctx := context.Background()
	open := func(t *testing.T, prefix string) *weaviate.Store {
		t.Helper()
		s, err := weaviate.Open(ctx, weaviate.Config{URL: srv.URL, GRPCPort: srv.GRPCPort, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	count := func(t *testing.T, prefix string) int {
		t.Helper()
		return total(t, open(t, prefix)) // fresh: a store caches the partitions it listed
	}
	for _, tc := range []struct {
		name   string
		prefix string
		// recorded, when set, is a point Weaviate holds before the
		// migration: its size is the one kept.
		recorded *memory.Point
		keep     int
		kept     []string // episodic ids copied
		left     []string // episodic ids left behind
		why      string   // in the refusal: why that size is kept
		refusal  []string // the refusal's lines for the episodic sizes (spaces squeezed)
		behind   string   // the summary's line for what was left behind (spaces squeezed)
		total    int      // points copied
		parts    string   // the summary's count of collections and partitions
		resumed  string   // after an interruption after the first page
	}{
		{
			name: "MostNumerous", prefix: "Mixed1", keep: 3,
			kept: []string{"o1", "bare", "o2", "o3"}, left: []string{"n1", "n2"},
			why: "episodic memory keeps 3 dimensions (the size of most of its vectors here)",
			refusal: []string{
				`3 dimensions embedder "old-embedder" 3 points kept`,
				`4 dimensions embedder "new-embedder" 2 points would be left behind`,
			},
			behind:  `episodic 2 points of 4 dimensions by embedder "new-embedder" (Weaviate keeps 3)`,
			total:   6,
			parts:   "2 collections, 4 partitions",
			resumed: "resuming after 3 of 6 points",
		},
		{
			name: "RecordedInWeaviate", prefix: "Mixed2", keep: 4,
			recorded: &memory.Point{ID: "before", Collection: memory.Episodic, Partition: "dave", Content: "there before",
				Metadata: map[string]any{}, Vector: []float32{0, 0, 0, 1}, Embedder: "new-embedder"},
			kept: []string{"n1", "bare", "n2"}, left: []string{"o1", "o2", "o3"},
			why: `episodic memory keeps 4 dimensions (the size Weaviate records, set by embedder "new-embedder")`,
			refusal: []string{
				`3 dimensions embedder "old-embedder" 3 points would be left behind`,
				`4 dimensions embedder "new-embedder" 2 points kept`,
			},
			behind: `episodic 3 points of 3 dimensions by embedder "old-embedder" (Weaviate keeps 4)`,
			total:  5,
			// bob's only point is left behind: his partition is not copied.
			parts:   "2 collections, 3 partitions",
			resumed: "resuming after 2 of 5 points",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, points := seedMixedSizes(t)
			env := map[string]string{
				"GRIN_DATA_DIR": dir, "GRIN_WEAVIATE_URL": srv.URL, "GRIN_WEAVIATE_GRPC_PORT": strconv.Itoa(srv.GRPCPort),
				"GRIN_WEAVIATE_PREFIX": tc.prefix,
			}
			before := 0
			if tc.recorded != nil {
				if err := open(t, tc.prefix).Upsert(ctx, []memory.Point{*tc.recorded}); err != nil {
					t.Fatal(err)
				}
				before = 1
			}

			// Without the flag: refused before anything is copied.
			code, stdout, stderr := runGrin(t, env, "memory", "migrate", "--quiet")
			if code == 0 {
				t.Fatalf("mixed sizes migrated without --skip-mismatched:\n%s\n%s", stdout, stderr)
			}
			for _, want := range append([]string{
				"Weaviate keeps one vector size per collection", "nothing was copied", tc.why,
				fmt.Sprintf("rerun with --skip-mismatched to copy the rest and leave these %d points behind", len(tc.left)),
				"never recalled anyway",
			}, tc.refusal...) {
				if !strings.Contains(squeeze(stderr), want) {
					t.Errorf("the refusal lacks %q:\n%s", want, stderr)
				}
			}
			if strings.Contains(stderr, "declarative") {
				t.Errorf("declarative memory's vectors are all one size, yet the refusal names it:\n%s", stderr)
			}
			if n := count(t, tc.prefix); n != before {
				t.Fatalf("%d points in Weaviate after a refusal, want %d", n, before)
			}
			if _, err := os.Stat(filepath.Join(dir, checkpointName)); !os.IsNotExist(err) {
				t.Errorf("a refused migration wrote a checkpoint: %v", err)
			}

			// With it, interrupted after the first page (d1, d2, o1)...
			ictx, cancel := context.WithCancel(ctx)
			defer cancel()
			small := func(m *migration) {
				m.pageSize = 3
				m.afterPage = func(int) { cancel() }
			}
			var out, errOut strings.Builder
			err := memoryMigrate(ictx, []string{"--quiet", "--skip-mismatched"}, func(k string) string { return env[k] }, &out, &errOut, small)
			if err == nil || !strings.Contains(err.Error(), "context canceled") {
				t.Fatalf("interrupted run: %v\n%s\n%s", err, out.String(), errOut.String())
			}
			if !strings.Contains(errOut.String(), fmt.Sprintf("leaving behind %d points whose vectors are not the size Weaviate keeps", len(tc.left))) {
				t.Errorf("the run must say it leaves points behind:\n%s", errOut.String())
			}

			// ...then resumed: it leaves the same points behind and verifies.
			code, stdout, stderr = runGrin(t, env, "memory", "migrate", "--quiet", "--skip-mismatched")
			if code != 0 {
				t.Fatalf("exit %d:\n%s\n%s", code, stdout, stderr)
			}
			if !strings.Contains(stderr, tc.resumed) {
				t.Errorf("the resumed run must say %q:\n%s", tc.resumed, stderr)
			}
			for _, want := range []string{
				fmt.Sprintf("copied %d points to Weaviate at %s (prefix %s), ", tc.total, srv.URL, tc.prefix),
				tc.parts,
				fmt.Sprintf("left behind %d points whose vectors are not the size Weaviate keeps (--skip-mismatched): %s verified", len(tc.left), tc.behind),
				"verified: every partition holds as many points in Weaviate as in the data directory, less those left behind",
			} {
				if !strings.Contains(squeeze(stdout), want) {
					t.Errorf("summary lacks %q:\n%s", want, stdout)
				}
			}

			dst := open(t, tc.prefix)
			for _, id := range append([]string{"d1", "d2"}, tc.kept...) {
				p := points[id]
				got, err := dst.Get(ctx, p.Collection, p.Partition, p.ID)
				if err != nil {
					t.Errorf("get %s %q %s: %v", p.Collection, p.Partition, p.ID, err)
					continue
				}
				if len(p.Vector) == 0 && len(got.Vector) == 0 {
					got.Vector = p.Vector // nil or empty: no vector either way
				}
				if !reflect.DeepEqual(got, p) {
					t.Errorf("%s in Weaviate:\n got %+v\nwant %+v", id, got, p)
				}
			}
			for _, id := range tc.left {
				p := points[id]
				if got, err := dst.Get(ctx, p.Collection, p.Partition, p.ID); !errors.Is(err, memory.ErrNotFound) {
					t.Errorf("%s (%d dimensions) was left behind, yet Weaviate has %+v (%v)", id, len(p.Vector), got, err)
				}
			}
			infos, err := dst.Vectors(ctx)
			if err != nil {
				t.Fatal(err)
			}
			recorded := map[string]int{}
			for _, info := range infos {
				recorded[info.Collection] = info.Dimensions
			}
			if want := map[string]int{memory.Episodic: tc.keep, memory.Declarative: 4}; !reflect.DeepEqual(recorded, want) {
				t.Errorf("Weaviate records the sizes %v, want %v", recorded, want)
			}
			if n := count(t, tc.prefix); n != tc.total+before {
				t.Errorf("%d points in Weaviate, want %d", n, tc.total+before)
			}

			// Once more, from the start: the same points, verified.
			code, stdout, stderr = runGrin(t, env, "memory", "migrate", "--quiet", "--skip-mismatched")
			if code != 0 || strings.Contains(stderr, "resuming") || !strings.Contains(stdout, fmt.Sprintf("%d of them in this run", tc.total)) ||
				!strings.Contains(stdout, "verified") {
				t.Errorf("rerun: exit %d\n%s\n%s", code, stdout, stderr)
			}
			// Without the flag it still refuses: Weaviate now records the
			// kept size.
			code, _, stderr = runGrin(t, env, "memory", "migrate", "--quiet")
			if code == 0 || !strings.Contains(stderr, fmt.Sprintf("episodic memory keeps %d dimensions (the size Weaviate records", tc.keep)) {
				t.Errorf("after the copy, without the flag: exit %d\n%s", code, stderr)
			}
		})
	}
}

// squeeze turns every run of white space into one space.
func squeeze(s string) string { return strings.Join(strings.Fields(s), " ") }

// total counts every point a Weaviate store holds, in every collection.
func total(t *testing.T, s *weaviate.Store) int {
	t.Helper()
	ctx := context.Background()
	n := 0
	for _, c := range memory.Collections() {
		parts, err := s.Partitions(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		k, err := s.Count(ctx, c, parts)
		if err != nil {
			t.Fatal(err)
		}
		n += k
	}
	return n
}

// newEmbedded opens an embedded store in a fresh data directory; the
// caller closes db.
func newEmbedded(t *testing.T) (string, *sql.DB, *embedded.Store) {
	t.Helper()
	dir := t.TempDir()
	db, err := database.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	store, err := embedded.New(context.Background(), database.NewCommitter(db), db, 0)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	return dir, db, store
}
