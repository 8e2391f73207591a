package policies

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/casbin/casbin/v3"
)

// DecisionChange is one decision that a change of the policy would turn.
type DecisionChange struct {
	// Subject says whom: a role, a credential, a plugin, or the users that
	// hold the same roles (counted, one named), users by name.
	Subject        string
	Object, Action string
	// Before and After are allow, deny or none (no rule allows it).
	Before, After string
	// Reason explains After, naming the rule that decides it.
	Reason string
}

// String reads the change as a sentence.
func (c DecisionChange) String() string {
	verb := map[string]string{"allow": "may now", "deny": "is now denied", "none": "may no longer"}[c.After]
	return fmt.Sprintf("%s %s %s %s (was %s; %s)", c.Subject, verb, c.Action, c.Object, c.Before, c.Reason)
}

// Compare returns the decisions docs would change against the policy in
// force: for every role, credential and plugin the policies name, and for
// every internal user, over the Cat's permissions, the policy itself, each
// declarative space in spaces and the user's own memory and conversation.
// Users who hold the same roles (and whom no rule names) decide alike, so
// they are compared once, as a group: a policy of 100,000 users and a few
// kinds of users costs a few comparisons. docs must load.
func (e *Enforcer) Compare(ctx context.Context, docs Documents, spaces []string) ([]DecisionChange, error) {
	grants, err := e.loadGrants(ctx)
	if err != nil {
		return nil, err
	}
	n, err := e.lookupNames(ctx, docs.Policy)
	if err != nil {
		return nil, err
	}
	after, err := build(docs, grants, n)
	if err != nil {
		return nil, err
	}
	// The policy in force is rebuilt rather than read: grant changes
	// alter the enforcer in force in place.
	beforeDocs := e.Documents()
	nb, err := e.lookupNames(ctx, beforeDocs.Policy)
	if err != nil {
		return nil, err
	}
	before, err := build(beforeDocs, grants, nb)
	if err != nil {
		return nil, err
	}

	// Subjects the documents name outright, on either side.
	named := map[string]bool{}
	namable := func(f string) bool { return !strings.Contains(f, "{") && !strings.HasPrefix(f, "perm:") }
	for _, enf := range []*casbin.Enforcer{before, after} {
		for _, get := range []func() ([][]string, error){enf.GetPolicy, enf.GetGroupingPolicy} {
			rows, err := get()
			if err != nil {
				return nil, fmt.Errorf("compare policies: %w", err)
			}
			for _, r := range rows {
				for _, f := range r[:min(2, len(r))] {
					if namable(f) {
						named[f] = true
					}
				}
			}
		}
	}
	// The grants, beside the rules, are the same on both sides.
	if g := graphOf(after); g != nil {
		g.grants.each(func(subject string, roles []string) bool {
			if namable(subject) {
				named[subject] = true
			}
			for _, r := range roles {
				if namable(r) {
					named[r] = true
				}
			}
			return true
		})
	}
	for _, c := range credentialSubjects {
		named[c] = true
	}
	// Users the rules name (not the grants, which name every user) decide
	// unlike others with the same roles.
	ruleUsers := map[string]bool{}
	for _, nn := range []*names{nb, n} {
		for id := range nn.users {
			ruleUsers[id] = true
		}
		for _, id := range nn.ids {
			ruleUsers[id] = true
		}
	}

	type subject struct{ id, label, self string }
	var subjects []subject
	for s := range named {
		if e.users != nil && !strings.Contains(s, ":") {
			continue // users are below, by name
		}
		subjects = append(subjects, subject{s, s, ""})
	}
	slices.SortFunc(subjects, func(a, b subject) int { return strings.Compare(a.id, b.id) })

	// Users, grouped by the roles they hold on both sides.
	if e.users != nil {
		type group struct {
			first subject
			count int
		}
		groups := map[string]*group{}
		var order []string
		var ferr error
		err := e.users.EachUser(ctx, func(id, username string) bool {
			key := "\x00" + id // a user the rules name is a group of one
			if !ruleUsers[id] {
				rb, err1 := before.GetImplicitRolesForUser(id)
				ra, err2 := after.GetImplicitRolesForUser(id)
				if ferr = err1; ferr == nil {
					ferr = err2
				}
				if ferr != nil {
					return false
				}
				slices.Sort(rb)
				slices.Sort(ra)
				key = strings.Join(rb, ",") + "\x00" + strings.Join(ra, ",")
			}
			g, ok := groups[key]
			if !ok {
				g = &group{first: subject{id, UserPrefix + username, id}}
				groups[key] = g
				order = append(order, key)
			}
			g.count++
			return true
		})
		if err == nil {
			err = ferr
		}
		if err != nil {
			return nil, fmt.Errorf("compare policies: %w", err)
		}
		for _, k := range order {
			g := groups[k]
			s := g.first
			if g.count > 1 {
				s.label = fmt.Sprintf("%s and %d other users with the same roles", s.label, g.count-1)
			}
			subjects = append(subjects, s)
		}
	}

	objects := []string{PolicyObject, "procedural"}
	for _, r := range resources {
		objects = append(objects, r.Object())
	}
	for _, s := range spaces {
		objects = append(objects, "declarative:"+s)
	}
	slices.Sort(objects)
	objects = slices.Compact(objects)

	rulesAfter := n.rules
	var out []DecisionChange
	for _, s := range subjects {
		objs := objects
		if s.self != "" {
			objs = append(slices.Clone(objects), "episodic:"+s.self, "conversation:"+s.self)
		}
		for _, o := range objs {
			for _, p := range permissions {
				a := p.Action()
				vb, _, err := verdictOn(before, s.id, o, a, s.self)
				if err != nil {
					return nil, err
				}
				va, rule, err := verdictOn(after, s.id, o, a, s.self)
				if err != nil {
					return nil, err
				}
				if vb == va {
					continue
				}
				d := Decision{Allowed: va == allowVerdict, Denied: va == denyVerdict, Rule: rule}
				if w, ok := rulesAfter[strings.Join(rule, ", ")]; ok {
					d.Line, d.Text = w.line, w.text
				}
				out = append(out, DecisionChange{Subject: s.label, Object: o, Action: a, Before: vb.String(), After: va.String(), Reason: d.Reason()})
			}
		}
	}
	return out, nil
}

// verdictOn asks enf, and returns the deciding rule with its type first.
func verdictOn(enf *casbin.Enforcer, sub, obj, act, self string) (verdict, []string, error) {
	ok, rule, err := enf.EnforceEx(sub, obj, act, self)
	if err != nil {
		return undecided, nil, fmt.Errorf("decide %s %s %s: %w", sub, obj, act, err)
	}
	v := verdictOf(ok, rule)
	if len(rule) > 0 {
		rule = append([]string{"p"}, rule...)
	}
	return v, rule, nil
}

func (v verdict) String() string {
	switch v {
	case allowVerdict:
		return "allow"
	case denyVerdict:
		return "deny"
	}
	return "none"
}
