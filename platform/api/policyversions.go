package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/grin-ai/grin/platform/audit"

	"github.com/grin-ai/grin/policies"
)

// PolicyVersion is one policy that was put in force.
type PolicyVersion struct {
	Version   int64     `json:"version" doc:"Its number; the first start is version 1."`
	Author    string    `json:"author" doc:"Who made it: a user (name and id), a credential, or the policy files in the data directory; empty for versions stored before grin recorded authors."`
	Source    string    `json:"source" enum:"file,api,restore,rename,delete" doc:"file: the files in the data directory (a start or an edit); api: PUT /policies or a rule change; restore: an earlier version put back; rename, delete: a user the rules name was renamed or deleted."`
	CreatedAt time.Time `json:"created_at"`
	InForce   bool      `json:"in_force" doc:"Whether this is the version in force."`
}

// PolicyVersionDetail is a version with its documents and what it changed.
type PolicyVersionDetail struct {
	PolicyVersion
	Model  string `json:"model"`
	Policy string `json:"policy"`
	Diff   string `json:"diff" doc:"A unified diff from the version before (model.conf, then policy.csv); the whole documents for the first."`
}

func versionOf(v policies.Version, inForce int64) PolicyVersion {
	return PolicyVersion{Version: v.N, Author: v.Author, Source: v.Source, CreatedAt: v.At, InForce: v.N == inForce}
}

func (s *Server) registerPolicyVersions() {
	register(s, huma.Operation{
		OperationID: "listPolicyVersions", Method: http.MethodGet, Path: "/policies/versions",
		Summary:     "Policy versions",
		Description: "Every policy put in force, newest first: each accepted PUT /policies, rule change, restore and edit of the files is one numbered version, with its author and time.",
		Tags:        []string{"Policies"},
	}, objectNeed(policiesObject, policies.Read), func(ctx context.Context, in *struct {
		Before int64 `query:"before" minimum:"0" doc:"Only versions older than this number (the next page)."`
		Limit  int   `query:"limit" minimum:"1" maximum:"1000" default:"100" doc:"How many at most."`
	}) (*struct{ Body []PolicyVersion }, error) {
		vs, err := s.deps.Policy.Versions(ctx, in.Before, in.Limit)
		if err != nil {
			return nil, s.internal(ctx, "list policy versions", err)
		}
		now := s.deps.Policy.InForce()
		out := make([]PolicyVersion, 0, len(vs))
		for _, v := range vs {
			out = append(out, versionOf(v, now))
		}
		return &struct{ Body []PolicyVersion }{out}, nil
	})

	register(s, huma.Operation{
		OperationID: "getPolicyVersion", Method: http.MethodGet, Path: "/policies/versions/{version}",
		Summary: "A policy version", Description: "The documents of one version and a diff from the version before.",
		Tags: []string{"Policies"}, Errors: []int{http.StatusNotFound},
	}, objectNeed(policiesObject, policies.Read), func(ctx context.Context, in *struct {
		Version int64 `path:"version" minimum:"1"`
	}) (*struct{ Body PolicyVersionDetail }, error) {
		v, prev, err := s.deps.Policy.Version(ctx, in.Version)
		if errors.Is(err, policies.ErrNoVersion) {
			return nil, huma.Error404NotFound(err.Error())
		}
		if err != nil {
			return nil, s.internal(ctx, "read a policy version", err)
		}
		out := PolicyVersionDetail{PolicyVersion: versionOf(v, s.deps.Policy.InForce()), Model: v.Docs.Model, Policy: v.Docs.Policy, Diff: policies.Diff(prev, v.Docs)}
		return &struct{ Body PolicyVersionDetail }{out}, nil
	})

	register(s, huma.Operation{
		OperationID: "restorePolicyVersion", Method: http.MethodPost, Path: "/policies/versions/{version}/restore",
		Summary: "Put a version back in force",
		Description: "Puts an earlier version back in force, as a new version, and writes it to the data directory. " +
			"Checked as PUT /policies is (422 with the reason when it no longer loads, or would leave no user able to edit the policy); with dry_run only checked.",
		Tags: []string{"Policies"}, Errors: []int{http.StatusNotFound, http.StatusConflict},
	}, objectNeed(policiesObject, policies.Edit).audited(audit.PolicyRestore), func(ctx context.Context, in *struct {
		Version int64 `path:"version" minimum:"1"`
		DryRunQuery
	}) (*PoliciesOutput, error) {
		rctx, change, err := s.deps.Policy.Restore(ctx, in.Version)
		if errors.Is(err, policies.ErrNoVersion) {
			return nil, huma.Error404NotFound(err.Error())
		}
		if err != nil {
			return nil, s.internal(ctx, "read a policy version", err)
		}
		return s.changePolicy(rctx, change, in.DryRun)
	})
}
