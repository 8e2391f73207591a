package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/grin-ai/grin/platform/audit"
	"github.com/grin-ai/grin/platform/users"
	"github.com/grin-ai/grin/policies"
)

// PolicyRule is one rule as policy.csv writes it.
type PolicyRule struct {
	Rule string `json:"rule" minLength:"3" maxLength:"2048" doc:"One rule as policy.csv writes it: \"p, role:legal, declarative:contracts, read\", \"p, user:bob, *, delete, deny\", \"g, user:alice, role:admin\"."`
}

// DryRunQuery is the dry_run parameter of every change.
type DryRunQuery struct {
	DryRun bool `query:"dry_run" doc:"Check only: answers as the change would, and changes nothing."`
}

// RoleMemberPath names a role and a subject.
type RoleMemberPath struct {
	Role    string `path:"role" minLength:"6" maxLength:"256" doc:"The role, role:<name>."`
	Subject string `path:"subject" minLength:"1" maxLength:"256" doc:"The member: a username (written user:<username> in policy.csv), a user id, user:<username>, another role, plugin:<id> or a credential."`
}

func (s *Server) registerPolicyRules() {
	const checked = "Checked as PUT /policies is: a rule that does not load, or a change under which no user could edit the policy any more, is refused with 422 and the reason; " +
		"with dry_run only checked, and refused alike. Answers the policy as the change makes it, with its warnings."
	change := s.changePolicy
	register(s, huma.Operation{
		OperationID: "addPolicyRule", Method: http.MethodPost, Path: "/policies/rules",
		Summary: "Add one rule", Description: "Appends one rule to policy.csv and puts it in force. A rule the policy has already is 409. " + checked,
		Tags: []string{"Policies"}, Errors: []int{http.StatusConflict},
	}, objectNeed(policiesObject, policies.Edit).audited(audit.PolicyRuleAdd), func(ctx context.Context, in *struct {
		DryRunQuery
		Body PolicyRule
	}) (*PoliciesOutput, error) {
		return change(ctx, policies.AddRule(in.Body.Rule), in.DryRun)
	})

	register(s, huma.Operation{
		OperationID: "removePolicyRule", Method: http.MethodDelete, Path: "/policies/rules",
		Summary: "Remove one rule", Description: "Takes one rule out of policy.csv (every line that says it) and puts the policy in force. A rule the policy does not have is 404. " + checked,
		Tags: []string{"Policies"}, Errors: []int{http.StatusNotFound},
	}, objectNeed(policiesObject, policies.Edit).audited(audit.PolicyRuleRemove), func(ctx context.Context, in *struct {
		DryRunQuery
		Rule string `query:"rule" required:"true" minLength:"3" maxLength:"2048" doc:"The rule as policy.csv writes it; an effect left out is allow."`
	}) (*PoliciesOutput, error) {
		return change(ctx, policies.RemoveRule(in.Rule), in.DryRun)
	})

	register(s, huma.Operation{
		OperationID: "addRoleMember", Method: http.MethodPut, Path: "/roles/{role}/members/{subject}",
		Summary: "Add a member to a role", Description: "Adds \"g, SUBJECT, ROLE\" to policy.csv, a user written user:<username>. A member already is 409. " + checked,
		Tags: []string{"Policies"}, Errors: []int{http.StatusConflict},
	}, objectNeed(policiesObject, policies.Edit).audited(audit.RoleMemberAdd), func(ctx context.Context, in *struct {
		RoleMemberPath
		DryRunQuery
	}) (*PoliciesOutput, error) {
		written, err := s.writtenSubject(ctx, in.Subject)
		if err != nil {
			return nil, err
		}
		return change(ctx, policies.AddMember(in.Role, written[0]), in.DryRun)
	})

	register(s, huma.Operation{
		OperationID: "removeRoleMember", Method: http.MethodDelete, Path: "/roles/{role}/members/{subject}",
		Summary: "Remove a member from a role", Description: "Takes \"g, SUBJECT, ROLE\" out of policy.csv, the user written by name or id. Not a member through policy.csv is 404. " + checked,
		Tags: []string{"Policies"}, Errors: []int{http.StatusNotFound},
	}, objectNeed(policiesObject, policies.Edit).audited(audit.RoleMemberRemove), func(ctx context.Context, in *struct {
		RoleMemberPath
		DryRunQuery
	}) (*PoliciesOutput, error) {
		written, err := s.writtenSubject(ctx, in.Subject)
		if err != nil {
			return nil, err
		}
		var out *PoliciesOutput
		for _, w := range written {
			if out, err = change(ctx, policies.RemoveMember(in.Role, w), in.DryRun); err == nil {
				return out, nil
			}
			var se huma.StatusError
			if !errors.As(err, &se) || se.GetStatus() != http.StatusNotFound {
				return nil, err
			}
		}
		return nil, err
	})
}

// changePolicy applies one change (or checks it, dryRun) and answers the
// policy it makes, with its warnings and, when in force, its version.
func (s *Server) changePolicy(ctx context.Context, c policies.Change, dryRun bool) (*PoliciesOutput, error) {
	rec := auditOf(ctx)
	if dryRun {
		rec.dryRun()
	}
	rec.target(policiesObject)
	rec.before(s.deps.Policy.Documents())
	docs, err := s.deps.Users.ChangePolicy(ctx, c, dryRun)
	if err != nil {
		return nil, s.policyChangeError(ctx, err)
	}
	rec.after(docs)
	warnings, err := s.deps.Policy.WarningsFor(ctx, docs)
	if err != nil {
		return nil, s.internal(ctx, "check the policy's subjects", err)
	}
	out := Documents{Model: docs.Model, Policy: docs.Policy, Warnings: warningsOf(warnings)}
	if dryRun {
		if out.Changes, err = s.decisionChanges(ctx, docs); err != nil {
			return nil, err
		}
	} else {
		out.FileStatus = "in_force"
		out.Version = s.deps.Policy.InForce()
	}
	return &PoliciesOutput{Body: out}, nil
}

// writtenSubject is how policy.csv writes a subject a person named: a user
// as user:<username>, then by id; anything else as given.
func (s *Server) writtenSubject(ctx context.Context, subject string) ([]string, error) {
	sub, _, err := s.resolveSubject(ctx, subject, "path.subject")
	if err != nil {
		return nil, err
	}
	if strings.Contains(sub, ":") {
		return []string{sub}, nil
	}
	u, err := s.deps.Users.Get(ctx, sub)
	if errors.Is(err, users.ErrNotFound) {
		return []string{sub}, nil
	}
	if err != nil {
		return nil, s.internal(ctx, "look up user", err)
	}
	return []string{policies.UserPrefix + u.Username, sub}, nil
}

// policyChangeError maps a refused policy change to its status: 422 with
// every problem (or the lockout's reason), 409 for the last administrator
// and a rule already there, 404 for a rule not there.
func (s *Server) policyChangeError(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, policies.ErrInvalid) || errors.Is(err, policies.ErrLockout):
		return policyProblems(err)
	case errors.Is(err, users.ErrLastAdministrator):
		return huma.Error409Conflict(lastAdministrator)
	case errors.Is(err, policies.ErrRuleExists):
		return huma.Error409Conflict(err.Error())
	case errors.Is(err, policies.ErrRuleNotFound):
		return huma.Error404NotFound(err.Error())
	}
	return s.internal(ctx, "change the policy", err)
}
