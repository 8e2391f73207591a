package llm_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/grin-ai/grin/platform/database"
	"github.com/grin-ai/grin/platform/llm"
	"github.com/grin-ai/grin/platform/settings"
)

func factoryNames[T any](fs []settings.Factory[T]) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Name)
	}
	return out
}

func findFactory[T any](t *testing.T, fs []settings.Factory[T], name string) settings.Factory[T] {
	t.Helper()
	for _, f := range fs {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("no factory %q among %v", name, factoryNames(fs))
	return settings.Factory[T]{}
}

func TestFactoriesAreTheCatsConfigurations(t *testing.T) {
	models := llm.ModelFactories(nil)
	if got, want := factoryNames(models), []string{"LLMDefaultConfig", "LLMOpenAIConfig", "LLMOpenAICompatibleConfig", "LLMOllamaConfig", "LLMOpenAIChatConfig"}; !slices.Equal(got, want) {
		t.Errorf("model configurations = %v, want %v (the offline default first)", got, want)
	}
	embedders := llm.EmbedderFactories(nil)
	if got, want := factoryNames(embedders), []string{"EmbedderDefaultConfig", "EmbedderOpenAIConfig", "EmbedderOpenAICompatibleConfig", "EmbedderDumbConfig"}; !slices.Equal(got, want) {
		t.Errorf("embedder configurations = %v, want %v (the offline default first)", got, want)
	}

	type schemaOf struct {
		name     string
		schema   map[string]any
		defaults json.RawMessage
	}
	var all []schemaOf
	for _, f := range models {
		all = append(all, schemaOf{f.Name, f.Schema, f.Defaults})
	}
	for _, f := range embedders {
		all = append(all, schemaOf{f.Name, f.Schema, f.Defaults})
	}
	wantRequired := map[string][]string{
		"LLMDefaultConfig":               {},
		"LLMOpenAIConfig":                {"api_key"},
		"LLMOpenAICompatibleConfig":      {"base_url", "model"},
		"LLMOllamaConfig":                {"model"},
		"LLMOpenAIChatConfig":            {"api_key"},
		"EmbedderDumbConfig":             {},
		"EmbedderDefaultConfig":          {},
		"EmbedderOpenAIConfig":           {"api_key"},
		"EmbedderOpenAICompatibleConfig": {"base_url", "model"},
	}
	wantDefaults := map[string]map[string]any{
		"LLMOpenAIConfig":       {"model": "gpt-4o-mini", "base_url": "https://api.openai.com/v1"},
		"LLMOllamaConfig":       {"base_url": "http://localhost:11434/v1"},
		"EmbedderDefaultConfig": {"dimensions": 512.0},
		"EmbedderOpenAIConfig":  {"model": "text-embedding-3-small", "base_url": "https://api.openai.com/v1"},
	}
	for _, s := range all {
		t.Run(s.name, func(t *testing.T) {
			// Through JSON, as clients see it.
			b, err := json.Marshal(s.schema)
			if err != nil {
				t.Fatal(err)
			}
			var schema struct {
				Type                 string                    `json:"type"`
				Title                string                    `json:"title"`
				HumanReadableName    string                    `json:"humanReadableName"`
				Properties           map[string]map[string]any `json:"properties"`
				Required             []string                  `json:"required"`
				AdditionalProperties *bool                     `json:"additionalProperties"`
			}
			if err := json.Unmarshal(b, &schema); err != nil {
				t.Fatal(err)
			}
			if schema.Type != "object" || schema.AdditionalProperties == nil || *schema.AdditionalProperties {
				t.Errorf("schema type %q, additionalProperties %v; want object, false", schema.Type, schema.AdditionalProperties)
			}
			if schema.Title != s.name || schema.HumanReadableName == "" {
				t.Errorf("title %q, humanReadableName %q; want the configuration's name and a name for people", schema.Title, schema.HumanReadableName)
			}
			if !slices.Equal(schema.Required, wantRequired[s.name]) {
				t.Errorf("required = %v, want %v", schema.Required, wantRequired[s.name])
			}
			for name, p := range schema.Properties {
				if d, _ := p["description"].(string); d == "" {
					t.Errorf("property %s has no description", name)
				}
				if secret := p["writeOnly"] == true; secret != (name == "api_key") {
					t.Errorf("property %s writeOnly = %v; only api_key is a secret", name, secret)
				}
			}
			var defaults map[string]any
			if err := json.Unmarshal(s.defaults, &defaults); err != nil {
				t.Fatalf("defaults %s: %v", s.defaults, err)
			}
			for k := range defaults {
				if _, ok := schema.Properties[k]; !ok {
					t.Errorf("defaults name %q, which the schema does not", k)
				}
			}
			for k, v := range wantDefaults[s.name] {
				if defaults[k] != v || schema.Properties[k]["default"] != v {
					t.Errorf("%s: defaults %v, schema default %v; want %v", k, defaults[k], schema.Properties[k]["default"], v)
				}
			}
		})
	}
}

func TestModelFactoryBuild(t *testing.T) {
	srv := newFakeOpenAI(t)
	const goodKey = "sk-good-4f2a9c01b7"
	srv.set(func(f *fakeOpenAI) { f.key = goodKey })
	missing := newFakeOpenAI(t) // a server without /models, as some are
	missing.set(func(f *fakeOpenAI) {
		f.models = func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }
	})
	webPage := newFakeOpenAI(t) // a web UI where the API should be
	webPage.set(func(f *fakeOpenAI) {
		f.models = func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<!doctype html><title>Chat UI</title>")
		}
	})
	down := closedURL(t)
	models := llm.ModelFactories(nil)

	tests := []struct {
		name     string
		factory  string
		settings string
		// want are pieces of the error; none means the build must work
		// and the model answer.
		want []string
		// server is the one the working model must have talked to.
		server *fakeOpenAI
	}{
		{name: "offline", factory: "LLMDefaultConfig", settings: `{}`},
		{name: "offline refuses settings", factory: "LLMDefaultConfig", settings: `{"model":"gpt-4o"}`,
			want: []string{`unknown field "model"`, "has no settings"}},
		{name: "OpenAI", factory: "LLMOpenAIConfig", server: srv,
			settings: `{"api_key":"` + goodKey + `","base_url":"` + srv.baseURL() + `","model":"test-model","temperature":0.7}`},
		{name: "OpenAI with a misspelt field", factory: "LLMOpenAIConfig",
			settings: `{"api_key":"` + goodKey + `","base_url":"` + srv.baseURL() + `","modle":"gpt-4o"}`,
			want:     []string{`unknown field "modle"`, "api_key, base_url, max_tokens, model, temperature"}},
		{name: "OpenAI without a key", factory: "LLMOpenAIConfig", settings: `{"base_url":"` + srv.baseURL() + `"}`,
			want: []string{"api_key is required"}},
		{name: "OpenAI with a wrong key", factory: "LLMOpenAIConfig",
			settings: `{"api_key":"` + testKey + `","base_url":"` + srv.baseURL() + `"}`,
			want:     []string{"refused the api_key", "401 Unauthorized", "Incorrect API key provided"}},
		{name: "OpenAI unreachable", factory: "LLMOpenAIConfig", settings: `{"api_key":"` + testKey + `","base_url":"` + down + `"}`,
			want: []string{"cannot reach"}},
		{name: "OpenAI with every problem at once", factory: "LLMOpenAIConfig", settings: `{"base_url":"ftp://x","model":"","temperature":9}`,
			want: []string{"api_key is required", "base_url must be an http or https URL", "model is required", "temperature must be between 0 and 2"}},
		{name: "OpenAI with a temperature of the wrong type", factory: "LLMOpenAIConfig", settings: `{"api_key":"k","temperature":"hot"}`,
			want: []string{"temperature"}},
		{name: "compatible without a key", factory: "LLMOpenAICompatibleConfig", server: missing,
			settings: `{"base_url":"` + missing.baseURL() + `","model":"test-model"}`},
		{name: "compatible with nothing", factory: "LLMOpenAICompatibleConfig", settings: `{}`,
			want: []string{"base_url is required", "model is required"}},
		{name: "compatible on a bad URL", factory: "LLMOpenAICompatibleConfig", settings: `{"base_url":"localhost:8000","model":"m"}`,
			want: []string{"base_url must be an http or https URL"}},
		{name: "compatible without the key the server wants", factory: "LLMOpenAICompatibleConfig",
			settings: `{"base_url":"` + srv.baseURL() + `","model":"test-model"}`,
			want:     []string{"requires an api_key", "401"}},
		{name: "compatible on a web page", factory: "LLMOpenAICompatibleConfig",
			settings: `{"base_url":"` + webPage.baseURL() + `","model":"m"}`,
			want:     []string{"something other than an OpenAI model list", "check base_url"}},
		{name: "Ollama", factory: "LLMOllamaConfig", server: missing,
			settings: `{"base_url":"` + missing.baseURL() + `","model":"llama3.2"}`},
		{name: "Ollama without a model", factory: "LLMOllamaConfig", settings: `{"base_url":"` + missing.baseURL() + `"}`,
			want: []string{"model is required"}},
		{name: "Ollama takes no key", factory: "LLMOllamaConfig", settings: `{"model":"llama3.2","api_key":"sk"}`,
			want: []string{`unknown field "api_key"`}},
		{name: "Ollama unreachable", factory: "LLMOllamaConfig", settings: `{"base_url":"` + down + `","model":"llama3.2"}`,
			want: []string{"cannot reach"}},
		{name: "not an object", factory: "LLMOllamaConfig", settings: `["llama3.2"]`,
			want: []string{"must be a JSON object"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := findFactory(t, models, tt.factory)
			m, err := f.Build(t.Context(), json.RawMessage(tt.settings))
			if len(tt.want) > 0 {
				if err == nil {
					t.Fatalf("Build accepted %s", tt.settings)
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				if strings.Contains(err.Error(), testKey) || strings.Contains(err.Error(), goodKey) {
					t.Errorf("error %q contains an api key", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			var before int
			if tt.server != nil {
				before = len(tt.server.requests("/v1/chat/completions"))
			}
			reply, err := m.Generate(t.Context(), prompt, nil)
			if err != nil || reply == "" {
				t.Fatalf("Generate = %q, %v; want a reply", reply, err)
			}
			if tt.server != nil && len(tt.server.requests("/v1/chat/completions")) != before+1 {
				t.Errorf("the model did not ask its server")
			}
		})
	}
}

func TestEmbedderFactoryBuild(t *testing.T) {
	srv := newFakeOpenAI(t)
	const goodKey = "sk-good-77a1e0c3d5"
	srv.set(func(f *fakeOpenAI) { f.key, f.dims = goodKey, 12 })
	down := closedURL(t)
	embedders := llm.EmbedderFactories(nil)

	tests := []struct {
		name     string
		factory  string
		settings string
		want     []string // pieces of the error
		wantDims int
		wantName string
	}{
		{name: "offline by default", factory: "EmbedderDefaultConfig", settings: `{}`, wantDims: 512, wantName: "hashing-512"},
		{name: "offline, 1024", factory: "EmbedderDefaultConfig", settings: `{"dimensions":1024}`, wantDims: 1024, wantName: "hashing-1024"},
		{name: "offline, too few", factory: "EmbedderDefaultConfig", settings: `{"dimensions":32}`, want: []string{"dimensions must be between 64 and 4096"}},
		{name: "offline, too many", factory: "EmbedderDefaultConfig", settings: `{"dimensions":100000}`, want: []string{"dimensions must be between 64 and 4096"}},
		{name: "offline, misspelt", factory: "EmbedderDefaultConfig", settings: `{"dimension":1024}`, want: []string{`unknown field "dimension"`}},
		{name: "OpenAI", factory: "EmbedderOpenAIConfig", settings: `{"api_key":"` + goodKey + `","base_url":"` + srv.baseURL() + `"}`,
			wantDims: 12, wantName: "openai-compatible:text-embedding-3-small@" + strings.TrimPrefix(srv.URL, "http://")},
		{name: "OpenAI without a key", factory: "EmbedderOpenAIConfig", settings: `{"base_url":"` + srv.baseURL() + `"}`,
			want: []string{"api_key is required"}},
		{name: "OpenAI with a wrong key", factory: "EmbedderOpenAIConfig", settings: `{"api_key":"` + testKey + `","base_url":"` + srv.baseURL() + `"}`,
			want: []string{"refused the api_key", "401", "Incorrect API key provided"}},
		{name: "compatible", factory: "EmbedderOpenAICompatibleConfig",
			settings: `{"api_key":"` + goodKey + `","base_url":"` + srv.baseURL() + `","model":"nomic-embed-text"}`,
			wantDims: 12, wantName: "openai-compatible:nomic-embed-text@" + strings.TrimPrefix(srv.URL, "http://")},
		{name: "compatible unreachable", factory: "EmbedderOpenAICompatibleConfig", settings: `{"base_url":"` + down + `","model":"m"}`,
			want: []string{"cannot reach"}},
		{name: "compatible with a bad URL and no model", factory: "EmbedderOpenAICompatibleConfig", settings: `{"base_url":"http://"}`,
			want: []string{"base_url must be an http or https URL", "model is required"}},
		{name: "compatible with an unknown field", factory: "EmbedderOpenAICompatibleConfig", settings: `{"base_url":"http://x","model":"m","dims":3}`,
			want: []string{`unknown field "dims"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := findFactory(t, embedders, tt.factory).Build(t.Context(), json.RawMessage(tt.settings))
			if len(tt.want) > 0 {
				if err == nil {
					t.Fatalf("Build accepted %s", tt.settings)
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				if strings.Contains(err.Error(), testKey) || strings.Contains(err.Error(), goodKey) {
					t.Errorf("error %q contains an api key", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if e.Dimensions() != tt.wantDims || e.Name() != tt.wantName {
				t.Errorf("Dimensions, Name = %d, %q; want %d, %q", e.Dimensions(), e.Name(), tt.wantDims, tt.wantName)
			}
			v, err := e.Embed(t.Context(), []string{"the cat grins"})
			if err != nil || len(v) != 1 || len(v[0]) != tt.wantDims {
				t.Errorf("Embed = %d vectors, %v; want one of %d dimensions", len(v), err, tt.wantDims)
			}
		})
	}
}

// TestRegistryNeverShowsTheKey runs the factories in a real registry over
// a real database: the key is used, but never read back, and a client
// that saves what it read keeps it.
func TestRegistryNeverShowsTheKey(t *testing.T) {
	const secret = "sk-proj-SECRET-8c1d3e5f7a9b"
	srv := newFakeOpenAI(t)
	srv.set(func(f *fakeOpenAI) { f.key = secret })
	db, err := database.Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var current llm.Model
	reg := settings.New(db, "llm", func(m llm.Model) { current = m }, llm.ModelFactories(nil)...)

	if _, sel, err := reg.List(t.Context()); err != nil || sel != "LLMDefaultConfig" {
		t.Fatalf("selected before any Put = %q, %v; want LLMDefaultConfig", sel, err)
	}

	put := func(value string) (settings.Setting, error) {
		return reg.Put(t.Context(), "LLMOpenAIConfig", json.RawMessage(value))
	}
	// lastAuth is the Authorization the provider got with the last chat.
	lastAuth := func() (string, map[string]any) {
		t.Helper()
		if _, err := current.Generate(t.Context(), prompt, nil); err != nil {
			t.Fatalf("Generate with the model in force: %v", err)
		}
		got := srv.requests("/v1/chat/completions")
		return got[len(got)-1].Auth, got[len(got)-1].Body
	}
	noSecret := func(where string, v any) {
		t.Helper()
		b, _ := json.Marshal(v)
		if strings.Contains(string(b), secret) {
			t.Errorf("%s shows the key: %s", where, b)
		}
	}

	s, err := put(`{"api_key":"` + secret + `","base_url":"` + srv.baseURL() + `","model":"test-model"}`)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	noSecret("Put's answer", s)
	var value map[string]any
	json.Unmarshal(s.Value, &value)
	if value["api_key"] != settings.Masked {
		t.Errorf("Put answered api_key %v, want %q", value["api_key"], settings.Masked)
	}
	if auth, _ := lastAuth(); auth != "Bearer "+secret {
		t.Errorf("the provider got Authorization %q, want the saved key", auth)
	}

	got, err := reg.Get(t.Context(), "LLMOpenAIConfig")
	if err != nil {
		t.Fatal(err)
	}
	noSecret("Get", got)
	list, sel, err := reg.List(t.Context())
	if err != nil || sel != "LLMOpenAIConfig" {
		t.Fatalf("List selected %q, %v; want LLMOpenAIConfig", sel, err)
	}
	noSecret("List", list)

	// A client saves what it read, changing the temperature: the masked
	// key stands for the stored one.
	var read map[string]any
	json.Unmarshal(got.Value, &read)
	read["temperature"] = 0.2
	b, _ := json.Marshal(read)
	if _, err := put(string(b)); err != nil {
		t.Fatalf("Put of what Get returned: %v", err)
	}
	if auth, body := lastAuth(); auth != "Bearer "+secret || body["temperature"] != 0.2 {
		t.Errorf("after saving the masked key: Authorization %q, temperature %v; want the stored key and 0.2", auth, body["temperature"])
	}

	// Leaving the key out keeps it too.
	if _, err := put(`{"base_url":"` + srv.baseURL() + `","model":"test-model"}`); err != nil {
		t.Fatalf("Put without the key: %v", err)
	}
	if auth, _ := lastAuth(); auth != "Bearer "+secret {
		t.Errorf("after leaving the key out: Authorization %q, want the stored key", auth)
	}

	// A wrong key is refused and changes nothing.
	before := current
	_, err = put(`{"api_key":"sk-wrong-000000000","base_url":"` + srv.baseURL() + `","model":"test-model"}`)
	if !errors.Is(err, settings.ErrInvalid) || !strings.Contains(err.Error(), "refused the api_key") {
		t.Fatalf("Put of a wrong key = %v, want it refused", err)
	}
	if current != before {
		t.Error("a refused Put replaced the model in force")
	}
	if auth, _ := lastAuth(); auth != "Bearer "+secret {
		t.Errorf("after a refused Put: Authorization %q, want the stored key", auth)
	}

	// Restore, as at the next start, builds from the stored key.
	current = nil
	if err := reg.Restore(t.Context()); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if auth, _ := lastAuth(); auth != "Bearer "+secret {
		t.Errorf("after Restore: Authorization %q, want the stored key", auth)
	}
}
