package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/danielgtaylor/huma/v2"

	"github.com/grin-ai/grin/platform/audit"
	"github.com/grin-ai/grin/platform/hooks/reference"
	"github.com/grin-ai/grin/policies"
	"github.com/grin-ai/grin/wasmhooks"
)

// PluginInfo is a plugin as the Cat 1.8 lists it: its manifest with the
// Cat's defaults for what the manifest leaves out, whether it is active,
// and its hooks, tools, forms and endpoints; then grin's own fields.
type PluginInfo struct {
	ID             string               `json:"id"`
	Name           string               `json:"name"`
	Description    string               `json:"description"`
	AuthorName     string               `json:"author_name"`
	AuthorURL      string               `json:"author_url"`
	PluginURL      string               `json:"plugin_url"`
	Tags           string               `json:"tags"`
	Thumb          string               `json:"thumb"`
	Version        string               `json:"version"`
	MinCatVersion  string               `json:"min_cat_version"`
	MaxCatVersion  string               `json:"max_cat_version"`
	Active         bool                 `json:"active"`
	Hooks          []wasmhooks.HookSpec `json:"hooks"`
	Tools          []PluginPart         `json:"tools" doc:"Always empty: grin plugins have hooks only."`
	Forms          []PluginPart         `json:"forms" doc:"Always empty: grin plugins have hooks only."`
	Endpoints      []PluginEndpoint     `json:"endpoints" doc:"Always empty: grin plugins have hooks only."`
	SettingsSchema map[string]any       `json:"settings_schema,omitempty"`
	Settings       map[string]any       `json:"settings"`
	Isolation      wasmhooks.Isolation  `json:"isolation,omitempty"`
	TimeoutMS      int                  `json:"timeout_ms,omitempty"`
	Forced         wasmhooks.Isolation  `json:"forced_isolation,omitempty"`
	DisabledReason string               `json:"disabled_reason,omitempty" doc:"Why grin turned the plugin off by itself (its instances failed to start too many times in a row); absent when it did not."`
	// Capabilities are what the plugin asks the host for; each works only
	// where the policy grants it to plugin:<id>.
	Capabilities map[string]wasmhooks.CapabilitySpec `json:"capabilities,omitempty" doc:"Host capabilities the plugin asks for; each works only once the policy grants it (p, plugin:<id>, capability:<name>, use)."`
}

// PluginPart names a tool or form of a plugin.
type PluginPart struct {
	Name string `json:"name"`
}

// PluginEndpoint names an endpoint of a plugin.
type PluginEndpoint struct {
	Name string   `json:"name"`
	Tags []string `json:"tags"`
}

// pluginInfo fills in the Cat's defaults (its Plugin._load_manifest).
func pluginInfo(p wasmhooks.Installed) PluginInfo {
	or := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	hooks := p.Hooks
	if hooks == nil {
		hooks = []wasmhooks.HookSpec{}
	}
	settings := p.Settings
	if settings == nil {
		settings = map[string]any{}
	}
	return PluginInfo{
		ID: p.ID, Name: p.Name, Version: or(p.Version, "0.0.1"),
		Description: or(p.Description, "Description not found for this plugin."),
		AuthorName:  or(p.AuthorName, "Unknown author"),
		AuthorURL:   p.AuthorURL, PluginURL: p.PluginURL, Tags: or(p.Tags, "unknown"), Thumb: p.Thumb,
		MinCatVersion: p.MinCatVersion, MaxCatVersion: p.MaxCatVersion,
		Active: p.Enabled, Hooks: hooks, Tools: []PluginPart{}, Forms: []PluginPart{}, Endpoints: []PluginEndpoint{},
		SettingsSchema: p.SettingsSchema, Settings: settings, Isolation: p.Isolation, TimeoutMS: p.TimeoutMS,
		Forced: p.Forced, DisabledReason: p.DisabledReason, Capabilities: p.Capabilities,
	}
}

// matches reports whether a plugin answers a Cat plugin search: the query,
// lower-cased, within its fields' text.
func (p PluginInfo) matches(query string) bool {
	text := []string{p.ID, p.Name, p.Description, p.AuthorName, p.AuthorURL, p.PluginURL, p.Tags, p.Version}
	for _, h := range p.Hooks {
		text = append(text, h.Name)
	}
	return strings.Contains(strings.ToLower(strings.Join(text, " ")), strings.ToLower(query))
}

// PluginFilters echoes a plugin search.
type PluginFilters struct {
	Query *string `json:"query" doc:"The search, or null."`
}

// PluginList is the Cat's answer of GET /plugins.
type PluginList struct {
	Filters   PluginFilters `json:"filters"`
	Installed []PluginInfo  `json:"installed"`
	Registry  []PluginInfo  `json:"registry" doc:"Always empty: grin has no plugin registry; plugins are installed by upload."`
}

// PluginUploaded confirms an installation.
type PluginUploaded struct {
	Filename    string     `json:"filename"`
	ContentType string     `json:"content_type" doc:"The upload's declared type."`
	Info        string     `json:"info"`
	Plugin      PluginInfo `json:"plugin"`
}

// PluginToggled confirms a toggle.
type PluginToggled struct {
	Info   string     `json:"info"`
	Plugin PluginInfo `json:"plugin"`
}

// RegistryInstall is the Cat's body of POST /plugins/upload/registry.
type RegistryInstall struct {
	URL string `json:"url" maxLength:"4096" doc:"The plugin's address in the Cat's registry."`
}

// PluginSettingsList lists every plugin's settings.
type PluginSettingsList struct {
	Settings []PluginSetting `json:"settings"`
}

// PluginDetail is one plugin: its fields at the top, as the Cat's
// TypeScript client reads them, and under "data", as the Cat 1.8 sends
// them.
type PluginDetail struct {
	PluginInfo
	Data PluginInfo `json:"data"`
}

// PluginLogs is a plugin's recent log lines and failures.
type PluginLogs struct {
	Entries []wasmhooks.LogEntry `json:"entries" doc:"Oldest first: the plugin's log lines (those within its rate limit), its hooks' failures and deadline overruns, its instances' failures to start."`
}

// PluginDeleted confirms an uninstallation.
type PluginDeleted struct {
	Deleted string `json:"deleted"`
}

// IsolationChoice is an administrator's choice of isolation.
type IsolationChoice struct {
	Isolation string `json:"isolation" enum:"shared,per-user,per-call," doc:"Empty restores the manifest's."`
}

// PluginID names a plugin.
type PluginID struct {
	ID string `path:"id" maxLength:"64" doc:"The plugin's id."`
}

// PluginSetting is a plugin's settings, Cat-shaped.
type PluginSetting struct {
	Name   string         `json:"name"`
	Value  map[string]any `json:"value"`
	Schema map[string]any `json:"schema"`
}

func pluginSetting(p wasmhooks.Installed) PluginSetting {
	schema := p.SettingsSchema
	if schema == nil {
		schema = map[string]any{}
	}
	return PluginSetting{Name: p.ID, Value: p.Settings, Schema: schema}
}

func (s *Server) registerPlugins() {
	// Built once: anyone may ask for it, and it only changes with the code.
	hookReference := sync.OnceValue(reference.Build)
	register(s, huma.Operation{
		OperationID: "listHookPoints", Method: http.MethodGet, Path: "/plugins/hooks",
		Summary: "The hook points",
		Description: "Every point where grin calls plugins, in the order it calls them: when it runs, its payload's JSON Schema and an example, " +
			"what changing each field does, and what the Cheshire Cat does there. Generated from the types the pipeline passes; docs/hooks.md is the same reference. grin extension.",
		Tags: []string{"Plugins"},
	}, public, func(ctx context.Context, _ *struct{}) (*struct{ Body []reference.HookPoint }, error) {
		return &struct{ Body []reference.HookPoint }{hookReference()}, nil
	})

	register(s, huma.Operation{
		OperationID: "listPlugins", Method: http.MethodGet, Path: "/plugins",
		Summary: "Installed plugins", Tags: []string{"Plugins"},
	}, catNeed(policies.Plugins, policies.List), func(ctx context.Context, in *struct {
		Query string `query:"query" maxLength:"256" doc:"Only plugins whose fields contain this (any case)."`
	}) (*struct{ Body PluginList }, error) {
		out := PluginList{Installed: []PluginInfo{}, Registry: []PluginInfo{}}
		if in.Query != "" {
			out.Filters.Query = &in.Query
		}
		for _, p := range s.deps.Plugins.List() {
			if info := pluginInfo(p); info.matches(in.Query) {
				out.Installed = append(out.Installed, info)
			}
		}
		return &struct{ Body PluginList }{out}, nil
	})

	register(s, huma.Operation{
		OperationID: "uploadPlugin", Method: http.MethodPost, Path: "/plugins/upload",
		Summary: "Install a plugin",
		Description: "Takes a zip or tar (optionally gzipped) holding manifest.json and one WebAssembly module built for grin's hook ABI v1. " +
			"The plugin is checked (imports, exports, manifest) and started once (a module whose initialisation fails or does not finish is refused), installed enabled, and runs from the next hook on; settings its schema gives defaults for start with them. " +
			"A plugin with the same id is upgraded: it stays active or inactive as it was, and keeps its settings when the new schema accepts them.",
		Tags: []string{"Plugins"}, MaxBodyBytes: wasmhooks.MaxArchiveBytes + 1<<20, Errors: []int{http.StatusRequestEntityTooLarge},
	}, catNeed(policies.Plugins, policies.Write).audited(audit.PluginInstall), func(ctx context.Context, in *struct {
		RawBody huma.MultipartFormFiles[struct {
			File huma.FormFile `form:"file" required:"true" doc:"The plugin archive."`
		}]
	}) (*struct{ Body PluginUploaded }, error) {
		f := in.RawBody.Data().File
		data, err := io.ReadAll(io.LimitReader(f, wasmhooks.MaxArchiveBytes+1))
		f.Close()
		if err != nil {
			return nil, huma.Error400BadRequest("could not read the upload: " + err.Error())
		}
		if len(data) > wasmhooks.MaxArchiveBytes {
			return nil, huma.Error413RequestEntityTooLarge(fmt.Sprintf("%s is larger than %s, the largest plugin archive grin accepts", f.Filename, mib(wasmhooks.MaxArchiveBytes)))
		}
		rec := auditOf(ctx)
		rec.target(f.Filename) // the plugin's id once it is read
		installed := map[string]wasmhooks.Installed{}
		for _, p := range s.deps.Plugins.List() {
			installed[p.ID] = p
		}
		p, err := s.deps.Plugins.Install(ctx, data)
		if err != nil {
			return nil, s.pluginError(ctx, err)
		}
		rec.target(p.ID)
		if old, ok := installed[p.ID]; ok {
			rec.before(pluginRecordOf(old))
			rec.detail("an upgrade of the installed plugin")
		}
		rec.after(pluginRecordOf(p))
		info := fmt.Sprintf("Plugin %s %s installed and active", p.ID, p.Version)
		if !p.Enabled {
			info = fmt.Sprintf("Plugin %s %s installed; it stays inactive, as it was: turn it on with PUT /plugins/toggle/%s", p.ID, p.Version, p.ID)
		}
		return &struct{ Body PluginUploaded }{PluginUploaded{Filename: f.Filename, ContentType: f.ContentType, Plugin: pluginInfo(p), Info: info}}, nil
	})

	register(s, huma.Operation{
		OperationID: "installPluginFromRegistry", Method: http.MethodPost, Path: "/plugins/upload/registry",
		Summary:     "Install a plugin from the Cat's registry",
		Description: "grin has no plugin registry (the Cat's holds Python plugins, which grin cannot run): this always answers 501 and says so. Upload a WebAssembly plugin with POST /plugins/upload.",
		Tags:        []string{"Plugins"}, Errors: []int{http.StatusNotImplemented},
	}, catNeed(policies.Plugins, policies.Write), func(ctx context.Context, in *struct{ Body RegistryInstall }) (*struct{ Body PluginUploaded }, error) {
		return nil, huma.NewError(http.StatusNotImplemented, "grin has no plugin registry configured, so it cannot install "+in.Body.URL+
			"; the Cat's registry holds Python plugins, which grin cannot run: upload a WebAssembly plugin's archive with POST /plugins/upload")
	})

	register(s, huma.Operation{
		OperationID: "togglePlugin", Method: http.MethodPut, Path: "/plugins/toggle/{id}",
		Summary: "Turn a plugin on or off", Tags: []string{"Plugins"}, Errors: []int{http.StatusNotFound},
	}, catNeed(policies.Plugins, policies.Write).audited(audit.PluginToggle), func(ctx context.Context, in *PluginID) (*struct{ Body PluginToggled }, error) {
		rec := s.auditPlugin(ctx, in.ID)
		p, err := s.deps.Plugins.Toggle(ctx, in.ID)
		if err != nil {
			return nil, s.pluginError(ctx, err)
		}
		rec.after(pluginRecordOf(p))
		state := "deactivated"
		if p.Enabled {
			state = "activated"
		}
		return &struct{ Body PluginToggled }{PluginToggled{Info: fmt.Sprintf("Plugin %s %s", p.ID, state), Plugin: pluginInfo(p)}}, nil
	})

	register(s, huma.Operation{
		OperationID: "listPluginSettings", Method: http.MethodGet, Path: "/plugins/settings",
		Summary: "Every plugin's settings", Tags: []string{"Plugins"},
	}, catNeed(policies.Plugins, policies.Read), func(ctx context.Context, _ *struct{}) (*struct{ Body PluginSettingsList }, error) {
		out := &struct{ Body PluginSettingsList }{PluginSettingsList{Settings: []PluginSetting{}}}
		for _, p := range s.deps.Plugins.List() {
			out.Body.Settings = append(out.Body.Settings, pluginSetting(p))
		}
		return out, nil
	})

	register(s, huma.Operation{
		OperationID: "getPluginSettings", Method: http.MethodGet, Path: "/plugins/settings/{id}",
		Summary: "A plugin's settings", Tags: []string{"Plugins"}, Errors: []int{http.StatusNotFound},
	}, catNeed(policies.Plugins, policies.Read), func(ctx context.Context, in *PluginID) (*struct{ Body PluginSetting }, error) {
		p, err := s.deps.Plugins.Get(in.ID)
		if err != nil {
			return nil, s.pluginError(ctx, err)
		}
		return &struct{ Body PluginSetting }{pluginSetting(p)}, nil
	})

	register(s, huma.Operation{
		OperationID: "updatePluginSettings", Method: http.MethodPut, Path: "/plugins/settings/{id}",
		Summary: "Change a plugin's settings", Description: "Validated against the plugin's JSON Schema; in force from the next hook on.",
		Tags: []string{"Plugins"}, Errors: []int{http.StatusNotFound},
	}, catNeed(policies.Plugins, policies.Edit).audited(audit.PluginSettings), func(ctx context.Context, in *struct {
		PluginID
		Body map[string]any
	}) (*struct{ Body PluginSetting }, error) {
		rec := s.auditPlugin(ctx, in.ID)
		p, err := s.deps.Plugins.SetSettings(ctx, in.ID, in.Body)
		if err != nil {
			return nil, s.pluginError(ctx, err)
		}
		rec.after(pluginRecordOf(p))
		return &struct{ Body PluginSetting }{pluginSetting(p)}, nil
	})

	register(s, huma.Operation{
		OperationID: "getPlugin", Method: http.MethodGet, Path: "/plugins/{id}",
		Summary: "One plugin", Tags: []string{"Plugins"}, Errors: []int{http.StatusNotFound},
	}, catNeed(policies.Plugins, policies.Read), func(ctx context.Context, in *PluginID) (*struct{ Body PluginDetail }, error) {
		p, err := s.deps.Plugins.Get(in.ID)
		if err != nil {
			return nil, s.pluginError(ctx, err)
		}
		info := pluginInfo(p)
		return &struct{ Body PluginDetail }{PluginDetail{PluginInfo: info, Data: info}}, nil
	})

	register(s, huma.Operation{
		OperationID: "getPluginLogs", Method: http.MethodGet, Path: "/plugins/logs/{id}",
		Summary: "A plugin's recent logs and errors",
		Description: "The plugin's most recent log lines (GRIN_PLUGIN_LOG_ENTRIES, 200 by default; kept in memory, so a restart empties them, and deleting the plugin clears them), " +
			"with the failures of its hooks (errors, traps, deadline overruns, output too large) and of its instances, each with the time, level, user and hook. " +
			"Lines over the plugin's log rate are not kept; a line says how many were dropped. " +
			"Needs PLUGINS EDIT rather than READ: a plugin's log may quote any user's messages. grin extension.",
		Tags: []string{"Plugins"}, Errors: []int{http.StatusNotFound},
	}, catNeed(policies.Plugins, policies.Edit), func(ctx context.Context, in *PluginID) (*struct{ Body PluginLogs }, error) {
		entries, err := s.deps.Plugins.Logs(in.ID)
		if err != nil {
			return nil, s.pluginError(ctx, err)
		}
		return &struct{ Body PluginLogs }{PluginLogs{Entries: entries}}, nil
	})

	register(s, huma.Operation{
		OperationID: "getPluginStats", Method: http.MethodGet, Path: "/plugins/stats/{id}",
		Summary: "A plugin's figures",
		Description: "Since the plugin was installed or grin started (kept in memory, kept across upgrades): hook calls, the failed ones, " +
			"those stopped by their deadline, those skipped while its instances could not start, the time spent in them, and the instances alive now. " +
			"For administrators (PLUGINS EDIT), beside the plugin's logs. grin extension.",
		Tags: []string{"Plugins"}, Errors: []int{http.StatusNotFound},
	}, catNeed(policies.Plugins, policies.Edit), func(ctx context.Context, in *PluginID) (*struct{ Body wasmhooks.Stats }, error) {
		st, err := s.deps.Plugins.Stats(in.ID)
		if err != nil {
			return nil, s.pluginError(ctx, err)
		}
		return &struct{ Body wasmhooks.Stats }{st}, nil
	})

	register(s, huma.Operation{
		OperationID: "deletePlugin", Method: http.MethodDelete, Path: "/plugins/{id}",
		Summary: "Uninstall a plugin", Tags: []string{"Plugins"}, Errors: []int{http.StatusNotFound},
	}, catNeed(policies.Plugins, policies.Delete).audited(audit.PluginDelete), func(ctx context.Context, in *PluginID) (*struct{ Body PluginDeleted }, error) {
		s.auditPlugin(ctx, in.ID)
		if err := s.deps.Plugins.Delete(ctx, in.ID); err != nil {
			return nil, s.pluginError(ctx, err)
		}
		return &struct{ Body PluginDeleted }{PluginDeleted{Deleted: in.ID}}, nil
	})

	register(s, huma.Operation{
		OperationID: "setPluginIsolation", Method: http.MethodPut, Path: "/plugins/isolation/{id}",
		Summary: "Force a plugin's isolation", Description: "shared, per-user or per-call, whatever the manifest says; empty restores the manifest's. grin extension.",
		Tags: []string{"Plugins"}, Errors: []int{http.StatusNotFound},
	}, catNeed(policies.Plugins, policies.Edit).audited(audit.PluginIsolation), func(ctx context.Context, in *struct {
		PluginID
		Body IsolationChoice
	}) (*struct{ Body wasmhooks.Installed }, error) {
		rec := s.auditPlugin(ctx, in.ID)
		p, err := s.deps.Plugins.ForceIsolation(ctx, in.ID, wasmhooks.Isolation(in.Body.Isolation))
		if err != nil {
			return nil, s.pluginError(ctx, err)
		}
		rec.after(pluginRecordOf(p))
		return &struct{ Body wasmhooks.Installed }{p}, nil
	})
}

// pluginRecord is a plugin as the audit log keeps it: what an
// administrator changes, and what says which code it is.
type pluginRecord struct {
	ID        string              `json:"id"`
	Name      string              `json:"name"`
	Version   string              `json:"version"`
	Active    bool                `json:"active"`
	Settings  map[string]any      `json:"settings,omitempty"`
	Isolation wasmhooks.Isolation `json:"isolation,omitempty"`
	Forced    wasmhooks.Isolation `json:"forced_isolation,omitempty"`
}

func pluginRecordOf(p wasmhooks.Installed) pluginRecord {
	return pluginRecord{ID: p.ID, Name: p.Name, Version: p.Version, Active: p.Enabled, Settings: p.Settings,
		Isolation: p.Isolation, Forced: p.Forced}
}

// auditPlugin names plugin id as the request's target and records it as
// it is before the change.
func (s *Server) auditPlugin(ctx context.Context, id string) *auditRecord {
	rec := auditOf(ctx)
	rec.target(id)
	if rec != nil {
		if p, err := s.deps.Plugins.Get(id); err == nil {
			rec.before(pluginRecordOf(p))
		}
	}
	return rec
}

func (s *Server) pluginError(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, wasmhooks.ErrNotFound):
		return huma.Error404NotFound(err.Error())
	case errors.Is(err, wasmhooks.ErrArchive), errors.Is(err, wasmhooks.ErrInvalid):
		return huma.Error422UnprocessableEntity(err.Error())
	}
	return s.internal(ctx, "plugin operation", err)
}
