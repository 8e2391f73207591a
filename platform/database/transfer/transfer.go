// Package transfer copies grin's data from the embedded SQLite file to a
// PostgreSQL database, table by table, resumably, and verifies the copy.
//
// Tables are discovered from the source's schema and each must be named
// in Tables, copied or deliberately left behind (memories: vectors go to
// Weaviate, by grin memory migrate). Rows are copied in primary-key order,
// a batch per transaction, and each batch records in the destination's
// db_migrate_progress table, in the same transaction, the key of the last
// row it wrote: an interrupted copy resumes after it, with no row copied
// twice or missed. Rows are only ever inserted, never updated or deleted,
// so the audit log's triggers, which refuse both, stay on.
//
// transfer never migrates the source: it must be at this grin's schema,
// which a start of grin serve brings it to (with the fix-ups grin does at
// start). The destination is migrated by database.OpenPostgres.
package transfer

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/grin-ai/grin/platform/database"
)

// DefaultBatch is how many rows one transaction copies by default.
const DefaultBatch = 500

// MaxBatch bounds Options.Batch: a batch is held in memory.
const MaxBatch = 10000

// progressTable records, on the destination, how far each table's copy
// got and from which source.
const progressTable = "db_migrate_progress"

// lockKey is the advisory lock a migration holds on the destination, so
// two runs never copy into one database at once: "grmg" in ASCII.
const lockKey = 0x67726d67

// maxParams is PostgreSQL's limit of bound parameters in one statement.
const maxParams = 65535

// Options say where a migration comes from and how it copies.
type Options struct {
	// Source names the source in the progress table (the SQLite file's
	// path): a run from another source is refused unless Resume.
	Source string
	// Resume continues a migration recorded from another source (the
	// same data directory moved or restored elsewhere).
	Resume bool
	// Batch is how many rows a transaction copies; DefaultBatch when 0.
	Batch int
}

// Table is one table a migration copies.
type Table struct {
	Name string
	// Rows is how many rows the source holds.
	Rows int64
	// Copied is how many are in the destination by this migration, and
	// Done whether the table is complete there.
	Copied int64
	Done   bool

	cols      []column
	key       []int // indexes into cols, in primary-key order
	identity  bool  // a column is filled by a sequence on PostgreSQL
	sqliteSeq int64 // the highest id SQLite's AUTOINCREMENT handed out
	after     []any // the key of the last row copied (SQLite's values)
}

// column is one column of a copied table.
type column struct {
	name     string
	kind     kind
	identity bool // filled by a sequence on PostgreSQL
	packed   bool // may hold database.Pack's values on SQLite
}

// Skipped is a table of the source a migration leaves behind.
type Skipped struct {
	Name string
	Rows int64
	Why  string
}

// Migration is one run of a copy from a SQLite database into a
// PostgreSQL one. Prepare makes it; Copy each table in Tables' order; then
// Verify; then Close.
//
// Notes: a Migration holds a connection of the destination (its lock)
// until Close, and is not safe for concurrent use.
type Migration struct {
	// Tables are the tables copied, in the order they must be: a table
	// before those whose foreign keys point at it.
	Tables []*Table
	// Skipped are the tables left behind.
	Skipped []Skipped
	// Resumed says an earlier run's progress was found, and
	// PreviousSource names its source when it was another one (Resume).
	Resumed        bool
	PreviousSource string

	src, dst *sql.DB
	lock     *sql.Conn
	opts     Options
}

// Prepare checks that src (grin's SQLite database, opened read-only and
// never migrated) and dst (a PostgreSQL database migrated by
// database.OpenPostgres) are at this grin's schema and have the same
// tables and columns, takes the destination's migration lock, and reads
// how far an earlier run got. It refuses a destination that holds rows
// the migration did not copy, and one whose recorded migration came from
// another source unless opts.Resume. Nothing is written but the progress
// table.
func Prepare(ctx context.Context, src, dst *sql.DB, opts Options) (*Migration, error) {
	if opts.Batch == 0 {
		opts.Batch = DefaultBatch
	}
	if opts.Batch < 1 || opts.Batch > MaxBatch {
		return nil, fmt.Errorf("a batch must be from 1 to %d rows, not %d", MaxBatch, opts.Batch)
	}
	if database.EngineOf(src) != database.SQLite || database.EngineOf(dst) != database.Postgres {
		return nil, errors.New("transfer copies from SQLite to PostgreSQL only")
	}
	if err := checkVersions(ctx, src, dst); err != nil {
		return nil, err
	}
	m := &Migration{src: src, dst: dst, opts: opts}
	if err := m.discover(ctx); err != nil {
		return nil, err
	}
	if err := m.order(ctx); err != nil {
		return nil, err
	}
	conn, err := dst.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	var locked bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, lockKey).Scan(&locked); err != nil {
		conn.Close()
		return nil, fmt.Errorf("take the migration's lock: %w", err)
	}
	if !locked {
		conn.Close()
		return nil, errors.New("another grin db migrate is copying into this PostgreSQL database: wait for it to end")
	}
	m.lock = conn
	if err := m.readProgress(ctx); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// Close releases the destination's lock.
func (m *Migration) Close() error {
	if m.lock == nil {
		return nil
	}
	// Closing the connection ends the session, and its lock with it.
	err := m.lock.Close()
	m.lock = nil
	return err
}

// checkVersions refuses a source at another schema version than this
// grin's, saying what to do, and a destination not migrated to it.
func checkVersions(ctx context.Context, src, dst *sql.DB) error {
	have, err := database.Version(ctx, src)
	if err != nil {
		return fmt.Errorf("read the data directory's schema version: %w", err)
	}
	want, err := database.Latest(database.SQLite)
	if err != nil {
		return err
	}
	switch {
	case have < want:
		return fmt.Errorf("the data directory's database is at schema version %d and this grin's is %d: "+
			"start this grin once on it (grin serve), which brings it up to date, stop it, then run grin db migrate again", have, want)
	case have > want:
		return fmt.Errorf("the data directory's database was written by a newer grin (schema version %d, this grin knows %d): "+
			"run the grin db migrate of that version, or upgrade this grin", have, want)
	}
	have, err = database.Version(ctx, dst)
	if err != nil {
		return fmt.Errorf("read PostgreSQL's schema version: %w", err)
	}
	if want, err = database.Latest(database.Postgres); err != nil {
		return err
	}
	if have != want {
		return fmt.Errorf("the PostgreSQL database is at schema version %d, not this grin's %d", have, want)
	}
	return nil
}

// quote makes a name an SQL identifier on both engines.
func quote(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// discover lists the source's tables, sorts them into copied and left
// behind by Tables, and reads each copied table's columns and primary
// key on both sides.
func (m *Migration) discover(ctx context.Context) error {
	names, err := queryStrings(ctx, m.src, `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		return fmt.Errorf("list the data directory's tables: %w", err)
	}
	fates := Tables()
	var unknown []string
	for _, name := range names {
		fate, ok := fates[name]
		if !ok {
			unknown = append(unknown, name)
			continue
		}
		var rows int64
		if err := m.src.QueryRowContext(ctx, `SELECT count(*) FROM `+quote(name)).Scan(&rows); err != nil {
			return fmt.Errorf("count the rows of %s: %w", name, err)
		}
		if !fate.Copy {
			m.Skipped = append(m.Skipped, Skipped{Name: name, Rows: rows, Why: fate.Why})
			continue
		}
		t, err := m.describe(ctx, name)
		if err != nil {
			return err
		}
		for i := range t.cols {
			t.cols[i].packed = slices.Contains(fate.Packed, t.cols[i].name)
		}
		t.Rows = rows
		m.Tables = append(m.Tables, t)
	}
	if len(unknown) > 0 {
		return fmt.Errorf("the data directory holds %s %s, which this grin does not know whether to copy; nothing was copied (a bug: transfer.Tables must name every table)",
			plural(len(unknown), "table", "tables"), strings.Join(unknown, ", "))
	}
	return nil
}

// describe reads a copied table's columns and key on both engines and
// refuses any difference between them.
func (m *Migration) describe(ctx context.Context, name string) (*Table, error) {
	t := &Table{Name: name}
	rows, err := m.src.QueryContext(ctx, `SELECT name, pk FROM pragma_table_info($1) ORDER BY cid`, name)
	if err != nil {
		return nil, fmt.Errorf("read the columns of %s: %w", name, err)
	}
	type srcCol struct {
		name string
		pk   int
	}
	var srcCols []srcCol
	for rows.Next() {
		var c srcCol
		if err := rows.Scan(&c.name, &c.pk); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read the columns of %s: %w", name, err)
		}
		srcCols = append(srcCols, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the columns of %s: %w", name, err)
	}

	dstCols := map[string]column{}
	var generated []string
	rows, err = m.dst.QueryContext(ctx, `SELECT column_name, data_type,
			is_identity = 'YES' OR coalesce(column_default, '') LIKE 'nextval(%', is_generated <> 'NEVER'
		FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1`, name)
	if err != nil {
		return nil, fmt.Errorf("read the columns of %s in PostgreSQL: %w", name, err)
	}
	for rows.Next() {
		var col, pgType string
		var identity, gen bool
		if err := rows.Scan(&col, &pgType, &identity, &gen); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read the columns of %s in PostgreSQL: %w", name, err)
		}
		if gen {
			generated = append(generated, col)
			continue
		}
		k, ok := kindOf(pgType)
		if !ok {
			rows.Close()
			return nil, fmt.Errorf("column %s.%s is of PostgreSQL type %s, which grin db migrate does not convert to", name, col, pgType)
		}
		dstCols[col] = column{name: col, kind: k, identity: identity}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the columns of %s in PostgreSQL: %w", name, err)
	}
	if len(dstCols) == 0 && len(generated) == 0 {
		return nil, fmt.Errorf("PostgreSQL has no table %s, which the data directory has: the engines' schemas differ", name)
	}

	var missing []string
	keyPos := map[int]int{}
	for _, sc := range srcCols {
		dc, ok := dstCols[sc.name]
		if !ok {
			missing = append(missing, sc.name)
			continue
		}
		delete(dstCols, sc.name)
		if sc.pk > 0 {
			keyPos[sc.pk] = len(t.cols)
		}
		t.identity = t.identity || dc.identity
		t.cols = append(t.cols, dc)
	}
	var extra []string
	for c := range dstCols {
		extra = append(extra, c)
	}
	sort.Strings(extra)
	switch {
	case len(missing) > 0:
		return nil, fmt.Errorf("table %s has %s %s in the data directory and not in PostgreSQL: the engines' schemas differ",
			name, plural(len(missing), "column", "columns"), strings.Join(missing, ", "))
	case len(extra) > 0:
		return nil, fmt.Errorf("table %s has %s %s in PostgreSQL and not in the data directory: the engines' schemas differ",
			name, plural(len(extra), "column", "columns"), strings.Join(extra, ", "))
	case len(keyPos) == 0:
		return nil, fmt.Errorf("table %s has no primary key, so it cannot be copied in order and resumed", name)
	}
	for i := 1; i <= len(keyPos); i++ {
		t.key = append(t.key, keyPos[i])
	}
	if t.identity {
		// AUTOINCREMENT never hands out an id twice, even one whose row
		// was deleted: PostgreSQL's sequence must not either.
		var seq sql.NullInt64
		err := m.src.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = $1`, name).Scan(&seq)
		if err != nil && !errors.Is(err, sql.ErrNoRows) && !strings.Contains(err.Error(), "no such table") {
			return nil, fmt.Errorf("read the last id of %s: %w", name, err)
		}
		t.sqliteSeq = seq.Int64
	}
	return t, nil
}

// order sorts the tables so that one comes after every table its foreign
// keys (on PostgreSQL) point at, by name otherwise.
func (m *Migration) order(ctx context.Context) error {
	rows, err := m.dst.QueryContext(ctx, `SELECT child.relname, parent.relname FROM pg_constraint c
		JOIN pg_class child ON child.oid = c.conrelid JOIN pg_class parent ON parent.oid = c.confrelid
		WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace`)
	if err != nil {
		return fmt.Errorf("read PostgreSQL's foreign keys: %w", err)
	}
	defer rows.Close()
	parents := map[string][]string{}
	for rows.Next() {
		var child, parent string
		if err := rows.Scan(&child, &parent); err != nil {
			return fmt.Errorf("read PostgreSQL's foreign keys: %w", err)
		}
		if child != parent {
			parents[child] = append(parents[child], parent)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read PostgreSQL's foreign keys: %w", err)
	}
	sort.Slice(m.Tables, func(i, j int) bool { return m.Tables[i].Name < m.Tables[j].Name })
	placed := map[string]bool{}
	var ordered []*Table
	for len(ordered) < len(m.Tables) {
		progress := false
		for _, t := range m.Tables {
			if placed[t.Name] {
				continue
			}
			ready := true
			for _, p := range parents[t.Name] {
				if !placed[p] && slices.ContainsFunc(m.Tables, func(u *Table) bool { return u.Name == p }) {
					ready = false
				}
			}
			if ready {
				placed[t.Name], progress = true, true
				ordered = append(ordered, t)
			}
		}
		if !progress {
			return errors.New("the tables' foreign keys form a cycle: grin db migrate cannot order them")
		}
	}
	m.Tables = ordered
	return nil
}

// readProgress creates the progress table if needed and reads how far
// an earlier run got, refusing a destination that holds rows this
// migration did not copy.
func (m *Migration) readProgress(ctx context.Context) error {
	if _, err := m.lock.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+progressTable+` (
		table_name text PRIMARY KEY,
		source     text NOT NULL,   -- where the rows came from (the SQLite file)
		after_key  text NOT NULL,   -- JSON: the primary key of the last row copied
		copied     bigint NOT NULL, -- rows copied so far
		done       boolean NOT NULL,
		updated_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return fmt.Errorf("create the progress table: %w", err)
	}
	type recorded struct {
		source, after string
		copied        int64
		done          bool
	}
	progress := map[string]recorded{}
	rows, err := m.lock.QueryContext(ctx, `SELECT table_name, source, after_key, copied, done FROM `+progressTable)
	if err != nil {
		return fmt.Errorf("read the progress table: %w", err)
	}
	for rows.Next() {
		var name string
		var r recorded
		if err := rows.Scan(&name, &r.source, &r.after, &r.copied, &r.done); err != nil {
			rows.Close()
			return fmt.Errorf("read the progress table: %w", err)
		}
		progress[name] = r
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the progress table: %w", err)
	}
	for _, r := range progress {
		if r.source != m.opts.Source {
			if !m.opts.Resume {
				return fmt.Errorf("this PostgreSQL database holds a migration from %s, not from %s: "+
					"run with --resume to continue it from here (only if this is the same data, moved), or migrate into an empty database", r.source, m.opts.Source)
			}
			m.PreviousSource = r.source
		}
	}
	m.Resumed = len(progress) > 0
	var foreign []string
	for _, t := range m.Tables {
		var n int64
		if err := m.lock.QueryRowContext(ctx, `SELECT count(*) FROM `+quote(t.Name)).Scan(&n); err != nil {
			return fmt.Errorf("count the rows of %s in PostgreSQL: %w", t.Name, err)
		}
		r, ok := progress[t.Name]
		switch {
		case !ok && n > 0:
			foreign = append(foreign, fmt.Sprintf("%s (%d %s)", t.Name, n, plural(int(n), "row", "rows")))
		case ok && !r.done && n != r.copied:
			return fmt.Errorf("table %s holds %d rows in PostgreSQL, and the migration recorded %d: something else wrote to it; migrate into an empty database",
				t.Name, n, r.copied)
		case ok:
			after, err := decodeKey(r.after)
			if err != nil || len(after) != len(t.key) && r.after != "" {
				return fmt.Errorf("the progress table's position in %s does not read (%q): migrate into an empty database", t.Name, r.after)
			}
			t.after, t.Copied, t.Done = after, r.copied, r.done
		}
	}
	if len(foreign) > 0 {
		return fmt.Errorf("this PostgreSQL database already holds rows that grin db migrate did not copy, in %s: migrate into an empty database (createdb)",
			strings.Join(foreign, ", "))
	}
	return nil
}

// Copy copies the rows of t not yet in the destination, a batch per
// transaction, calling progress after each batch with the rows copied so
// far. A cancelled ctx stops it between or inside batches; what was
// committed stays, and the next run resumes after it.
func (m *Migration) Copy(ctx context.Context, t *Table, progress func(copied int64)) error {
	for !t.Done {
		batch, err := m.readBatch(ctx, t)
		if err != nil {
			return err
		}
		if err := m.writeBatch(ctx, t, batch); err != nil {
			return err
		}
		if progress != nil {
			progress(t.Copied)
		}
	}
	return nil
}

// readBatch reads the next rows of t after its position, in key order,
// as SQLite holds them.
func (m *Migration) readBatch(ctx context.Context, t *Table) ([][]any, error) {
	var where string
	args := []any{}
	if t.after != nil {
		var keys, params []string
		for i, k := range t.key {
			keys = append(keys, quote(t.cols[k].name))
			params = append(params, fmt.Sprintf("$%d", i+1))
		}
		where = fmt.Sprintf(" WHERE (%s) > (%s)", strings.Join(keys, ", "), strings.Join(params, ", "))
		args = append(args, t.after...)
	}
	q := fmt.Sprintf("SELECT %s FROM %s%s ORDER BY %s LIMIT %d", t.columnList(), quote(t.Name), where, t.orderBy(false), m.opts.Batch)
	rows, err := m.src.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", t.Name, err)
	}
	defer rows.Close()
	var batch [][]any
	for rows.Next() {
		vals := make([]any, len(t.cols))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("read %s: %w", t.Name, err)
		}
		if err := t.unpack(vals); err != nil {
			return nil, err
		}
		batch = append(batch, vals)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", t.Name, err)
	}
	return batch, nil
}

// writeBatch inserts a batch and records the new position in the same
// transaction; a batch shorter than the batch size was the table's last,
// and then the sequences are set past the copied ids and the table
// marked done, in that transaction too.
func (m *Migration) writeBatch(ctx context.Context, t *Table, batch [][]any) error {
	converted := make([][]any, len(batch))
	for r, row := range batch {
		converted[r] = make([]any, len(row))
		for i, v := range row {
			c, err := convert(t.cols[i].kind, v)
			if err != nil {
				return fmt.Errorf("table %s, row %s, column %s: %w", t.Name, describeKey(t.keyOf(row)), t.cols[i].name, err)
			}
			converted[r][i] = c
		}
	}
	tx, err := m.dst.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("copy %s: %w", t.Name, err)
	}
	defer tx.Rollback()
	perStatement := max(1, maxParams/len(t.cols))
	for start := 0; start < len(converted); start += perStatement {
		chunk := converted[start:min(len(converted), start+perStatement)]
		if _, err := tx.ExecContext(ctx, t.insert(len(chunk)), slices.Concat(chunk...)...); err != nil {
			return fmt.Errorf("copy %s from row %s: %w", t.Name, describeKey(t.keyOf(batch[start])), err)
		}
	}
	after, copied := t.after, t.Copied+int64(len(batch))
	if len(batch) > 0 {
		after = t.keyOf(batch[len(batch)-1])
	}
	done := len(batch) < m.opts.Batch
	if done && t.identity {
		if err := t.setSequences(ctx, tx); err != nil {
			return err
		}
	}
	key, err := encodeKey(after)
	if err != nil {
		return fmt.Errorf("record the position in %s: %w", t.Name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO `+progressTable+` (table_name, source, after_key, copied, done) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (table_name) DO UPDATE SET source = excluded.source, after_key = excluded.after_key,
			copied = excluded.copied, done = excluded.done, updated_at = now()`,
		t.Name, m.opts.Source, key, copied, done); err != nil {
		return fmt.Errorf("record the position in %s: %w", t.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("copy %s: %w", t.Name, err)
	}
	t.after, t.Copied, t.Done = after, copied, done
	return nil
}

// unpack replaces, in a row read from SQLite, each packed column's value
// by the text it was packed from.
func (t *Table) unpack(row []any) error {
	for i, c := range t.cols {
		if !c.packed || row[i] == nil {
			continue
		}
		b, err := database.Unpack(row[i])
		if err != nil {
			return fmt.Errorf("table %s, row %s, column %s: %w", t.Name, describeKey(t.keyOf(row)), c.name, err)
		}
		row[i] = string(b)
	}
	return nil
}

// setSequences moves each sequence of t past the highest id copied, and
// past the highest SQLite ever handed out, so new rows on PostgreSQL never
// take an id that was used.
func (t *Table) setSequences(ctx context.Context, tx *sql.Tx) error {
	for _, c := range t.cols {
		if !c.identity {
			continue
		}
		var top sql.NullInt64
		if err := tx.QueryRowContext(ctx, fmt.Sprintf(`SELECT max(%s) FROM %s`, quote(c.name), quote(t.Name))).Scan(&top); err != nil {
			return fmt.Errorf("read the highest id of %s: %w", t.Name, err)
		}
		next := max(top.Int64, t.sqliteSeq)
		var q string
		if next > 0 {
			q = `SELECT setval(pg_get_serial_sequence($1, $2), $3, true)`
		} else {
			q, next = `SELECT setval(pg_get_serial_sequence($1, $2), $3, false)`, 1
		}
		if _, err := tx.ExecContext(ctx, q, quote(t.Name), c.name, next); err != nil {
			return fmt.Errorf("set the sequence of %s.%s: %w", t.Name, c.name, err)
		}
	}
	return nil
}

// columnList is the table's columns, quoted, in order.
func (t *Table) columnList() string {
	names := make([]string, len(t.cols))
	for i, c := range t.cols {
		names[i] = quote(c.name)
	}
	return strings.Join(names, ", ")
}

// orderBy is the ORDER BY of the key, in byte order on both engines:
// SQLite compares text by bytes (BINARY), PostgreSQL by its locale
// unless told "C".
func (t *Table) orderBy(postgres bool) string {
	parts := make([]string, len(t.key))
	for i, k := range t.key {
		parts[i] = quote(t.cols[k].name)
		if postgres && t.cols[k].kind == kindText {
			parts[i] += ` COLLATE "C"`
		}
	}
	return strings.Join(parts, ", ")
}

// insert is the INSERT of rows rows into t. Identity columns take the
// copied ids (OVERRIDING SYSTEM VALUE, for GENERATED ALWAYS ones too).
func (t *Table) insert(rows int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO %s (%s)", quote(t.Name), t.columnList())
	if t.identity {
		b.WriteString(" OVERRIDING SYSTEM VALUE")
	}
	b.WriteString(" VALUES ")
	n := 0
	for r := 0; r < rows; r++ {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for i := range t.cols {
			if i > 0 {
				b.WriteString(", ")
			}
			n++
			fmt.Fprintf(&b, "$%d", n)
		}
		b.WriteByte(')')
	}
	return b.String()
}

// keyOf is the key of a row.
func (t *Table) keyOf(row []any) []any {
	key := make([]any, len(t.key))
	for i, k := range t.key {
		key[i] = row[k]
	}
	return key
}

// Check is one table's verification: its rows and a digest of their
// content in key order, on each side.
type Check struct {
	Table                    string
	SourceRows, DestRows     int64
	SourceDigest, DestDigest string
}

// Same says whether both sides hold the same rows.
func (c Check) Same() bool {
	return c.SourceRows == c.DestRows && c.SourceDigest == c.DestDigest
}

// Verify reads every copied table whole on both sides, in key order, and
// returns the count and a SHA-256 of the content of each. Values are
// compared as PostgreSQL stores them: the source's are converted as Copy
// converts them.
func (m *Migration) Verify(ctx context.Context) ([]Check, error) {
	var checks []Check
	for _, t := range m.Tables {
		c := Check{Table: t.Name}
		var err error
		if c.SourceRows, c.SourceDigest, err = t.digest(ctx, m.src, false); err != nil {
			return nil, fmt.Errorf("verify %s in the data directory: %w", t.Name, err)
		}
		if c.DestRows, c.DestDigest, err = t.digest(ctx, m.dst, true); err != nil {
			return nil, fmt.Errorf("verify %s in PostgreSQL: %w", t.Name, err)
		}
		checks = append(checks, c)
	}
	return checks, nil
}

// digest counts t's rows in db and hashes their content in key order.
func (t *Table) digest(ctx context.Context, db *sql.DB, postgres bool) (int64, string, error) {
	rows, err := db.QueryContext(ctx, fmt.Sprintf("SELECT %s FROM %s ORDER BY %s", t.columnList(), quote(t.Name), t.orderBy(postgres)))
	if err != nil {
		return 0, "", err
	}
	defer rows.Close()
	h := sha256.New()
	vals := make([]any, len(t.cols))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var n int64
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return 0, "", err
		}
		if !postgres {
			if err := t.unpack(vals); err != nil {
				return 0, "", err
			}
		}
		for i, v := range vals {
			c, err := convert(t.cols[i].kind, v)
			if err != nil {
				return 0, "", fmt.Errorf("row %s, column %s: %w", describeKey(t.keyOf(vals)), t.cols[i].name, err)
			}
			digest(h, c)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

func queryStrings(ctx context.Context, db *sql.DB, q string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
