package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/schollz/progressbar/v3"

	"github.com/grin-ai/grin/platform/app"
	"github.com/grin-ai/grin/platform/config"
	"github.com/grin-ai/grin/platform/database"
	"github.com/grin-ai/grin/platform/memory"
	"github.com/grin-ai/grin/platform/memory/embedded"
	"github.com/grin-ai/grin/platform/memory/weaviate"
)

// migratePageSize is how many points one read and one Upsert carry.
const migratePageSize = 500

// checkpointName is the migration's checkpoint in the data directory.
const checkpointName = "memory-migrate.json"

// checkpoint records how far a migration got: every point up to After
// (in embedded.Scan's order) is in the destination.
type checkpoint struct {
	To     string          `json:"to"`
	URL    string          `json:"url"`
	Prefix string          `json:"prefix"`
	After  embedded.Cursor `json:"after"`
	Done   int             `json:"done"`
}

const migrateUsage = `Usage: grin memory migrate [--from embedded] [--to weaviate] [flags]

Copies every memory point (episodic, declarative and procedural, every
partition) from the data directory's SQLite file into Weaviate, as
configured by GRIN_WEAVIATE_* or the flags below. Stop grin first: points
changed while the copy runs may be missed. Copying is idempotent and
resumable: a checkpoint in the data directory (` + checkpointName + `) lets an
interrupted run continue where it stopped.

Weaviate keeps one vector size per collection: the size it already records
for the collection, or else the size of most of the collection's vectors in
the data directory. Points whose vectors have another size (made by
another embedder; recall only ever compares the vectors of the one in
force) stop the command before anything is copied, listing them;
--skip-mismatched leaves them behind instead, and the summary counts them.

At the end every partition of the data directory must hold exactly as many
points in Weaviate, less those left behind: fewer means points are missing,
more that Weaviate already held other points under that prefix. Either
fails the command.

`

// migrateOption adjusts a migration; for tests.
type migrateOption func(*migration)

// memoryMigrate is grin memory migrate.
func memoryMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, opts ...migrateOption) error {
	var from, to string
	var quiet, skipMismatched bool
	cfg, err := config.LoadFlags("grin memory migrate", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&from, "from", "embedded", `where the memories are: "embedded" (the data directory)`)
		fs.StringVar(&to, "to", "weaviate", `where they go: "weaviate"`)
		fs.BoolVar(&quiet, "quiet", false, "no progress bar")
		fs.BoolVar(&skipMismatched, "skip-mismatched", false, "leave behind the points whose vectors are not the size Weaviate keeps for their collection, instead of stopping")
		fs.Usage = func() {
			fmt.Fprint(fs.Output(), migrateUsage)
			fs.PrintDefaults()
		}
	})
	if err != nil {
		return err
	}
	if from != "embedded" || to != "weaviate" {
		return fmt.Errorf("grin memory migrate copies --from embedded --to weaviate only, not --from %q --to %q", from, to)
	}
	w := cfg.Memory.Weaviate
	if w.URL == "" {
		return errors.New("grin memory migrate --to weaviate needs GRIN_WEAVIATE_URL (or --weaviate-url): Weaviate's HTTP address, such as http://127.0.0.1:8080")
	}
	// database.Open would create an empty database: a mistyped data
	// directory must not "migrate" nothing successfully.
	if _, err := os.Stat(filepath.Join(cfg.DataDir, database.FileName)); err != nil {
		return fmt.Errorf("migrate memory: no grin database in %s (GRIN_DATA_DIR or --data-dir): %w", cfg.DataDir, err)
	}
	db, err := database.Open(ctx, cfg.DataDir)
	if err != nil {
		return fmt.Errorf("migrate memory: %w", err)
	}
	defer db.Close()
	dst, err := weaviate.Open(ctx, app.WeaviateConfig(w, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		return fmt.Errorf("migrate memory: %w", err)
	}
	defer dst.Close()
	m := &migration{
		src:      db,
		dst:      dst,
		path:     filepath.Join(cfg.DataDir, checkpointName),
		to:       checkpoint{To: "weaviate", URL: strings.TrimRight(w.URL, "/"), Prefix: w.Prefix},
		stdout:   stdout,
		stderr:   stderr,
		quiet:    quiet,
		skip:     skipMismatched,
		pageSize: migratePageSize,
	}
	for _, o := range opts {
		o(m)
	}
	return m.run(ctx)
}

// destination is where a migration copies to: a memory.Store that
// records one vector size per collection (weaviate.Store).
type destination interface {
	memory.Store
	Vectors(ctx context.Context) ([]weaviate.VectorInfo, error)
}

type migration struct {
	src  *sql.DB
	dst  destination
	path string
	// to identifies the destination; its After and Done are unset.
	to             checkpoint
	stdout, stderr io.Writer
	quiet          bool
	// skip leaves behind the points whose vectors are not the size the
	// destination keeps, instead of refusing to start.
	skip     bool
	pageSize int
	// afterPage, when set, is called after each page is copied and
	// checkpointed (tests interrupt a migration with it).
	afterPage func(done int)
}

func (m *migration) run(ctx context.Context) error {
	census, err := embedded.Census(ctx, m.src)
	if err != nil {
		return fmt.Errorf("migrate memory: %w", err)
	}
	sizes, err := m.plan(ctx)
	if err != nil {
		return fmt.Errorf("migrate memory: %w", err)
	}
	if len(sizes) > 0 && !m.skip {
		return refusal(sizes)
	}
	skipped, err := skippedPerPartition(ctx, m.src, sizes)
	if err != nil {
		return fmt.Errorf("migrate memory: %w", err)
	}
	total := 0
	for _, c := range census {
		total += c.Points - skipped[partKey{c.Collection, c.Partition}]
	}
	if left := leftBehind(sizes); left > 0 {
		fmt.Fprintf(m.stderr, "leaving behind %d %s whose vectors are not the size Weaviate keeps (listed at the end)\n", left, plural(left, "point"))
	}
	after := m.resumeFrom()
	remaining, err := embedded.CountAfter(ctx, m.src, after)
	if err != nil {
		return fmt.Errorf("migrate memory: %w", err)
	}
	skippedAfter, err := countSkippedAfter(ctx, m.src, sizes, after)
	if err != nil {
		return fmt.Errorf("migrate memory: %w", err)
	}
	done := total - (remaining - skippedAfter)
	if after != (embedded.Cursor{}) {
		fmt.Fprintf(m.stderr, "resuming after %d of %d points (checkpoint %s)\n", done, total, m.path)
	}
	// A resumed bar starts at the points copied before; its time left
	// would count those as copied in no time.
	bar := newProgressBar(m.stderr, "copying memories", int64(total), progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(done == 0), progressbar.OptionSetVisibility(!m.quiet))
	bar.Set(done)
	copied := 0
	for {
		page, next, err := embedded.Scan(ctx, m.src, after, m.pageSize)
		if err != nil {
			return m.interrupted(fmt.Errorf("migrate memory: %w", err), done, total)
		}
		if len(page) == 0 {
			break
		}
		send := keep(page, sizes)
		if len(send) > 0 {
			if err := m.dst.Upsert(ctx, send); err != nil {
				return m.interrupted(fmt.Errorf("migrate %s: %w", span(send), err), done, total)
			}
		}
		after, done, copied = next, done+len(send), copied+len(send)
		cp := m.to
		cp.After, cp.Done = after, done
		if err := writeCheckpoint(m.path, cp); err != nil {
			return m.interrupted(fmt.Errorf("migrate memory: %w", err), done, total)
		}
		bar.Add(len(send))
		if m.afterPage != nil {
			m.afterPage(done)
		}
	}
	bar.Finish()
	if err := m.verify(ctx, census, skipped, sizes, total, copied); err != nil {
		return err
	}
	if leftBehind(sizes) > 0 {
		fmt.Fprintln(m.stdout, "verified: every partition holds as many points in Weaviate as in the data directory, less those left behind")
	} else {
		fmt.Fprintln(m.stdout, "verified: every partition holds as many points in Weaviate as in the data directory")
	}
	return nil
}

// vectorSize is how many points of a collection in the data directory one
// embedder made with vectors of one size.
type vectorSize struct {
	Embedder   string
	Dimensions int
	Points     int
	newest     int64 // the highest seq among them
}

// collectionSizes is a collection whose vectors in the data directory are
// not all the size Weaviate keeps for it.
type collectionSizes struct {
	Collection string
	// Keep is the size Weaviate keeps: the one it records (Recorded, set
	// by RecordedBy), or else the size of most of the collection's vectors
	// here.
	Keep       int
	Recorded   bool
	RecordedBy string
	Sizes      []vectorSize // every size here, smallest first
}

// leftBehind counts the points whose vectors are not the kept size.
func (c collectionSizes) leftBehind() int {
	n := 0
	for _, s := range c.Sizes {
		if s.Dimensions != c.Keep {
			n += s.Points
		}
	}
	return n
}

// leftBehind counts the points of every collection left behind.
func leftBehind(sizes []collectionSizes) int {
	n := 0
	for _, c := range sizes {
		n += c.leftBehind()
	}
	return n
}

// plan finds the collections holding vectors of a size other than the
// one Weaviate keeps for them. Points without a vector fit any collection.
// The decision depends only on what Weaviate records and on the data
// directory, so a resumed run leaves behind the same points: once a point
// is copied, Weaviate records the size kept.
func (m *migration) plan(ctx context.Context) ([]collectionSizes, error) {
	rows, err := m.src.QueryContext(ctx, `SELECT collection, embedder, length(vector)/4 AS dimensions, count(*), max(seq) FROM memory_points
		WHERE length(vector) > 0 GROUP BY collection, embedder, dimensions ORDER BY collection, dimensions, embedder`)
	if err != nil {
		return nil, fmt.Errorf("count vector sizes: %w", err)
	}
	defer rows.Close()
	found := map[string][]vectorSize{}
	for rows.Next() {
		var c string
		var s vectorSize
		if err := rows.Scan(&c, &s.Embedder, &s.Dimensions, &s.Points, &s.newest); err != nil {
			return nil, fmt.Errorf("count vector sizes: %w", err)
		}
		found[c] = append(found[c], s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count vector sizes: %w", err)
	}
	infos, err := m.dst.Vectors(ctx)
	if err != nil {
		return nil, err
	}
	recorded := map[string]weaviate.VectorInfo{}
	for _, info := range infos {
		recorded[info.Collection] = info
	}
	var out []collectionSizes
	for _, c := range memory.Collections() {
		sizes := found[c]
		if len(sizes) == 0 {
			continue
		}
		cs := collectionSizes{Collection: c, Sizes: sizes}
		if info, ok := recorded[c]; ok {
			cs.Keep, cs.Recorded, cs.RecordedBy = info.Dimensions, true, info.Embedder
		} else {
			// The most numerous size; between sizes as numerous, the one
			// stored last.
			points, newest := map[int]int{}, map[int]int64{}
			for _, s := range sizes {
				points[s.Dimensions] += s.Points
				newest[s.Dimensions] = max(newest[s.Dimensions], s.newest)
			}
			for d, n := range points {
				if n > points[cs.Keep] || n == points[cs.Keep] && newest[d] > newest[cs.Keep] {
					cs.Keep = d
				}
			}
		}
		if cs.leftBehind() > 0 {
			out = append(out, cs)
		}
	}
	return out, nil
}

// refusal explains why the migration does not start.
func refusal(sizes []collectionSizes) error {
	var b strings.Builder
	b.WriteString("migrate memory: Weaviate keeps one vector size per collection, and the data directory holds points whose vectors are not the size Weaviate would keep; nothing was copied:")
	for _, c := range sizes {
		why := "the size of most of its vectors here"
		if c.Recorded {
			why = fmt.Sprintf("the size Weaviate records, set by embedder %q", c.RecordedBy)
		}
		fmt.Fprintf(&b, "\n  %s memory keeps %d dimensions (%s):", c.Collection, c.Keep, why)
		for _, s := range c.Sizes {
			fate := "kept"
			if s.Dimensions != c.Keep {
				fate = "would be left behind"
			}
			fmt.Fprintf(&b, "\n    %5d dimensions  embedder %-24q %8d %-6s  %s", s.Dimensions, s.Embedder, s.Points, plural(s.Points, "point"), fate)
		}
	}
	left := leftBehind(sizes)
	fmt.Fprintf(&b, "\nrerun with --skip-mismatched to copy the rest and leave these %d %s behind: recall only ever compares the vectors of the embedder in force, so vectors of another size are never recalled anyway",
		left, plural(left, "point"))
	return errors.New(b.String())
}

type partKey struct{ collection, partition string }

// skippedPerPartition counts, per partition, the points left behind.
func skippedPerPartition(ctx context.Context, db *sql.DB, sizes []collectionSizes) (map[partKey]int, error) {
	out := map[partKey]int{}
	for _, c := range sizes {
		rows, err := db.QueryContext(ctx, `SELECT partition, count(*) FROM memory_points
			WHERE collection = ? AND length(vector) NOT IN (0, ?) GROUP BY partition`, c.Collection, 4*c.Keep)
		if err != nil {
			return nil, fmt.Errorf("count the points left behind: %w", err)
		}
		for rows.Next() {
			var part string
			var n int
			if err := rows.Scan(&part, &n); err != nil {
				rows.Close()
				return nil, fmt.Errorf("count the points left behind: %w", err)
			}
			out[partKey{c.Collection, part}] = n
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("count the points left behind: %w", err)
		}
	}
	return out, nil
}

// countSkippedAfter counts the points left behind that Scan reads after
// the cursor.
func countSkippedAfter(ctx context.Context, db *sql.DB, sizes []collectionSizes, after embedded.Cursor) (int, error) {
	total := 0
	for _, c := range sizes {
		var n int
		err := db.QueryRowContext(ctx, `SELECT count(*) FROM memory_points WHERE (collection, partition, seq, id) > (?, ?, ?, ?)
			AND collection = ? AND length(vector) NOT IN (0, ?)`,
			after.Collection, after.Partition, after.Seq, after.ID, c.Collection, 4*c.Keep).Scan(&n)
		if err != nil {
			return 0, fmt.Errorf("count the points left behind: %w", err)
		}
		total += n
	}
	return total, nil
}

// keep returns the points of a page that are sent: all but those left
// behind.
func keep(page []memory.Point, sizes []collectionSizes) []memory.Point {
	if len(sizes) == 0 {
		return page
	}
	return slices.DeleteFunc(slices.Clone(page), func(p memory.Point) bool {
		i := slices.IndexFunc(sizes, func(c collectionSizes) bool { return c.Collection == p.Collection })
		return i >= 0 && len(p.Vector) > 0 && len(p.Vector) != sizes[i].Keep
	})
}

// resumeFrom returns where the checkpoint left off for this destination,
// or the start, saying why a checkpoint found is not used.
func (m *migration) resumeFrom() embedded.Cursor {
	raw, err := os.ReadFile(m.path)
	if errors.Is(err, os.ErrNotExist) {
		return embedded.Cursor{}
	}
	var cp checkpoint
	if err == nil {
		err = json.Unmarshal(raw, &cp)
	}
	if err != nil {
		fmt.Fprintf(m.stderr, "ignoring the checkpoint %s (%v): starting from the first point\n", m.path, err)
		return embedded.Cursor{}
	}
	if cp.To != m.to.To || strings.TrimRight(cp.URL, "/") != m.to.URL || cp.Prefix != m.to.Prefix {
		fmt.Fprintf(m.stderr, "ignoring the checkpoint %s: it records a migration to %s at %s (prefix %s), not to %s at %s (prefix %s); starting from the first point\n",
			m.path, cp.To, cp.URL, cp.Prefix, m.to.To, m.to.URL, m.to.Prefix)
		return embedded.Cursor{}
	}
	return cp.After
}

func (m *migration) interrupted(err error, done, total int) error {
	return fmt.Errorf("%w\n%d of %d points are in Weaviate; run the same command again to resume", err, done, total)
}

// verify compares every partition's count in the source, less the points
// left behind, and in Weaviate. The rule: they must be equal. Fewer in
// Weaviate means points are missing; more means Weaviate already held
// other points there (an earlier use of the same prefix). Partitions only
// Weaviate holds are not the migration's business. Once the counts were
// compared the checkpoint goes: after a mismatch, running again copies
// everything again.
func (m *migration) verify(ctx context.Context, census []embedded.PartitionCount, skipped map[partKey]int, sizes []collectionSizes, total, copied int) error {
	type mismatch struct {
		embedded.PartitionCount
		skipped, dst int
	}
	var bad []mismatch
	parts := map[string]int{}
	points := map[string]int{}
	nparts := 0
	for _, c := range census {
		skip := skipped[partKey{c.Collection, c.Partition}]
		want := c.Points - skip
		n, err := m.dst.Count(ctx, c.Collection, []string{c.Partition})
		if err != nil {
			return fmt.Errorf("verify %s memory of %q: %w (the copy is complete; run the same command again to verify)", c.Collection, c.Partition, err)
		}
		if n != want {
			bad = append(bad, mismatch{c, skip, n})
		}
		if want > 0 {
			parts[c.Collection]++
			points[c.Collection] += want
			nparts++
		}
	}
	if err := os.Remove(m.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("migrate memory: remove the checkpoint: %w", err)
	}
	fmt.Fprintf(m.stdout, "copied %d points to Weaviate at %s (prefix %s), %d of them in this run: %d collections, %d partitions\n",
		total, m.to.URL, m.to.Prefix, copied, len(parts), nparts)
	for _, c := range memory.Collections() {
		if parts[c] > 0 {
			fmt.Fprintf(m.stdout, "  %-12s %6d %-10s %9d %s\n", c, parts[c], plural(parts[c], "partition"), points[c], plural(points[c], "point"))
		}
	}
	if left := leftBehind(sizes); left > 0 {
		fmt.Fprintf(m.stdout, "left behind %d %s whose vectors are not the size Weaviate keeps (--skip-mismatched):\n", left, plural(left, "point"))
		for _, c := range sizes {
			for _, s := range c.Sizes {
				if s.Dimensions != c.Keep {
					fmt.Fprintf(m.stdout, "  %-12s %6d %-6s of %d dimensions by embedder %q (Weaviate keeps %d)\n",
						c.Collection, s.Points, plural(s.Points, "point"), s.Dimensions, s.Embedder, c.Keep)
				}
			}
		}
	}
	if len(bad) == 0 {
		return nil
	}
	more := false
	fmt.Fprintf(m.stdout, "counts differ in %d of %d partitions:\n", len(bad), len(census))
	for _, b := range bad {
		want := b.Points - b.skipped
		why := fmt.Sprintf("%d %s missing", want-b.dst, plural(want-b.dst, "point"))
		if b.dst > want {
			why, more = fmt.Sprintf("Weaviate already held %d other %s", b.dst-want, plural(b.dst-want, "point")), true
		}
		here := fmt.Sprintf("%d in the data directory", b.Points)
		if b.skipped > 0 {
			here += fmt.Sprintf(" (%d left behind)", b.skipped)
		}
		fmt.Fprintf(m.stdout, "  %s %q: %s, %d in Weaviate (%s)\n", b.Collection, b.Partition, here, b.dst, why)
	}
	advice := "run the same command again to copy everything again"
	if more {
		advice = "Weaviate held points of its own under prefix " + m.to.Prefix + ": migrate into a fresh GRIN_WEAVIATE_PREFIX, or delete them first; where points are missing, " + advice
	}
	return fmt.Errorf("migrate memory: the counts differ in %d of %d partitions (listed above): %s", len(bad), len(census), advice)
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// span names the partitions a page covers, for errors.
func span(page []memory.Point) string {
	first, last := page[0], page[len(page)-1]
	if first.Collection == last.Collection && first.Partition == last.Partition {
		return fmt.Sprintf("%s memory of %q", first.Collection, first.Partition)
	}
	return fmt.Sprintf("memories from %s %q to %s %q", first.Collection, first.Partition, last.Collection, last.Partition)
}

// writeCheckpoint replaces the checkpoint atomically: a crash leaves the
// old one or the new one, never half of one.
func writeCheckpoint(path string, cp checkpoint) error {
	raw, err := json.MarshalIndent(cp, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write the checkpoint: %w", err)
	}
	_, err = f.Write(append(raw, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write the checkpoint: %w", err)
	}
	return nil
}
