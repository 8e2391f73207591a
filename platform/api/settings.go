package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/grin-ai/grin/platform/audit"
	"github.com/grin-ai/grin/platform/redact"
	"github.com/grin-ai/grin/platform/settings"
	"github.com/grin-ai/grin/policies"
)

// SettingBody is the Cat's body of POST /settings and PUT /settings/{id}.
type SettingBody struct {
	Name     string          `json:"name" minLength:"1" maxLength:"256"`
	Value    json.RawMessage `json:"value" doc:"A JSON object or array."`
	Category string          `json:"category,omitempty" maxLength:"256"`
}

// Resolve checks that value is an object or an array, as the Cat's
// SettingBody requires.
func (b *SettingBody) Resolve(huma.Context) []error {
	var x any
	if json.Unmarshal(b.Value, &x) == nil {
		switch x.(type) {
		case map[string]any, []any:
			return nil
		}
	}
	return []error{&huma.ErrorDetail{Location: "body.value", Message: "value must be a JSON object or array"}}
}

// StoredSetting is one of the Cat's free settings. Its fields are given
// twice, at the top (the Cat's TypeScript client reads a Setting there)
// and under "setting" (where the Cat 1.8 puts them).
type StoredSetting struct {
	StoredSettingFields
	Setting StoredSettingFields `json:"setting"`
}

// StoredSettingFields are a free setting's fields.
type StoredSettingFields struct {
	SettingID string          `json:"setting_id"`
	Name      string          `json:"name"`
	Value     json.RawMessage `json:"value" doc:"Values under names that look secret (key, token, password…) and password hashes read as ********."`
	Category  string          `json:"category"`
	UpdatedAt int64           `json:"updated_at" doc:"Unix seconds."`
}

// StoredSettings lists free settings.
type StoredSettings struct {
	Settings []StoredSettingFields `json:"settings"`
}

// SettingDeleted names the deleted setting.
type SettingDeleted struct {
	Deleted string `json:"deleted"`
}

// SettingID names a free setting in the path.
type SettingID struct {
	ID string `path:"setting_id" maxLength:"64" doc:"The setting's id."`
}

func storedFields(d settings.Document) StoredSettingFields {
	return StoredSettingFields{SettingID: d.ID, Name: d.Name, Value: redact.JSON(d.Value), Category: d.Category, UpdatedAt: d.UpdatedAt}
}

func stored(d settings.Document) *struct{ Body StoredSetting } {
	f := storedFields(d)
	return &struct{ Body StoredSetting }{StoredSetting{StoredSettingFields: f, Setting: f}}
}

// auditDocument names /settings document id as the request's target and
// records it as it is before the change.
func (s *Server) auditDocument(ctx context.Context, id string) *auditRecord {
	rec := auditOf(ctx)
	rec.target(id)
	if rec != nil {
		if d, err := s.deps.Documents.Get(ctx, id); err == nil {
			rec.before(d)
		}
	}
	return rec
}

func (s *Server) documentError(ctx context.Context, err error) error {
	if errors.Is(err, settings.ErrNoDocument) {
		// The Cat's words, which its clients may look for.
		return huma.Error404NotFound("No setting with this id: " + strings.TrimPrefix(err.Error(), settings.ErrNoDocument.Error()+": "))
	}
	return s.internal(ctx, "settings", err)
}

// registerDocuments registers the Cat's /settings: free named JSON
// documents, for those the policy grants SETTINGS (administrators by
// default). grin's own configuration lives in /llm, /embedder and
// /auth_handler settings, not here, and no secret is ever shown.
func (s *Server) registerDocuments() {
	register(s, huma.Operation{
		OperationID: "listSettings", Method: http.MethodGet, Path: "/settings",
		Summary: "List settings", Description: "The Cat's free settings whose name contains search, by name.", Tags: []string{"Settings"},
	}, catNeed(policies.Settings, policies.List), func(ctx context.Context, in *struct {
		Search string `query:"search" maxLength:"256" doc:"Only settings whose name contains this."`
	}) (*struct{ Body StoredSettings }, error) {
		docs, err := s.deps.Documents.List(ctx, in.Search)
		if err != nil {
			return nil, s.documentError(ctx, err)
		}
		out := StoredSettings{Settings: []StoredSettingFields{}}
		for _, d := range docs {
			out.Settings = append(out.Settings, storedFields(d))
		}
		return &struct{ Body StoredSettings }{out}, nil
	})

	register(s, huma.Operation{
		OperationID: "createSetting", Method: http.MethodPost, Path: "/settings",
		Summary: "Create a setting", Tags: []string{"Settings"},
	}, catNeed(policies.Settings, policies.Write).audited(audit.SettingCreate), func(ctx context.Context, in *struct{ Body SettingBody }) (*struct{ Body StoredSetting }, error) {
		rec := auditOf(ctx)
		rec.target(in.Body.Name) // its id once it has one
		d, err := s.deps.Documents.Create(ctx, in.Body.Name, in.Body.Value, in.Body.Category)
		if err != nil {
			return nil, s.documentError(ctx, err)
		}
		rec.target(d.ID)
		rec.after(d)
		return stored(d), nil
	})

	register(s, huma.Operation{
		OperationID: "getSetting", Method: http.MethodGet, Path: "/settings/{setting_id}",
		Summary: "Get a setting", Tags: []string{"Settings"}, Errors: []int{http.StatusNotFound},
	}, catNeed(policies.Settings, policies.Read), func(ctx context.Context, in *SettingID) (*struct{ Body StoredSetting }, error) {
		d, err := s.deps.Documents.Get(ctx, in.ID)
		if err != nil {
			return nil, s.documentError(ctx, err)
		}
		return stored(d), nil
	})

	register(s, huma.Operation{
		OperationID: "updateSetting", Method: http.MethodPut, Path: "/settings/{setting_id}",
		Summary: "Replace a setting", Description: "Top-level values sent as ******** keep their stored value.",
		Tags: []string{"Settings"}, Errors: []int{http.StatusNotFound},
	}, catNeed(policies.Settings, policies.Edit).audited(audit.SettingUpdate), func(ctx context.Context, in *struct {
		SettingID
		Body SettingBody
	}) (*struct{ Body StoredSetting }, error) {
		rec := s.auditDocument(ctx, in.ID)
		d, err := s.deps.Documents.Update(ctx, in.ID, in.Body.Name, in.Body.Value, in.Body.Category)
		if err != nil {
			return nil, s.documentError(ctx, err)
		}
		rec.after(d)
		return stored(d), nil
	})

	register(s, huma.Operation{
		OperationID: "deleteSetting", Method: http.MethodDelete, Path: "/settings/{setting_id}",
		Summary: "Delete a setting", Tags: []string{"Settings"}, Errors: []int{http.StatusNotFound},
	}, catNeed(policies.Settings, policies.Delete).audited(audit.SettingDelete), func(ctx context.Context, in *SettingID) (*struct{ Body SettingDeleted }, error) {
		s.auditDocument(ctx, in.ID)
		if err := s.deps.Documents.Delete(ctx, in.ID); err != nil {
			return nil, s.documentError(ctx, err)
		}
		return &struct{ Body SettingDeleted }{SettingDeleted{Deleted: in.ID}}, nil
	})
}
