package policies

import (
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/casbin/casbin/v3"
	"github.com/casbin/casbin/v3/rbac"
)

// The stored grants (every internal user's permission dictionary: ten
// grouping rules a user, a million with 100,000 users) are kept out of
// Casbin's role manager, in a grantTable that Casbin reaches through
// roleGraph, a role manager of grin's own. Casbin's default role manager
// keeps a link as a sync.Map entry at each end and a role as six
// sync.Maps: building it for a million links was most of the time a
// start took, and its garbage most of the rest (RATIONALE.md, "Users'
// grants live beside Casbin's role graph"). The table keeps each user's
// roles as one shared, immutable list: users with the same dictionary
// share it. Nothing outside this file knows the difference: the g
// function, the roles a subject holds and the members of a role answer
// exactly as Casbin's own role manager did with the grants among the
// policy's rules.

// grantTable holds the stored grants: the roles granted to each subject.
//
// Notes: not safe for concurrent use; the enforcer in force changes its
// table under Enforcer.mu held for writing, and reads it under mu held
// for reading. A table read by enforcers not yet in force (a candidate
// policy, a comparison) is never changed.
type grantTable struct {
	subjects map[string]*roleList
	// lists interns the role lists by their key: subjects that hold the
	// same roles share one list.
	lists map[string]*roleList
	// names interns role names: there are few, held a million times.
	names map[string]string
	pairs int
}

// roleList is a sorted list of roles without duplicates, shared by every
// subject holding exactly those roles. Its roles never change.
type roleList struct {
	roles []string
	key   string
	// holders are the subjects holding the list: a role's members are
	// found among the few lists that hold it, not among every subject.
	holders map[string]struct{}
}

func newGrantTable() *grantTable {
	return &grantTable{subjects: map[string]*roleList{}, lists: map[string]*roleList{}, names: map[string]string{}}
}

// listKey writes the key of a list of roles: each as <length>:<role>, so
// that no two lists have the same key whatever their roles hold.
func listKey(buf []byte, roles []string) []byte {
	buf = buf[:0]
	for _, r := range roles {
		buf = strconv.AppendInt(buf, int64(len(r)), 10)
		buf = append(buf, ':')
		buf = append(buf, r...)
	}
	return buf
}

// assign makes roles (sorted, without duplicates; copied when kept) the
// grants of subject, sharing the list of any other subject holding the
// same. buf is scratch space for the list's key, returned for reuse.
func (t *grantTable) assign(subject string, roles []string, buf []byte) []byte {
	if old := t.subjects[subject]; old != nil {
		t.pairs -= len(old.roles)
		delete(old.holders, subject)
		if len(old.holders) == 0 {
			delete(t.lists, old.key)
		}
		delete(t.subjects, subject)
	}
	if len(roles) == 0 {
		return buf
	}
	buf = listKey(buf, roles)
	l, ok := t.lists[string(buf)]
	if !ok {
		own := make([]string, len(roles))
		for i, r := range roles {
			own[i] = t.name(r)
		}
		l = &roleList{roles: own, key: string(buf), holders: map[string]struct{}{}}
		t.lists[l.key] = l
	}
	l.holders[subject] = struct{}{}
	t.subjects[subject] = l
	t.pairs += len(l.roles)
	return buf
}

// name returns the interned copy of a role name.
func (t *grantTable) name(role string) string {
	if n, ok := t.names[role]; ok {
		return n
	}
	t.names[role] = role
	return role
}

// rolesOf returns the roles granted to subject, sorted. The slice is
// shared: callers must not change it.
func (t *grantTable) rolesOf(subject string) []string {
	if l := t.subjects[subject]; l != nil {
		return l.roles
	}
	return nil
}

// has reports whether role is granted to subject.
func (t *grantTable) has(subject, role string) bool {
	_, ok := slices.BinarySearch(t.rolesOf(subject), role)
	return ok
}

// set makes roles the grants of subject, and reports whether that changed
// anything.
func (t *grantTable) set(subject string, roles []string) bool {
	roles = slices.Clone(roles)
	slices.Sort(roles)
	roles = slices.Compact(roles)
	if slices.Equal(t.rolesOf(subject), roles) {
		return false
	}
	t.assign(subject, roles, nil)
	return true
}

// add grants role to subject, and reports whether it was not already.
func (t *grantTable) add(subject, role string) bool {
	if t.has(subject, role) {
		return false
	}
	return t.set(subject, append(slices.Clone(t.rolesOf(subject)), role))
}

// remove takes role from subject, and reports whether it was granted.
func (t *grantTable) remove(subject, role string) bool {
	if !t.has(subject, role) {
		return false
	}
	return t.set(subject, slices.DeleteFunc(slices.Clone(t.rolesOf(subject)), func(r string) bool { return r == role }))
}

// each calls fn with every subject and its roles (shared, not to be
// changed) until fn returns false.
func (t *grantTable) each(fn func(subject string, roles []string) bool) {
	for s, l := range t.subjects {
		if !fn(s, l.roles) {
			return
		}
	}
}

// holders returns the subjects granted any of roles, from the few lists
// that hold one.
func (t *grantTable) holders(roles map[string]bool) []string {
	var out []string
	for _, l := range t.lists {
		if slices.ContainsFunc(l.roles, func(r string) bool { return roles[r] }) {
			for s := range l.holders {
				out = append(out, s)
			}
		}
	}
	return out
}

// size is the number of (subject, role) grants.
func (t *grantTable) size() int {
	if t == nil {
		return 0
	}
	return t.pairs
}

// maxRoleDepth is how many links a chain of roles may have, as in
// Casbin's default role manager (which grin used before).
const maxRoleDepth = 10

// roleGraph is the role manager of an enforcer's g rules: the links of
// policy.csv (and whatever else Casbin adds through AddLink) beside the
// stored grants, as one graph.
//
// Notes: like the grantTable, it is changed only under Enforcer.mu held
// for writing (Casbin calls AddLink and DeleteLink from rule changes made
// under it) and read under it held for reading, so it takes no lock of
// its own: a decision never waits for another, where Casbin's default
// role manager takes a mutex in every HasLink. It supports no matching
// functions or domains; grin registers none, and build only installs it
// for a role definition g = _, _.
type roleGraph struct {
	// links are the rules Casbin loaded: member -> roles, in order.
	links  map[string][]string
	grants *grantTable
}

var _ rbac.RoleManager = (*roleGraph)(nil)

func newRoleGraph(grants *grantTable) *roleGraph {
	if grants == nil {
		grants = newGrantTable()
	}
	return &roleGraph{links: map[string][]string{}, grants: grants}
}

// graphOf returns the role graph of enf's g rules, or nil when its model
// has a role definition grin's graph does not serve.
func graphOf(enf *casbin.Enforcer) *roleGraph {
	g, _ := enf.GetRoleManager().(*roleGraph)
	return g
}

// errNoGrantRole is returned when grants are changed under a model whose
// role definition cannot hold them.
var errNoGrantRole = errors.New("the model has no role definition g = _, _, where users' permissions are stored")

// changeGrants runs fn on the grants of enf and, when fn reports a change,
// drops what Casbin remembered of the graph: a compiled matcher keeps the
// answers of its g function until the role manager is set again.
func changeGrants(enf *casbin.Enforcer, fn func(*grantTable) bool) error {
	g := graphOf(enf)
	if g == nil {
		return errNoGrantRole
	}
	if fn(g.grants) {
		enf.SetRoleManager(g)
	}
	return nil
}

// next calls fn with the roles name holds directly: its links, then its
// grants.
func (g *roleGraph) next(name string, fn func(role string)) {
	for _, r := range g.links[name] {
		fn(r)
	}
	for _, r := range g.grants.rolesOf(name) {
		fn(r)
	}
}

// Clear forgets the links Casbin added; the grants stay, they are not
// Casbin's.
func (g *roleGraph) Clear() error {
	clear(g.links)
	return nil
}

// AddLink makes name1 a member of name2.
func (g *roleGraph) AddLink(name1, name2 string, _ ...string) error {
	if !slices.Contains(g.links[name1], name2) {
		g.links[name1] = append(g.links[name1], name2)
	}
	return nil
}

// BuildRelationship is AddLink (deprecated in Casbin's interface).
func (g *roleGraph) BuildRelationship(name1, name2 string, domain ...string) error {
	return g.AddLink(name1, name2, domain...)
}

// DeleteLink takes name1 out of name2; a grant of the same link stays.
func (g *roleGraph) DeleteLink(name1, name2 string, _ ...string) error {
	roles := slices.DeleteFunc(slices.Clone(g.links[name1]), func(r string) bool { return r == name2 })
	if len(roles) == 0 {
		delete(g.links, name1)
	} else {
		g.links[name1] = roles
	}
	return nil
}

// visited is a small set of names: a slice while small, as a chain of
// roles from one subject usually is.
type visited struct {
	list []string
	set  map[string]bool
}

// add reports whether name was not in the set yet, and adds it.
func (v *visited) add(name string) bool {
	if v.set != nil {
		if v.set[name] {
			return false
		}
		v.set[name] = true
		return true
	}
	if slices.Contains(v.list, name) {
		return false
	}
	v.list = append(v.list, name)
	if len(v.list) > 32 {
		v.set = map[string]bool{}
		for _, n := range v.list {
			v.set[n] = true
		}
	}
	return true
}

// HasLink reports whether name1 holds name2, directly or through a chain
// of at most maxRoleDepth links.
func (g *roleGraph) HasLink(name1, name2 string, _ ...string) (bool, error) {
	if name1 == name2 {
		return true, nil
	}
	var seen visited
	seen.add(name1)
	frontier := []string{name1}
	found := false
	for level := 0; level < maxRoleDepth && len(frontier) > 0 && !found; level++ {
		var next []string
		for _, n := range frontier {
			g.next(n, func(r string) {
				if r == name2 {
					found = true
				} else if !found && seen.add(r) {
					next = append(next, r)
				}
			})
			if found {
				break
			}
		}
		frontier = next
	}
	return found, nil
}

// GetRoles returns the roles name holds directly.
func (g *roleGraph) GetRoles(name string, _ ...string) ([]string, error) {
	var seen visited
	out := []string{}
	g.next(name, func(r string) {
		if seen.add(r) {
			out = append(out, r)
		}
	})
	return out, nil
}

// users returns the direct members of any of names that are not in seen,
// and adds them to it.
func (g *roleGraph) users(names map[string]bool, seen map[string]bool) []string {
	var out []string
	for m, roles := range g.links {
		if !seen[m] && slices.ContainsFunc(roles, func(r string) bool { return names[r] }) {
			seen[m] = true
			out = append(out, m)
		}
	}
	for _, m := range g.grants.holders(names) {
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return out
}

// GetUsers returns the direct members of name.
func (g *roleGraph) GetUsers(name string, _ ...string) ([]string, error) {
	out := g.users(map[string]bool{name: true}, map[string]bool{})
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// GetImplicitRoles returns every role name holds, through chains of at most
// maxRoleDepth links, nearest first.
func (g *roleGraph) GetImplicitRoles(name string, _ ...string) ([]string, error) {
	var seen visited
	seen.add(name)
	var out []string
	frontier := []string{name}
	for level := 0; level < maxRoleDepth && len(frontier) > 0; level++ {
		var next []string
		for _, n := range frontier {
			g.next(n, func(r string) {
				if seen.add(r) {
					next = append(next, r)
				}
			})
		}
		out = append(out, next...)
		frontier = next
	}
	return out, nil
}

// GetImplicitUsers returns every member of name, through chains of at most
// maxRoleDepth links, nearest first.
func (g *roleGraph) GetImplicitUsers(name string, _ ...string) ([]string, error) {
	seen := map[string]bool{name: true}
	var out []string
	frontier := map[string]bool{name: true}
	for level := 0; level < maxRoleDepth && len(frontier) > 0; level++ {
		next := g.users(frontier, seen)
		out = append(out, next...)
		frontier = map[string]bool{}
		for _, n := range next {
			frontier[n] = true
		}
	}
	return out, nil
}

// GetDomains returns the one, unnamed domain: the graph has no domains.
func (g *roleGraph) GetDomains(string) ([]string, error) { return []string{""}, nil }

// GetAllDomains returns the one, unnamed domain.
func (g *roleGraph) GetAllDomains() ([]string, error) { return []string{""}, nil }

// PrintRoles does nothing: grin logs through slog, not Casbin's logger.
func (g *roleGraph) PrintRoles() error { return nil }

// Match compares names as they are: no matching functions.
func (g *roleGraph) Match(str, pattern string) bool { return str == pattern }

// AddMatchingFunc is not supported: grin's model compares role names as
// they are, and build never calls it.
func (g *roleGraph) AddMatchingFunc(string, rbac.MatchingFunc) {}

// AddDomainMatchingFunc is not supported: the graph has no domains.
func (g *roleGraph) AddDomainMatchingFunc(string, rbac.MatchingFunc) {}

// DeleteDomain is not supported: the graph has no domains.
func (g *roleGraph) DeleteDomain(string) error {
	return errors.New("grin's role graph has no domains")
}

// groupingRules returns enf's g rules with the stored grants among them,
// each once, as Casbin's GetGroupingPolicy did when the grants were
// loaded as rules; keep, when not nil, picks the grants wanted (every
// one is a million rules with 100,000 users).
func groupingRules(enf *casbin.Enforcer, keep func(subject, role string) bool) ([][]string, error) {
	rows, err := enf.GetGroupingPolicy()
	if err != nil {
		return nil, err
	}
	g := graphOf(enf)
	if g == nil {
		return rows, nil
	}
	have := map[string]bool{}
	for _, r := range rows {
		have[strings.Join(r, "\x00")] = true
	}
	g.grants.each(func(subject string, roles []string) bool {
		for _, r := range roles {
			if (keep == nil || keep(subject, r)) && !have[subject+"\x00"+r] {
				rows = append(rows, []string{subject, r})
			}
		}
		return true
	})
	return rows, nil
}
