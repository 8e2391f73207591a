package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/grin-ai/grin/platform/memory"
	"github.com/grin-ai/grin/policies"
)

// EffectiveDecision is one object and action a subject is decided on.
type EffectiveDecision struct {
	Object string `json:"object" doc:"What is reached: users, episodic:<user id>, declarative:<space>, …"`
	Action string `json:"action"`
	PolicyDecision
}

// PolicyRuleLine is a rule of policy.csv as written.
type PolicyRuleLine struct {
	Line int    `json:"line" doc:"Its line in policy.csv, from 1."`
	Text string `json:"text" doc:"The rule as written."`
}

// EffectivePermissions is what the policy says about one subject.
type EffectivePermissions struct {
	Subject     string              `json:"subject" doc:"The subject, as decisions see it, with whom it names."`
	Roles       []string            `json:"roles" nullable:"false" doc:"Roles the subject holds, directly or through other roles (Cat permission roles left out)."`
	Permissions []EffectiveDecision `json:"permissions" nullable:"false" doc:"Every object and action a rule allows the subject, or a deny rule refuses it, with the rule that decided: the Cat's resources, the policy, the subject's own memory and conversation, every declarative space, and every object a rule names."`
	Rules       []PolicyRuleLine    `json:"rules" nullable:"false" doc:"The rules of policy.csv that name the subject (a user by id or user:<username>)."`
}

// PolicyRole is a role and its members.
type PolicyRole struct {
	Name    string   `json:"name" doc:"role:…"`
	Members []string `json:"members" nullable:"false" doc:"Who holds it directly: users as user:<username>, other subjects as written."`
}

func (s *Server) registerPolicyViews() {
	register(s, huma.Operation{
		OperationID: "getEffectivePermissions", Method: http.MethodGet, Path: "/policies/effective",
		Summary: "What a subject may do",
		Description: "Every object and action the policy allows a subject (or refuses it with a deny rule), each with the rule that decided and the roles it came through; " +
			"the roles it holds and the rules that name it. The subject is a username, a user id, user:<username>, a role, plugin:<id> or a credential subject.",
		Tags: []string{"Policies"},
	}, objectNeed(policiesObject, policies.Read), func(ctx context.Context, in *struct {
		Subject string `query:"subject" required:"true" minLength:"1" maxLength:"256" doc:"Whose permissions: alice, user:alice, a user id, role:admin, plugin:<id>, credential:api_key."`
	}) (*struct{ Body EffectivePermissions }, error) {
		sub, label, err := s.resolveSubject(ctx, in.Subject, "query.subject")
		if err != nil {
			return nil, err
		}
		// {self} is the id of a user (internal, or an identity
		// provider's); roles, plugins and credentials have none.
		self := sub
		for _, p := range []string{policies.RolePrefix, "perm:", policies.PluginPrefix, policies.CredentialPrefix} {
			if strings.HasPrefix(sub, p) {
				self = ""
			}
		}
		spaces, err := s.deps.Memory.Partitions(ctx, memory.Declarative)
		if err != nil {
			return nil, s.internal(ctx, "list spaces", err)
		}
		p, err := s.deps.Policy.Explore(ctx, sub, self, append(spaces, memory.DefaultSpace))
		if err != nil {
			return nil, s.internal(ctx, "explore the policy", err)
		}
		out := EffectivePermissions{Subject: label, Roles: p.Roles, Permissions: []EffectiveDecision{}, Rules: []PolicyRuleLine{}}
		if out.Roles == nil {
			out.Roles = []string{}
		}
		for _, d := range p.Decisions {
			out.Permissions = append(out.Permissions, EffectiveDecision{Object: d.Object, Action: d.Action, PolicyDecision: decisionOf(d.Decision, label)})
		}
		for _, r := range p.Rules {
			out.Rules = append(out.Rules, PolicyRuleLine{Line: r.Line, Text: r.Text})
		}
		return &struct{ Body EffectivePermissions }{out}, nil
	})

	register(s, huma.Operation{
		OperationID: "listRoles", Method: http.MethodGet, Path: "/roles",
		Summary: "Roles and their members",
		Description: "Every role (role:…) the policy names, with who holds it directly; users by name (user:<username>). " +
			"Members come from policy.csv and from grants stored by grin (the first administrator's role:admin).",
		Tags: []string{"Policies"},
	}, objectNeed(policiesObject, policies.Read), func(ctx context.Context, _ *struct{}) (*struct{ Body []PolicyRole }, error) {
		roles, err := s.deps.Policy.Roles(ctx)
		if err != nil {
			return nil, s.internal(ctx, "list roles", err)
		}
		out := make([]PolicyRole, 0, len(roles))
		for _, r := range roles {
			out = append(out, PolicyRole{Name: r.Name, Members: r.Members})
		}
		return &struct{ Body []PolicyRole }{out}, nil
	})
}
