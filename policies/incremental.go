package policies

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/casbin/casbin/v3"
	"github.com/casbin/casbin/v3/model"
)

// fileRules are the rules policy.csv put in force, by rule type ("p", "g",
// "g2", …), subjects resolved, in the order the model holds them: what
// build loaded before the stored grants. Kept so that an edit of the
// policy changes only its own rules in the enforcer in force, not the
// grants of every user (a million rules with 100,000 users, seconds to
// load).
type fileRules map[string][][]string

// snapshotRules copies the p and g rules m holds.
func snapshotRules(m model.Model) fileRules {
	out := fileRules{}
	for _, sec := range []string{"p", "g"} {
		for key, ast := range m[sec] {
			out[key] = slices.Clone(ast.Policy)
		}
	}
	return out
}

// has reports whether the rules of type key include rule.
func (f fileRules) has(key string, rule []string) bool {
	return slices.ContainsFunc(f[key], func(r []string) bool { return slices.Equal(r, rule) })
}

// ruleChange is what turns the file rules in force into those of an edit:
// the p rules of each type replaced as a whole (they are few, and their
// order can matter to the model's effect), g rules added and removed one by
// one (the role graph has no order; the grants are beside it, untouched).
type ruleChange struct {
	p            fileRules // the p rules after the change, by type
	addG, remove [][]string
	// oldP holds the p rules replaced, to undo; added and removed the g
	// rules that did change.
	oldP           map[string]pState
	added, removed [][]string
}

type pState struct {
	policy [][]string
	index  map[string]int
}

// diffRules computes the change from the file rules in force to want. A g
// rule the policy drops stays true when a stored grant gives it too: the
// grants are beside the rules (rolegraph.go), not among them.
func diffRules(have, want fileRules) *ruleChange {
	c := &ruleChange{p: fileRules{}}
	for key, rules := range want {
		if strings.HasPrefix(key, "p") {
			c.p[key] = rules
			continue
		}
		for _, r := range rules {
			if !have.has(key, r) {
				c.addG = append(c.addG, append([]string{key}, r...))
			}
		}
	}
	for key, rules := range have {
		if strings.HasPrefix(key, "p") {
			continue
		}
		for _, r := range rules {
			if !want.has(key, r) {
				c.remove = append(c.remove, append([]string{key}, r...))
			}
		}
	}
	return c
}

// apply makes the change in enf; on an error it undoes what it did.
func (c *ruleChange) apply(enf *casbin.Enforcer) error {
	m := enf.GetModel()
	c.oldP = map[string]pState{}
	c.added, c.removed = nil, nil
	for key, rules := range c.p {
		ast := m["p"][key]
		c.oldP[key] = pState{ast.Policy, ast.PolicyMap}
		index := make(map[string]int, len(rules))
		for i, r := range rules {
			index[strings.Join(r, model.DefaultSep)] = i
		}
		ast.Policy, ast.PolicyMap = slices.Clone(rules), index
	}
	for _, r := range c.remove {
		ok, err := enf.RemoveNamedGroupingPolicy(r[0], r[1:])
		if err != nil {
			return c.failed(enf, err)
		}
		if ok {
			c.removed = append(c.removed, r)
		}
	}
	for _, r := range c.addG {
		ok, err := enf.AddNamedGroupingPolicy(r[0], r[1:])
		if err != nil {
			return c.failed(enf, err)
		}
		if ok {
			c.added = append(c.added, r)
		}
	}
	return nil
}

func (c *ruleChange) failed(enf *casbin.Enforcer, err error) error {
	if uerr := c.undo(enf); uerr != nil {
		return fmt.Errorf("apply the policy's rules: %w (and undoing: %v)", err, uerr)
	}
	return fmt.Errorf("apply the policy's rules: %w", err)
}

// undo puts back what apply changed.
func (c *ruleChange) undo(enf *casbin.Enforcer) error {
	m := enf.GetModel()
	for key, old := range c.oldP {
		m["p"][key].Policy, m["p"][key].PolicyMap = old.policy, old.index
	}
	for _, r := range c.added {
		if _, err := enf.RemoveNamedGroupingPolicy(r[0], r[1:]); err != nil {
			return err
		}
	}
	for _, r := range c.removed {
		if _, err := enf.AddNamedGroupingPolicy(r[0], r[1:]); err != nil {
			return err
		}
	}
	c.added, c.removed, c.oldP = nil, nil, nil
	return nil
}

// putInForce puts docs in force by changing only the rules of policy.csv in
// the enforcer in force, when the model is the one in force. With check
// set, the change must keep an internal user able to edit the policy, found
// among the subjects of its rules and their members; keeps are asked too.
// commit, when not nil, runs after the checks and before the change takes
// effect (recording the version, writing the files); a dry run passes nil
// and changes nothing.
//
// done is false when the edit needs the policy built afresh: another
// model, no rules of the files kept (a tool without names), or no editor
// found among the rules' subjects (proving nobody can edit asks every user,
// which must not run under the lock that decisions wait on). The caller
// holds writeMu, so the grants do not change meanwhile.
func (e *Enforcer) putInForce(ctx context.Context, docs Documents, check, dryRun bool, status FileStatus, commit func() error, keeps ...Keep) (done bool, err error) {
	e.mu.RLock()
	have, inForce := e.fileRules, e.docs.Model
	e.mu.RUnlock()
	if have == nil || docs.Model != inForce {
		return false, nil
	}
	n, err := e.lookupNames(ctx, docs.Policy)
	if err != nil {
		return true, err
	}
	m, err := model.NewModelFromString(docs.Model)
	if err != nil {
		return false, nil // it is in force, so it parses; build says why if not
	}
	var ps problems
	if loadPolicyText(m, docs.Policy, n, &ps); len(ps) > 0 {
		return true, ps.err()
	}
	n.loaded = snapshotRules(m)
	c := diffRules(have, n.loaded)

	// Apply, check and undo under mu: cached decisions are of the policy
	// in force, which stays so until the commit.
	e.mu.Lock()
	if err := c.apply(e.enf); err != nil {
		e.mu.Unlock()
		return true, err
	}
	ok := true
	if check && e.users != nil {
		_, ok, _, err = e.quickEditor(ctx, e.enf)
	}
	if err == nil && ok {
		err = runKeeps(keeps, e.enf)
	}
	if uerr := c.undo(e.enf); uerr != nil {
		// The enforcer in force is now neither policy: build it afresh.
		e.mu.Unlock()
		return false, nil
	}
	e.mu.Unlock()
	if err != nil || !ok || dryRun {
		return ok, err
	}
	if commit != nil {
		if err := commit(); err != nil {
			return true, err
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := c.apply(e.enf); err != nil {
		return true, err
	}
	e.docs, e.digest, e.status = docs, digest(docs), status
	e.warnings, e.mentions, e.rules, e.fileRules = n.warnings, n.mentions, n.rules, n.loaded
	e.clearLocked()
	e.edits.Add(1)
	return true, nil
}
