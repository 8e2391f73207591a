package api

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/grin-ai/grin/policies"
)

// Status is the Cat's home status.
type Status struct {
	Status  string `json:"status" example:"We're all mad here, dear!" doc:"A greeting that says the server is up."`
	Version string `json:"version" doc:"grin's version."`
}

// StatusOutput carries the status.
type StatusOutput struct {
	Body Status
}

func (s *Server) registerStatus() {
	register(s, huma.Operation{
		OperationID: "getStatus",
		Method:      http.MethodGet,
		Path:        "/",
		Summary:     "Server status",
		Tags:        []string{"Status"},
	}, catNeed(policies.Status, policies.Read), func(ctx context.Context, _ *struct{}) (*StatusOutput, error) {
		out := &StatusOutput{}
		out.Body.Status = "We're all mad here, dear!"
		out.Body.Version = Version
		return out, nil
	})
}
