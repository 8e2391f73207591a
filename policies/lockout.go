package policies

import (
	"context"
	"fmt"

	"github.com/casbin/casbin/v3"
)

// Directory tells the lockout check who grin's internal users are. Credential
// subjects (the API key, shadow users) and roles are not users: they cannot
// log in to repair a policy, so they do not count as someone left able to
// edit it.
type Directory interface {
	// EachUser calls fn with every internal user's id and username until
	// fn returns false. fn may not use the database.
	EachUser(ctx context.Context, fn func(id, username string) bool) error
	// Username returns the username of the internal user id, and whether
	// there is such a user.
	Username(ctx context.Context, id string) (string, bool, error)
	// UserID returns the id of the internal user called username (in any
	// Unicode normal form), and whether there is such a user.
	UserID(ctx context.Context, username string) (string, bool, error)
}

// editor is an internal user who may edit the policy.
type editor struct{ id, username string }

// policyEditor finds an internal user whom enf allows to edit the policy, or
// reports that there is none (ok false). enf must not be shared: the search
// takes no lock.
//
// It first tries the subjects of p rules that may edit the policy
// themselves, and their members: with grin's model the editors are among
// them, and the first administrator ends the search after a few decisions.
// Only when none of them may edit (a refusal, or a model whose matcher does
// not go through roles) does it ask about every user, so that "nobody" is
// proved for any model: one decision per user.
func (e *Enforcer) policyEditor(ctx context.Context, enf *casbin.Enforcer) (editor, bool, error) {
	if e.users == nil {
		return editor{}, false, nil
	}
	ed, ok, seen, err := e.quickEditor(ctx, enf)
	if err != nil || ok {
		return ed, ok, err
	}
	return e.anyEditor(ctx, enf, seen)
}

// quickEditor looks for an editor among the subjects of enf's p rules that
// may edit the policy, and their members: a few decisions with grin's
// model. It returns the subjects it asked about, which anyEditor need not
// ask again.
func (e *Enforcer) quickEditor(ctx context.Context, enf *casbin.Enforcer) (editor, bool, map[string]bool, error) {
	act := Edit.Action()
	seen := map[string]bool{}
	may := func(sub string) (bool, error) {
		seen[sub] = true
		ok, err := enf.Enforce(sub, PolicyObject, act, sub)
		if err != nil {
			return false, fmt.Errorf("may %s edit the policy: %w", sub, err)
		}
		return ok, nil
	}

	rules, err := enf.GetPolicy()
	if err != nil {
		return editor{}, false, nil, fmt.Errorf("list rules: %w", err)
	}
	named := map[string]bool{}
	for _, rule := range rules {
		if len(rule) == 0 {
			continue
		}
		role := expand(rule[0], PolicyObject, act)
		if named[role] {
			continue
		}
		named[role] = true
		// A role that may not edit the policy itself rarely passes the
		// right on (a rule on "{self}" could): its members, often every
		// user, are left to the full search.
		ok, err := may(role)
		if err != nil {
			return editor{}, false, nil, err
		}
		if !ok {
			continue
		}
		if ed, ok, err := e.asUser(ctx, role); err != nil || ok {
			return ed, ok, nil, err
		}
		members, err := enf.GetImplicitUsersForRole(role)
		if err != nil {
			return editor{}, false, nil, fmt.Errorf("members of %s: %w", role, err)
		}
		for _, sub := range members {
			if seen[sub] {
				continue
			}
			ok, err := may(sub)
			if err != nil {
				return editor{}, false, nil, err
			}
			if !ok {
				continue
			}
			if ed, ok, err := e.asUser(ctx, sub); err != nil || ok {
				return ed, ok, nil, err
			}
		}
	}

	return editor{}, false, seen, nil
}

// anyEditor asks enf about every internal user not in seen, until one may
// edit the policy: one decision per user.
func (e *Enforcer) anyEditor(ctx context.Context, enf *casbin.Enforcer, seen map[string]bool) (editor, bool, error) {
	act := Edit.Action()
	var found editor
	var ferr error
	err := e.users.EachUser(ctx, func(id, username string) bool {
		if seen[id] {
			return true
		}
		ok, err := enf.Enforce(id, PolicyObject, act, id)
		if err != nil {
			err = fmt.Errorf("may %s edit the policy: %w", id, err)
			ferr = err
			return false
		}
		if ok {
			found = editor{id, username}
			return false
		}
		return true
	})
	if err == nil {
		err = ferr
	}
	if err != nil {
		return editor{}, false, err
	}
	return found, found.id != "", nil
}

// asUser returns sub as an editor when it is an internal user.
func (e *Enforcer) asUser(ctx context.Context, sub string) (editor, bool, error) {
	name, ok, err := e.users.Username(ctx, sub)
	if err != nil {
		return editor{}, false, fmt.Errorf("look up %s: %w", sub, err)
	}
	return editor{sub, name}, ok, nil
}

// checkLockout refuses cand when it leaves no internal user able to edit
// the policy while the policy it replaces (built by before, on demand)
// left one. When nobody could before either (the administrators all come
// from an identity provider, or there are no users yet) the check has no
// one to protect and lets the change through.
func (e *Enforcer) checkLockout(ctx context.Context, cand *casbin.Enforcer, before func() (*casbin.Enforcer, error)) error {
	if e.users == nil {
		return nil
	}
	_, ok, err := e.policyEditor(ctx, cand)
	if err != nil || ok {
		return err
	}
	old, err := before()
	if err != nil || old == nil {
		return err
	}
	was, ok, err := e.policyEditor(ctx, old)
	if err != nil || !ok {
		return err
	}
	return fmt.Errorf("%w: under it no internal user may edit %q, and %s (%s) may now; keep a rule that lets an administrator edit policies, such as \"p, role:admin, *, *\", and a user who holds it",
		ErrLockout, PolicyObject, was.username, was.id)
}
