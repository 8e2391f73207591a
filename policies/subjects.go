package policies

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/casbin/casbin/v3/model"
	"golang.org/x/text/unicode/norm"
)

// Subject kinds. Rules and requests name subjects with these prefixes; an
// internal user is named by id, or in files and the API as
// user:<username>, which grin resolves to the id when it loads the policy.
const (
	UserPrefix       = "user:"
	RolePrefix       = "role:"
	PluginPrefix     = "plugin:"
	CredentialPrefix = "credential:"
)

// Credential subjects: identities that are not internal users act as one of
// these (package auth decides which).
const (
	SubjectAPIKey    = "credential:api_key"
	SubjectWSKey     = "credential:ws_key"
	SubjectAnonymous = "credential:anonymous"
)

var credentialSubjects = []string{SubjectAPIKey, SubjectWSKey, SubjectAnonymous}

// ErrUnknownSubject marks a subject given by name (API, command line) that
// is no user, role, plugin or credential grin knows.
var ErrUnknownSubject = errors.New("unknown subject")

// names is what a policy's subjects resolve to, looked up before it is
// built: user:<username> to ids, and which bare subjects are user ids. It
// collects the warnings of the policy it resolves: rules naming subjects
// that match nothing.
type names struct {
	ids      map[string]string // username -> id, for user:<username> subjects
	users    map[string]bool   // bare subjects that are user ids
	isName   map[string]bool   // bare subjects that are no id but a username
	warnings problems
	mentions map[string]bool // usernames the policy names as user:<username>
	rules    map[string]writtenRule
	// loaded are the rules of the policy as build loaded them.
	loaded fileRules
	// checkUsers is false without a directory: user subjects are then
	// neither resolved nor warned about.
	checkUsers bool
}

// Warnings are the policy's rules that name a subject matching nothing: a
// user:<username> no user has, a user id or credential that does not exist,
// a role given but granting nothing. Such a rule loads but has no effect.
func (e *Enforcer) Warnings() []Problem {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return slices.Clone(e.warnings)
}

// WarningsFor returns the warnings docs would have (see Warnings); docs
// that do not load have none, their problems are the error.
func (e *Enforcer) WarningsFor(ctx context.Context, docs Documents) ([]Problem, error) {
	n, err := e.lookupNames(ctx, docs.Policy)
	if err != nil {
		return nil, err
	}
	if _, err := build(docs, nil, n); err != nil {
		return nil, err
	}
	return n.warnings, nil
}

// NamesUser reports whether the policy in force names the user called
// username as user:<username>: creating a user of that name, or renaming
// one to it, gives what those rules give.
func (e *Enforcer) NamesUser(username string) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.mentions[norm.NFC.String(username)]
}

// ResolveSubject turns a subject given by a person into the policy subject
// decisions are asked with: a username, a user id or user:<username> names
// an internal user (its id); role:, perm:, plugin:, credential: and other
// prefixed subjects (an identity provider's ids) are taken as they are. It
// returns the subject and a label that says whom it names.
func (e *Enforcer) ResolveSubject(ctx context.Context, s string) (subject, label string, err error) {
	if e.users == nil {
		return s, s, nil
	}
	if name, ok := strings.CutPrefix(s, UserPrefix); ok {
		id, found, err := e.users.UserID(ctx, name)
		if err != nil {
			return "", "", err
		}
		if !found {
			return "", "", fmt.Errorf("%w: no user is called %q", ErrUnknownSubject, name)
		}
		return id, fmt.Sprintf("%s (user %s)", id, name), nil
	}
	if strings.Contains(s, ":") {
		if strings.HasPrefix(s, CredentialPrefix) && !slices.Contains(credentialSubjects, s) {
			return "", "", fmt.Errorf("%w: %q is not a credential subject; they are %s", ErrUnknownSubject, s, strings.Join(credentialSubjects, ", "))
		}
		return s, s, nil
	}
	if name, ok, err := e.users.Username(ctx, s); err != nil {
		return "", "", err
	} else if ok {
		return s, fmt.Sprintf("%s (user %s)", s, name), nil
	}
	id, ok, err := e.users.UserID(ctx, s)
	if err != nil {
		return "", "", err
	}
	if !ok {
		return "", "", fmt.Errorf("%w: no user is called %q or has that id; name a user by username or id, or a role (role:…), a plugin (plugin:…) or a credential (%s)",
			ErrUnknownSubject, s, strings.Join(credentialSubjects, ", "))
	}
	return id, fmt.Sprintf("%s (user %s)", id, s), nil
}

// writtenRule is a rule as policy.csv has it, and where.
type writtenRule struct {
	line int
	text string
}

// policyLine is one rule of a policy text, split into fields; lines that
// are blank, comments or do not parse have no fields.
type policyLine struct {
	text   string
	fields []string
}

func splitPolicy(text string) []policyLine {
	lines := strings.Split(text, "\n")
	out := make([]policyLine, len(lines))
	for i, line := range lines {
		out[i].text = line
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		r := csv.NewReader(strings.NewReader(t))
		r.TrimLeadingSpace = true
		fields, err := r.Read()
		if err != nil {
			continue
		}
		for j := range fields {
			fields[j] = strings.TrimSpace(fields[j])
		}
		out[i].fields = fields
	}
	return out
}

// subjectFields are the positions (in a rule's fields, the type first) that
// name subjects: a p rule's sub (or its first field), a g rule's first two.
func subjectFields(m model.Model, key string) []int {
	ast, ok := m[key[:1]][key]
	if !ok {
		return nil
	}
	if key[0] == 'g' {
		return []int{1, 2}
	}
	for i, t := range ast.Tokens {
		if strings.HasSuffix(t, "_sub") {
			return []int{i + 1}
		}
	}
	return []int{1}
}

// lookupNames reads which users a policy's subjects name. Without a
// directory (tools that only read the policy) nothing resolves, and
// nothing is warned about users.
func (e *Enforcer) lookupNames(ctx context.Context, policy string) (*names, error) {
	n := &names{ids: map[string]string{}, users: map[string]bool{}, isName: map[string]bool{}, mentions: map[string]bool{}, rules: map[string]writtenRule{}, checkUsers: e.users != nil}
	if e.users == nil {
		return n, nil
	}
	seen := map[string]bool{}
	for _, l := range splitPolicy(policy) {
		if len(l.fields) < 2 {
			continue
		}
		// Subjects are in the first two fields of every rule type grin's
		// models use; looking at both costs a lookup or two more.
		for _, f := range l.fields[1:min(3, len(l.fields))] {
			if seen[f] || strings.Contains(f, "{") {
				continue
			}
			seen[f] = true
			if name, ok := strings.CutPrefix(f, UserPrefix); ok {
				name = norm.NFC.String(name)
				n.mentions[name] = true
				id, found, err := e.users.UserID(ctx, name)
				if err != nil {
					return nil, err
				}
				if found {
					n.ids[name] = id
				}
				continue
			}
			if strings.Contains(f, ":") {
				continue
			}
			_, isUser, err := e.users.Username(ctx, f)
			if err != nil {
				return nil, err
			}
			if isUser {
				n.users[f] = true
				continue
			}
			_, isName, err := e.users.UserID(ctx, f)
			if err != nil {
				return nil, err
			}
			n.isName[f] = isName
		}
	}
	return n, nil
}

// resolve rewrites the subject fields of one rule (fields[0] is its type)
// to what decisions are asked with, and warns about subjects that match
// nothing.
func (n *names) resolve(m model.Model, fields []string, line int) {
	checkUsers := n.checkUsers
	for _, i := range subjectFields(m, fields[0]) {
		if i >= len(fields) {
			continue
		}
		f := fields[i]
		switch {
		case strings.Contains(f, "{"):
		case strings.HasPrefix(f, UserPrefix):
			if !checkUsers {
				continue
			}
			name := norm.NFC.String(strings.TrimPrefix(f, UserPrefix))
			if id, ok := n.ids[name]; ok {
				fields[i] = id
			} else {
				n.warnings.add(PolicyFile, line, "%s names no user: nobody is called %q, so this rule has no effect until someone is", f, name)
			}
		case strings.HasPrefix(f, CredentialPrefix):
			if !slices.Contains(credentialSubjects, f) {
				n.warnings.add(PolicyFile, line, "%s is not a credential subject, so this rule has no effect; they are %s", f, strings.Join(credentialSubjects, ", "))
			}
		case strings.Contains(f, ":"):
		case !checkUsers:
		case n.users[f]:
		case n.isName[f]:
			n.warnings.add(PolicyFile, line, "%q is a username, but rules name users by id or as user:<username>: write user:%s, or this rule has no effect", f, f)
		default:
			n.warnings.add(PolicyFile, line, "%q is no user's id (nor a role, plugin or credential, which have a prefix such as role:), so this rule has no effect", f)
		}
	}
}

// warnUnusedRoles warns about roles given by g rules (the second field)
// that no rule grants anything: a misspelt role gives nothing.
func (n *names) warnUnusedRoles(m model.Model, lines []policyLine) {
	granted := map[string]bool{} // role: subjects of p rules and members of other roles
	for _, l := range lines {
		if len(l.fields) < 2 {
			continue
		}
		if l.fields[0][0] == 'p' {
			for _, i := range subjectFields(m, l.fields[0]) {
				if i < len(l.fields) {
					granted[l.fields[i]] = true
				}
			}
		} else if l.fields[0][0] == 'g' {
			granted[l.fields[1]] = true
		}
	}
	for i, l := range lines {
		if len(l.fields) < 3 || l.fields[0][0] != 'g' {
			continue
		}
		role := l.fields[2]
		if strings.HasPrefix(role, RolePrefix) && !granted[role] {
			n.warnings.add(PolicyFile, i+1, "%s is given here but no rule grants it anything, so this rule has no effect", role)
		}
	}
}

// rewriteSubjects replaces, in the subject fields of every rule, the
// subject from with to; lines that do not parse stay as they are. It
// reports whether anything changed.
func rewriteSubjects(text, from, to string) (string, bool) {
	lines := splitPolicy(text)
	changed := false
	for i, l := range lines {
		if len(l.fields) < 2 {
			continue
		}
		hit := false
		for j := 1; j < min(3, len(l.fields)); j++ {
			if norm.NFC.String(l.fields[j]) == from {
				l.fields[j], hit = to, true
			}
		}
		if hit {
			lines[i].text = joinFields(l.fields)
			changed = true
		}
	}
	return joinLines(lines), changed
}

// retireSubject comments out every rule whose subject (a p rule's first
// field, a g rule's first) is one of subs, saying why.
func retireSubject(text string, why string, subs ...string) (string, bool) {
	lines := splitPolicy(text)
	changed := false
	for i, l := range lines {
		if len(l.fields) < 2 || !slices.Contains(subs, norm.NFC.String(l.fields[1])) {
			continue
		}
		lines[i].text = "# " + why + ": " + strings.TrimSpace(l.text)
		changed = true
	}
	return joinLines(lines), changed
}

func joinFields(fields []string) string {
	out := make([]string, len(fields))
	for i, f := range fields {
		if strings.ContainsAny(f, ",\"") {
			f = `"` + strings.ReplaceAll(f, `"`, `""`) + `"`
		}
		out[i] = f
	}
	return strings.Join(out, ", ")
}

func joinLines(lines []policyLine) string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.text
	}
	return strings.Join(out, "\n")
}

// RenameUser keeps the rules that name a user as user:<username> right
// through a rename. rename, which renames the user in the users table, runs
// under the policy's write lock, so no reload sees the new name with the
// old rules; then every user:<oldName> subject becomes user:<newName> in
// the policy in force and in policy.csv, as a new version.
func (e *Enforcer) RenameUser(ctx context.Context, oldName, newName string, rename func() error) error {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	if err := rename(); err != nil {
		return err
	}
	e.mu.RLock()
	named := e.mentions[oldName] || e.mentions[newName]
	e.mu.RUnlock()
	if !named || oldName == newName {
		return nil
	}
	edit := func(text string) (string, bool) {
		return rewriteSubjects(text, UserPrefix+oldName, UserPrefix+newName)
	}
	if err := e.rewriteLocked(ctx, edit, sourceRename); err != nil {
		return fmt.Errorf("rename user:%s to user:%s in the policy: %w", oldName, newName, err)
	}
	return nil
}

// RemoveUser drops every grant stored for a deleted user, and comments out
// the rules of policy.csv whose subject is the user (user:<username> or the
// id), as a new version: the user's rules must not pass to someone created
// later under the same name.
func (e *Enforcer) RemoveUser(ctx context.Context, id, username string) error {
	if err := e.RemoveSubject(ctx, id); err != nil {
		return err
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	why := fmt.Sprintf("user %s was deleted on %s", username, time.Now().UTC().Format(time.DateOnly))
	edit := func(text string) (string, bool) { return retireSubject(text, why, UserPrefix+username, id) }
	if _, changed := edit(e.Documents().Policy); !changed {
		return nil
	}
	if err := e.rewriteLocked(ctx, edit, sourceDelete); err != nil {
		return fmt.Errorf("retire the rules of deleted user %s: %w", username, err)
	}
	return nil
}

// UserAdded tells the policy that a user called username now exists: rules
// naming user:<username> start to apply to them.
func (e *Enforcer) UserAdded(ctx context.Context, username string) error {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	e.mu.RLock()
	named := e.mentions[username]
	e.mu.RUnlock()
	if !named {
		return nil
	}
	if err := e.rewriteLocked(ctx, func(text string) (string, bool) { return text, false }, ""); err != nil {
		return fmt.Errorf("resolve user:%s in the policy: %w", username, err)
	}
	return nil
}

// rewriteLocked applies edit to the policy in force and rebuilds it (its
// names resolved again). When edit changed the text the result is a new
// version, written to policy.csv; when the files were refused, the
// refused policy.csv gets the same edit and stays refused. The caller
// holds writeMu.
func (e *Enforcer) rewriteLocked(ctx context.Context, edit func(string) (string, bool), source string) error {
	return e.retryStale(ctx, func() error { return e.rewriteOnce(ctx, edit, source) })
}

// rewriteOnce is rewriteLocked's work, against the version in force.
func (e *Enforcer) rewriteOnce(ctx context.Context, edit func(string) (string, bool), source string) error {
	docs := e.Documents()
	text, changed := edit(docs.Policy)
	docs.Policy = text
	status := e.FileStatus()
	commit := func() error {
		if !changed {
			return nil
		}
		if err := e.record(ctx, docs, source); err != nil {
			return err
		}
		path := filepath.Join(e.dir, PolicyFile)
		content := []byte(docs.Policy)
		if status.Refused {
			b, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("read %s: %w", PolicyFile, err)
			}
			s, _ := edit(string(b))
			content = []byte(s)
		}
		if err := writeFileAtomic(path, content); err != nil {
			return fmt.Errorf("write %s: %w", PolicyFile, err)
		}
		if status.Refused {
			return nil // the files stay an edit, refused
		}
		return e.noteWritten(docs, e.inForce.Load())
	}
	if done, err := e.putInForce(ctx, docs, false, false, status, commit); done || err != nil {
		return err
	}
	grants, err := e.loadGrants(ctx)
	if err != nil {
		return err
	}
	n, err := e.lookupNames(ctx, docs.Policy)
	if err != nil {
		return err
	}
	enf, err := build(docs, grants, n)
	if err != nil {
		return err
	}
	if err := commit(); err != nil {
		return err
	}
	e.swap(enf, docs, n, status)
	return nil
}
