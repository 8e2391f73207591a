package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"grin/platform/auth"
	"grin/policies"
)

// AuthHandlerSetting is one auth handler configuration.
type AuthHandlerSetting struct {
	Name   string         `json:"name"`
	Value  map[string]any `json:"value" doc:"The configuration's settings."`
	Schema map[string]any `json:"schema,omitempty" doc:"JSON Schema of value."`
}

// AuthHandlerSettings lists the configurations, Cat-shaped.
type AuthHandlerSettings struct {
	Settings              []AuthHandlerSetting `json:"settings"`
	SelectedConfiguration string               `json:"selected_configuration"`
}

// AuthHandlerSettingsOutput carries every configuration.
type AuthHandlerSettingsOutput struct{ Body AuthHandlerSettings }

// AuthHandlerSettingOutput carries one configuration.
type AuthHandlerSettingOutput struct{ Body AuthHandlerSetting }

// AuthHandlerName names a configuration in the path.
type AuthHandlerName struct {
	Name string `path:"name" maxLength:"128" doc:"CoreOnlyAuthConfig or OIDCAuthConfig."`
}

func settingOf(h auth.HandlerSetting) (AuthHandlerSetting, error) {
	out := AuthHandlerSetting{Name: h.Name, Schema: h.Schema, Value: map[string]any{}}
	if len(h.Value) > 0 {
		if err := json.Unmarshal(h.Value, &out.Value); err != nil {
			return AuthHandlerSetting{}, err
		}
	}
	return out, nil
}

func (s *Server) registerAuthHandlers() {
	register(s, huma.Operation{
		OperationID: "listAuthHandlerSettings", Method: http.MethodGet, Path: "/auth_handler/settings",
		Summary: "Auth handler configurations", Tags: []string{"AuthHandler"},
	}, catNeed(policies.AuthHandler, policies.List), func(ctx context.Context, _ *struct{}) (*AuthHandlerSettingsOutput, error) {
		list, sel, err := s.deps.AuthHandlers.List(ctx)
		if err != nil {
			return nil, s.internal(ctx, "list auth handlers", err)
		}
		out := &AuthHandlerSettingsOutput{Body: AuthHandlerSettings{SelectedConfiguration: sel, Settings: []AuthHandlerSetting{}}}
		for _, h := range list {
			v, err := settingOf(h)
			if err != nil {
				return nil, s.internal(ctx, "list auth handlers", err)
			}
			out.Body.Settings = append(out.Body.Settings, v)
		}
		return out, nil
	})

	register(s, huma.Operation{
		OperationID: "getAuthHandlerSetting", Method: http.MethodGet, Path: "/auth_handler/settings/{name}",
		Summary: "One auth handler configuration", Tags: []string{"AuthHandler"}, Errors: []int{http.StatusNotFound},
	}, catNeed(policies.AuthHandler, policies.Read), func(ctx context.Context, in *AuthHandlerName) (*AuthHandlerSettingOutput, error) {
		h, err := s.deps.AuthHandlers.Get(ctx, in.Name)
		if err != nil {
			return nil, s.authHandlerError(ctx, err)
		}
		v, err := settingOf(h)
		if err != nil {
			return nil, s.internal(ctx, "read auth handler", err)
		}
		return &AuthHandlerSettingOutput{Body: v}, nil
	})

	register(s, huma.Operation{
		OperationID: "updateAuthHandlerSetting", Method: http.MethodPut, Path: "/auth_handler/settings/{name}",
		Summary: "Select and configure an auth handler",
		Description: "Validates the settings (an OIDC configuration fetches its JWKS once), saves them and makes this configuration " +
			"the selected one, at once. Refused settings change nothing.",
		Tags: []string{"AuthHandler"}, Errors: []int{http.StatusNotFound},
	}, catNeed(policies.AuthHandler, policies.Edit), func(ctx context.Context, in *struct {
		AuthHandlerName
		Body map[string]any
	}) (*AuthHandlerSettingOutput, error) {
		raw, err := json.Marshal(in.Body)
		if err != nil {
			return nil, huma.Error422UnprocessableEntity(err.Error())
		}
		h, err := s.deps.AuthHandlers.Put(ctx, in.Name, raw)
		if err != nil {
			return nil, s.authHandlerError(ctx, err)
		}
		v, err := settingOf(h)
		if err != nil {
			return nil, s.internal(ctx, "save auth handler", err)
		}
		return &AuthHandlerSettingOutput{Body: v}, nil
	})
}

func (s *Server) authHandlerError(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, auth.ErrUnknownHandler):
		return huma.Error404NotFound(err.Error())
	case errors.Is(err, auth.ErrInvalidSettings):
		return huma.Error422UnprocessableEntity(err.Error())
	}
	return s.internal(ctx, "auth handler settings", err)
}
