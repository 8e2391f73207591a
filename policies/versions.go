package policies

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/casbin/casbin/v3"
)

// Where a policy version came from.
const (
	sourceFile = "file" // the data directory (at start or on an edit)
	sourceAPI  = "api"  // PUT /policies
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
// already. The caller holds writeMu.
func (e *Enforcer) record(ctx context.Context, docs Documents, source string) error {
	newest, ok, err := e.newestVersion(ctx, 0)
	if err != nil {
		return err
	}
	if ok && newest.docs == docs {
		return nil
	}
	if _, err := e.db.ExecContext(ctx, `INSERT INTO policy_versions (model, policy, source, created_at) VALUES (?, ?, ?, ?)`,
		docs.Model, docs.Policy, source, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("record the policy in force: %w", err)
	}
	return nil
}

// newestVersion returns the newest stored version older than before (any
// version when before is 0).
func (e *Enforcer) newestVersion(ctx context.Context, before int64) (version, bool, error) {
	q := `SELECT version, model, policy, created_at FROM policy_versions ORDER BY version DESC LIMIT 1`
	args := []any{}
	if before > 0 {
		q = `SELECT version, model, policy, created_at FROM policy_versions WHERE version < ? ORDER BY version DESC LIMIT 1`
		args = append(args, before)
	}
	var v version
	var ms int64
	err := e.db.QueryRowContext(ctx, q, args...).Scan(&v.n, &v.docs.Model, &v.docs.Policy, &ms)
	if errors.Is(err, sql.ErrNoRows) {
		return version{}, false, nil
	}
	if err != nil {
		return version{}, false, fmt.Errorf("read the last good policy: %w", err)
	}
	v.at = time.UnixMilli(ms)
	return v, true, nil
}

// lastGood builds the newest stored version that still loads with grants
// (nil when none is stored). A version that no longer loads, which only
// stored grants can cause, is skipped with a log line.
func (e *Enforcer) lastGood(ctx context.Context, grants [][]string) (*casbin.Enforcer, *names, version, error) {
	var before int64
	for {
		v, ok, err := e.newestVersion(ctx, before)
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
	for _, name := range []string{ModelFile, PolicyFile} {
		path := filepath.Join(e.dir, name)
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			continue
		}
		if last == nil {
			v, ok, err := e.newestVersion(ctx, 0)
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
		if last.n > 0 {
			e.logger.Warn("a policy file was missing; wrote the last good policy's", "file", name, "version", last.n, "dir", e.dir)
		}
	}
	return nil
}
