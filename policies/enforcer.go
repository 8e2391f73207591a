// Package policies decides who may do what, with Casbin.
//
// The model and the default policy are embedded, written to the data
// directory on first start, and reloaded when an administrator edits them;
// an edit that does not load, or that would leave no internal user able to
// edit the policy, is refused and the previous policy stays in force. Every
// policy put in force is a numbered version in the database, and the newest
// is the policy in force for every replica on that database: the files are
// each replica's copy of it, and an accepted edit of them the next version
// (replicas.go).
// The Cat permission dictionaries of internal users are stored as
// grouping rules ("g, <user id>, perm:users:read") in grin's database and
// loaded beside the policy file, so the /users API and the policy are one
// store seen two ways.
//
// Decisions are cached; every change to the policy empties the cache under
// the same lock that orders decisions, so a decision is never served from a
// policy that is no longer in force.
package policies

import (
	"context"
	"crypto/sha256"
	"database/sql"
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/casbin/casbin/v3"
	"github.com/casbin/casbin/v3/model"
	"github.com/casbin/casbin/v3/persist"

	"github.com/grin-ai/grin/platform/cluster"
)

// File names inside the data directory.
const (
	ModelFile  = "model.conf"
	PolicyFile = "policy.csv"
)

var (
	//go:embed defaults/model.conf
	defaultModel string
	//go:embed defaults/policy.csv
	defaultPolicy string
)

// ErrInvalid marks a model or policy that does not load. Its message says
// which file and line, in words an administrator can act on.
var ErrInvalid = errors.New("invalid policy")

// maxCachedDecisions bounds the decision cache; past it the cache starts
// over, which costs one uncached decision per key.
const maxCachedDecisions = 200_000

// Request is one authorization question.
type Request struct {
	// Subjects are the policy subjects the caller acts as: an internal
	// user's id, or a credential subject such as "credential:api_key".
	// The request is allowed when any of them is.
	Subjects []string
	// Self is the caller's identity id, substituted for "{self}" in rules.
	Self string
	// Object is what is reached: "users", "episodic:<id>", …
	Object string
	// Action is a lower-case permission word: read, list, write, edit, delete.
	Action string
}

// Decision is the answer to a Request.
type Decision struct {
	Allowed bool
	// Denied is set when a deny rule refused the request (Allowed is then
	// false); when neither is set, no rule allowed it.
	Denied bool
	// Subject is the subject whose rule decided.
	Subject string
	// Rule is the p rule that decided, as loaded (users named by id).
	Rule []string
	// Line and Text place the rule in policy.csv as written there
	// (user:<username>); Line is 0 for a rule that is not in the file.
	Line int
	Text string
	// Via is the chain of roles from Subject to the rule's subject.
	Via []string
}

// Reason says in words why the decision was taken, naming the rule.
func (d Decision) Reason() string {
	rule := d.Text
	if rule == "" {
		rule = strings.Join(d.Rule, ", ")
	}
	where := ""
	if d.Line > 0 {
		where = fmt.Sprintf(" (policy.csv line %d)", d.Line)
	}
	via := ""
	if len(d.Via) > 0 {
		via = " through " + strings.Join(d.Via, " -> ")
	}
	switch {
	case d.Allowed:
		return fmt.Sprintf("allowed by the rule %q%s%s", rule, where, via)
	case d.Denied:
		return fmt.Sprintf("denied by the rule %q%s%s", rule, where, via)
	}
	return "no rule allows it"
}

// Documents are the two files an administrator edits.
type Documents struct {
	Model  string `json:"model" doc:"The Casbin model (model.conf)."`
	Policy string `json:"policy" doc:"The policy rules (policy.csv), one per line."`
}

// FileStatus says whether the files in the data directory are the policy
// in force.
type FileStatus struct {
	// Refused is set when the files do not load, or would leave no
	// administrator able to edit the policy; the policy in force is then
	// the last one that loaded.
	Refused bool
	// Problems say why, every one found.
	Problems []Problem
}

// Enforcer answers authorization requests and keeps the policy current.
//
// Notes: an Enforcer is safe for concurrent use. Decide is the hot path and
// takes no exclusive lock; changes to grants and reloads are serialized.
type Enforcer struct {
	dir    string
	db     *sql.DB
	logger *slog.Logger
	users  Directory
	// onFileEdit, when set, hears of every edit of the files the
	// watcher reads (WithFileEdits).
	onFileEdit func(context.Context, FileEdit)
	// bus tells the other replicas of changes and brings theirs (WithBus);
	// followEvery, when set, replaces the constant of that name (tests).
	bus         cluster.Bus
	followEvery time.Duration

	writeMu sync.Mutex // serializes grant changes, reloads and validations
	// written is the digest of the documents last written to the files,
	// or read from them and put in force (WrittenFile), and writtenN
	// their version; grantGen the generation of grants this replica has
	// caught up with. All three are guarded by writeMu.
	written  [32]byte
	writtenN int64
	grantGen int64

	mu     sync.RWMutex // guards enf, docs, digest, status and orders cache clears
	enf    *casbin.Enforcer
	docs   Documents
	digest [32]byte
	status FileStatus
	// warnings and mentions are of docs: rules whose subjects match
	// nothing, and the usernames named as user:<username>.
	warnings []Problem
	mentions map[string]bool
	rules    map[string]writtenRule // p rules as loaded ("p, <id>, obj, act, eft") -> as written
	// fileRules are the rules of docs as loaded, beside the grants
	// (nil when the names were not resolved: no edit in place then).
	fileRules fileRules
	cache     sync.Map // cacheKey -> verdict
	// selfFree: the matcher uses the request's self only as objectMatch's
	// (selfOnlyInObjects), so a decision on an object that does not hold
	// self is cached for every self alike.
	selfFree atomic.Bool
	// inForce is the number of the stored version in force.
	inForce atomic.Int64
	cached  atomic.Int64

	// figures counts decisions and cache lookups for the metrics.
	allowed, denied, failed, hits, misses atomic.Int64
	// loads counts policies built whole, edits those put in force in
	// place.
	loads, edits atomic.Int64
}

// Figures count the enforcer's work since it opened: decisions by result,
// and the subject lookups answered from the decision cache or not.
type Figures struct {
	Allowed, Denied, Errors int64
	CacheHits, CacheMisses  int64
	// Loads counts the policies built whole (the files and every stored
	// grant read afresh: at start, and for an edit of the model);
	// EditsInPlace the edits of the rules that changed only those rules
	// in the policy in force.
	Loads, EditsInPlace int64
}

// Figures returns the decision and cache counts.
func (e *Enforcer) Figures() Figures {
	return Figures{
		Allowed: e.allowed.Load(), Denied: e.denied.Load(), Errors: e.failed.Load(),
		CacheHits: e.hits.Load(), CacheMisses: e.misses.Load(),
		Loads: e.loads.Load(), EditsInPlace: e.edits.Load(),
	}
}

// Option configures an Enforcer.
type Option func(*Enforcer)

// WithUsers turns on the lockout check: a model or policy under which no
// internal user of d may edit the policy any more is refused. Without it
// (tools that only read the policy) there is no such check.
func WithUsers(d Directory) Option { return func(e *Enforcer) { e.users = d } }

// Open loads the policy in force and the grants from db, and brings the
// files in dir in line with them.
//
// The policy in force is the newest version stored in the database (the
// same for every replica on it), unless the files were edited since this
// replica last wrote them (WrittenFile; a data directory without it counts
// as edited): the edit is then checked against the newest version and, if
// it loads and keeps an administrator, becomes the next version. A first
// start stores the files, or grin's embedded default when there are none.
// Files that are not edited but differ from the newest version (another
// replica changed the policy meanwhile) are rewritten with it; a file
// missing from dir is written from it.
//
// When an edit does not load, or would lock every administrator out, Open
// logs every problem at error level and starts with the last good policy,
// the newest stored that loads, and leaves the files as they are;
// FileStatus reports the refusal. On a first start there is no last good
// policy, and Open fails with every problem rather than fall back to the
// defaults, which may grant more than the administrator's own files meant
// to.
func Open(ctx context.Context, dir string, db *sql.DB, logger *slog.Logger, opts ...Option) (*Enforcer, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	e := &Enforcer{dir: dir, db: db, logger: logger}
	for _, o := range opts {
		o(e)
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	for attempt := 1; ; attempt++ {
		err := e.start(ctx)
		if err == nil {
			return e, nil
		}
		// Another replica stored a version while this one checked its
		// files: start again from it.
		if !errors.Is(err, errStale) || attempt == maxStale {
			return nil, err
		}
	}
}

// start is Open's work; the caller holds writeMu.
func (e *Enforcer) start(ctx context.Context) error {
	if err := e.restoreMissing(ctx); err != nil {
		return err
	}
	if err := e.migrateModel(); err != nil {
		return err
	}
	// The generation first: a change of grants made while they load is
	// above it, and loaded again when this replica catches up.
	gen, err := grantGeneration(ctx, e.db)
	if err != nil {
		return err
	}
	grants, err := e.loadGrants(ctx)
	if err != nil {
		return err
	}
	e.grantGen = gen
	newest, stored, err := newestVersion(ctx, e.db, 0)
	if err != nil {
		return err
	}
	// The edit, if any, is checked against the newest version.
	e.inForce.Store(newest.n)
	// What the files were last noted as: a start that finds the files
	// and the version in force as noted rewrites nothing (noteWritten).
	written, writtenN, known := e.readWritten()
	e.written, e.writtenN = written, writtenN
	// The last good policy, built at most once and only when needed.
	var (
		last      *casbin.Enforcer
		lastN     *names
		lastV     version
		lastErr   error
		lastBuilt bool
	)
	lastGood := func() (*casbin.Enforcer, error) {
		if !lastBuilt {
			lastBuilt = true
			last, lastN, lastV, lastErr = e.lastGood(ctx, grants)
		}
		return last, lastErr
	}

	files, err := e.readFiles()
	docs := files
	// fromDB: the files are not edited but behind the newest version.
	fromDB := false
	if err == nil && stored && files != newest.docs && known && digest(files) == written {
		docs, fromDB = newest.docs, true
	}
	var enf *casbin.Enforcer
	var n *names
	if err == nil {
		n, err = e.lookupNames(ctx, docs.Policy)
	}
	if err == nil {
		enf, err = build(docs, grants, n)
	}
	if err == nil {
		err = e.checkLockout(ctx, enf, lastGood)
	}
	if err == nil {
		if err := e.record(ctx, docs, sourceFile); err != nil {
			return err
		}
		e.swap(enf, docs, n, FileStatus{})
		if fromDB {
			e.logger.Info("the policy files were behind the version in force on another replica; rewrote them", "version", e.inForce.Load(), "dir", e.dir)
			return e.writeFiles(docs, e.inForce.Load())
		}
		return e.noteWritten(docs, e.inForce.Load())
	}
	if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrLockout) {
		return err
	}
	if _, lerr := lastGood(); lerr != nil {
		return fmt.Errorf("the policy files in %s were refused (%w), and the last good policy could not be read: %w", e.dir, err, lerr)
	}
	if last == nil {
		return fmt.Errorf("the policy files in %s were refused and no earlier policy is stored to start with; fix them (or remove both to start from grin's defaults): %w", e.dir, err)
	}
	ps := Problems(err)
	e.logger.Error("policy files refused at start; serving the last policy that loaded until they are fixed",
		"files", problemFiles(ps), "problems", len(ps), "err", err,
		"version", lastV.n, "loaded_at", lastV.at.Format(time.RFC3339), "dir", e.dir)
	e.inForce.Store(lastV.n)
	e.swap(last, lastV.docs, lastN, FileStatus{Refused: true, Problems: ps})
	return nil
}

// FileStatus says whether the files in the data directory are in force,
// and when not, why they were refused.
func (e *Enforcer) FileStatus() FileStatus {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return FileStatus{Refused: e.status.Refused, Problems: slices.Clone(e.status.Problems)}
}

// Documents returns the model and policy in force.
func (e *Enforcer) Documents() Documents {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.docs
}

// Decide answers a request: allowed when a rule allows one of its
// subjects and no rule denies any of them. Errors mean the model itself
// failed to evaluate (an administrator's model that loads but cannot
// answer); the request is then denied.
func (e *Enforcer) Decide(req Request) (bool, error) {
	ok, err := e.decide(req)
	switch {
	case err != nil:
		e.failed.Add(1)
	case ok:
		e.allowed.Add(1)
	default:
		e.denied.Add(1)
	}
	return ok, err
}

func (e *Enforcer) decide(req Request) (bool, error) {
	yes := false
	for _, sub := range req.Subjects {
		key := e.keyOf(sub, req)
		v, ok := e.cache.Load(key)
		if ok {
			e.hits.Add(1)
		} else {
			e.misses.Add(1)
			e.mu.RLock()
			key = e.keyOf(sub, req) // the model may have changed meanwhile
			got, rule, err := e.enf.EnforceEx(sub, req.Object, req.Action, req.Self)
			if err == nil {
				v = verdictOf(got, rule)
				if e.cached.Add(1) > maxCachedDecisions {
					e.cache.Clear()
					e.cached.Store(0)
				}
				e.cache.Store(key, v)
			}
			e.mu.RUnlock()
			if err != nil {
				return false, fmt.Errorf("decide %s %s %s: %w", sub, req.Object, req.Action, err)
			}
		}
		switch v.(verdict) {
		case denyVerdict:
			return false, nil
		case allowVerdict:
			yes = true
		}
	}
	return yes, nil
}

// verdict is one subject's answer: a rule allowed it, one denied it, or
// none decided.
type verdict uint8

const (
	undecided verdict = iota
	allowVerdict
	denyVerdict
)

// verdictOf reads EnforceEx's answer: a refusal that names a rule is a
// deny rule's.
func verdictOf(ok bool, rule []string) verdict {
	switch {
	case ok:
		return allowVerdict
	case len(rule) > 0:
		return denyVerdict
	}
	return undecided
}

// Explain answers a request without the cache and says which rule decided
// (a deny rule for any subject, else the first allow rule) and through
// which roles.
func (e *Enforcer) Explain(req Request) (Decision, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	var allow *Decision
	for _, sub := range req.Subjects {
		ok, rule, err := e.enf.EnforceEx(sub, req.Object, req.Action, req.Self)
		if err != nil {
			return Decision{}, fmt.Errorf("explain %s %s %s: %w", sub, req.Object, req.Action, err)
		}
		v := verdictOf(ok, rule)
		if v == undecided || (v == allowVerdict && allow != nil) {
			continue
		}
		d := Decision{Allowed: v == allowVerdict, Denied: v == denyVerdict, Subject: sub, Rule: append([]string{"p"}, rule...)}
		if w, ok := e.rules[strings.Join(d.Rule, ", ")]; ok {
			d.Line, d.Text = w.line, w.text
		}
		if len(rule) > 0 {
			d.Via = e.rolePath(sub, expand(rule[0], req.Object, req.Action))
		}
		if v == denyVerdict {
			return d, nil
		}
		allow = &d
	}
	if allow != nil {
		return *allow, nil
	}
	return Decision{}, nil
}

// rolePath finds the chain of roles from sub to role, breadth first.
func (e *Enforcer) rolePath(sub, role string) []string {
	if sub == role {
		return nil
	}
	rm := e.enf.GetRoleManager()
	prev := map[string]string{sub: ""}
	queue := []string{sub}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		roles, _ := rm.GetRoles(cur)
		for _, r := range roles {
			if _, seen := prev[r]; seen {
				continue
			}
			prev[r] = cur
			if r == role {
				var path []string
				for n := r; n != sub; n = prev[n] {
					path = append([]string{n}, path...)
				}
				return path
			}
			queue = append(queue, r)
		}
	}
	return nil
}

type cacheKey struct{ sub, obj, act, self string }

// keyOf is the cache key of one subject's decision. The self is left out
// when it cannot change the decision (selfFree, and an object that does
// not hold it): a new user's first message is then decided from the
// cache for what does not name them (chatting, the shared spaces,
// procedural memory), and only their own partitions cost a first decision.
func (e *Enforcer) keyOf(sub string, req Request) cacheKey {
	self := req.Self
	if self != "" && e.selfFree.Load() && !strings.Contains(req.Object, self) {
		self = ""
	}
	return cacheKey{sub, req.Object, req.Action, self}
}

// objectMatchOfSelf is the one use of the request's self that keeps a
// decision independent of it for objects that do not hold it: objectMatch
// puts self into the rule's object and compares the result with the
// request's object, so a match needs self inside the request's object.
var (
	objectMatchOfSelf = regexp.MustCompile(`objectMatch\(\s*r[._]obj\s*,\s*p[._]obj\s*,\s*r[._]self\s*\)`)
	requestSelf       = regexp.MustCompile(`\br[._]self\b`)
)

// selfOnlyInObjects says whether enf's matchers use the request's self
// only as objectMatchOfSelf does (an administrator's model may use it
// otherwise, or evaluate rules' text with eval, and is then cached by
// self as before).
func selfOnlyInObjects(enf *casbin.Enforcer) bool {
	for _, m := range enf.GetModel()["m"] {
		if strings.Contains(m.Value, "eval(") || requestSelf.MatchString(objectMatchOfSelf.ReplaceAllString(m.Value, "")) {
			return false
		}
	}
	return true
}

// Reload reads the files and the grants again and swaps the result in when
// it loads. When it does not, the policy in force stays, FileStatus says
// why, and so does the error.
func (e *Enforcer) Reload(ctx context.Context) error {
	_, err := e.reload(ctx, true)
	return err
}

// reloadIfChanged is Reload for the file watcher: it skips files that are
// byte for byte what is in force (grin's own writes, editors' touch) and
// reports whether it loaded, or refused, anything.
func (e *Enforcer) reloadIfChanged(ctx context.Context) (bool, error) {
	return e.reload(ctx, false)
}

func (e *Enforcer) reload(ctx context.Context, force bool) (changed bool, err error) {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	err = e.retryStale(ctx, func() error {
		changed, err = e.reloadLocked(ctx, force)
		return err
	})
	return changed, err
}

// reloadLocked is reload's work; an accepted edit becomes the next
// version. The caller holds writeMu.
func (e *Enforcer) reloadLocked(ctx context.Context, force bool) (bool, error) {
	docs, err := e.readFiles()
	if err == nil && !force {
		e.mu.RLock()
		same, refused := digest(docs) == e.digest, e.status.Refused
		e.mu.RUnlock()
		if same {
			if refused {
				// Put back as they are in force: nothing left to refuse.
				e.setStatus(FileStatus{})
				e.logger.Info("policy files match the policy in force again", "dir", e.dir)
			}
			return false, nil
		}
	}
	commit := func() error {
		if err := e.record(ctx, docs, sourceFile); err != nil {
			return err
		}
		return e.noteWritten(docs, e.inForce.Load())
	}
	if err == nil {
		var done bool
		if done, err = e.putInForce(ctx, docs, true, false, FileStatus{}, commit); done && err == nil {
			return true, nil
		}
	}
	var enf *casbin.Enforcer
	var n *names
	if err == nil {
		enf, n, err = e.prepare(ctx, docs)
	}
	if err == nil {
		err = commit()
	}
	if errors.Is(err, errStale) {
		return true, err // checked again against the newer version
	}
	if err != nil {
		e.setStatus(FileStatus{Refused: true, Problems: Problems(err)})
		return true, err
	}
	e.swap(enf, docs, n, FileStatus{})
	return true, nil
}

// Update validates new documents, writes them to the data directory and puts
// them in force. Documents that do not load (ErrInvalid), under which no
// internal user could edit the policy any more (ErrLockout), or that a keep
// function refuses (it is asked about the new policy first) change nothing.
func (e *Enforcer) Update(ctx context.Context, docs Documents, keeps ...Keep) error {
	_, err := e.Apply(ctx, Replace(docs), false, keeps...)
	return err
}

// Validate reports whether Update would accept docs (and the keep
// functions), without changing anything.
func (e *Enforcer) Validate(ctx context.Context, docs Documents, keeps ...Keep) error {
	_, err := e.Apply(ctx, Replace(docs), true, keeps...)
	return err
}

// Change computes new documents from those in force: the whole of them
// (Replace) or one rule (AddRule, RemoveRule, AddMember, RemoveMember).
type Change func(Documents) (Documents, error)

// Replace is the edit that puts docs in place of the policy in force.
func Replace(docs Documents) Change { return func(Documents) (Documents, error) { return docs, nil } }

// Apply applies edit to the policy in force and, unless dryRun, writes the
// result to the data directory and puts it in force; it returns the
// documents the edit made. Every change path goes through it, so each is
// checked the same way: documents that do not load (ErrInvalid), under
// which no internal user could edit the policy any more (ErrLockout), or
// that a keep function refuses change nothing, dry run or not. The edit
// sees the policy in force under the write lock, so no other change is
// lost between reading and writing.
//
// The edit is checked against the version in force; when another replica
// stores a newer one meanwhile, that version is put in force here and the
// edit is made and checked again on it.
func (e *Enforcer) Apply(ctx context.Context, edit Change, dryRun bool, keeps ...Keep) (docs Documents, err error) {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	err = e.retryStale(ctx, func() error {
		docs, err = e.applyEdit(ctx, edit, dryRun, keeps...)
		return err
	})
	return docs, err
}

// applyEdit is Apply's work; the caller holds writeMu.
func (e *Enforcer) applyEdit(ctx context.Context, edit Change, dryRun bool, keeps ...Keep) (Documents, error) {
	docs, err := edit(e.Documents())
	if err != nil {
		return Documents{}, err
	}
	// Recorded before the files: whatever happens next, the last good
	// policy is one that loaded.
	source := sourceAPI
	if restoring(ctx) {
		source = sourceRestore
	}
	commit := func() error {
		if err := e.record(ctx, docs, source); err != nil {
			return err
		}
		return e.writeFiles(docs, e.inForce.Load())
	}
	if done, err := e.putInForce(ctx, docs, true, dryRun, FileStatus{}, commit, keeps...); done || err != nil {
		if err != nil {
			return Documents{}, err
		}
		return docs, nil
	}
	enf, n, err := e.prepare(ctx, docs)
	if err != nil {
		return Documents{}, err
	}
	if err := runKeeps(keeps, enf); err != nil {
		return Documents{}, err
	}
	if dryRun {
		return docs, nil
	}
	if err := commit(); err != nil {
		return Documents{}, err
	}
	// Grants cannot have changed meanwhile: changing them takes writeMu.
	e.swap(enf, docs, n, FileStatus{})
	return docs, nil
}

// prepare builds the enforcer for docs and the stored grants and runs the
// lockout check against the policy in force. The caller holds writeMu, so
// the grants cannot change before the result is swapped in.
func (e *Enforcer) prepare(ctx context.Context, docs Documents) (*casbin.Enforcer, *names, error) {
	grants, err := e.loadGrants(ctx)
	if err != nil {
		return nil, nil, err
	}
	n, err := e.lookupNames(ctx, docs.Policy)
	if err != nil {
		return nil, nil, err
	}
	enf, err := build(docs, grants, n)
	if err != nil {
		return nil, nil, err
	}
	// The policy in force is rebuilt for the comparison, rather than
	// searched under the read lock: the search can take a second with
	// many users, and a waiting writer would stall every decision.
	inForce := func() (*casbin.Enforcer, error) {
		docs := e.Documents()
		n, err := e.lookupNames(ctx, docs.Policy)
		if err != nil {
			return nil, err
		}
		return build(docs, grants, n)
	}
	if err := e.checkLockout(ctx, enf, inForce); err != nil {
		return nil, nil, err
	}
	return enf, n, nil
}

// readFiles reads both files; one that cannot be read is a problem of the
// files, reported as the parsers' are.
func (e *Enforcer) readFiles() (Documents, error) {
	var ps problems
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(e.dir, name))
		if err != nil {
			ps.add(name, 0, "cannot be read: %v", err)
		}
		return string(b)
	}
	docs := Documents{Model: read(ModelFile), Policy: read(PolicyFile)}
	return docs, ps.err()
}

// swap puts a built enforcer in force, with the names it resolved.
func (e *Enforcer) swap(enf *casbin.Enforcer, docs Documents, n *names, status FileStatus) {
	e.mu.Lock()
	e.enf, e.docs, e.digest, e.status = enf, docs, digest(docs), status
	e.selfFree.Store(selfOnlyInObjects(enf))
	e.warnings, e.mentions, e.rules, e.fileRules = nil, nil, nil, nil
	if n != nil {
		e.warnings, e.mentions, e.rules, e.fileRules = n.warnings, n.mentions, n.rules, n.loaded
	}
	e.clearLocked()
	e.mu.Unlock()
	e.loads.Add(1)
}

func (e *Enforcer) setStatus(status FileStatus) {
	e.mu.Lock()
	e.status = status
	e.mu.Unlock()
}

// problemFiles names the files problems are in, for log lines.
func problemFiles(ps []Problem) string {
	var files []string
	for _, p := range ps {
		if p.File != "" && !slices.Contains(files, p.File) {
			files = append(files, p.File)
		}
	}
	return strings.Join(files, ", ")
}

// clearLocked empties the decision cache; the caller holds mu for writing.
func (e *Enforcer) clearLocked() {
	e.cache.Clear()
	e.cached.Store(0)
}

func digest(d Documents) [32]byte {
	return sha256.Sum256([]byte(d.Model + "\x00" + d.Policy))
}

// build makes a ready enforcer from the documents and grants, or says
// precisely why it cannot: every problem it finds, not only the first, so
// an administrator fixes a file in one round. Subjects are resolved with n
// (user:<username> to the user's id), which collects the policy's warnings;
// with n nil they are taken as written.
func build(docs Documents, grants *grantTable, n *names) (*casbin.Enforcer, error) {
	var ps problems
	m, err := model.NewModelFromString(docs.Model)
	if err != nil {
		ps.add(ModelFile, 0, "%v", err)
		return nil, ps.err()
	}
	for _, sec := range []string{"r", "p", "g", "e", "m"} {
		if _, ok := m[sec]; !ok {
			ps.add(ModelFile, 0, "there is no [%s] section", sectionName(sec))
		}
	}
	if r, ok := m["r"]["r"]; ok && len(r.Tokens) != 4 {
		ps.add(ModelFile, modelLine(docs.Model, `^\s*r\s*=`), "the request must have four fields (sub, obj, act, self), it has %d", len(r.Tokens))
	}
	checkFunctions(m, docs.Model, &ps)
	if g, ok := m["g"]["g"]; ok && grants.size() > 0 && len(g.Tokens) != 2 {
		ps.add(ModelFile, modelLine(docs.Model, `^\s*g\s*=`), "the role definition must be g = _, _ (users' permissions are stored as two-field g rules), it has %d fields", len(g.Tokens))
	} else if ok && grants.size() > 0 && len(g.ParamsTokens) > 0 {
		ps.add(ModelFile, modelLine(docs.Model, `^\s*g\s*=`), "the role definition must be g = _, _ (users' permissions are stored as two-field g rules, without conditions), it has conditions %s", strings.Join(g.ParamsTokens, ", "))
	}
	if len(ps) > 0 {
		// The policy's lines can still be checked against the rule
		// types the model defines, so both files are fixed in one round.
		if _, ok := m["p"]; ok {
			if _, ok := m["g"]; ok {
				loadPolicyText(m, docs.Policy, nil, &ps)
			}
		}
		return nil, ps.err()
	}
	enf, err := casbin.NewEnforcer(m)
	if err != nil {
		ps.add(ModelFile, 0, "%v", err)
		return nil, ps.err()
	}
	enf.AddFunction("objectMatch", objectMatchFunc)
	enf.AddFunction("actionMatch", actionMatchFunc)
	enf.AddFunction("expand", expandFunc)
	if loadPolicyText(m, docs.Policy, n, &ps); len(ps) > 0 {
		return nil, ps.err()
	}
	if n != nil {
		n.loaded = snapshotRules(m)
	}
	// The grants stay in their table, beside the rules (rolegraph.go).
	if g, ok := m["g"]["g"]; ok && len(g.Tokens) == 2 && len(g.ParamsTokens) == 0 {
		enf.SetRoleManager(newRoleGraph(grants))
	} else if grants.size() > 0 {
		ps.add(ModelFile, 0, "there is no role definition g = _, _, where users' permissions are stored")
		return nil, ps.err()
	}
	if err := enf.BuildRoleLinks(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	// A model can parse and still fail on every request (a misspelt
	// function, a field that does not exist): ask it once.
	if _, err := enf.Enforce("credential:validate", "status", "read", "validate"); err != nil {
		ps.add(ModelFile, modelLine(docs.Model, `^\s*m\s*=`), "the matcher cannot be evaluated: %v", err)
		return nil, ps.err()
	}
	return enf, nil
}

// modelLine is the number of the first line of text matching pattern, or 0.
func modelLine(text, pattern string) int {
	re := regexp.MustCompile(pattern)
	for i, line := range strings.Split(text, "\n") {
		if re.MatchString(line) {
			return i + 1
		}
	}
	return 0
}

// callPattern finds function calls in a matcher.
var callPattern = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)\s*\(`)

// checkFunctions refuses a matcher that calls a function nobody defines:
// the expression engine would otherwise read the name as a value and the
// model would deny, or allow, without saying why.
func checkFunctions(m model.Model, text string, ps *problems) {
	fm := model.LoadFunctionMap()
	known := fm.GetFunctions()
	for _, name := range []string{"objectMatch", "actionMatch", "expand", "eval"} {
		known[name] = nil
	}
	for key := range m["g"] {
		known[key] = nil
	}
	reported := map[string]bool{}
	for _, ast := range m["m"] {
		for _, call := range callPattern.FindAllStringSubmatch(ast.Value, -1) {
			if _, ok := known[call[1]]; ok || reported[call[1]] {
				continue
			}
			reported[call[1]] = true
			ps.add(ModelFile, modelLine(text, `\b`+regexp.QuoteMeta(call[1])+`\s*\(`),
				"the matcher calls %s(), which is not a function; grin provides objectMatch, actionMatch and expand, Casbin keyMatch, regexMatch, globMatch and the like, and each role definition (g) is one", call[1])
		}
	}
}

func sectionName(sec string) string {
	return map[string]string{
		"r": "request_definition", "p": "policy_definition", "g": "role_definition",
		"e": "policy_effect", "m": "matchers",
	}[sec]
}

// loadPolicyText loads policy lines into m, checking each against the model
// and adding one problem, with its line number, for every line that is
// wrong; the lines after a wrong one are still checked. Subjects are
// resolved with n when it is not nil.
func loadPolicyText(m model.Model, text string, names *names, ps *problems) {
	if names != nil {
		names.warnings = nil
		defer func() {
			if len(*ps) == 0 {
				names.warnUnusedRoles(m, splitPolicy(text))
			}
		}()
	}
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r := csv.NewReader(strings.NewReader(line))
		r.TrimLeadingSpace = true
		fields, err := r.Read()
		if err != nil && !errors.Is(err, io.EOF) {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				err = pe.Err // the reader's own line and column are of this one line
			}
			ps.add(PolicyFile, n, "%v", err)
			continue
		}
		for j := range fields {
			fields[j] = strings.TrimSpace(fields[j])
		}
		if len(fields) == 0 {
			continue
		}
		key := fields[0]
		if key == "" {
			ps.add(PolicyFile, n, "a rule starts with its type, p or g")
			continue
		}
		sec := key[:1]
		ast, ok := m[sec][key]
		if !ok || (sec != "p" && sec != "g") {
			ps.add(PolicyFile, n, "%q is not a rule type of the model (use p or g)", key)
			continue
		}
		eft := slices.Index(ast.Tokens, key+"_eft")
		if got, want := len(fields)-1, len(ast.Tokens); got == want-1 && eft == want-1 {
			// A rule written without its effect allows, so that rules of
			// a model without deny keep their meaning.
			fields = append(fields, "allow")
		} else if got != want {
			if eft == want-1 {
				ps.add(PolicyFile, n, "a %s rule has %d fields after %q (%d with its effect, allow or deny, last), this one has %d", key, want-1, key, want, got)
			} else {
				ps.add(PolicyFile, n, "a %s rule has %d fields after %q, this one has %d", key, want, key, got)
			}
			continue
		}
		if eft >= 0 && fields[eft+1] != "allow" && fields[eft+1] != "deny" {
			ps.add(PolicyFile, n, "the effect %q is neither allow nor deny", fields[eft+1])
			continue
		}
		if slices.Contains(fields[1:], "") {
			ps.add(PolicyFile, n, "empty field")
			continue
		}
		if names != nil {
			names.resolve(m, fields, n)
			if sec == "p" {
				names.rules[strings.Join(fields, ", ")] = writtenRule{n, line}
			}
		}
		if err := persist.LoadPolicyArray(fields, m); err != nil {
			ps.add(PolicyFile, n, "%v", err)
		}
	}
}

// objectMatch reports whether a request object matches a rule's object:
// "*" matches anything, a trailing "*" matches by prefix, and "{self}"
// stands for the requester's id. An empty self never matches "{self}", and
// the id is compared literally, so an id containing "*" is no wildcard.
func objectMatch(obj, pattern, self string) bool {
	if pattern == "*" {
		return true
	}
	if strings.Contains(pattern, "{self}") && self == "" {
		return false
	}
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(obj, strings.ReplaceAll(prefix, "{self}", self))
	}
	return obj == strings.ReplaceAll(pattern, "{self}", self)
}

func objectMatchFunc(args ...any) (any, error) {
	if len(args) != 3 {
		return false, fmt.Errorf("objectMatch takes 3 arguments (request object, rule object, self), got %d", len(args))
	}
	obj, _ := args[0].(string)
	pattern, _ := args[1].(string)
	self, _ := args[2].(string)
	return objectMatch(obj, pattern, self), nil
}

// expand substitutes the request's object and action for "{object}" and
// "{action}" in a rule's subject, so one templated rule can stand for a
// whole family of permission roles.
func expand(sub, obj, act string) string {
	if !strings.Contains(sub, "{") {
		return sub
	}
	return strings.NewReplacer("{object}", obj, "{action}", act).Replace(sub)
}

func expandFunc(args ...any) (any, error) {
	if len(args) != 3 {
		return "", fmt.Errorf("expand takes 3 arguments (rule subject, request object, request action), got %d", len(args))
	}
	sub, _ := args[0].(string)
	obj, _ := args[1].(string)
	act, _ := args[2].(string)
	return expand(sub, obj, act), nil
}

func actionMatchFunc(args ...any) (any, error) {
	if len(args) != 2 {
		return false, fmt.Errorf("actionMatch takes 2 arguments (request action, rule action), got %d", len(args))
	}
	act, _ := args[0].(string)
	pattern, _ := args[1].(string)
	return pattern == "*" || act == pattern, nil
}

// writeFileAtomic replaces path so that readers (and the watcher) see either
// the old or the new content, never half of it.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
