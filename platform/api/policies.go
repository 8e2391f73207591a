package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/grin-ai/grin/platform/users"
	"github.com/grin-ai/grin/policies"
)

// policiesObject is the policy object that guards the policy itself; who
// may edit it is a policy administrator (policies.AdministratorRequest).
const policiesObject = policies.PolicyObject

// PoliciesOutput carries the policy documents.
type PoliciesOutput struct{ Body policies.Documents }

// PolicyCheck is one authorization question.
type PolicyCheck struct {
	Subject string `json:"subject" minLength:"1" maxLength:"256" doc:"A policy subject: a user id, a role (role:admin) or a credential (credential:api_key)."`
	Object  string `json:"object" minLength:"1" maxLength:"512" doc:"What is reached: users, episodic:<user id>, …"`
	Action  string `json:"action" enum:"read,list,write,edit,delete" doc:"The permission word, lower case."`
	Self    string `json:"self,omitempty" maxLength:"256" doc:"The id that {self} stands for; the subject when absent."`
}

// PolicyDecision says whether a request is allowed and why.
type PolicyDecision struct {
	Allowed bool     `json:"allowed"`
	Rule    []string `json:"rule" nullable:"false" doc:"The rule that allowed it, field by field; empty when denied."`
	Via     []string `json:"via" nullable:"false" doc:"The roles from the subject to the rule's subject."`
}

// PolicyDecisionOutput carries a decision.
type PolicyDecisionOutput struct{ Body PolicyDecision }

func (s *Server) registerPolicies() {
	register(s, huma.Operation{
		OperationID: "getPolicies", Method: http.MethodGet, Path: "/policies",
		Summary: "Read the policy", Description: "The Casbin model and policy in force.", Tags: []string{"Policies"},
	}, objectNeed(policiesObject, policies.Read), func(ctx context.Context, _ *struct{}) (*PoliciesOutput, error) {
		return &PoliciesOutput{Body: s.deps.Policy.Documents()}, nil
	})

	register(s, huma.Operation{
		OperationID: "updatePolicies", Method: http.MethodPut, Path: "/policies",
		Summary: "Replace the policy",
		Description: "Validates the model and policy, writes them to the data directory and puts them in force at once. " +
			"A model or policy that does not load is refused with 422 and changes nothing; one under which no user could edit the policy any more, with 409. " +
			"With dry_run, only validates.",
		Tags: []string{"Policies"}, Errors: []int{http.StatusConflict},
	}, objectNeed(policiesObject, policies.Edit), func(ctx context.Context, in *struct {
		DryRun bool `query:"dry_run" doc:"Validate only."`
		Body   policies.Documents
	}) (*PoliciesOutput, error) {
		err := s.deps.Users.UpdatePolicy(ctx, in.Body, in.DryRun)
		if errors.Is(err, policies.ErrInvalid) {
			return nil, huma.Error422UnprocessableEntity(err.Error())
		}
		if errors.Is(err, users.ErrLastAdministrator) {
			return nil, huma.Error409Conflict(lastAdministrator)
		}
		if err != nil {
			return nil, s.internal(ctx, "update policy", err)
		}
		if in.DryRun {
			return &PoliciesOutput{Body: in.Body}, nil
		}
		return &PoliciesOutput{Body: s.deps.Policy.Documents()}, nil
	})

	register(s, huma.Operation{
		OperationID: "checkPolicy", Method: http.MethodPost, Path: "/policies/check",
		Summary: "Check a decision", Description: "Says whether the policy allows a subject an action on an object, and which rule decided.",
		Tags: []string{"Policies"},
	}, objectNeed(policiesObject, policies.Read), func(ctx context.Context, in *struct{ Body PolicyCheck }) (*PolicyDecisionOutput, error) {
		self := in.Body.Self
		if self == "" {
			self = in.Body.Subject
		}
		d, err := s.deps.Policy.Explain(policies.Request{Subjects: []string{in.Body.Subject}, Self: self, Object: in.Body.Object, Action: in.Body.Action})
		if err != nil {
			return nil, huma.Error422UnprocessableEntity(err.Error())
		}
		out := PolicyDecision{Allowed: d.Allowed, Rule: d.Rule, Via: d.Via}
		if out.Rule == nil {
			out.Rule = []string{}
		}
		if out.Via == nil {
			out.Via = []string{}
		}
		return &PolicyDecisionOutput{Body: out}, nil
	})
}
