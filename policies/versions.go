package policies

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pmezard/go-difflib/difflib"

	"github.com/casbin/casbin/v3"

	"github.com/grin-ai/grin/platform/cluster"
	"github.com/grin-ai/grin/platform/database"
)

// Where a policy version came from.
const (
	sourceFile = "file" // the data directory (at start or on an edit)
	sourceAPI  = "api"  // PUT /policies, a rule change
	// A stored version put back in force.
	sourceRestore = "restore"
	// A user was renamed or deleted, and the rules naming them with it.
	sourceRename = "rename"
	sourceDelete = "delete"
)

// version is a policy that was in force, as stored in policy_versions.
type version struct {
	n    int64
	docs Documents
	at   time.Time
}

// record stores docs as the newest version unless they are the newest
// already, by the author on ctx (WithAuthor), and remembers the version in
// force. The caller holds writeMu and checked docs against the version in
// force (InForce): when another replica has stored a newer version since,
// nothing is stored and the error is errStale, so that the caller catches
// up and checks the change again (retryStale). The check and the insert
// are one step under the versions' lock (database.Locked), so two
// replicas' edits at once cannot both pass it: each version is checked
// against the one before it. Other replicas are told of the new version
// once it is committed.
func (e *Enforcer) record(ctx context.Context, docs Documents, source string) error {
	base := e.inForce.Load()
	author, _ := ctx.Value(authorKey{}).(string)
	if author == "" && source == sourceFile {
		author = "policy files in the data directory"
	}
	var n int64
	added := false
	err := database.Locked(ctx, e.db, versionsLock, func(tx *sql.Tx) error {
		newest, ok, err := newestVersion(ctx, tx, 0)
		if err != nil {
			return err
		}
		if ok && newest.docs == docs {
			n = newest.n
			return nil
		}
		if ok && newest.n != base {
			return fmt.Errorf("%w: version %d was put in force by another replica while this change was checked against version %d", errStale, newest.n, base)
		}
		added = true
		return tx.QueryRowContext(ctx, `INSERT INTO policy_versions (model, policy, source, author, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING version`,
			docs.Model, docs.Policy, source, author, time.Now().UnixMilli()).Scan(&n)
	})
	if err != nil {
		if errors.Is(err, errStale) {
			return err
		}
		return fmt.Errorf("record the policy in force: %w", err)
	}
	e.inForce.Store(n)
	if added {
		e.publish(ctx, cluster.TopicPolicy, versionKey(n))
	}
	return nil
}

// versionsLock is the key under which versions are checked and added.
const versionsLock = "policy_versions"

type authorKey struct{}

type restoreKey struct{}

// restoring marks ctx as putting a stored version back (Restore).
func restoring(ctx context.Context) bool { v, _ := ctx.Value(restoreKey{}).(bool); return v }

// WithAuthor says on ctx who makes a policy change (a username, a
// credential), for the version it records.
func WithAuthor(ctx context.Context, author string) context.Context {
	return context.WithValue(ctx, authorKey{}, author)
}

// Version is one policy that was put in force.
type Version struct {
	N      int64
	Author string
	// Source says how: file (an edit of the data directory's files, or a
	// start), api (PUT /policies, a rule change), restore, rename or
	// delete (of a user named by the rules).
	Source string
	At     time.Time
	Docs   Documents
}

// InForce is the number of the version in force (0 before any is stored).
func (e *Enforcer) InForce() int64 { return e.inForce.Load() }

// Versions lists stored versions, newest first, older than before (all
// when before is 0), at most limit.
func (e *Enforcer) Versions(ctx context.Context, before int64, limit int) ([]Version, error) {
	q := `SELECT version, author, source, created_at FROM policy_versions`
	args := []any{}
	if before > 0 {
		args = append(args, before)
		q += ` WHERE version < $1`
	}
	args = append(args, limit)
	q += ` ORDER BY version DESC LIMIT $` + strconv.Itoa(len(args))
	rows, err := e.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list policy versions: %w", err)
	}
	defer rows.Close()
	var out []Version
	for rows.Next() {
		var v Version
		var ms int64
		if err := rows.Scan(&v.N, &v.Author, &v.Source, &ms); err != nil {
			return nil, fmt.Errorf("list policy versions: %w", err)
		}
		v.At = time.UnixMilli(ms).UTC()
		out = append(out, v)
	}
	return out, rows.Err()
}

// ErrNoVersion: no stored version has that number.
var ErrNoVersion = errors.New("no such policy version")

// Version returns version n with its documents, and the documents of the
// version before it (empty for the first), for a diff.
func (e *Enforcer) Version(ctx context.Context, n int64) (Version, Documents, error) {
	var v Version
	var ms int64
	err := e.db.QueryRowContext(ctx, `SELECT version, author, source, created_at, model, policy FROM policy_versions WHERE version = $1`, n).
		Scan(&v.N, &v.Author, &v.Source, &ms, &v.Docs.Model, &v.Docs.Policy)
	if errors.Is(err, sql.ErrNoRows) {
		return Version{}, Documents{}, fmt.Errorf("%w: %d", ErrNoVersion, n)
	}
	if err != nil {
		return Version{}, Documents{}, fmt.Errorf("read policy version %d: %w", n, err)
	}
	v.At = time.UnixMilli(ms).UTC()
	prev, ok, err := newestVersion(ctx, e.db, n)
	if err != nil || !ok {
		return v, Documents{}, err
	}
	return v, prev.docs, nil
}

// Restore is the change that puts version n back in force, as a new
// version (source restore); it is checked as any change is (Apply), with
// the context it returns.
func (e *Enforcer) Restore(ctx context.Context, n int64) (context.Context, Change, error) {
	v, _, err := e.Version(ctx, n)
	if err != nil {
		return ctx, nil, err
	}
	return context.WithValue(ctx, restoreKey{}, true), Replace(v.Docs), nil
}

// Diff is a unified diff of two policies, model then policy, for people.
func Diff(from, to Documents) string {
	var b strings.Builder
	for _, f := range []struct{ name, a, b string }{{ModelFile, from.Model, to.Model}, {PolicyFile, from.Policy, to.Policy}} {
		if f.a == f.b {
			continue
		}
		d, _ := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
			A: difflib.SplitLines(f.a), B: difflib.SplitLines(f.b),
			FromFile: "a/" + f.name, ToFile: "b/" + f.name, Context: 1,
		})
		b.WriteString(d)
	}
	return b.String()
}

// newestVersion returns the newest stored version older than before (any
// version when before is 0).
func newestVersion(ctx context.Context, q rowQuerier, before int64) (version, bool, error) {
	query := `SELECT version, model, policy, created_at FROM policy_versions ORDER BY version DESC LIMIT 1`
	args := []any{}
	if before > 0 {
		query = `SELECT version, model, policy, created_at FROM policy_versions WHERE version < $1 ORDER BY version DESC LIMIT 1`
		args = append(args, before)
	}
	var v version
	var ms int64
	err := q.QueryRowContext(ctx, query, args...).Scan(&v.n, &v.docs.Model, &v.docs.Policy, &ms)
	if errors.Is(err, sql.ErrNoRows) {
		return version{}, false, nil
	}
	if err != nil {
		return version{}, false, fmt.Errorf("read the newest policy version: %w", err)
	}
	v.at = time.UnixMilli(ms)
	return v, true, nil
}

// rowQuerier is a *sql.DB or a *sql.Tx.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// lastGood builds the newest stored version that still loads with grants
// (nil when none is stored). A version that no longer loads, which only
// stored grants can cause, is skipped with a log line.
func (e *Enforcer) lastGood(ctx context.Context, grants *grantTable) (*casbin.Enforcer, *names, version, error) {
	var before int64
	for {
		v, ok, err := newestVersion(ctx, e.db, before)
		if err != nil || !ok {
			return nil, nil, version{}, err
		}
		n, err := e.lookupNames(ctx, v.docs.Policy)
		if err != nil {
			return nil, nil, version{}, err
		}
		enf, err := build(v.docs, grants, n)
		if err == nil {
			return enf, n, v, nil
		}
		e.logger.Error("a stored policy version no longer loads; trying the one before", "version", v.n, "err", err)
		before = v.n
	}
}

// restoreMissing writes a policy file that is not in the data directory:
// the last good policy's when one is stored (a deleted file must not bring
// back defaults broader than the administrator's policy), else the embedded
// default (a first start).
func (e *Enforcer) restoreMissing(ctx context.Context) error {
	var last *version
	// Both missing is a new data directory: a replica joining a database
	// that holds the policy, which is expected, not a deleted file.
	missing := 0
	for _, name := range []string{ModelFile, PolicyFile} {
		if _, err := os.Stat(filepath.Join(e.dir, name)); errors.Is(err, os.ErrNotExist) {
			missing++
		}
	}
	for _, name := range []string{ModelFile, PolicyFile} {
		path := filepath.Join(e.dir, name)
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			continue
		}
		if last == nil {
			v, ok, err := newestVersion(ctx, e.db, 0)
			if err != nil {
				return err
			}
			if !ok {
				v.docs = Documents{Model: defaultModel, Policy: defaultPolicy}
			}
			last = &v
		}
		content := last.docs.Policy
		if name == ModelFile {
			content = last.docs.Model
		}
		if err := writeFileAtomic(path, []byte(content)); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		switch {
		case last.n > 0 && missing == 2:
			e.logger.Info("a new data directory: wrote the policy in force to its files", "file", name, "version", last.n, "dir", e.dir)
		case last.n > 0:
			e.logger.Warn("a policy file was missing; wrote the last good policy's", "file", name, "version", last.n, "dir", e.dir)
		}
	}
	return nil
}
