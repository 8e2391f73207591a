package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/schollz/progressbar/v3"

	"grin/platform/config"
	"grin/platform/database"
	"grin/platform/memory"
	"grin/platform/memory/embedded"
	"grin/platform/memory/weaviate"
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

At the end every partition of the data directory must hold exactly as many
points in Weaviate: fewer means points are missing, more that Weaviate
already held other points under that prefix. Either fails the command.

`

// migrateOption adjusts a migration; for tests.
type migrateOption func(*migration)

// memoryMigrate is grin memory migrate.
func memoryMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, opts ...migrateOption) error {
	var from, to string
	var quiet bool
	cfg, err := config.LoadFlags("grin memory migrate", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&from, "from", "embedded", `where the memories are: "embedded" (the data directory)`)
		fs.StringVar(&to, "to", "weaviate", `where they go: "weaviate"`)
		fs.BoolVar(&quiet, "quiet", false, "no progress bar")
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
	dst, err := weaviate.Open(ctx, weaviate.Config{
		URL: w.URL, GRPCPort: w.GRPCPort, APIKey: w.APIKey.Reveal(), Prefix: w.Prefix, Replication: w.Replication,
	})
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
		pageSize: migratePageSize,
	}
	for _, o := range opts {
		o(m)
	}
	return m.run(ctx)
}

type migration struct {
	src  *sql.DB
	dst  memory.Store
	path string
	// to identifies the destination; its After and Done are unset.
	to             checkpoint
	stdout, stderr io.Writer
	quiet          bool
	pageSize       int
	// afterPage, when set, is called after each page is copied and
	// checkpointed (tests interrupt a migration with it).
	afterPage func(done int)
}

func (m *migration) run(ctx context.Context) error {
	census, err := embedded.Census(ctx, m.src)
	if err != nil {
		return fmt.Errorf("migrate memory: %w", err)
	}
	total := 0
	for _, c := range census {
		total += c.Points
	}
	after := m.resumeFrom()
	remaining, err := embedded.CountAfter(ctx, m.src, after)
	if err != nil {
		return fmt.Errorf("migrate memory: %w", err)
	}
	done := total - remaining
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
		if err := m.dst.Upsert(ctx, page); err != nil {
			return m.interrupted(fmt.Errorf("migrate %s: %w", span(page), err), done, total)
		}
		after, done, copied = next, done+len(page), copied+len(page)
		cp := m.to
		cp.After, cp.Done = after, done
		if err := writeCheckpoint(m.path, cp); err != nil {
			return m.interrupted(fmt.Errorf("migrate memory: %w", err), done, total)
		}
		bar.Add(len(page))
		if m.afterPage != nil {
			m.afterPage(done)
		}
	}
	bar.Finish()
	if err := m.verify(ctx, census, total, copied); err != nil {
		return err
	}
	fmt.Fprintln(m.stdout, "verified: every partition holds as many points in Weaviate as in the data directory")
	return nil
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

// verify compares every partition's count in the source and in Weaviate.
// The rule: they must be equal. Fewer in Weaviate means points are
// missing; more means Weaviate already held other points there (an
// earlier use of the same prefix). Partitions only Weaviate holds are not
// the migration's business. Once the counts were compared the checkpoint
// goes: after a mismatch, running again copies everything again.
func (m *migration) verify(ctx context.Context, census []embedded.PartitionCount, total, copied int) error {
	type mismatch struct {
		embedded.PartitionCount
		dst int
	}
	var bad []mismatch
	parts := map[string]int{}
	points := map[string]int{}
	for _, c := range census {
		n, err := m.dst.Count(ctx, c.Collection, []string{c.Partition})
		if err != nil {
			return fmt.Errorf("verify %s memory of %q: %w (the copy is complete; run the same command again to verify)", c.Collection, c.Partition, err)
		}
		if n != c.Points {
			bad = append(bad, mismatch{c, n})
		}
		parts[c.Collection]++
		points[c.Collection] += c.Points
	}
	if err := os.Remove(m.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("migrate memory: remove the checkpoint: %w", err)
	}
	fmt.Fprintf(m.stdout, "copied %d points to Weaviate at %s (prefix %s), %d of them in this run: %d collections, %d partitions\n",
		total, m.to.URL, m.to.Prefix, copied, len(parts), len(census))
	for _, c := range memory.Collections() {
		if parts[c] > 0 {
			fmt.Fprintf(m.stdout, "  %-12s %6d %-10s %9d %s\n", c, parts[c], plural(parts[c], "partition"), points[c], plural(points[c], "point"))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	more := false
	fmt.Fprintf(m.stdout, "counts differ in %d of %d partitions:\n", len(bad), len(census))
	for _, b := range bad {
		why := fmt.Sprintf("%d %s missing", b.Points-b.dst, plural(b.Points-b.dst, "point"))
		if b.dst > b.Points {
			why, more = fmt.Sprintf("Weaviate already held %d other %s", b.dst-b.Points, plural(b.dst-b.Points, "point")), true
		}
		fmt.Fprintf(m.stdout, "  %s %q: %d in the data directory, %d in Weaviate (%s)\n", b.Collection, b.Partition, b.Points, b.dst, why)
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
