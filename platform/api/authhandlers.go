package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/grin-ai/grin/platform/audit"
	"github.com/grin-ai/grin/platform/settings"
	"github.com/grin-ai/grin/policies"
)

// Setting is one configuration of a configurable component.
type Setting struct {
	Name   string         `json:"name"`
	Value  map[string]any `json:"value" doc:"The configuration's settings; secrets read as ********."`
	Schema map[string]any `json:"schema,omitempty" doc:"JSON Schema of value."`
}

// SettingsList lists a component's configurations, Cat-shaped.
type SettingsList struct {
	Settings              []Setting `json:"settings"`
	SelectedConfiguration string    `json:"selected_configuration"`
}

// SettingsListOutput carries every configuration.
type SettingsListOutput struct{ Body SettingsList }

// SettingOutput carries one configuration.
type SettingOutput struct{ Body Setting }

// SettingName names a configuration in the path.
type SettingName struct {
	Name string `path:"name" maxLength:"128" doc:"The configuration's name."`
}

func settingOf(h settings.Setting) (Setting, error) {
	out := Setting{Name: h.Name, Schema: h.Schema, Value: map[string]any{}}
	if len(h.Value) > 0 {
		if err := json.Unmarshal(h.Value, &out.Value); err != nil {
			return Setting{}, err
		}
	}
	return out, nil
}

// settingsFamily describes the Cat endpoints of one configurable component.
type settingsFamily struct {
	path     string // "/llm/settings"
	opSuffix string // "LLMSettings" → listLLMSettings, getLLMSetting, updateLLMSetting
	tag      string
	resource policies.Resource
	what     string // "language model"
	// policyAdmin requires, for changes, the right to edit the policy too:
	// an auth handler's settings map people to policy roles.
	policyAdmin bool
	// audit is the audit log's action for a change.
	audit string
	// test offers POST {path}/{name}/test: a connection test that saves
	// nothing.
	test bool
}

// SettingTest says whether a configuration would work.
type SettingTest struct {
	OK     bool   `json:"ok" doc:"Whether the configuration was built and its server, if any, answered."`
	Detail string `json:"detail" doc:"What was found, in words; never a secret."`
}

// registerSettings registers the three Cat operations of a family: list,
// get and put (which also selects). registry is the family's place among
// the server's services, read when an operation is called: the services
// come after the operations are registered (Prepared.With).
func registerSettings[T any](s *Server, registry **settings.Registry[T], f settingsFamily) {
	register(s, huma.Operation{
		OperationID: "list" + f.opSuffix + "s", Method: http.MethodGet, Path: f.path,
		Summary: "List " + f.what + " configurations", Tags: []string{f.tag},
	}, catNeed(f.resource, policies.List), func(ctx context.Context, _ *struct{}) (*SettingsListOutput, error) {
		r := *registry
		list, sel, err := r.List(ctx)
		if err != nil {
			return nil, s.internal(ctx, "list "+f.what+" settings", err)
		}
		out := &SettingsListOutput{Body: SettingsList{SelectedConfiguration: sel, Settings: []Setting{}}}
		for _, h := range list {
			v, err := settingOf(h)
			if err != nil {
				return nil, s.internal(ctx, "list "+f.what+" settings", err)
			}
			out.Body.Settings = append(out.Body.Settings, v)
		}
		return out, nil
	})

	register(s, huma.Operation{
		OperationID: "get" + f.opSuffix, Method: http.MethodGet, Path: f.path + "/{name}",
		Summary: "Get a " + f.what + " configuration", Tags: []string{f.tag}, Errors: []int{http.StatusNotFound},
	}, catNeed(f.resource, policies.Read), func(ctx context.Context, in *SettingName) (*SettingOutput, error) {
		r := *registry
		h, err := r.Get(ctx, in.Name)
		if err != nil {
			return nil, s.settingsError(ctx, err)
		}
		v, err := settingOf(h)
		if err != nil {
			return nil, s.internal(ctx, "read "+f.what+" settings", err)
		}
		return &SettingOutput{Body: v}, nil
	})

	register(s, huma.Operation{
		OperationID: "update" + f.opSuffix, Method: http.MethodPut, Path: f.path + "/{name}",
		Summary: fmt.Sprintf("Select and configure a %s", f.what),
		Description: "Validates the settings (a remote configuration is contacted once), saves them and makes this configuration " +
			"the selected one, at once. Refused settings change nothing. Secrets sent as ******** or left out keep their stored value.",
		Tags: []string{f.tag}, Errors: []int{http.StatusNotFound},
	}, catNeed(f.resource, policies.Edit).audited(f.audit), func(ctx context.Context, in *struct {
		SettingName
		Body map[string]any
	}) (*SettingOutput, error) {
		r := *registry
		rec := auditOf(ctx)
		rec.target(in.Name)
		if rec != nil {
			if _, sel, err := r.List(ctx); err == nil {
				was := configurationRecord{Selected: sel}
				if h, err := r.Get(ctx, in.Name); err == nil {
					was.Settings = h.Value
				}
				rec.before(was)
			}
		}
		if f.policyAdmin {
			ok, err := s.policyAdmin(ctx)
			if err != nil {
				return nil, s.internal(ctx, "decide", err)
			}
			if !ok {
				return nil, huma.Error403Forbidden("Permission denied: auth handler settings map users to policy roles; only those who may edit the policy may change them")
			}
		}
		raw, err := json.Marshal(in.Body)
		if err != nil {
			return nil, huma.Error422UnprocessableEntity(err.Error())
		}
		h, err := r.Put(ctx, in.Name, raw)
		if err != nil {
			return nil, s.settingsError(ctx, err)
		}
		rec.after(configurationRecord{Selected: h.Name, Settings: h.Value})
		v, err := settingOf(h)
		if err != nil {
			return nil, s.internal(ctx, "save "+f.what+" settings", err)
		}
		return &SettingOutput{Body: v}, nil
	})

	if !f.test {
		return
	}
	register(s, huma.Operation{
		OperationID: "test" + f.opSuffix, Method: http.MethodPost, Path: f.path + "/{name}/test",
		Summary: fmt.Sprintf("Test a %s configuration", f.what),
		Description: "Builds the configuration as PUT would (a remote one is contacted once) and says whether it works, " +
			"without saving or selecting anything. Secrets sent as ******** or left out are the stored ones. grin extension.",
		Tags: []string{f.tag}, Errors: []int{http.StatusNotFound},
	}, catNeed(f.resource, policies.Edit), func(ctx context.Context, in *struct {
		SettingName
		Body map[string]any
	}) (*struct{ Body SettingTest }, error) {
		r := *registry
		raw, err := json.Marshal(in.Body)
		if err != nil {
			return nil, huma.Error422UnprocessableEntity(err.Error())
		}
		err = r.Try(ctx, in.Name, raw)
		switch {
		case err == nil:
			return &struct{ Body SettingTest }{SettingTest{OK: true, Detail: "It works: the " + f.what + " is ready."}}, nil
		case errors.Is(err, settings.ErrInvalid):
			// Why it would be refused, as PUT says it, without the
			// configuration's name the caller already knows.
			detail := strings.TrimPrefix(err.Error(), settings.ErrInvalid.Error()+": "+in.Name+": ")
			return &struct{ Body SettingTest }{SettingTest{Detail: detail}}, nil
		}
		return nil, s.settingsError(ctx, err)
	})
}

// configurationRecord is a configurable component as the audit log keeps
// it: which configuration is selected, and the settings of the one
// changed (as reads show them, secrets masked).
type configurationRecord struct {
	Selected string          `json:"selected"`
	Settings json.RawMessage `json:"settings,omitempty"`
}

func (s *Server) settingsError(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, settings.ErrUnknown):
		return huma.Error404NotFound(err.Error())
	case errors.Is(err, settings.ErrInvalid):
		return huma.Error422UnprocessableEntity(err.Error())
	}
	return s.internal(ctx, "settings", err)
}

func (s *Server) registerAuthHandlers() {
	registerSettings(s, &s.deps.AuthHandlers, settingsFamily{
		path: "/auth_handler/settings", opSuffix: "AuthHandlerSetting", tag: "AuthHandler",
		resource: policies.AuthHandler, what: "auth handler", policyAdmin: true, audit: audit.AuthHandlerUpdate,
	})
}

func (s *Server) registerProviders() {
	registerSettings(s, &s.deps.Models, settingsFamily{
		path: "/llm/settings", opSuffix: "LLMSetting", tag: "LLM", resource: policies.LLM, what: "language model", audit: audit.LLMUpdate, test: true,
	})
	registerSettings(s, &s.deps.Embedders, settingsFamily{
		path: "/embedder/settings", opSuffix: "EmbedderSetting", tag: "Embedder", resource: policies.Embedder, what: "embedder", audit: audit.EmbedderUpdate, test: true,
	})
}
