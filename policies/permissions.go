package policies

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Resource is one of the Cheshire Cat's permission resources, spelled as the
// Cat spells it (upper case) in permission dictionaries.
type Resource string

// Permission is one of the Cat's permission words, upper case.
type Permission string

// The Cat's resources.
const (
	Status       Resource = "STATUS"
	Memory       Resource = "MEMORY"
	Conversation Resource = "CONVERSATION"
	Settings     Resource = "SETTINGS"
	LLM          Resource = "LLM"
	Embedder     Resource = "EMBEDDER"
	AuthHandler  Resource = "AUTH_HANDLER"
	Users        Resource = "USERS"
	Upload       Resource = "UPLOAD"
	Plugins      Resource = "PLUGINS"
	Static       Resource = "STATIC"
)

// The Cat's permissions.
const (
	Write  Permission = "WRITE"
	Edit   Permission = "EDIT"
	List   Permission = "LIST"
	Read   Permission = "READ"
	Delete Permission = "DELETE"
)

// Resources lists every resource in the Cat's order.
var resources = []Resource{Status, Memory, Conversation, Settings, LLM, Embedder, AuthHandler, Users, Upload, Plugins, Static}

// permissions lists every permission in the Cat's order.
var permissions = []Permission{Write, Edit, List, Read, Delete}

// Permissions returns every permission word in the Cat's order.
func Permissions() []Permission { return slices.Clone(permissions) }

// Object is the policy object that stands for the resource: its lower-case
// name, as policy rules are written ("users", "auth_handler").
func (r Resource) Object() string { return strings.ToLower(string(r)) }

// Action is the policy action for the permission: its lower-case word.
func (p Permission) Action() string { return strings.ToLower(string(p)) }

// Dict is a Cat permission dictionary: {"MEMORY": ["READ", "LIST"]}.
// It is a view over the policy: each pair is the grouping rule
// "g, <user id>, perm:memory:read".
type Dict map[Resource][]Permission

// FullDict grants every permission on every resource.
func FullDict() Dict {
	d := Dict{}
	for _, r := range resources {
		d[r] = Permissions()
	}
	return d
}

// BaseDict is what the Cat gives an ordinary user.
func BaseDict() Dict {
	return Dict{
		Status:       {Read},
		Memory:       {Read, List},
		Conversation: {Write, Edit, List, Read, Delete},
		Static:       {Read},
	}
}

// Validate reports unknown resources or permissions, all of them at once,
// in a sentence a person can act on.
func (d Dict) Validate() error {
	var bad []string
	for r, ps := range d {
		if !slices.Contains(resources, r) {
			bad = append(bad, fmt.Sprintf("%q is not a resource", r))
			continue
		}
		for _, p := range ps {
			if !slices.Contains(permissions, p) {
				bad = append(bad, fmt.Sprintf("%q is not a permission (in %s)", p, r))
			}
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	return fmt.Errorf("%s; resources are %s and permissions are %s",
		strings.Join(bad, ", "), joinWords(resources), joinWords(permissions))
}

// Normalized returns the dictionary with duplicates removed, permissions in
// the Cat's order and empty entries dropped, so that equal grants print the
// same way.
func (d Dict) Normalized() Dict {
	out := Dict{}
	for r, ps := range d {
		var keep []Permission
		for _, p := range permissions {
			if slices.Contains(ps, p) {
				keep = append(keep, p)
			}
		}
		if len(keep) > 0 {
			out[r] = keep
		}
	}
	return out
}

// Has reports whether the dictionary grants p on r.
func (d Dict) Has(r Resource, p Permission) bool { return slices.Contains(d[r], p) }

// PermissionRole is the policy role that stands for one Cat grant,
// "perm:users:read". The default policy gives each such role exactly the
// (object, action) it names; administrators may widen it.
func PermissionRole(r Resource, p Permission) string {
	return permPrefix + r.Object() + ":" + p.Action()
}

// permPrefix starts every permission role.
const permPrefix = "perm:"

// parsePermissionRole is the inverse of PermissionRole.
func parsePermissionRole(role string) (Resource, Permission, bool) {
	rest, ok := strings.CutPrefix(role, permPrefix)
	if !ok {
		return "", "", false
	}
	obj, act, ok := strings.Cut(rest, ":")
	if !ok {
		return "", "", false
	}
	r, p := Resource(strings.ToUpper(obj)), Permission(strings.ToUpper(act))
	if !slices.Contains(resources, r) || !slices.Contains(permissions, p) {
		return "", "", false
	}
	return r, p, true
}

// roles turns the dictionary into its permission roles.
func (d Dict) roles() []string {
	var out []string
	for r, ps := range d.Normalized() {
		for _, p := range ps {
			out = append(out, PermissionRole(r, p))
		}
	}
	sort.Strings(out)
	return out
}

func joinWords[T ~string](ws []T) string {
	s := make([]string, len(ws))
	for i, w := range ws {
		s[i] = string(w)
	}
	return strings.Join(s, ", ")
}
