package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/grin-ai/grin/platform/users"
	"github.com/grin-ai/grin/policies"
)

// policiesObject is the policy object that guards the policy itself; who
// may edit it is a policy administrator (policies.AdministratorRequest). No
// Cat permission grants it; by default only role:admin reaches it.
const policiesObject = policies.PolicyObject

// Documents are the policy's two files as the API carries them (the schema
// keeps its name for generated clients). GET adds the state of the files in
// the data directory; those fields are read-only and ignored by PUT, so
// what GET returns can be sent back as it is.
type Documents struct {
	Model      string            `json:"model" doc:"The Casbin model (model.conf)."`
	Policy     string            `json:"policy" doc:"The policy rules (policy.csv), one per line."`
	FileStatus string            `json:"file_status,omitempty" readOnly:"true" enum:"in_force,refused" doc:"Read-only (GET; ignored by PUT). in_force: model and policy are what model.conf and policy.csv in the data directory say. refused: the files do not load, or would leave no user able to edit policies; model and policy are then the last policy that loaded, and file_errors say what to fix."`
	FileErrors []PolicyFileError `json:"file_errors,omitempty" readOnly:"true" doc:"Read-only (GET; ignored by PUT). Every problem found in the refused files; absent when they are in force."`
}

func (d Documents) documents() policies.Documents {
	return policies.Documents{Model: d.Model, Policy: d.Policy}
}

// PoliciesOutput carries the policy documents.
type PoliciesOutput struct{ Body Documents }

// PolicyFileError is one problem of a refused model or policy file.
type PolicyFileError struct {
	File    string `json:"file" doc:"model.conf or policy.csv."`
	Line    int    `json:"line,omitempty" doc:"The line, from 1; absent when the problem is not on one line."`
	Message string `json:"message" doc:"What is wrong, in words an administrator can act on."`
}

// PolicyCheck is one authorization question.
type PolicyCheck struct {
	Subject string `json:"subject" minLength:"1" maxLength:"256" doc:"A policy subject: a user id, a role (role:admin) or a credential (credential:api_key)."`
	Object  string `json:"object" minLength:"1" maxLength:"512" doc:"What is reached: users, episodic:<user id>, …"`
	Action  string `json:"action" enum:"read,list,write,edit,delete,use" doc:"The permission word, lower case; use for a plugin's capabilities (capability:<name>)."`
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
		Summary: "Read the policy",
		Description: "The Casbin model and policy in force, and whether the files in the data directory are them. " +
			"When an edit of the files was refused (at start or since), file_status is refused, file_errors lists every problem, " +
			"and the documents are the last policy that loaded.",
		Tags: []string{"Policies"},
	}, objectNeed(policiesObject, policies.Read), func(ctx context.Context, _ *struct{}) (*PoliciesOutput, error) {
		st := s.deps.Policy.FileStatus()
		docs := s.deps.Policy.Documents()
		out := Documents{Model: docs.Model, Policy: docs.Policy, FileStatus: "in_force"}
		if st.Refused {
			out.FileStatus = "refused"
			for _, p := range st.Problems {
				out.FileErrors = append(out.FileErrors, PolicyFileError{File: p.File, Line: p.Line, Message: p.Message})
			}
		}
		return &PoliciesOutput{Body: out}, nil
	})

	register(s, huma.Operation{
		OperationID: "updatePolicies", Method: http.MethodPut, Path: "/policies",
		Summary: "Replace the policy",
		Description: "Validates the model and policy, writes them to the data directory and puts them in force at once. " +
			"A model or policy that does not load is refused with 422 listing every problem (errors[].location such as body.policy[line 3]) and changes nothing; " +
			"so is one under which no internal user could edit the policy any more. " +
			"With dry_run, only validates, and refuses alike.",
		Tags: []string{"Policies"}, Errors: []int{http.StatusConflict},
	}, objectNeed(policiesObject, policies.Edit), func(ctx context.Context, in *struct {
		DryRun bool `query:"dry_run" doc:"Validate only."`
		Body   Documents
	}) (*PoliciesOutput, error) {
		err := s.deps.Users.UpdatePolicy(ctx, in.Body.documents(), in.DryRun)
		if errors.Is(err, policies.ErrInvalid) || errors.Is(err, policies.ErrLockout) {
			return nil, policyProblems(err)
		}
		if errors.Is(err, users.ErrLastAdministrator) {
			return nil, huma.Error409Conflict(lastAdministrator)
		}
		if err != nil {
			return nil, s.internal(ctx, "update policy", err)
		}
		if in.DryRun {
			return &PoliciesOutput{Body: Documents{Model: in.Body.Model, Policy: in.Body.Policy}}, nil
		}
		docs := s.deps.Policy.Documents()
		return &PoliciesOutput{Body: Documents{Model: docs.Model, Policy: docs.Policy, FileStatus: "in_force"}}, nil
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

// policyProblems is the 422 answer to a refused model or policy: a detail
// that says what is wrong and one error per problem, located at its
// document and line.
func policyProblems(err error) error {
	ps := policies.Problems(err)
	details := make([]error, len(ps))
	for i, p := range ps {
		loc := "body"
		switch p.File {
		case policies.ModelFile:
			loc = "body.model"
		case policies.PolicyFile:
			loc = "body.policy"
		}
		if p.Line > 0 {
			loc += fmt.Sprintf("[line %d]", p.Line)
		}
		details[i] = &huma.ErrorDetail{Location: loc, Message: p.Message}
	}
	if errors.Is(err, policies.ErrLockout) {
		return huma.Error422UnprocessableEntity(err.Error(), details...)
	}
	msg := "the model or policy does not load: " + ps[0].String()
	if len(ps) > 1 {
		msg = fmt.Sprintf("the model or policy does not load: %d problems, first %s", len(ps), ps[0])
	}
	return huma.Error422UnprocessableEntity(msg, details...)
}
