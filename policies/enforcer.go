// Package policies decides who may do what, with Casbin.
//
// The model and the default policy are embedded, written to the data
// directory on first start, and reloaded when an administrator edits them;
// an edit that does not load is refused and the previous policy stays in
// force. The Cat permission dictionaries of internal users are stored as
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
	"strings"
	"sync"
	"sync/atomic"

	"github.com/casbin/casbin/v3"
	"github.com/casbin/casbin/v3/model"
	"github.com/casbin/casbin/v3/persist"
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
	// Subject is the subject whose rule allowed the request.
	Subject string
	// Rule is the p rule that allowed it, as written in the policy.
	Rule []string
	// Via is the chain of roles from Subject to the rule's subject.
	Via []string
}

// Documents are the two files an administrator edits.
type Documents struct {
	Model  string `json:"model" doc:"The Casbin model (model.conf)."`
	Policy string `json:"policy" doc:"The policy rules (policy.csv), one per line."`
}

// Enforcer answers authorization requests and keeps the policy current.
//
// Notes: an Enforcer is safe for concurrent use. Decide is the hot path and
// takes no exclusive lock; changes to grants and reloads are serialized.
type Enforcer struct {
	dir    string
	db     *sql.DB
	logger *slog.Logger

	writeMu sync.Mutex // serializes grant changes and reloads

	mu     sync.RWMutex // guards enf and orders cache clears
	enf    *casbin.Enforcer
	docs   Documents
	digest [32]byte
	cache  sync.Map // cacheKey -> bool
	cached atomic.Int64
}

// Open loads the policy from dir (writing the embedded defaults first when
// the files are missing) and the grants from db.
func Open(ctx context.Context, dir string, db *sql.DB, logger *slog.Logger) (*Enforcer, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	for name, content := range map[string]string{ModelFile: defaultModel, PolicyFile: defaultPolicy} {
		path := filepath.Join(dir, name)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			if err := writeFileAtomic(path, []byte(content)); err != nil {
				return nil, fmt.Errorf("write default %s: %w", name, err)
			}
		}
	}
	e := &Enforcer{dir: dir, db: db, logger: logger}
	if err := e.Reload(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// Documents returns the model and policy in force.
func (e *Enforcer) Documents() Documents {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.docs
}

// Decide answers a request. Errors mean the model itself failed to evaluate
// (an administrator's model that loads but cannot answer); the request is
// then denied.
func (e *Enforcer) Decide(req Request) (bool, error) {
	for _, sub := range req.Subjects {
		key := cacheKey{sub, req.Object, req.Action, req.Self}
		if v, ok := e.cache.Load(key); ok {
			if v.(bool) {
				return true, nil
			}
			continue
		}
		e.mu.RLock()
		ok, err := e.enf.Enforce(sub, req.Object, req.Action, req.Self)
		if err == nil {
			if e.cached.Add(1) > maxCachedDecisions {
				e.cache.Clear()
				e.cached.Store(0)
			}
			e.cache.Store(key, ok)
		}
		e.mu.RUnlock()
		if err != nil {
			return false, fmt.Errorf("decide %s %s %s: %w", sub, req.Object, req.Action, err)
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

// Explain answers a request without the cache and says which rule decided
// and through which roles.
func (e *Enforcer) Explain(req Request) (Decision, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	for _, sub := range req.Subjects {
		ok, rule, err := e.enf.EnforceEx(sub, req.Object, req.Action, req.Self)
		if err != nil {
			return Decision{}, fmt.Errorf("explain %s %s %s: %w", sub, req.Object, req.Action, err)
		}
		if ok {
			d := Decision{Allowed: true, Subject: sub, Rule: append([]string{"p"}, rule...)}
			if len(rule) > 0 {
				d.Via = e.rolePath(sub, expand(rule[0], req.Object, req.Action))
			}
			return d, nil
		}
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

// Reload reads the files and the grants again and swaps the result in when
// it loads. When it does not, the policy in force stays and the error says
// what is wrong.
func (e *Enforcer) Reload(ctx context.Context) error {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	docs, err := e.readFiles()
	if err != nil {
		return err
	}
	return e.load(ctx, docs)
}

// reloadIfChanged is Reload for the file watcher: it skips files that are
// byte for byte what is in force (grin's own writes, editors' touch) and
// reports whether it loaded anything.
func (e *Enforcer) reloadIfChanged(ctx context.Context) (bool, error) {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	docs, err := e.readFiles()
	if err != nil {
		return false, err
	}
	e.mu.RLock()
	same := digest(docs) == e.digest
	e.mu.RUnlock()
	if same {
		return false, nil
	}
	return true, e.load(ctx, docs)
}

// Update validates new documents, writes them to the data directory and puts
// them in force. Invalid documents change nothing, and neither do documents
// a keep function refuses (it is asked about the new policy first).
func (e *Enforcer) Update(ctx context.Context, docs Documents, keeps ...Keep) error {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	grants, err := e.loadGrants(ctx)
	if err != nil {
		return err
	}
	enf, err := build(docs, grants)
	if err != nil {
		return err
	}
	if err := runKeeps(keeps, enf); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(e.dir, ModelFile), []byte(docs.Model)); err != nil {
		return fmt.Errorf("write %s: %w", ModelFile, err)
	}
	if err := writeFileAtomic(filepath.Join(e.dir, PolicyFile), []byte(docs.Policy)); err != nil {
		return fmt.Errorf("write %s: %w", PolicyFile, err)
	}
	// Grants cannot have changed meanwhile: changing them takes writeMu.
	e.swap(enf, docs)
	return nil
}

// Validate reports whether docs would load, and pass the keep functions,
// without changing anything.
func (e *Enforcer) Validate(ctx context.Context, docs Documents, keeps ...Keep) error {
	grants, err := e.loadGrants(ctx)
	if err != nil {
		return err
	}
	enf, err := build(docs, grants)
	if err != nil {
		return err
	}
	return runKeeps(keeps, enf)
}

func (e *Enforcer) readFiles() (Documents, error) {
	m, err := os.ReadFile(filepath.Join(e.dir, ModelFile))
	if err != nil {
		return Documents{}, fmt.Errorf("read policy model: %w", err)
	}
	p, err := os.ReadFile(filepath.Join(e.dir, PolicyFile))
	if err != nil {
		return Documents{}, fmt.Errorf("read policy: %w", err)
	}
	return Documents{Model: string(m), Policy: string(p)}, nil
}

// load builds an enforcer from docs and the stored grants and swaps it in.
// The caller holds writeMu.
func (e *Enforcer) load(ctx context.Context, docs Documents) error {
	grants, err := e.loadGrants(ctx)
	if err != nil {
		return err
	}
	enf, err := build(docs, grants)
	if err != nil {
		return err
	}
	e.swap(enf, docs)
	return nil
}

// swap puts a built enforcer in force.
func (e *Enforcer) swap(enf *casbin.Enforcer, docs Documents) {
	e.mu.Lock()
	e.enf, e.docs, e.digest = enf, docs, digest(docs)
	e.clearLocked()
	e.mu.Unlock()
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
// precisely why it cannot.
func build(docs Documents, grants [][]string) (*casbin.Enforcer, error) {
	m, err := model.NewModelFromString(docs.Model)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, ModelFile, err)
	}
	for _, sec := range []string{"r", "p", "g", "e", "m"} {
		if _, ok := m[sec]; !ok {
			return nil, fmt.Errorf("%w: %s has no [%s] section", ErrInvalid, ModelFile, sectionName(sec))
		}
	}
	if n := len(m["r"]["r"].Tokens); n != 4 {
		return nil, fmt.Errorf("%w: %s: the request must have four fields (sub, obj, act, self), it has %d", ErrInvalid, ModelFile, n)
	}
	if err := checkFunctions(m); err != nil {
		return nil, err
	}
	enf, err := casbin.NewEnforcer(m)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, ModelFile, err)
	}
	enf.AddFunction("objectMatch", objectMatchFunc)
	enf.AddFunction("actionMatch", actionMatchFunc)
	enf.AddFunction("expand", expandFunc)
	if err := loadPolicyText(m, docs.Policy); err != nil {
		return nil, err
	}
	if n := len(m["g"]["g"].Tokens); len(grants) > 0 && n != 2 {
		return nil, fmt.Errorf("%w: %s: the role definition must be g = _, _ (users' permissions are stored as two-field g rules), it has %d fields", ErrInvalid, ModelFile, n)
	}
	for _, g := range grants {
		if err := persist.LoadPolicyArray(append([]string{"g"}, g...), m); err != nil {
			return nil, fmt.Errorf("%w: load grant %v: %v", ErrInvalid, g, err)
		}
	}
	if err := enf.BuildRoleLinks(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	// A model can parse and still fail on every request (a misspelt
	// function, a field that does not exist): ask it once.
	if _, err := enf.Enforce("credential:validate", "status", "read", "validate"); err != nil {
		return nil, fmt.Errorf("%w: %s: the matcher cannot be evaluated: %v", ErrInvalid, ModelFile, err)
	}
	return enf, nil
}

// callPattern finds function calls in a matcher.
var callPattern = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)\s*\(`)

// checkFunctions refuses a matcher that calls a function nobody defines:
// the expression engine would otherwise read the name as a value and the
// model would deny, or allow, without saying why.
func checkFunctions(m model.Model) error {
	fm := model.LoadFunctionMap()
	known := fm.GetFunctions()
	for _, name := range []string{"objectMatch", "actionMatch", "expand", "eval"} {
		known[name] = nil
	}
	for key := range m["g"] {
		known[key] = nil
	}
	for _, ast := range m["m"] {
		for _, call := range callPattern.FindAllStringSubmatch(ast.Value, -1) {
			if _, ok := known[call[1]]; !ok {
				return fmt.Errorf("%w: %s: the matcher calls %s(), which is not a function; grin provides objectMatch, actionMatch and expand, Casbin keyMatch, regexMatch, globMatch and the like, and each role definition (g) is one", ErrInvalid, ModelFile, call[1])
			}
		}
	}
	return nil
}

func sectionName(sec string) string {
	return map[string]string{
		"r": "request_definition", "p": "policy_definition", "g": "role_definition",
		"e": "policy_effect", "m": "matchers",
	}[sec]
}

// loadPolicyText loads policy lines into m, checking each against the model
// so that a mistake is reported with its line number.
func loadPolicyText(m model.Model, text string) error {
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r := csv.NewReader(strings.NewReader(line))
		r.TrimLeadingSpace = true
		fields, err := r.Read()
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: %s line %d: %v", ErrInvalid, PolicyFile, i+1, err)
		}
		for j := range fields {
			fields[j] = strings.TrimSpace(fields[j])
		}
		if len(fields) == 0 {
			continue
		}
		key := fields[0]
		if key == "" {
			return fmt.Errorf("%w: %s line %d: a rule starts with its type, p or g", ErrInvalid, PolicyFile, i+1)
		}
		sec := key[:1]
		ast, ok := m[sec][key]
		if !ok || (sec != "p" && sec != "g") {
			return fmt.Errorf("%w: %s line %d: %q is not a rule type of the model (use p or g)", ErrInvalid, PolicyFile, i+1, key)
		}
		if got, want := len(fields)-1, len(ast.Tokens); got != want {
			return fmt.Errorf("%w: %s line %d: a %s rule has %d fields after %q, this one has %d", ErrInvalid, PolicyFile, i+1, key, want, key, got)
		}
		for _, f := range fields[1:] {
			if f == "" {
				return fmt.Errorf("%w: %s line %d: empty field", ErrInvalid, PolicyFile, i+1)
			}
		}
		if err := persist.LoadPolicyArray(fields, m); err != nil {
			return fmt.Errorf("%w: %s line %d: %v", ErrInvalid, PolicyFile, i+1, err)
		}
	}
	return nil
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
