package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/grin-ai/grin/platform/database"
	"github.com/grin-ai/grin/platform/database/transfer"
)

const dbMigrateUsage = `Usage: grin db migrate [--from sqlite] [--to postgres|postgres://…] [flags]

Copies everything grin keeps in the data directory's SQLite file into
PostgreSQL: users, grants, settings, plugins and their key-value stores,
the policy's versions, conversation history, the audit log. Not memories:
they are vectors, which grin memory migrate moves to Weaviate, the memory
backend of PostgreSQL deployments.

The destination is GRIN_DATABASE_URL, or --to postgres://user:password@host:5432/database
(a password on the command line shows in the process list: prefer the
variable). Its schema is brought to this grin's first. The SQLite file is
only read, and must be at this grin's schema: start this grin once on the
data directory (grin serve) if it says otherwise. Stop grin before
copying: what changes during the copy may be missed, and verification
then fails.

Rows are copied in primary-key order, a batch per transaction; each batch
records its position in the destination's db_migrate_progress table, so
running the same command again after an interruption continues where it
stopped. A destination holding rows this migration did not copy is
refused, and one holding a migration from another data directory too,
unless --resume.

At the end every table is read whole on both sides: its row count and a
SHA-256 of its content in key order must be equal, or the command fails
naming the tables that differ.

`

// dbMigrate is grin db migrate.
func dbMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return dbMigrateWith(ctx, args, getenv, stdout, stderr, nil)
}

// dbMigrateWith is dbMigrate with a hook called after each batch is
// committed (tests interrupt a migration with it).
func dbMigrateWith(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, afterBatch func(table string, copied int64)) error {
	fs := flag.NewFlagSet("grin db migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := dataDirFlag(fs, getenv)
	from := fs.String("from", "sqlite", `where grin's data is: "sqlite" (the data directory's database)`)
	to := fs.String("to", "postgres", `where it goes: "postgres" (GRIN_DATABASE_URL) or a postgres:// URL`)
	resume := fs.Bool("resume", false, "continue a migration the destination records from another data directory (the same data, moved)")
	batch := fs.Int("batch", transfer.DefaultBatch, fmt.Sprintf("rows per transaction, from 1 to %d", transfer.MaxBatch))
	quiet := fs.Bool("quiet", false, "no progress bar or progress lines")
	fs.Usage = func() {
		fmt.Fprint(stderr, dbMigrateUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("grin db migrate takes flags only, got %q", fs.Args())
	}
	if *from != "sqlite" {
		return fmt.Errorf("grin db migrate copies --from sqlite only, not --from %q", *from)
	}
	url := *to
	switch {
	case database.IsPostgresURL(url):
	case url == "postgres" || url == "postgresql":
		if url = getenv("GRIN_DATABASE_URL"); url == "" {
			return errors.New("grin db migrate --to postgres needs GRIN_DATABASE_URL (or --to postgres://user:password@host:5432/database)")
		}
		if !database.IsPostgresURL(url) {
			return errors.New("GRIN_DATABASE_URL: must be a PostgreSQL URL, postgres://user:password@host:5432/database")
		}
	default:
		return fmt.Errorf("grin db migrate copies --to postgres (GRIN_DATABASE_URL) or a postgres:// URL, not %q", database.RedactURL(url))
	}
	if *batch < 1 || *batch > transfer.MaxBatch {
		return fmt.Errorf("--batch: must be from 1 to %d rows, got %d", transfer.MaxBatch, *batch)
	}
	path, err := filepath.Abs(filepath.Join(*dataDir, database.FileName))
	if err != nil {
		return fmt.Errorf("migrate the database: %w", err)
	}
	// Read-only: the source is never migrated nor created, so a mistyped
	// data directory does not "migrate" an empty database.
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("migrate the database: no grin database in %s (GRIN_DATA_DIR or --data-dir): %w", *dataDir, err)
	}
	src, err := database.OpenReads(ctx, *dataDir)
	if err != nil {
		return fmt.Errorf("migrate the database: %w", err)
	}
	defer src.Close()
	dst, err := database.OpenPostgres(ctx, url)
	if err != nil {
		return fmt.Errorf("migrate the database: %w", err)
	}
	defer dst.Close()
	m, err := transfer.Prepare(ctx, src, dst, transfer.Options{Source: path, Resume: *resume, Batch: *batch})
	if err != nil {
		return fmt.Errorf("migrate the database: %w", err)
	}
	defer m.Close()
	r := dbReport{m: m, where: database.RedactURL(url), stdout: stdout, stderr: stderr, quiet: *quiet}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		r.terminal = true
	}
	return r.run(ctx, afterBatch)
}

// dbReport runs a prepared migration and tells the operator about it.
type dbReport struct {
	m              *transfer.Migration
	where          string // the destination, without its password
	stdout, stderr io.Writer
	quiet          bool
	terminal       bool // progress bars; plain lines otherwise
}

func (r dbReport) run(ctx context.Context, afterBatch func(string, int64)) error {
	var total, before int64
	for _, t := range r.m.Tables {
		total += t.Rows
		before += t.Copied
	}
	if r.m.PreviousSource != "" {
		fmt.Fprintf(r.stderr, "resuming the migration from %s (--resume)\n", r.m.PreviousSource)
	}
	switch {
	case r.m.Resumed && before == total && allDone(r.m.Tables):
		fmt.Fprintln(r.stderr, "every table was copied by an earlier run: verifying again")
	case r.m.Resumed:
		fmt.Fprintf(r.stderr, "resuming: %d of %d rows were copied by an earlier run\n", before, total)
	}
	for _, t := range r.m.Tables {
		if err := r.copy(ctx, t, afterBatch); err != nil {
			var copied int64
			for _, t := range r.m.Tables {
				copied += t.Copied
			}
			return fmt.Errorf("migrate the database: %w\n%d of %d rows are in PostgreSQL; run the same command again to resume", err, copied, total)
		}
	}
	checks, err := r.m.Verify(ctx)
	if err != nil {
		return fmt.Errorf("migrate the database: %w (the copy is complete; run the same command again to verify)", err)
	}
	fmt.Fprintf(r.stdout, "copied %d %s of %d %s into PostgreSQL at %s, %d of them in this run:\n",
		total, plural(int(total), "row"), len(r.m.Tables), plural(len(r.m.Tables), "table"), r.where, total-before)
	for _, t := range r.m.Tables {
		fmt.Fprintf(r.stdout, "  %-24s %9d %s\n", t.Name, t.Rows, plural(int(t.Rows), "row"))
	}
	if len(r.m.Skipped) > 0 {
		fmt.Fprintln(r.stdout, "not copied:")
		for _, s := range r.m.Skipped {
			fmt.Fprintf(r.stdout, "  %-24s %9d %-4s  %s\n", s.Name, s.Rows, plural(int(s.Rows), "row"), s.Why)
		}
	}
	var differ []string
	for _, c := range checks {
		if c.Same() {
			continue
		}
		differ = append(differ, c.Table)
		if c.SourceRows != c.DestRows {
			fmt.Fprintf(r.stdout, "differs: %s has %d %s in the data directory and %d in PostgreSQL\n",
				c.Table, c.SourceRows, plural(int(c.SourceRows), "row"), c.DestRows)
		} else {
			fmt.Fprintf(r.stdout, "differs: %s has %d %s on both sides, but their content differs (SHA-256 %.12s… here, %.12s… in PostgreSQL)\n",
				c.Table, c.SourceRows, plural(int(c.SourceRows), "row"), c.SourceDigest, c.DestDigest)
		}
	}
	if len(differ) > 0 {
		return fmt.Errorf("migrate the database: %d of %d tables differ in PostgreSQL: %s. The data directory changed during the copy (was grin running?) or something else wrote to PostgreSQL: stop grin and migrate into an empty database",
			len(differ), len(checks), strings.Join(differ, ", "))
	}
	fmt.Fprintln(r.stdout, "verified: every table holds the same rows in PostgreSQL as in the data directory (row counts and SHA-256 of the content, in key order)")
	return nil
}

func allDone(tables []*transfer.Table) bool {
	for _, t := range tables {
		if !t.Done {
			return false
		}
	}
	return true
}

// copy copies one table, drawing a bar on a terminal, or else a line
// when it starts, at every tenth of it, and when it ends.
func (r dbReport) copy(ctx context.Context, t *transfer.Table, afterBatch func(string, int64)) error {
	if t.Done {
		return nil
	}
	var bar *progressbar.ProgressBar
	tenth := int64(-1)
	line := func(copied int64) {
		if r.quiet || r.terminal {
			return
		}
		step := int64(10)
		if t.Rows > 0 {
			step = min(10, copied*10/t.Rows)
		}
		if step > tenth {
			tenth = step
			fmt.Fprintf(r.stderr, "%s: %d of %d %s\n", t.Name, copied, t.Rows, plural(int(t.Rows), "row"))
		}
	}
	if r.terminal && !r.quiet {
		// A resumed bar starts at the rows copied before; its time left
		// would count those as copied in no time.
		bar = newProgressBar(r.stderr, t.Name, t.Rows, progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(t.Copied == 0))
		bar.Set64(t.Copied)
	}
	if t.Copied > 0 || t.Rows == 0 {
		line(t.Copied)
	}
	err := r.m.Copy(ctx, t, func(copied int64) {
		if bar != nil {
			bar.Set64(copied)
		}
		line(copied)
		if afterBatch != nil {
			afterBatch(t.Name, copied)
		}
	})
	if bar != nil {
		bar.Finish()
	}
	return err
}
