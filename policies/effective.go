package policies

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Effective is one object and action a subject is decided on, and the
// decision with the rule that took it.
type Effective struct {
	Object   string
	Action   string
	Decision Decision
}

// RuleLine is one rule of policy.csv as written, and its line.
type RuleLine struct {
	Line int
	Text string
}

// Profile is what the policy says about one subject.
type Profile struct {
	// Roles are the roles the subject holds, directly or through others
	// (Cat permission roles left out).
	Roles []string
	// Decisions are every object and action a rule allows the subject, or
	// a deny rule refuses it, each with its rule.
	Decisions []Effective
	// Rules are the rules of policy.csv that name the subject.
	Rules []RuleLine
}

// Explore says what subject, asking as self, may do: it decides every Cat
// resource, the policy itself, the subject's own episodic memory and
// conversation, procedural memory, each declarative space in spaces, and
// every object a rule names outright, for each Cat action and each action
// a rule names. A user's rules are found under its id and user:<username>.
func (e *Enforcer) Explore(ctx context.Context, subject, self string, spaces []string) (Profile, error) {
	names := []string{subject}
	if e.users != nil {
		name, ok, err := e.users.Username(ctx, subject)
		if err != nil {
			return Profile{}, err
		}
		if ok {
			names = append(names, UserPrefix+name)
		}
	}
	objects := []string{}
	for _, r := range resources {
		objects = append(objects, r.Object())
	}
	objects = append(objects, PolicyObject, "procedural")
	if self != "" {
		objects = append(objects, "episodic:"+self, "conversation:"+self)
	}
	for _, s := range spaces {
		objects = append(objects, "declarative:"+s)
	}
	actions := []string{}
	for _, p := range permissions {
		actions = append(actions, p.Action())
	}
	var out Profile
	for i, l := range splitPolicy(e.Documents().Policy) {
		if len(l.fields) < 3 {
			continue
		}
		if slices.Contains(names, l.fields[1]) || (l.fields[0][0] == 'g' && slices.Contains(names, l.fields[2])) {
			out.Rules = append(out.Rules, RuleLine{Line: i + 1, Text: strings.TrimSpace(l.text)})
		}
		if l.fields[0][0] != 'p' || len(l.fields) < 4 {
			continue
		}
		if o := l.fields[2]; !strings.ContainsAny(o, "*{") {
			objects = append(objects, o)
		}
		if a := l.fields[3]; a != "*" {
			actions = append(actions, a)
		}
	}
	slices.Sort(objects)
	objects = slices.Compact(objects)
	slices.Sort(actions)
	actions = slices.Compact(actions)

	for _, o := range objects {
		for _, a := range actions {
			d, err := e.Explain(Request{Subjects: []string{subject}, Self: self, Object: o, Action: a})
			if err != nil {
				return Profile{}, err
			}
			if d.Allowed || d.Denied {
				out.Decisions = append(out.Decisions, Effective{Object: o, Action: a, Decision: d})
			}
		}
	}
	_, roles, err := e.Access(subject)
	if err != nil {
		return Profile{}, err
	}
	out.Roles = roles
	return out, nil
}

// Role is a role and who holds it.
type Role struct {
	Name string
	// Members hold the role directly: users as user:<username>, other
	// subjects (credentials, other roles, plugins) as written.
	Members []string
}

// Roles lists every role (role:…) the policy names, from the rules and the
// stored grants, with its direct members, users by name.
func (e *Enforcer) Roles(ctx context.Context) ([]Role, error) {
	e.mu.RLock()
	// Only rows naming a role matter here: the grants of Cat
	// permissions to users are most of a million.
	rows, err := groupingRules(e.enf, func(subject, role string) bool {
		return strings.HasPrefix(role, RolePrefix) || strings.HasPrefix(subject, RolePrefix)
	})
	var pRows [][]string
	if err == nil {
		pRows, err = e.enf.GetPolicy()
	}
	e.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("list roles: %w", err)
	}
	members := map[string][]string{}
	for _, r := range pRows {
		if len(r) > 0 && strings.HasPrefix(r[0], RolePrefix) {
			if _, ok := members[r[0]]; !ok {
				members[r[0]] = []string{}
			}
		}
	}
	for _, r := range rows {
		if len(r) < 2 || !strings.HasPrefix(r[1], RolePrefix) {
			continue
		}
		m := r[0]
		if e.users != nil && !strings.Contains(m, ":") {
			name, ok, err := e.users.Username(ctx, m)
			if err != nil {
				return nil, err
			}
			if ok {
				m = UserPrefix + name
			}
		}
		if strings.HasPrefix(r[0], RolePrefix) {
			if _, ok := members[r[0]]; !ok {
				members[r[0]] = []string{}
			}
		}
		members[r[1]] = append(members[r[1]], m)
	}
	out := make([]Role, 0, len(members))
	for name, ms := range members {
		slices.Sort(ms)
		out = append(out, Role{Name: name, Members: slices.Compact(ms)})
	}
	slices.SortFunc(out, func(a, b Role) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
