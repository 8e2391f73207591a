package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/grin-ai/grin/platform/audit"
	"github.com/grin-ai/grin/platform/memory"
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
	Version    int64             `json:"version,omitempty" readOnly:"true" doc:"Read-only (ignored by PUT). The number of the version in force (GET /policies/versions); absent for a dry run."`
	Changes    []DecisionChange  `json:"decision_changes,omitempty" readOnly:"true" doc:"Read-only, dry runs only: every decision the change would turn, for every role, credential and plugin the policies name and every user (users holding the same roles compared once, as a group), over the Cat's permissions, the policy, every declarative space and the user's own memory and conversation."`
	Warnings   []PolicyWarning   `json:"warnings,omitempty" readOnly:"true" doc:"Read-only (ignored by PUT). Rules of the policy returned that load but have no effect, because a subject they name matches nothing: user:<username> of no user, a username written without user:, an id no user has, an unknown credential, a role given that grants nothing."`
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

// DecisionChange is one decision a change would turn.
type DecisionChange struct {
	Subject string `json:"subject" doc:"Whom: a role, credential or plugin, or users by name (a group of users who hold the same roles is counted)."`
	Object  string `json:"object"`
	Action  string `json:"action"`
	Before  string `json:"before" enum:"allow,deny,none"`
	After   string `json:"after" enum:"allow,deny,none"`
	Text    string `json:"text" doc:"The change in a sentence, with the rule that decides it now."`
}

// decisionChanges compares docs with the policy in force, for a dry run.
func (s *Server) decisionChanges(ctx context.Context, docs policies.Documents) ([]DecisionChange, error) {
	spaces, err := s.deps.Memory.Partitions(ctx, memory.Declarative)
	if err != nil {
		return nil, s.internal(ctx, "list spaces", err)
	}
	cs, err := s.deps.Policy.Compare(ctx, docs, append(spaces, memory.DefaultSpace))
	if err != nil {
		return nil, s.internal(ctx, "compare the policies", err)
	}
	out := []DecisionChange{}
	for _, c := range cs {
		out = append(out, DecisionChange{Subject: c.Subject, Object: c.Object, Action: c.Action, Before: c.Before, After: c.After, Text: c.String()})
	}
	return out, nil
}

// PolicyWarning is a rule that loads but has no effect.
type PolicyWarning struct {
	File    string `json:"file" doc:"policy.csv."`
	Line    int    `json:"line,omitempty" doc:"The rule's line, from 1."`
	Message string `json:"message" doc:"Which subject matches nothing, and how to name it."`
}

func warningsOf(ps []policies.Problem) []PolicyWarning {
	var out []PolicyWarning
	for _, p := range ps {
		out = append(out, PolicyWarning{File: p.File, Line: p.Line, Message: p.Message})
	}
	return out
}

// PolicyCheck is one authorization question.
type PolicyCheck struct {
	Subject string `json:"subject" minLength:"1" maxLength:"256" doc:"Who asks: a username (alice), a user id, user:<username>, a role (role:admin), a plugin (plugin:<id>) or a credential (credential:api_key)."`
	Object  string `json:"object" minLength:"1" maxLength:"512" doc:"What is reached: users, episodic:<user id>, …"`
	Action  string `json:"action" enum:"read,list,write,edit,delete,use" doc:"The permission word, lower case; use for a plugin's capabilities (capability:<name>)."`
	Self    string `json:"self,omitempty" maxLength:"256" doc:"The id that {self} stands for (a username is taken as that user's id); the subject's id when absent."`
}

// PolicyDecision says whether a request is allowed and why.
type PolicyDecision struct {
	Allowed bool     `json:"allowed"`
	Rule    []string `json:"rule" nullable:"false" doc:"The rule that decided (allowed, or denied with a deny rule), field by field as loaded, its effect last; empty when no rule allows it."`
	Via     []string `json:"via" nullable:"false" doc:"The roles from the subject to the rule's subject."`
	Subject string   `json:"subject" doc:"The policy subject asked about, as decisions see it (a user's id for a username), with whom it names."`
	Effect  string   `json:"effect" enum:"allow,deny,none" doc:"allow: a rule allows it and none denies it; deny: a deny rule refuses it (rule names it); none: no rule allows it."`
	Text    string   `json:"text,omitempty" doc:"The deciding rule as policy.csv writes it (users as user:<username>)."`
	Line    int      `json:"line,omitempty" doc:"The deciding rule's line in policy.csv."`
	Reason  string   `json:"reason" doc:"The decision in a sentence, naming the rule and the roles it came through."`
}

// decisionOf is the API's view of a decision.
func decisionOf(d policies.Decision, label string) PolicyDecision {
	out := PolicyDecision{Allowed: d.Allowed, Rule: d.Rule, Via: d.Via, Subject: label, Effect: "none", Text: d.Text, Line: d.Line, Reason: d.Reason()}
	switch {
	case d.Allowed:
		out.Effect = "allow"
	case d.Denied:
		out.Effect = "deny"
	}
	if out.Rule == nil {
		out.Rule = []string{}
	}
	if out.Via == nil {
		out.Via = []string{}
	}
	return out
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
		out := Documents{Model: docs.Model, Policy: docs.Policy, FileStatus: "in_force", Version: s.deps.Policy.InForce(), Warnings: warningsOf(s.deps.Policy.Warnings())}
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
	}, objectNeed(policiesObject, policies.Edit).audited(audit.PolicyUpdate), func(ctx context.Context, in *struct {
		DryRun bool `query:"dry_run" doc:"Validate only."`
		Body   Documents
	}) (*PoliciesOutput, error) {
		rec := auditOf(ctx)
		if in.DryRun {
			rec.dryRun()
		}
		rec.target(policiesObject)
		rec.before(s.deps.Policy.Documents())
		rec.after(in.Body.documents())
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
			warnings, err := s.deps.Policy.WarningsFor(ctx, in.Body.documents())
			if err != nil {
				return nil, s.internal(ctx, "check the policy's subjects", err)
			}
			changes, err := s.decisionChanges(ctx, in.Body.documents())
			if err != nil {
				return nil, err
			}
			return &PoliciesOutput{Body: Documents{Model: in.Body.Model, Policy: in.Body.Policy, Warnings: warningsOf(warnings), Changes: changes}}, nil
		}
		docs := s.deps.Policy.Documents()
		rec.after(docs)
		return &PoliciesOutput{Body: Documents{Model: docs.Model, Policy: docs.Policy, FileStatus: "in_force", Version: s.deps.Policy.InForce(), Warnings: warningsOf(s.deps.Policy.Warnings())}}, nil
	})

	register(s, huma.Operation{
		OperationID: "checkPolicy", Method: http.MethodPost, Path: "/policies/check",
		Summary: "Check a decision", Description: "Says whether the policy allows a subject an action on an object, which rule decided (an allow rule, or a deny rule, which wins over every allow), and through which roles.",
		Tags: []string{"Policies"},
	}, objectNeed(policiesObject, policies.Read), func(ctx context.Context, in *struct{ Body PolicyCheck }) (*PolicyDecisionOutput, error) {
		sub, label, err := s.resolveSubject(ctx, in.Body.Subject, "body.subject")
		if err != nil {
			return nil, err
		}
		self := sub
		if in.Body.Self != "" {
			self = in.Body.Self
			// A username stands for its user's id, as in the subject.
			if id, _, err := s.deps.Policy.ResolveSubject(ctx, self); err == nil && !strings.Contains(self, ":") {
				self = id
			}
		}
		d, err := s.deps.Policy.Explain(policies.Request{Subjects: []string{sub}, Self: self, Object: in.Body.Object, Action: in.Body.Action})
		if err != nil {
			return nil, huma.Error422UnprocessableEntity(err.Error())
		}
		return &PolicyDecisionOutput{Body: decisionOf(d, label)}, nil
	})
}

// resolveSubject turns a subject a person gave (a username, an id,
// user:<username>, role:…, plugin:…, credential:…) into the one decisions
// are asked with, and a label naming it; an unknown one is a 422 at loc.
func (s *Server) resolveSubject(ctx context.Context, subject, loc string) (string, string, error) {
	sub, label, err := s.deps.Policy.ResolveSubject(ctx, subject)
	if errors.Is(err, policies.ErrUnknownSubject) {
		return "", "", huma.Error422UnprocessableEntity(err.Error(), &huma.ErrorDetail{Location: loc, Message: err.Error(), Value: subject})
	}
	if err != nil {
		return "", "", s.internal(ctx, "look up the subject", err)
	}
	return sub, label, nil
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
