package policies

import (
	"fmt"

	"github.com/casbin/casbin/v3"
)

// PolicyObject is the object that guards the policy itself: whoever may
// edit it may change every other decision. No Cat permission names it; by
// default only role:admin reaches it.
const PolicyObject = "policies"

// administratorAction is what a policy administrator may do to
// PolicyObject: edit it, as PUT /policies needs.
const administratorAction = "edit"

// AdministratorRequest is the one question that makes a policy
// administrator: may these subjects, asking as self, edit the policy?
// Whoever may can give themselves anything, so every "only an
// administrator" in grin asks exactly this.
func AdministratorRequest(subjects []string, self string) Request {
	return Request{Subjects: subjects, Self: self, Object: PolicyObject, Action: administratorAction}
}

// IsAdministrator reports whether subjects, asking as self, are a policy
// administrator (see AdministratorRequest).
func (e *Enforcer) IsAdministrator(subjects []string, self string) (bool, error) {
	return e.Decide(AdministratorRequest(subjects, self))
}

// AuditObject is the object that guards the audit log: Read on it shows
// who changed users, permissions, policies, plugins
// and settings, and every login, from which address. No Cat permission
// names it; by default only role:admin reaches it.
const AuditObject = "audit"

// Right is a right on one of grin's own objects, outside the Cat's
// permission dictionaries.
type Right struct {
	Object, Action string
	// What says it for people: "read the audit log".
	What string
}

// GuardedRights are the rights of grin's own objects that the ceiling on
// authority weighs beside the Cat permissions: only the policy grants
// them, and a caller who lacks one may not take over (reset the password
// of) or delete a user who holds it, or the caller would gain it by
// logging in as them.
func GuardedRights() []Right {
	return []Right{{Object: AuditObject, Action: Read.Action(), What: "read the audit log"}}
}

// ActAsObject is the object a credential subject needs, with action
// ActAsAction, to act as the internal user whose id is userID: the
// WebSocket key (credential:ws_key) acts as any shadow id the path names,
// as in the Cat, but as an internal user only where a rule such as
// "p, credential:ws_key, act_as:*, write" says so. The default policy has
// none.
func ActAsObject(userID string) string { return "act_as:" + userID }

// ActAsAction is the action ActAsObject is asked with.
const ActAsAction = "write"

// Escalating reports whether holding p on r leads to every other right:
// USERS EDIT rewrites anyone's permissions and passwords, PLUGINS WRITE
// runs code inside the server, where every user's data is, and PLUGINS
// EDIT reads plugins' logs (which may quote any user's messages) and
// makes a per-user plugin shared. Only a policy administrator may grant
// them.
func Escalating(r Resource, p Permission) bool {
	return (r == Users && p == Edit) || (r == Plugins && (p == Write || p == Edit))
}

// Holds reports whether subjects, asking as self, effectively hold the Cat
// permission p on r: whether the policy lets them do p on r's object,
// through any role or rule, as an operation needing it would ask.
func (e *Enforcer) Holds(subjects []string, self string, r Resource, p Permission) (bool, error) {
	return e.Decide(Request{Subjects: subjects, Self: self, Object: r.Object(), Action: p.Action()})
}

// Keep vets a change of the policy or of the grants before anyone sees it:
// isAdmin answers AdministratorRequest for one subject (as itself) with
// the change applied, and an error undoes the change and is returned. A
// Keep runs under the enforcer's locks: it must not call the Enforcer or
// the database, only isAdmin.
type Keep func(isAdmin func(subject string) (bool, error)) error

// Pair is one Cat permission: a resource and a permission word.
type Pair struct {
	Resource   Resource
	Permission Permission
}

// String prints the pair the Cat's way, "USERS EDIT".
func (p Pair) String() string { return string(p.Resource) + " " + string(p.Permission) }

// Pairs lists the dictionary's pairs in the Cat's order, for checks and
// messages that go pair by pair.
func (d Dict) Pairs() []Pair {
	var out []Pair
	n := d.Normalized()
	for _, r := range resources {
		for _, p := range n[r] {
			out = append(out, Pair{r, p})
		}
	}
	return out
}

// Minus returns the pairs of d that o does not have.
func (d Dict) Minus(o Dict) Dict {
	out := Dict{}
	for _, p := range d.Pairs() {
		if !o.Has(p.Resource, p.Permission) {
			out[p.Resource] = append(out[p.Resource], p.Permission)
		}
	}
	return out
}

// isAdministrator answers AdministratorRequest for one subject, asking as
// itself, on enf without the cache: for Keep, on an enforcer nobody else
// sees yet or while holding mu.
func isAdministrator(enf *casbin.Enforcer) func(subject string) (bool, error) {
	return func(subject string) (bool, error) {
		req := AdministratorRequest([]string{subject}, subject)
		ok, err := enf.Enforce(subject, req.Object, req.Action, req.Self)
		if err != nil {
			return false, fmt.Errorf("decide whether %s administers the policy: %w", subject, err)
		}
		return ok, nil
	}
}
