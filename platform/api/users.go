package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/grin-ai/grin/platform/audit"
	"github.com/grin-ai/grin/platform/users"
	"github.com/grin-ai/grin/policies"
)

// Permission is one of the Cat's permission words.
type Permission string

// PermissionList is a list of permission words, each validated.
type PermissionList []Permission

// Schema lists the allowed words once, as the named schema Permission, so
// that validation knows them and generated clients get one enum type.
func (PermissionList) Schema(r huma.Registry) *huma.Schema {
	if _, ok := r.Map()["Permission"]; !ok {
		enum := []any{}
		for _, p := range policies.Permissions() {
			enum = append(enum, string(p))
		}
		r.Map()["Permission"] = &huma.Schema{Type: "string", Enum: enum, Description: "A Cheshire Cat permission word."}
	}
	return &huma.Schema{Type: "array", Items: &huma.Schema{Ref: "#/components/schemas/Permission"}}
}

// PermissionSet is a Cat permission dictionary, one optional field per
// resource, so an unknown resource is refused by validation and generated
// clients get a typed object.
type PermissionSet struct {
	STATUS       PermissionList `json:"STATUS,omitempty"`
	MEMORY       PermissionList `json:"MEMORY,omitempty"`
	CONVERSATION PermissionList `json:"CONVERSATION,omitempty"`
	SETTINGS     PermissionList `json:"SETTINGS,omitempty"`
	LLM          PermissionList `json:"LLM,omitempty"`
	EMBEDDER     PermissionList `json:"EMBEDDER,omitempty"`
	AUTH_HANDLER PermissionList `json:"AUTH_HANDLER,omitempty"`
	USERS        PermissionList `json:"USERS,omitempty"`
	UPLOAD       PermissionList `json:"UPLOAD,omitempty"`
	PLUGINS      PermissionList `json:"PLUGINS,omitempty"`
	STATIC       PermissionList `json:"STATIC,omitempty"`
}

func (p *PermissionSet) fields() map[policies.Resource]*PermissionList {
	return map[policies.Resource]*PermissionList{
		policies.Status: &p.STATUS, policies.Memory: &p.MEMORY, policies.Conversation: &p.CONVERSATION,
		policies.Settings: &p.SETTINGS, policies.LLM: &p.LLM, policies.Embedder: &p.EMBEDDER,
		policies.AuthHandler: &p.AUTH_HANDLER, policies.Users: &p.USERS, policies.Upload: &p.UPLOAD,
		policies.Plugins: &p.PLUGINS, policies.Static: &p.STATIC,
	}
}

func (p PermissionSet) dict() policies.Dict {
	d := policies.Dict{}
	for r, f := range p.fields() {
		for _, perm := range *f {
			d[r] = append(d[r], policies.Permission(perm))
		}
	}
	return d.Normalized()
}

func permissionSetOf(d policies.Dict) PermissionSet {
	var p PermissionSet
	for r, f := range p.fields() {
		for _, perm := range d[r] {
			*f = append(*f, Permission(perm))
		}
	}
	return p
}

// User is an internal user; the password is never part of it.
type User struct {
	ID          string         `json:"id" format:"uuid" doc:"The user's uuid4."`
	Username    string         `json:"username"`
	Permissions PermissionSet  `json:"permissions" doc:"What the user may actually do, as the policy decides: permissions granted, given by a role or a rule, and not refused by a deny rule."`
	Denied      *PermissionSet `json:"denied,omitempty" doc:"Permissions granted to the user that a deny rule of the policy refuses (grin extension; absent when none). POST /policies/check names the rule."`
	Roles       []string       `json:"roles" nullable:"false" doc:"Policy roles beyond Cat permissions, such as role:admin (grin extension; granted in the policy)."`
	CreatedAt   time.Time      `json:"created_at" doc:"When the user was created (grin extension)."`
	LastLogin   *time.Time     `json:"last_login" nullable:"true" doc:"When the user last logged in with a password (POST /auth/token); null if never (grin extension)."`
}

func userOf(u users.User) User {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	out := User{ID: u.ID, Username: u.Username, Permissions: permissionSetOf(u.Permissions), Roles: roles, CreatedAt: u.CreatedAt}
	if len(u.Denied) > 0 {
		d := permissionSetOf(u.Denied)
		out.Denied = &d
	}
	if !u.LastLogin.IsZero() {
		out.LastLogin = &u.LastLogin
	}
	return out
}

// UserCreate is the body of POST /users.
type UserCreate struct {
	Username    Text           `json:"username" minLength:"2" maxLength:"128" doc:"Unique name, at least 2 characters of UTF-8, stored in Unicode NFC; a name that looks like an existing one (Unicode confusables) is refused."`
	Password    Text           `json:"password" minLength:"5" maxLength:"72" doc:"At least 5 characters, at most 72 bytes of UTF-8."`
	Permissions *PermissionSet `json:"permissions,omitempty" doc:"The Cat permission dictionary; the base permissions when absent."`
}

// UserUpdate is the body of PUT /users/{id}; absent fields stay as they are.
type UserUpdate struct {
	Username    *Text          `json:"username,omitempty" minLength:"2" maxLength:"128" doc:"Stored in Unicode NFC; a name that looks like another user's (Unicode confusables) is refused."`
	Password    *Text          `json:"password,omitempty" minLength:"5" maxLength:"72" doc:"A new password revokes every token issued to the user so far."`
	Permissions *PermissionSet `json:"permissions,omitempty" doc:"Replaces the whole dictionary."`
}

// UserSort is an order of GET /users; the store's orders are the enum.
type UserSort string

// Schema lists users.Sorts, so the API documents and validates the orders
// the store knows and no other list can drift from it.
func (UserSort) Schema(huma.Registry) *huma.Schema {
	enum := []any{}
	for _, o := range users.Sorts() {
		enum = append(enum, string(o))
	}
	return &huma.Schema{Type: "string", Enum: enum}
}

// UserOutput carries one user.
type UserOutput struct{ Body User }

// UserListOutput carries a page of users.
type UserListOutput struct {
	Total int `header:"X-Total-Count" doc:"How many users the search selects in all, for paging (grin extension)."`
	Body  []User
}

// UserIDPath names a user in the path.
type UserIDPath struct {
	ID string `path:"id" maxLength:"64" doc:"The user's id."`
}

func (s *Server) registerUsers() {
	register(s, huma.Operation{
		OperationID: "createUser", Method: http.MethodPost, Path: "/users",
		Summary: "Create a user",
		Description: "The caller may give only permissions it holds itself; USERS EDIT and PLUGINS WRITE only a policy administrator may give. " +
			"Without permissions the user gets the Cat's base ones, which the caller must hold too.",
		Tags:   []string{"Users"},
		Errors: []int{http.StatusConflict},
	}, catNeed(policies.Users, policies.Write).audited(audit.UserCreate), func(ctx context.Context, in *struct{ Body UserCreate }) (*UserOutput, error) {
		rec := auditOf(ctx)
		rec.target(string(in.Body.Username)) // its id once it has one
		perms := policies.BaseDict()
		if in.Body.Permissions != nil {
			perms = in.Body.Permissions.dict()
		}
		why, err := s.grantRefusals(ctx, string(in.Body.Username), perms, nil)
		if err != nil {
			return nil, err
		}
		if why, err = s.namedByPolicy(ctx, string(in.Body.Username), why); err != nil {
			return nil, err
		}
		if len(why) > 0 && in.Body.Permissions == nil {
			why = append(why, "without \"permissions\" a new user gets the Cat's base permissions; name the ones to give")
		}
		if len(why) > 0 {
			return nil, refusal(why)
		}
		u, err := s.deps.Users.Create(ctx, string(in.Body.Username), string(in.Body.Password), perms)
		if err != nil {
			return nil, s.userError(ctx, err)
		}
		rec.target(u.ID)
		rec.after(userRecord{User: userOf(u)})
		return &UserOutput{Body: userOf(u)}, nil
	})

	register(s, huma.Operation{
		OperationID: "listUsers", Method: http.MethodGet, Path: "/users",
		Summary: "List users",
		Description: "Users in the order they were created, or as sort asks; search keeps those whose username contains the text " +
			"(case-insensitive for ASCII letters) or whose id it is. X-Total-Count says how many the search selects in all.",
		Tags: []string{"Users"},
	}, catNeed(policies.Users, policies.List), func(ctx context.Context, in *struct {
		Skip   int      `query:"skip" minimum:"0" default:"0" doc:"How many users to skip."`
		Limit  int      `query:"limit" minimum:"1" maximum:"10000" default:"100" doc:"How many users to return at most."`
		Search string   `query:"search" maxLength:"128" doc:"Keep users whose username contains this text, or whose id it is (grin extension)."`
		Sort   UserSort `query:"sort" doc:"The order, creation by default; a leading - reverses it. Users who never logged in come last by last_login (grin extension)."`
	}) (*UserListOutput, error) {
		list, total, err := s.deps.Users.List(ctx, users.Query{Skip: in.Skip, Limit: in.Limit, Search: in.Search, Sort: users.Sort(in.Sort)})
		if err != nil {
			return nil, s.internal(ctx, "list users", err)
		}
		out := &UserListOutput{Total: total, Body: make([]User, 0, len(list))}
		for _, u := range list {
			out.Body = append(out.Body, userOf(u))
		}
		return out, nil
	})

	register(s, huma.Operation{
		OperationID: "getUser", Method: http.MethodGet, Path: "/users/{id}",
		Summary: "Get a user", Tags: []string{"Users"}, Errors: []int{http.StatusNotFound},
	}, catNeed(policies.Users, policies.Read), func(ctx context.Context, in *UserIDPath) (*UserOutput, error) {
		u, err := s.deps.Users.Get(ctx, in.ID)
		if err != nil {
			return nil, s.userError(ctx, err)
		}
		return &UserOutput{Body: userOf(u)}, nil
	})

	register(s, huma.Operation{
		OperationID: "updateUser", Method: http.MethodPut, Path: "/users/{id}",
		Summary: "Update a user",
		Description: "Changes only the fields given; permissions are replaced whole. The caller may add or remove only permissions it holds itself, " +
			"and only a policy administrator may give USERS EDIT or PLUGINS WRITE. Changing the password of a user who holds more than the caller is refused. " +
			"A change that would leave no user able to edit the policy is refused with 409. " +
			"A new password revokes the user's tokens: requests with them fail and sockets opened with them close. " +
			"The user's documents being read stop, and their chunks go, when the new permissions no longer let them upload.",
		Tags: []string{"Users"}, Errors: []int{http.StatusNotFound, http.StatusConflict},
	}, catNeed(policies.Users, policies.Edit).audited(audit.UserUpdate), func(ctx context.Context, in *struct {
		UserIDPath
		Body UserUpdate
	}) (*UserOutput, error) {
		rec := auditOf(ctx)
		rec.target(in.ID)
		target, err := s.guardPrivileged(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		if target.ID != "" {
			rec.before(userRecord{User: userOf(target)})
		}
		c := users.Changes{Username: (*string)(in.Body.Username), Password: (*string)(in.Body.Password)}
		if in.Body.Permissions != nil {
			c.Permissions = in.Body.Permissions.dict()
		}
		if target.ID != "" { // not found: Update answers 404
			if c.Username != nil && users.NormalizeUsername(*c.Username) != target.Username {
				why, err := s.namedByPolicy(ctx, *c.Username, nil)
				if err != nil {
					return nil, err
				}
				if err := refusal(why); err != nil {
					return nil, err
				}
			}
			if c.Password != nil {
				if err := s.checkTakeover(ctx, target, "change the password of"); err != nil {
					return nil, err
				}
			}
			if c.Permissions != nil {
				if err := s.checkGrants(ctx, target.Username, c.Permissions, target.Permissions); err != nil {
					return nil, err
				}
			}
		}
		u, err := s.deps.Users.Update(ctx, in.ID, c)
		if err != nil {
			return nil, s.userError(ctx, err)
		}
		changed := userRecord{User: userOf(u)}
		if c.Password != nil {
			changed.Password = passwordChanged
			rec.also(audit.TokensRevoke, in.ID, "the password changed")
		}
		rec.after(changed)
		if c.Permissions != nil && s.deps.Ingester != nil {
			// Documents the user may no longer upload stop now, and what
			// they stored goes, before the answer.
			if err := s.deps.Ingester.Revalidate(ctx, in.ID); err != nil {
				return nil, s.internal(ctx, "stop the ingestions of a user whose permissions changed", err)
			}
		}
		return &UserOutput{Body: userOf(u)}, nil
	})

	register(s, huma.Operation{
		OperationID: "revokeUserTokens", Method: http.MethodDelete, Path: "/users/{id}/tokens",
		Summary: "Revoke a user's tokens",
		Description: "Logs the user out everywhere: every token issued to them so far stops working and sockets opened with them close (1008). " +
			"Users revoke their own with POST /auth/logout.",
		Tags: []string{"Users"}, Errors: []int{http.StatusNotFound},
	}, catNeed(policies.Users, policies.Edit).audited(audit.TokensRevoke), func(ctx context.Context, in *UserIDPath) (*struct{}, error) {
		rec := auditOf(ctx)
		rec.target(in.ID)
		rec.detail("an administrator logged the user out everywhere")
		if _, err := s.guardPrivileged(ctx, in.ID); err != nil {
			return nil, err
		}
		if err := s.deps.Users.RevokeTokens(ctx, in.ID); err != nil {
			return nil, s.userError(ctx, err)
		}
		return nil, nil
	})

	register(s, huma.Operation{
		OperationID: "deleteUser", Method: http.MethodDelete, Path: "/users/{id}",
		Summary: "Delete a user",
		Description: "Deletes the user and everything it owns; its tokens stop working at once. Answers the deleted user. " +
			"The caller must hold every permission the user holds; the last user able to edit the policy cannot be deleted (409).",
		Tags: []string{"Users"}, Errors: []int{http.StatusNotFound, http.StatusConflict},
	}, catNeed(policies.Users, policies.Delete).audited(audit.UserDelete), func(ctx context.Context, in *UserIDPath) (*UserOutput, error) {
		rec := auditOf(ctx)
		rec.target(in.ID)
		target, err := s.guardPrivileged(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		if target.ID != "" { // not found: Delete answers 404
			rec.before(userRecord{User: userOf(target)})
			if err := s.checkTakeover(ctx, target, "delete"); err != nil {
				return nil, err
			}
		}
		u, err := s.deps.Users.Delete(ctx, in.ID)
		if err != nil {
			return nil, s.userError(ctx, err)
		}
		return &UserOutput{Body: userOf(u)}, nil
	})
}

// guardPrivileged keeps USERS EDIT and DELETE from reaching users who
// hold policy roles (role:admin) or administer the policy: resetting such
// a user's password would hand over everything the policy gives them.
// Only policy administrators may change such users. It returns the user
// as it is (zero when not found, which the operation itself answers).
func (s *Server) guardPrivileged(ctx context.Context, id string) (users.User, error) {
	u, err := s.deps.Users.Get(ctx, id)
	if errors.Is(err, users.ErrNotFound) {
		return users.User{}, nil
	}
	if err != nil {
		// Never go on unchecked: the checks after this need the user.
		return users.User{}, s.internal(ctx, "look up user", err)
	}
	privileged := len(u.Roles) > 0
	if !privileged {
		if privileged, err = s.deps.Policy.IsAdministrator([]string{u.ID}, u.ID); err != nil {
			return users.User{}, s.internal(ctx, "decide", err)
		}
	}
	if !privileged {
		return u, nil
	}
	ok, err := s.policyAdmin(ctx)
	if err != nil {
		return users.User{}, s.internal(ctx, "decide", err)
	}
	if !ok {
		held := "administers the policy"
		if len(u.Roles) > 0 {
			held = fmt.Sprintf("holds %s", strings.Join(u.Roles, ", "))
		}
		return users.User{}, huma.Error403Forbidden(fmt.Sprintf("Permission denied: %s %s; only a policy administrator may change or delete such a user", u.Username, held))
	}
	return u, nil
}

// namedByPolicy adds a refusal to why when the policy names the username as
// user:<username> and the caller is no policy administrator: creating a
// user of that name, or renaming one to it, gives what those rules give,
// which only whoever may edit the rules may do.
func (s *Server) namedByPolicy(ctx context.Context, username string, why []string) ([]string, error) {
	if !s.deps.Policy.NamesUser(users.NormalizeUsername(username)) {
		return why, nil
	}
	ok, err := s.policyAdmin(ctx)
	if err != nil {
		return nil, s.internal(ctx, "decide", err)
	}
	if !ok {
		why = append(why, fmt.Sprintf("the policy has rules for user:%s, which a user of that name would hold; only a policy administrator may give a user that name", users.NormalizeUsername(username)))
	}
	return why, nil
}

// policyAdmin reports whether the caller is a policy administrator: may
// edit the policy (policies.AdministratorRequest). Every "only an
// administrator" of the API asks this.
func (s *Server) policyAdmin(ctx context.Context) (bool, error) {
	id := identity(ctx)
	return s.deps.Policy.IsAdministrator(id.Subjects, id.ID)
}

// checkGrants is the ceiling on permission changes: giving username the
// dictionary want in place of had, the caller may add or remove only
// permissions it holds itself (as the policy decides, through roles too),
// and may add the escalating ones (USERS EDIT, PLUGINS WRITE) only as a
// policy administrator. Otherwise an editor could raise itself, or a
// friend, to everything, or strip an administrator. Every refused
// permission is named in one answer.
func (s *Server) checkGrants(ctx context.Context, username string, want, had policies.Dict) error {
	why, err := s.grantRefusals(ctx, username, want, had)
	if err != nil {
		return err
	}
	return refusal(why)
}

// refusal is the 403 that gives every reason, or nil for none.
func refusal(why []string) error {
	if len(why) == 0 {
		return nil
	}
	return huma.Error403Forbidden("Permission denied: " + strings.Join(why, "; "))
}

// grantRefusals says, one sentence per kind, what checkGrants refuses.
func (s *Server) grantRefusals(ctx context.Context, username string, want, had policies.Dict) ([]string, error) {
	if admin, err := s.policyAdmin(ctx); err != nil || admin {
		return nil, s.decideError(ctx, err) // an administrator may give itself anything anyway
	}
	added, adminOnly := policies.Dict{}, []string{}
	for _, p := range want.Minus(had).Pairs() {
		if policies.Escalating(p.Resource, p.Permission) {
			adminOnly = append(adminOnly, p.String())
		} else {
			added[p.Resource] = append(added[p.Resource], p.Permission)
		}
	}
	notHeldAdd, err := s.unheld(ctx, added)
	if err != nil {
		return nil, s.decideError(ctx, err)
	}
	notHeldRemove, err := s.unheld(ctx, had.Minus(want))
	if err != nil {
		return nil, s.decideError(ctx, err)
	}
	var why []string
	if len(adminOnly) > 0 {
		why = append(why, fmt.Sprintf("you cannot grant %s: only a policy administrator can", strings.Join(adminOnly, ", ")))
	}
	if len(notHeldAdd) > 0 {
		why = append(why, fmt.Sprintf("you cannot grant %s: you do not hold %s yourself", strings.Join(notHeldAdd, ", "), itOrThem(notHeldAdd)))
	}
	if len(notHeldRemove) > 0 {
		why = append(why, fmt.Sprintf("you cannot take %s from %s: you do not hold %s yourself", strings.Join(notHeldRemove, ", "), username, itOrThem(notHeldRemove)))
	}
	return why, nil
}

// checkTakeover refuses to let the caller take over (reset the password
// of) or delete a user who holds permissions the caller does not: logging
// in as that user would be a way round checkGrants, and deleting one a way
// to strip them. what is the verb phrase for the answer.
func (s *Server) checkTakeover(ctx context.Context, target users.User, what string) error {
	if admin, err := s.policyAdmin(ctx); err != nil || admin {
		return s.decideError(ctx, err)
	}
	more, err := s.unheld(ctx, target.Permissions)
	if err != nil {
		return s.decideError(ctx, err)
	}
	rights, err := s.unheldRights(ctx, target)
	if err != nil {
		return s.decideError(ctx, err)
	}
	var why []string
	if len(more) > 0 {
		why = append(why, fmt.Sprintf("they hold %s, which you do not", strings.Join(more, ", ")))
	}
	if len(rights) > 0 {
		why = append(why, fmt.Sprintf("they may %s, which you may not", strings.Join(rights, " and ")))
	}
	if len(why) == 0 {
		return nil
	}
	return huma.Error403Forbidden(fmt.Sprintf("Permission denied: you cannot %s %s: %s", what, target.Username, strings.Join(why, "; ")))
}

// unheldRights lists, in words, the rights outside the Cat's dictionary
// (policies.GuardedRights: reading the audit log) that target holds and
// the caller does not.
func (s *Server) unheldRights(ctx context.Context, target users.User) ([]string, error) {
	id := identity(ctx)
	var out []string
	for _, r := range policies.GuardedRights() {
		theirs, err := s.deps.Policy.Decide(policies.Request{Subjects: []string{target.ID}, Self: target.ID, Object: r.Object, Action: r.Action})
		if err != nil {
			return nil, err
		}
		if !theirs {
			continue
		}
		mine, err := s.decide(id, r.Object, r.Action)
		if err != nil {
			return nil, err
		}
		if !mine {
			out = append(out, r.What)
		}
	}
	return out, nil
}

// unheld lists the pairs of d the caller does not hold.
func (s *Server) unheld(ctx context.Context, d policies.Dict) ([]string, error) {
	id := identity(ctx)
	var out []string
	for _, p := range d.Pairs() {
		ok, err := s.deps.Policy.Holds(id.Subjects, id.ID, p.Resource, p.Permission)
		if err != nil {
			return nil, err
		}
		if !ok {
			out = append(out, p.String())
		}
	}
	return out, nil
}

// decideError is nil for nil, and otherwise the answer to a policy that
// could not decide.
func (s *Server) decideError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	return s.internal(ctx, "decide", err)
}

func itOrThem(list []string) string {
	if len(list) == 1 {
		return "it"
	}
	return "them"
}

// lastAdministrator answers a change that would leave no user able to edit
// the policy.
const lastAdministrator = "this would leave no user able to edit the policy (the last policy administrator); make another user an administrator first"

// userError maps the users package's errors to statuses.
func (s *Server) userError(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, users.ErrNotFound):
		return huma.Error404NotFound("User not found")
	case errors.Is(err, users.ErrDuplicate):
		return huma.Error409Conflict("Cannot duplicate user: " + err.Error())
	case errors.Is(err, users.ErrConfusable):
		return huma.Error409Conflict(err.Error())
	case errors.Is(err, users.ErrInvalid):
		return huma.Error422UnprocessableEntity(err.Error())
	case errors.Is(err, users.ErrLastAdministrator):
		return huma.Error409Conflict(lastAdministrator)
	}
	return s.internal(ctx, "user operation", err)
}
