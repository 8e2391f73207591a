package policies

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/grin-ai/grin/platform/cluster"
	"github.com/grin-ai/grin/platform/database"
)

// The policy in force is the newest version stored in the database
// (policy_versions), on either engine: replicas on one database follow one
// policy. The files in each replica's data directory stay what an
// administrator edits: a replica writes the version in force to them, and
// an edit of them that is accepted becomes the next version, which every
// replica then puts in force and writes to its own files.

// WrittenFile, in the data directory, says which documents this replica
// last wrote to model.conf and policy.csv (or read from them and put in
// force): their version and digest. Files whose digest differs were edited
// since; files that match it were not, and a newer version in the database
// replaces them (docs/policies.md).
const WrittenFile = "policy.written"

// written is the content of WrittenFile.
type written struct {
	Version int64  `json:"version"`
	SHA256  string `json:"sha256"`
}

// readWritten returns the digest and version recorded in WrittenFile, and
// whether there are any (a data directory from before it, or a damaged
// file, has none: its files then count as edited, as grin read them
// before).
func (e *Enforcer) readWritten() ([32]byte, int64, bool) {
	var d [32]byte
	b, err := os.ReadFile(filepath.Join(e.dir, WrittenFile))
	if err != nil {
		return d, 0, false
	}
	var w written
	if json.Unmarshal(b, &w) != nil {
		return d, 0, false
	}
	raw, err := hex.DecodeString(w.SHA256)
	if err != nil || len(raw) != len(d) {
		return d, 0, false
	}
	copy(d[:], raw)
	return d, w.Version, true
}

// noteWritten records that the files hold docs, version n. The caller
// holds writeMu.
func (e *Enforcer) noteWritten(docs Documents, n int64) error {
	d := digest(docs)
	if d == e.written && n == e.writtenN {
		return nil // as recorded already: no write, no sync
	}
	b, _ := json.Marshal(written{Version: n, SHA256: hex.EncodeToString(d[:])})
	if err := writeFileAtomic(filepath.Join(e.dir, WrittenFile), append(b, '\n')); err != nil {
		return fmt.Errorf("write %s: %w", WrittenFile, err)
	}
	e.written, e.writtenN = d, n
	return nil
}

// writeFiles writes docs, version n, to the data directory's files and
// notes it. The caller holds writeMu.
func (e *Enforcer) writeFiles(docs Documents, n int64) error {
	if err := writeFileAtomic(filepath.Join(e.dir, ModelFile), []byte(docs.Model)); err != nil {
		return fmt.Errorf("write %s: %w", ModelFile, err)
	}
	if err := writeFileAtomic(filepath.Join(e.dir, PolicyFile), []byte(docs.Policy)); err != nil {
		return fmt.Errorf("write %s: %w", PolicyFile, err)
	}
	return e.noteWritten(docs, n)
}

// WithBus has the Enforcer tell the other replicas on bus of every version
// it puts in force (cluster.TopicPolicy) and every change of grants
// (cluster.TopicGrants, Key: the subject), and, while Watch runs, follow
// theirs: a version or a subject's grants are loaded in place and the
// decision cache is emptied. Without it (one process) nobody is told.
func WithBus(b cluster.Bus) Option { return func(e *Enforcer) { e.bus = b } }

// followEvery is how often a replica on a bus also asks the database
// whether it missed a change (a publication that failed on its way): one
// small query, so that no copy stays stale for long even then.
const followEvery = 30 * time.Second

// errStale refuses a change that was checked against a version that is no
// longer the newest: another replica stored one meanwhile.
var errStale = errors.New("the policy changed on another replica")

// maxStale bounds how often one change is checked again because other
// replicas kept changing the policy meanwhile.
const maxStale = 8

// retryStale runs change, and when another replica put a version in force
// meanwhile (errStale), puts that version in force here and runs change
// again, so that the change is checked against the policy it will follow.
// The caller holds writeMu.
func (e *Enforcer) retryStale(ctx context.Context, change func() error) error {
	for attempt := 1; ; attempt++ {
		err := change()
		if !errors.Is(err, errStale) || attempt == maxStale {
			return err
		}
		e.logger.Info("the policy changed on another replica while a change was checked; checking it again against the new version", "err", err)
		if err := e.catchUpLocked(ctx); err != nil {
			return err
		}
	}
}

// publish tells the other replicas of a committed change. A failure is
// logged, not returned: the change stands, and they find it when they next
// ask the database (followEvery).
func (e *Enforcer) publish(ctx context.Context, topic, key string) {
	if e.bus == nil {
		return
	}
	if err := e.bus.Publish(ctx, cluster.Event{Topic: topic, Key: key}); err != nil {
		e.logger.Error("could not tell the other replicas of a policy change; they find it within "+followEvery.String(),
			"topic", topic, "key", key, "err", err)
	}
}

// follow subscribes to the other replicas' changes until ctx is done, and
// catches up with those made before it subscribed.
func (e *Enforcer) follow(ctx context.Context) {
	if e.bus == nil {
		return
	}
	stopPolicy := e.bus.Subscribe(cluster.TopicPolicy, func(ctx context.Context, _ cluster.Event) {
		// Versions only grow: whatever the event's number, the newest is
		// the one to follow, and a missed event changes nothing to that.
		e.catchUp(ctx)
	})
	stopGrants := e.bus.Subscribe(cluster.TopicGrants, func(ctx context.Context, ev cluster.Event) {
		if ev.Missed || ev.Key == "" {
			e.catchUp(ctx)
			return
		}
		e.writeMu.Lock()
		defer e.writeMu.Unlock()
		if err := e.syncSubjectLocked(ctx, ev.Key); err != nil {
			e.logger.Error("could not load grants changed on another replica; retrying within "+followEvery.String(), "subject", ev.Key, "err", err)
		}
	})
	// A user created on another replica under a name the rules mention
	// (user:<username>) gains those rules here too.
	stopUsers := e.bus.Subscribe(cluster.TopicUser, func(ctx context.Context, ev cluster.Event) {
		if e.users == nil || ev.Key == "" {
			return
		}
		name, ok, err := e.users.Username(ctx, ev.Key)
		if err == nil && ok {
			err = e.UserAdded(ctx, name)
		}
		if err != nil {
			e.logger.Error("could not resolve a user changed on another replica in the policy", "user", ev.Key, "err", err)
		}
	})
	e.catchUp(ctx)
	every := e.followEvery
	if every <= 0 {
		every = followEvery
	}
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				stopPolicy()
				stopGrants()
				stopUsers()
				return
			case <-t.C:
				e.catchUp(ctx)
			}
		}
	}()
}

// SyncSubject reads subject's grants from the database and puts them in
// force here, without waiting for news of a change another replica made:
// for a user this replica sees for the first time.
func (e *Enforcer) SyncSubject(ctx context.Context, subject string) error {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	return e.syncSubjectLocked(ctx, subject)
}

// CatchUp puts in force the newest version and every grant other replicas
// stored, without waiting for their news: a check that must see every
// replica's changes (the last administrator's) calls it first, under a
// lock all replicas take.
func (e *Enforcer) CatchUp(ctx context.Context) error {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	return errors.Join(e.catchUpLocked(ctx), e.catchUpGrantsLocked(ctx))
}

// catchUp puts in force the newest version and every subject's grants
// changed since this replica last looked, logging what fails.
func (e *Enforcer) catchUp(ctx context.Context) {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	if err := e.catchUpLocked(ctx); err != nil {
		e.logger.Error("could not put in force the policy version of another replica; retrying within "+followEvery.String(), "err", err)
	}
	if err := e.catchUpGrantsLocked(ctx); err != nil {
		e.logger.Error("could not load grants changed on another replica; retrying within "+followEvery.String(), "err", err)
	}
}

// catchUpLocked puts the newest stored version in force when it is not
// already: in place when the model is the one in force (only the rules
// that changed), else built afresh. It was checked by the replica that
// stored it. The files are rewritten with it unless the administrator has
// edited them since this replica wrote them; an edit is kept, and checked
// against the new version when the watcher reads it. The caller holds
// writeMu.
func (e *Enforcer) catchUpLocked(ctx context.Context) error {
	v, ok, err := newestVersion(ctx, e.db, 0)
	if err != nil || !ok || v.n == e.inForce.Load() {
		return err
	}
	before := e.Documents()
	files, ferr := e.readFiles()
	unedited := ferr != nil || digest(files) == e.written || digest(files) == digest(before) || files == v.docs
	status := e.FileStatus()
	if unedited {
		status = FileStatus{}
	}
	if v.docs != before {
		done, err := e.putInForce(ctx, v.docs, false, false, status, nil)
		if err != nil {
			return fmt.Errorf("put policy version %d in force: %w", v.n, err)
		}
		if !done {
			grants, err := e.loadGrants(ctx)
			if err != nil {
				return err
			}
			n, err := e.lookupNames(ctx, v.docs.Policy)
			if err != nil {
				return err
			}
			enf, err := build(v.docs, grants, n)
			if err != nil {
				return fmt.Errorf("put policy version %d in force: %w", v.n, err)
			}
			e.swap(enf, v.docs, n, status)
		}
	}
	e.inForce.Store(v.n)
	e.logger.Info("policy version put in force from the database", "version", v.n, "files_edited_here", !unedited)
	if !unedited {
		return nil
	}
	e.setStatus(status)
	if files == v.docs {
		return e.noteWritten(v.docs, v.n)
	}
	return e.writeFiles(v.docs, v.n)
}

// grantsLock is the key under which grants and their generations change.
const grantsLock = "grants"

// bumpGeneration gives subject's grants the next generation, in the
// transaction that changes them (under grantsLock, so generations are
// committed in their order and a replica that has seen generation g has
// seen every one before it).
func bumpGeneration(ctx context.Context, tx *sql.Tx, subject string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO grant_generations (subject, generation)
		SELECT CAST($1 AS TEXT), coalesce(max(generation), 0) + 1 FROM grant_generations WHERE true
		ON CONFLICT (subject) DO UPDATE SET generation = excluded.generation`, subject)
	if err != nil {
		return fmt.Errorf("note the change of %q's grants: %w", subject, err)
	}
	return nil
}

// grantGeneration is the highest generation of grants stored.
func grantGeneration(ctx context.Context, q rowQuerier) (int64, error) {
	var g int64
	if err := q.QueryRowContext(ctx, `SELECT coalesce(max(generation), 0) FROM grant_generations`).Scan(&g); err != nil {
		return 0, fmt.Errorf("read the generation of grants: %w", err)
	}
	return g, nil
}

// changeGrants runs fn under grantsLock and bumps subject's generation in
// the same transaction.
func (e *Enforcer) changeGrants(ctx context.Context, subject string, fn func(tx *sql.Tx) error) error {
	return database.Locked(ctx, e.db, grantsLock, func(tx *sql.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return bumpGeneration(ctx, tx, subject)
	})
}

// syncSubjectLocked makes subject's grants in force those stored. The
// caller holds writeMu.
func (e *Enforcer) syncSubjectLocked(ctx context.Context, subject string) error {
	roles, err := grantsOf(ctx, e.db, subject)
	if err != nil {
		return fmt.Errorf("read the grants of %q: %w", subject, err)
	}
	return e.syncGrantsLocked(map[string][]string{subject: roles})
}

// catchUpGrantsLocked loads the grants of every subject whose generation
// is above the highest this replica has caught up with, in one query. The
// caller holds writeMu.
func (e *Enforcer) catchUpGrantsLocked(ctx context.Context) error {
	rows, err := e.db.QueryContext(ctx, `SELECT c.subject, c.generation, g.role FROM grant_generations c
		LEFT JOIN grants g ON g.subject = c.subject
		WHERE c.generation > $1 ORDER BY c.subject, g.role`, e.grantGen)
	if err != nil {
		return fmt.Errorf("read grants changed since generation %d: %w", e.grantGen, err)
	}
	stored := map[string][]string{}
	gen := e.grantGen
	for rows.Next() {
		var subject string
		var g int64
		var role sql.NullString
		if err := rows.Scan(&subject, &g, &role); err != nil {
			rows.Close()
			return fmt.Errorf("read grants changed since generation %d: %w", e.grantGen, err)
		}
		gen = max(gen, g)
		if _, ok := stored[subject]; !ok {
			stored[subject] = nil
		}
		if role.Valid {
			stored[subject] = append(stored[subject], role.String)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read grants changed since generation %d: %w", e.grantGen, err)
	}
	if err := e.syncGrantsLocked(stored); err != nil {
		return err
	}
	e.grantGen = gen
	return nil
}

// syncGrantsLocked makes each subject's grants in force the roles given,
// and empties the decision cache when any changed. Roles policy.csv gives
// the subject stay: they are rules, beside the grants. The caller holds
// writeMu.
func (e *Enforcer) syncGrantsLocked(stored map[string][]string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	changed := false
	err := changeGrants(e.enf, func(t *grantTable) bool {
		for subject, want := range stored {
			changed = t.set(subject, want) || changed
		}
		return changed
	})
	if err != nil {
		return fmt.Errorf("apply grants: %w", err)
	}
	if changed {
		e.clearLocked()
	}
	return nil
}

// versionKey is a TopicPolicy event's key: the version's number.
func versionKey(n int64) string { return strconv.FormatInt(n, 10) }
