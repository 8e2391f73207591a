package llm_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/grin-ai/grin/platform/llm"
)

func newEmbedder(t *testing.T, cfg llm.OpenAIEmbedderConfig) *llm.OpenAIEmbedder {
	t.Helper()
	e, err := llm.NewOpenAIEmbedder(t.Context(), cfg)
	if err != nil {
		t.Fatalf("NewOpenAIEmbedder: %v", err)
	}
	return e
}

func TestEmbedderLearnsDimensionsFromOneProbe(t *testing.T) {
	srv := newFakeOpenAI(t)
	srv.set(func(f *fakeOpenAI) { f.key, f.dims = testKey, 7 })
	e := newEmbedder(t, llm.OpenAIEmbedderConfig{BaseURL: srv.baseURL(), APIKey: testKey, Model: "test-embedder"})

	if e.Dimensions() != 7 {
		t.Errorf("Dimensions = %d, want 7, what the server answered", e.Dimensions())
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	if want := "openai-compatible:test-embedder@" + host; e.Name() != want {
		t.Errorf("Name = %q, want %q", e.Name(), want)
	}
	if strings.Contains(e.Name(), testKey) {
		t.Errorf("Name %q contains the api key", e.Name())
	}
	got := srv.requests("/v1/embeddings")
	if len(got) != 1 {
		t.Fatalf("the provider got %d embeddings requests, want 1 probe", len(got))
	}
	r := got[0]
	if r.Method != http.MethodPost || r.Auth != "Bearer "+testKey || r.ContentType != "application/json" {
		t.Errorf("probe = %s, Authorization %q, Content-Type %q", r.Method, r.Auth, r.ContentType)
	}
	if r.Body["model"] != "test-embedder" || !reflect.DeepEqual(r.Body["input"], []any{"grin"}) {
		t.Errorf("probe body = %v, want model test-embedder and input [grin]", r.Body)
	}
}

// TestEmbedBatchesAndKeepsOrder: the provider answers each batch in
// reverse order; every vector must still land at its text.
func TestEmbedBatchesAndKeepsOrder(t *testing.T) {
	tests := []struct {
		texts     int
		wantSizes []int
	}{
		{0, nil},
		{1, []int{1}},
		{64, []int{64}},
		{65, []int{64, 1}},
		{150, []int{64, 64, 22}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.texts, " texts"), func(t *testing.T) {
			srv := newFakeOpenAI(t)
			e := newEmbedder(t, llm.OpenAIEmbedderConfig{BaseURL: srv.baseURL(), Model: "test-embedder"})
			texts := make([]string, tt.texts)
			for i := range texts {
				texts[i] = fmt.Sprintf("memory number %d", i)
			}
			vecs, err := e.Embed(t.Context(), texts)
			if err != nil {
				t.Fatalf("Embed: %v", err)
			}
			if len(vecs) != len(texts) {
				t.Fatalf("got %d vectors for %d texts", len(vecs), len(texts))
			}
			for i, v := range vecs {
				if !reflect.DeepEqual(v, vectorOf(texts[i], e.Dimensions())) {
					t.Fatalf("vector %d is not the one of %q", i, texts[i])
				}
			}
			var sizes []int
			for _, r := range srv.requests("/v1/embeddings")[1:] { // after the probe
				sizes = append(sizes, len(r.Body["input"].([]any)))
			}
			if !reflect.DeepEqual(sizes, tt.wantSizes) {
				t.Errorf("batch sizes = %v, want %v", sizes, tt.wantSizes)
			}
		})
	}
}

func TestEmbedRefusesAnswersThatDoNotFit(t *testing.T) {
	tests := []struct {
		name   string
		answer http.HandlerFunc
		want   string
	}{
		{
			name: "fewer vectors than texts",
			answer: func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, `{"data":[{"index":0,"embedding":[1,2,3]}]}`)
			},
			want: "answered 1 vectors for 2 texts",
		},
		{
			name: "another length than the model had",
			answer: func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, `{"data":[{"index":0,"embedding":[1,2,3,4]},{"index":1,"embedding":[1,2,3,4]}]}`)
			},
			want: "4 dimensions where the model had 3",
		},
		{
			name: "a repeated index",
			answer: func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, `{"data":[{"index":0,"embedding":[1,2,3]},{"index":0,"embedding":[1,2,3]}]}`)
			},
			want: "repeated or out of range index",
		},
		{
			name: "base64 instead of numbers",
			answer: func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, `{"data":[{"index":0,"embedding":"AACAPw=="},{"index":1,"embedding":"AACAPw=="}]}`)
			},
			want: "something other than embeddings",
		},
		{
			name: "a server error",
			answer: func(w http.ResponseWriter, r *http.Request) {
				openAIError(w, http.StatusServiceUnavailable, "The engine is currently overloaded.")
			},
			want: "503 Service Unavailable: The engine is currently overloaded.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeOpenAI(t)
			srv.set(func(f *fakeOpenAI) { f.dims = 3 })
			e := newEmbedder(t, llm.OpenAIEmbedderConfig{BaseURL: srv.baseURL(), Model: "test-embedder"})
			srv.set(func(f *fakeOpenAI) { f.embeddings = tt.answer })
			_, err := e.Embed(t.Context(), []string{"a", "b"})
			if err == nil || !errors.Is(err, llm.ErrProvider) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Embed error = %v, want a provider error containing %q", err, tt.want)
			}
		})
	}
}

func TestNewOpenAIEmbedderRefuses(t *testing.T) {
	srv := newFakeOpenAI(t)
	srv.set(func(f *fakeOpenAI) { f.key = "sk-the-right-one-0000" })
	tests := []struct {
		name string
		cfg  llm.OpenAIEmbedderConfig
		want []string
	}{
		{"a wrong key", llm.OpenAIEmbedderConfig{BaseURL: srv.baseURL(), APIKey: testKey, Model: "m"},
			[]string{"refused the api_key", "401", "Incorrect API key provided"}},
		{"no key where one is needed", llm.OpenAIEmbedderConfig{BaseURL: srv.baseURL(), Model: "m"},
			[]string{"requires an api_key"}},
		{"an unreachable server", llm.OpenAIEmbedderConfig{BaseURL: closedURL(t), APIKey: testKey, Model: "m"},
			[]string{"cannot reach"}},
		{"a bad URL and no model", llm.OpenAIEmbedderConfig{BaseURL: "file:///etc/passwd"},
			[]string{"base_url must be an http or https URL", "model is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := llm.NewOpenAIEmbedder(t.Context(), tt.cfg)
			if err == nil {
				t.Fatal("NewOpenAIEmbedder accepted the settings")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), testKey) {
				t.Errorf("error %q contains the api key", err)
			}
		})
	}
}

func TestEmbedCancelled(t *testing.T) {
	srv := newFakeOpenAI(t)
	e := newEmbedder(t, llm.OpenAIEmbedderConfig{BaseURL: srv.baseURL(), Model: "test-embedder"})
	var calls atomic.Int32
	ctx, cancel := context.WithCancel(t.Context())
	srv.set(func(f *fakeOpenAI) {
		f.embeddings = func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			cancel()             // the caller gives up while the provider works
			<-r.Context().Done() // and the provider sees it go
		}
	})
	texts := make([]string, 150)
	for i := range texts {
		texts[i] = "x"
	}
	_, err := e.Embed(ctx, texts)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Embed error = %v, want context.Canceled", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("the provider got %d batches, want no more after the cancel", n)
	}
}
