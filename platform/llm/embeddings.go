package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// embedBatch is how many texts go in one embeddings request: providers
// cap a request's inputs (OpenAI at 2048, some local servers far lower),
// and smaller requests fail and retry more cheaply.
const embedBatch = 64

// OpenAIEmbedderConfig configures an embedder served over the OpenAI
// embeddings protocol.
type OpenAIEmbedderConfig struct {
	// BaseURL is the API root, such as https://api.openai.com/v1.
	BaseURL string `json:"base_url"`
	// APIKey is sent as a bearer token when set.
	APIKey string `json:"api_key,omitempty"`
	// Model names the embedding model on the server.
	Model string `json:"model"`
}

// Validate reports every problem of the settings at once.
func (c *OpenAIEmbedderConfig) Validate() error {
	errs := checkEndpoint(c.BaseURL, c.APIKey, c.Model)
	return errors.Join(errs...)
}

// OpenAIEmbedder is an Embedder served over the OpenAI embeddings
// protocol (POST {base_url}/embeddings).
//
// Notes: safe for concurrent use. The dimensions are learned when it is
// made, and a later answer of another length is an error, since vectors
// of different lengths cannot share a store.
type OpenAIEmbedder struct {
	cfg  OpenAIEmbedderConfig
	url  string // {base_url}/embeddings
	name string
	what string
	dims int
}

// NewOpenAIEmbedder validates cfg and embeds one text to learn the
// model's dimensions, failing when the server cannot be reached, refuses
// the key or answers with something other than embeddings.
func NewOpenAIEmbedder(ctx context.Context, cfg OpenAIEmbedderConfig) (*OpenAIEmbedder, error) {
	cfg.APIKey = strings.TrimSpace(cfg.APIKey)
	cfg.BaseURL = strings.TrimSpace(cfg.BaseURL)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	host := hostOf(cfg.BaseURL)
	e := &OpenAIEmbedder{
		cfg:  cfg,
		url:  endpoint(cfg.BaseURL, "/embeddings"),
		name: "openai-compatible:" + cfg.Model + "@" + host,
		what: "embeddings at " + host,
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	v, err := e.embed(ctx, []string{"grin"})
	if err != nil {
		var se *statusError
		if errors.As(err, &se) && (se.code == http.StatusUnauthorized || se.code == http.StatusForbidden) {
			if cfg.APIKey == "" {
				return nil, fmt.Errorf("the server at %s requires an api_key: %w", cfg.BaseURL, err)
			}
			return nil, fmt.Errorf("the server at %s refused the api_key; check it: %w", cfg.BaseURL, err)
		}
		return nil, fmt.Errorf("embed a test text with model %q at %s: %w", cfg.Model, cfg.BaseURL, err)
	}
	if len(v[0]) == 0 {
		return nil, fmt.Errorf("%w: %s answered an empty vector for model %q", ErrProvider, e.what, cfg.Model)
	}
	e.dims = len(v[0])
	return e, nil
}

// Name implements Embedder: "openai-compatible:<model>@<host>".
func (e *OpenAIEmbedder) Name() string { return e.name }

// Dimensions implements Embedder.
func (e *OpenAIEmbedder) Dimensions() int { return e.dims }

// Embed implements Embedder, embedBatch texts per request.
func (e *OpenAIEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, 0, len(texts))
	for start := 0; start < len(texts); start += embedBatch {
		batch := texts[start:min(start+embedBatch, len(texts))]
		v, err := e.embed(ctx, batch)
		if err != nil {
			return nil, err
		}
		out = append(out, v...)
	}
	return out, nil
}

// embed makes one request and returns the vectors in the order of texts,
// whatever the order of the answer.
func (e *OpenAIEmbedder) embed(ctx context.Context, texts []string) ([][]float32, error) {
	resp, err := send(ctx, http.MethodPost, e.url, e.cfg.APIKey, e.what, struct {
		Model string   `json:"model"`
		Input []string `json:"input"`
	}{e.cfg.Model, texts}, "application/json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var v struct {
		Data []struct {
			Index     *int      `json:"index"`
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(&v); err != nil {
		if cause := context.Cause(ctx); cause != nil {
			return nil, cause
		}
		return nil, fmt.Errorf("%w: %s answered something other than embeddings: %v", ErrProvider, e.what, err)
	}
	if len(v.Data) != len(texts) {
		return nil, fmt.Errorf("%w: %s answered %d vectors for %d texts", ErrProvider, e.what, len(v.Data), len(texts))
	}
	out := make([][]float32, len(texts))
	for pos, d := range v.Data {
		i := pos // a server that leaves out "index" answers in order
		if d.Index != nil {
			i = *d.Index
		}
		if i < 0 || i >= len(texts) || out[i] != nil {
			return nil, fmt.Errorf("%w: %s answered a vector with a missing, repeated or out of range index %d", ErrProvider, e.what, i)
		}
		if e.dims != 0 && len(d.Embedding) != e.dims {
			return nil, fmt.Errorf("%w: %s answered a vector of %d dimensions where the model had %d; was the model changed on the server?",
				ErrProvider, e.what, len(d.Embedding), e.dims)
		}
		if d.Embedding == nil {
			d.Embedding = []float32{}
		}
		out[i] = d.Embedding
	}
	return out, nil
}

var _ Embedder = (*OpenAIEmbedder)(nil)
