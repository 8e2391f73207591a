package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"

	"github.com/grin-ai/grin/platform/settings"
)

// Configuration names, as the Cat names them in /llm/settings and
// /embedder/settings.
const (
	ConfigLLMDefault               = "LLMDefaultConfig"
	ConfigLLMOpenAI                = "LLMOpenAIConfig"
	ConfigLLMOpenAICompatible      = "LLMOpenAICompatibleConfig"
	ConfigLLMOllama                = "LLMOllamaConfig"
	ConfigEmbedderDefault          = "EmbedderDefaultConfig"
	ConfigEmbedderOpenAI           = "EmbedderOpenAIConfig"
	ConfigEmbedderOpenAICompatible = "EmbedderOpenAICompatibleConfig"

	// The Cat's names of configurations grin serves under another name:
	// its OpenAI chat models, and its default embedder (a hashing
	// vectorizer, as grin's offline one).
	ConfigLLMOpenAIChat = "LLMOpenAIChatConfig"
	ConfigEmbedderDumb  = "EmbedderDumbConfig"
)

// The Cat's field names (its pydantic config classes, core 1.8) for
// grin's. A write may use either; reads show both.
var (
	catOpenAIFields           = map[string]string{"openai_api_key": "api_key", "model_name": "model"}
	catOpenAICompatibleFields = map[string]string{"url": "base_url", "model_name": "model"}
	catEmbedderOpenAIFields   = map[string]string{"openai_api_key": "api_key"}
	catEmbedderCompatFields   = map[string]string{"url": "base_url"}
	// Tuning knobs of the Cat's providers grin does not pass on.
	catLLMUnused    = []string{"streaming"}
	catOllamaUnused = []string{"streaming", "num_ctx", "repeat_last_n", "repeat_penalty"}
)

// Bounds of the hashing embedder's dimensions: fewer buckets make
// unrelated words collide too often, more only cost memory.
const (
	MinHashingDimensions     = 64
	MaxHashingDimensions     = 4096
	DefaultHashingDimensions = 512
)

// ModelFactories offers the language models to the /llm/settings
// registry; the first, the offline model, is the default. The remote
// ones contact their server once when built (see OpenAIChat.Check) and
// log notes to logger (may be nil).
func ModelFactories(logger *slog.Logger) []settings.Factory[Model] {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	chat := func(schema map[string]any, defaults OpenAIConfig, keyRequired bool) func(context.Context, json.RawMessage) (Model, error) {
		return func(ctx context.Context, raw json.RawMessage) (Model, error) {
			cfg, err := decodeRemote(raw, schema, defaults, keyRequired,
				func(c *OpenAIConfig) string { return c.APIKey }, (*OpenAIConfig).Validate)
			if err != nil {
				return nil, err
			}
			m, err := NewOpenAIChat(cfg)
			if err != nil {
				return nil, err
			}
			if err := m.Check(ctx, logger); err != nil {
				return nil, err
			}
			return m, nil
		}
	}

	offline := objectSchema(ConfigLLMDefault, "Offline", "No language model: grin quotes what it remembers. Needs no network.", nil, nil)
	openAI := objectSchema(ConfigLLMOpenAI, "OpenAI", "OpenAI's chat models.", []string{"api_key"}, map[string]any{
		"api_key":     apiKeyProperty("Your OpenAI API key."),
		"model":       stringProperty("The chat model.", DefaultOpenAIModel),
		"base_url":    baseURLProperty("The API root.", DefaultOpenAIBaseURL),
		"temperature": temperatureProperty(),
		"max_tokens":  maxTokensProperty(),
	})
	compatible := objectSchema(ConfigLLMOpenAICompatible, "OpenAI-compatible",
		"Any server speaking the OpenAI chat-completions protocol: vLLM, llama.cpp server, LM Studio, a gateway.",
		[]string{"base_url", "model"}, map[string]any{
			"base_url":    baseURLProperty("The API root, e.g. http://localhost:8000/v1.", ""),
			"model":       stringProperty("The model's name on the server.", ""),
			"api_key":     apiKeyProperty("Sent as a bearer token, if the server wants one."),
			"temperature": temperatureProperty(),
			"max_tokens":  maxTokensProperty(),
		})
	ollama := objectSchema(ConfigLLMOllama, "Ollama", "A model served by Ollama, through its OpenAI-compatible API.",
		[]string{"model"}, map[string]any{
			"base_url":    baseURLProperty("Ollama's OpenAI-compatible API root.", DefaultOllamaBaseURL),
			"model":       stringProperty("A model pulled into Ollama, e.g. llama3.2.", ""),
			"temperature": temperatureProperty(),
			"max_tokens":  maxTokensProperty(),
		})

	openAIChat := objectSchema(ConfigLLMOpenAIChat, "OpenAI ChatGPT", "OpenAI's chat models (the Cat's name; the same as LLMOpenAIConfig).", []string{"api_key"}, openAI["properties"].(map[string]any))

	return []settings.Factory[Model]{
		{
			Name:     ConfigLLMDefault,
			Schema:   offline,
			Defaults: json.RawMessage(`{}`),
			Build: func(_ context.Context, raw json.RawMessage) (Model, error) {
				var none struct{}
				if err := decodeSettings(raw, offline, &none); err != nil {
					return nil, err
				}
				return Offline{}, nil
			},
		},
		{
			Name:     ConfigLLMOpenAI,
			Schema:   openAI,
			Defaults: defaultsJSON(map[string]any{"api_key": "", "model": DefaultOpenAIModel, "base_url": DefaultOpenAIBaseURL}),
			Build:    chat(openAI, OpenAIConfig{BaseURL: DefaultOpenAIBaseURL, Model: DefaultOpenAIModel}, true),
			Aliases:  catOpenAIFields,
			Unused:   catLLMUnused,
		},
		{
			Name:     ConfigLLMOpenAICompatible,
			Schema:   compatible,
			Defaults: defaultsJSON(map[string]any{"base_url": "", "model": "", "api_key": ""}),
			Build:    chat(compatible, OpenAIConfig{}, false),
			Aliases:  catOpenAICompatibleFields,
			Unused:   catLLMUnused,
		},
		{
			Name:     ConfigLLMOllama,
			Schema:   ollama,
			Defaults: defaultsJSON(map[string]any{"base_url": DefaultOllamaBaseURL, "model": ""}),
			Build:    ollamaBuild(chat(ollama, OpenAIConfig{BaseURL: DefaultOllamaBaseURL}, false)),
			Unused:   catOllamaUnused,
		},
		{
			Name:     ConfigLLMOpenAIChat,
			Schema:   openAIChat,
			Defaults: defaultsJSON(map[string]any{"api_key": "", "model": DefaultOpenAIModel, "base_url": DefaultOpenAIBaseURL}),
			Build:    chat(openAIChat, OpenAIConfig{BaseURL: DefaultOpenAIBaseURL, Model: DefaultOpenAIModel}, true),
			Aliases:  catOpenAIFields,
			Unused:   catLLMUnused,
		},
	}
}

// EmbedderFactories offers the embedders to the /embedder/settings
// registry; the first, the offline hashing embedder, is the default. The
// remote ones embed one text when built, to learn their dimensions.
//
// Notes: changing the embedder changes its Name, so memories stored with
// the previous one are not compared with the new one's vectors.
func EmbedderFactories(logger *slog.Logger) []settings.Factory[Embedder] {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	remote := func(schema map[string]any, defaults OpenAIEmbedderConfig, keyRequired bool) func(context.Context, json.RawMessage) (Embedder, error) {
		return func(ctx context.Context, raw json.RawMessage) (Embedder, error) {
			cfg, err := decodeRemote(raw, schema, defaults, keyRequired,
				func(c *OpenAIEmbedderConfig) string { return c.APIKey }, (*OpenAIEmbedderConfig).Validate)
			if err != nil {
				return nil, err
			}
			e, err := NewOpenAIEmbedder(ctx, cfg)
			if err != nil {
				return nil, err
			}
			logger.Info("embedder ready", "name", e.Name(), "dimensions", e.Dimensions())
			return e, nil
		}
	}

	hashing := objectSchema(ConfigEmbedderDefault, "Offline",
		"Lexical hashing: texts that share words are near. Needs no network or model file.",
		nil, map[string]any{
			"dimensions": map[string]any{
				"type": "integer", "minimum": MinHashingDimensions, "maximum": MaxHashingDimensions,
				"default":     DefaultHashingDimensions,
				"description": "Length of the vectors; more dimensions, fewer collisions between unrelated words.",
			},
		})
	openAI := objectSchema(ConfigEmbedderOpenAI, "OpenAI", "OpenAI's embedding models.", []string{"api_key"}, map[string]any{
		"api_key":  apiKeyProperty("Your OpenAI API key."),
		"model":    stringProperty("The embedding model.", DefaultOpenAIEmbedderModel),
		"base_url": baseURLProperty("The API root.", DefaultOpenAIBaseURL),
	})
	compatible := objectSchema(ConfigEmbedderOpenAICompatible, "OpenAI-compatible",
		"Any server speaking the OpenAI embeddings protocol: Ollama (http://localhost:11434/v1), vLLM, llama.cpp server.",
		[]string{"base_url", "model"}, map[string]any{
			"base_url": baseURLProperty("The API root, e.g. http://localhost:11434/v1.", ""),
			"model":    stringProperty("The embedding model's name on the server.", ""),
			"api_key":  apiKeyProperty("Sent as a bearer token, if the server wants one."),
		})

	dumb := objectSchema(ConfigEmbedderDumb, "Dumb Embedder",
		"The Cat's default embedder, a lexical hashing vectorizer: grin's offline embedder with its default dimensions.", nil, nil)

	return []settings.Factory[Embedder]{
		{
			Name:     ConfigEmbedderDefault,
			Schema:   hashing,
			Defaults: defaultsJSON(map[string]any{"dimensions": DefaultHashingDimensions}),
			Build: func(_ context.Context, raw json.RawMessage) (Embedder, error) {
				s := struct {
					Dimensions int `json:"dimensions"`
				}{DefaultHashingDimensions}
				if err := decodeSettings(raw, hashing, &s); err != nil {
					return nil, err
				}
				if s.Dimensions < MinHashingDimensions || s.Dimensions > MaxHashingDimensions {
					return nil, fmt.Errorf("dimensions must be between %d and %d, not %d", MinHashingDimensions, MaxHashingDimensions, s.Dimensions)
				}
				return NewHashing(s.Dimensions), nil
			},
		},
		{
			Name:     ConfigEmbedderOpenAI,
			Schema:   openAI,
			Defaults: defaultsJSON(map[string]any{"api_key": "", "model": DefaultOpenAIEmbedderModel, "base_url": DefaultOpenAIBaseURL}),
			Build:    remote(openAI, OpenAIEmbedderConfig{BaseURL: DefaultOpenAIBaseURL, Model: DefaultOpenAIEmbedderModel}, true),
			Aliases:  catEmbedderOpenAIFields,
		},
		{
			Name:     ConfigEmbedderOpenAICompatible,
			Schema:   compatible,
			Defaults: defaultsJSON(map[string]any{"base_url": "", "model": "", "api_key": ""}),
			Build:    remote(compatible, OpenAIEmbedderConfig{}, false),
			Aliases:  catEmbedderCompatFields,
		},
		{
			Name:     ConfigEmbedderDumb,
			Schema:   dumb,
			Defaults: json.RawMessage(`{}`),
			Build: func(_ context.Context, raw json.RawMessage) (Embedder, error) {
				var none struct{}
				if err := decodeSettings(raw, dumb, &none); err != nil {
					return nil, err
				}
				return NewHashing(DefaultHashingDimensions), nil
			},
		},
	}
}

// ollamaBuild lets a base_url without a path name Ollama's server, as the
// Cat's LLMOllamaConfig does (http://ollama:11434): grin speaks Ollama's
// OpenAI-compatible API, under /v1.
func ollamaBuild(build func(context.Context, json.RawMessage) (Model, error)) func(context.Context, json.RawMessage) (Model, error) {
	return func(ctx context.Context, raw json.RawMessage) (Model, error) {
		var m map[string]any
		if json.Unmarshal(raw, &m) == nil {
			if s, ok := m["base_url"].(string); ok {
				if u, err := url.Parse(s); err == nil && u.Host != "" && strings.Trim(u.Path, "/") == "" {
					u.Path = "/v1"
					m["base_url"] = u.String()
					raw, _ = json.Marshal(m)
				}
			}
		}
		return build(ctx, raw)
	}
}

// decodeSettings decodes a settings document over the defaults in dst.
// Fields the schema does not name are refused by name, with the ones it
// does, since a misspelt field silently ignored would leave a default in
// force that the operator thinks they changed.
func decodeSettings(raw json.RawMessage, schema map[string]any, dst any) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return errors.New("read settings: settings must be a JSON object")
	}
	props, _ := schema["properties"].(map[string]any)
	known := make([]string, 0, len(props))
	for name := range props {
		known = append(known, name)
	}
	slices.Sort(known)
	var unknown []string
	for name := range fields {
		if _, ok := props[name]; !ok {
			unknown = append(unknown, fmt.Sprintf("%q", name))
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		if len(known) == 0 {
			return fmt.Errorf("read settings: unknown field %s; this configuration has no settings", strings.Join(unknown, ", "))
		}
		return fmt.Errorf("read settings: unknown field %s; the fields are %s", strings.Join(unknown, ", "), strings.Join(known, ", "))
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("read settings: %w", err)
	}
	return nil
}

// objectSchema is the JSON Schema of a settings document that allows no
// other properties than props. Like the Cat's (pydantic's), its title is
// the configuration's name and humanReadableName what a UI shows.
func objectSchema(name, human, description string, required []string, props map[string]any) map[string]any {
	if props == nil {
		props = map[string]any{}
	}
	if required == nil {
		required = []string{}
	}
	return map[string]any{
		"type":                 "object",
		"title":                name,
		"humanReadableName":    human,
		"description":          description,
		"properties":           props,
		"required":             required,
		"additionalProperties": false,
	}
}

func apiKeyProperty(description string) map[string]any {
	return map[string]any{"type": "string", "writeOnly": true, "description": description + " Never shown again once saved."}
}

func stringProperty(description, def string) map[string]any {
	p := map[string]any{"type": "string", "description": description}
	if def != "" {
		p["default"] = def
	}
	return p
}

func baseURLProperty(description, def string) map[string]any {
	p := stringProperty(description+" http or https; the paths /chat/completions, /embeddings and /models are appended.", def)
	p["format"] = "uri"
	return p
}

func temperatureProperty() map[string]any {
	return map[string]any{"type": "number", "minimum": 0, "maximum": 2,
		"description": "Sampling temperature; leave it out for the server's default."}
}

func maxTokensProperty() map[string]any {
	return map[string]any{"type": "integer", "minimum": 1,
		"description": "Longest reply, in tokens; leave it out for the server's default."}
}

func defaultsJSON(v map[string]any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // static maps of strings and numbers
	}
	return b
}

// decodeRemote decodes a remote configuration's settings over its
// defaults and reports every problem at once, a missing required key
// among them.
func decodeRemote[C any](raw json.RawMessage, schema map[string]any, defaults C, keyRequired bool, key func(*C) string, validate func(*C) error) (C, error) {
	cfg := defaults
	if err := decodeSettings(raw, schema, &cfg); err != nil {
		return cfg, err
	}
	var errs []error
	if keyRequired && strings.TrimSpace(key(&cfg)) == "" {
		errs = append(errs, errors.New("api_key is required"))
	}
	if err := validate(&cfg); err != nil {
		errs = append(errs, err)
	}
	return cfg, errors.Join(errs...)
}
