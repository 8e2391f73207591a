package policies

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/casbin/casbin/v3"

	"github.com/grin-ai/grin/platform/cluster"
)

// Access returns the Cat permission dictionary of a subject (every perm:*
// role it holds, directly or through other roles) and the other roles it
// holds (role:admin, …).
func (e *Enforcer) Access(subject string) (Dict, []string, error) {
	e.mu.RLock()
	all, err := e.enf.GetImplicitRolesForUser(subject)
	e.mu.RUnlock()
	if err != nil {
		return nil, nil, fmt.Errorf("roles of %q: %w", subject, err)
	}
	d := Dict{}
	roles := []string{}
	for _, role := range all {
		if r, p, ok := parsePermissionRole(role); ok {
			d[r] = append(d[r], p)
		} else if !strings.HasPrefix(role, permPrefix) {
			roles = append(roles, role)
		}
	}
	slices.Sort(roles)
	return d.Normalized(), roles, nil
}

// Effective returns the Cat permission dictionary of what subject, asking
// as self, may actually do: every Cat pair the policy allows, through
// grants, roles or rules, and none a deny rule refuses.
func (e *Enforcer) Effective(subject, self string) (Dict, error) {
	d := Dict{}
	for _, r := range resources {
		for _, p := range permissions {
			ok, err := e.Decide(Request{Subjects: []string{subject}, Self: self, Object: r.Object(), Action: p.Action()})
			if err != nil {
				return nil, err
			}
			if ok {
				d[r] = append(d[r], p)
			}
		}
	}
	return d, nil
}

// Grant stores "g, subject, role" beside the policy file, for roles that
// are not Cat permissions (the default admin's role:admin).
func (e *Enforcer) Grant(ctx context.Context, subject, role string) error {
	if strings.HasPrefix(role, permPrefix) {
		return fmt.Errorf("grant %q: permission roles are set with SetPermissions", role)
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	err := e.changeGrants(ctx, subject, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO grants (subject, role) VALUES ($1, $2) ON CONFLICT DO NOTHING`, subject, role)
		return err
	})
	if err != nil {
		return fmt.Errorf("grant %q to %q: %w", role, subject, err)
	}
	defer e.publish(ctx, cluster.TopicGrants, subject)
	return e.applyGrants([][]string{{subject, role}}, nil)
}

// SetPermissions replaces the permission roles granted to subject through
// the API with those of d. Other roles, and rules of the policy file, are
// untouched. Keep functions are asked with the change applied but before
// any decision can see it; an error from one undoes the change.
func (e *Enforcer) SetPermissions(ctx context.Context, subject string, d Dict, keeps ...Keep) error {
	if err := d.Validate(); err != nil {
		return err
	}
	want := d.roles()
	e.writeMu.Lock()
	defer e.writeMu.Unlock()

	var add, remove [][]string
	// With keep functions the change is applied to the enforcer under
	// mu, asked about, and committed or undone before mu is released, so
	// no decision is computed from a change that does not stand. Cached
	// decisions are of the old policy, which is still true meanwhile.
	locked, applied := false, false
	err := e.changeGrants(ctx, subject, func(tx *sql.Tx) error {
		have, err := grantsOf(ctx, tx, subject)
		if err != nil {
			return fmt.Errorf("set permissions of %q: %w", subject, err)
		}
		have = slices.DeleteFunc(have, func(r string) bool { return !strings.HasPrefix(r, permPrefix) })
		// A pair the subject already may do without a grant of it (a
		// role, a rule naming it) is not turned into a grant: the
		// dictionary shows what a user may do, and sending it back
		// unchanged must not make what a role gives outlive the role.
		want = slices.DeleteFunc(want, func(role string) bool {
			if slices.Contains(have, role) {
				return false
			}
			r, p, _ := parsePermissionRole(role)
			e.mu.RLock()
			ok, err := e.enf.Enforce(subject, r.Object(), p.Action(), subject)
			e.mu.RUnlock()
			return err == nil && ok
		})
		for _, r := range have {
			if !slices.Contains(want, r) {
				remove = append(remove, []string{subject, r})
			}
		}
		for _, r := range want {
			if !slices.Contains(have, r) {
				add = append(add, []string{subject, r})
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM grants WHERE subject = $1 AND role LIKE 'perm:%'`, subject); err != nil {
			return fmt.Errorf("set permissions of %q: %w", subject, err)
		}
		for _, r := range want {
			if _, err := tx.ExecContext(ctx, `INSERT INTO grants (subject, role) VALUES ($1, $2)`, subject, r); err != nil {
				return fmt.Errorf("set permissions of %q: %w", subject, err)
			}
		}
		if len(keeps) == 0 {
			return nil
		}
		e.mu.Lock() // released below, once committed or undone
		locked = true
		if err := e.applyLocked(add, remove); err != nil {
			return errors.Join(err, e.applyLocked(remove, add))
		}
		applied = true
		return runKeeps(keeps, e.enf)
	})
	if locked {
		if err != nil && applied {
			if undo := e.applyLocked(remove, add); undo != nil {
				err = errors.Join(err, undo)
			}
		}
		e.clearLocked()
		e.mu.Unlock()
	}
	if err != nil {
		return err
	}
	defer e.publish(ctx, cluster.TopicGrants, subject)
	if locked {
		return nil
	}
	return e.applyGrants(add, remove)
}

// RemoveSubject drops every grant stored for subject, as when a user is
// deleted. Rules in the policy file that name the subject stay (an
// administrator wrote them) but no longer reach anyone.
func (e *Enforcer) RemoveSubject(ctx context.Context, subject string) error {
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	var have []string
	err := e.changeGrants(ctx, subject, func(tx *sql.Tx) error {
		var err error
		if have, err = grantsOf(ctx, tx, subject); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM grants WHERE subject = $1`, subject)
		return err
	})
	if err != nil {
		return fmt.Errorf("remove grants of %q: %w", subject, err)
	}
	defer e.publish(ctx, cluster.TopicGrants, subject)
	var remove [][]string
	for _, r := range have {
		remove = append(remove, []string{subject, r})
	}
	return e.applyGrants(nil, remove)
}

// applyGrants mirrors a committed change of the grants table in the
// enforcer in force. The caller holds writeMu.
func (e *Enforcer) applyGrants(add, remove [][]string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	defer e.clearLocked()
	return e.applyLocked(add, remove)
}

// applyLocked changes the grants of the enforcer in force; the caller
// holds mu for writing and clears the cache. The grants are beside the
// rules of policy.csv, not among them: a rule of the file that a grant
// doubles stays when the grant goes, and the other way round.
func (e *Enforcer) applyLocked(add, remove [][]string) error {
	err := changeGrants(e.enf, func(t *grantTable) bool {
		changed := false
		for _, r := range remove {
			changed = t.remove(r[0], r[1]) || changed
		}
		for _, r := range add {
			changed = t.add(r[0], r[1]) || changed
		}
		return changed
	})
	if err != nil {
		return fmt.Errorf("apply grants: %w", err)
	}
	return nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func grantsOf(ctx context.Context, q querier, subject string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT role FROM grants WHERE subject = $1 ORDER BY role`, subject)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// loadGrants reads every stored grant into a grantTable, in one query.
// With 100,000 users there are a million: the database hands over each
// subject's roles in one row (a tenth of the rows, each of which costs
// more in the driver than in the database), each subject's text is kept
// once, each role name once, and users holding the same roles share one
// list of them, so that loading them is not mostly allocation and garbage
// collection.
func (e *Enforcer) loadGrants(ctx context.Context) (*grantTable, error) {
	// Each role as <length in bytes>:<role>, so that no character a
	// role may hold can be mistaken for a separator.
	rows, err := e.db.QueryContext(ctx, `SELECT subject, string_agg(octet_length(role) || ':' || role, '') FROM grants GROUP BY subject`)
	if err != nil {
		return nil, fmt.Errorf("load grants: %w", err)
	}
	defer rows.Close()
	t := newGrantTable()
	var (
		roles   []string
		buf     []byte
		s, list sql.RawBytes
	)
	for rows.Next() {
		if err := rows.Scan(&s, &list); err != nil {
			return nil, fmt.Errorf("load grants: %w", err)
		}
		roles = roles[:0]
		for rest := list; len(rest) > 0; {
			n, role, next, ok := cutRole(rest)
			if !ok {
				return nil, fmt.Errorf("load grants: the roles of %q do not read as <length>:<role> at %q", s, rest[:min(n, 40)])
			}
			name, ok := t.names[string(role)]
			if !ok {
				name = t.name(string(role))
			}
			roles = append(roles, name)
			rest = next
		}
		// The database aggregates in no particular order.
		slices.Sort(roles)
		roles = slices.Compact(roles)
		buf = t.assign(string(s), roles, buf)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load grants: %w", err)
	}
	return t, nil
}

// cutRole reads the first <length>:<role> of b, and returns the role and
// what follows it; n is how much of b to quote when it does not read.
func cutRole(b []byte) (n int, role, rest []byte, ok bool) {
	colon := bytes.IndexByte(b, ':')
	if colon <= 0 {
		return len(b), nil, nil, false
	}
	size, err := strconv.Atoi(string(b[:colon]))
	if err != nil || size < 0 || size > len(b)-colon-1 {
		return len(b), nil, nil, false
	}
	end := colon + 1 + size
	return end, b[colon+1 : end], b[end:], true
}

// runKeeps asks each keep function about enf.
func runKeeps(keeps []Keep, enf *casbin.Enforcer) error {
	for _, k := range keeps {
		if err := k(isAdministrator(enf)); err != nil {
			return err
		}
	}
	return nil
}
