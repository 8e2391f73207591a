package llm_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/grin-ai/grin/platform/llm"
)

const testKey = "sk-test-Zq81hLw0c2Vd9kPf"

func newChat(t *testing.T, cfg llm.OpenAIConfig) *llm.OpenAIChat {
	t.Helper()
	m, err := llm.NewOpenAIChat(cfg)
	if err != nil {
		t.Fatalf("NewOpenAIChat: %v", err)
	}
	return m
}

var prompt = llm.Request{
	Messages: []llm.Message{
		{Role: llm.RoleSystem, Content: "You are the Cheshire Cat."},
		{Role: llm.RoleUser, Content: "Which way should I go?"},
	},
	Input: "Which way should I go?",
}

// collect returns an onToken that appends to *tokens.
func collect(tokens *[]string) func(string) error {
	return func(s string) error {
		*tokens = append(*tokens, s)
		return nil
	}
}

func TestGenerateStreamsTokensInOrder(t *testing.T) {
	temp := 0.3
	tests := []struct {
		name string
		cfg  func(base string) llm.OpenAIConfig
		// wantAuth is the Authorization header the provider must see.
		wantAuth string
		// wantOptions are the body's optional fields; absent ones must not
		// be sent, so the server's defaults apply.
		wantOptions map[string]any
	}{
		{
			name: "key, temperature and max_tokens",
			cfg: func(base string) llm.OpenAIConfig {
				return llm.OpenAIConfig{BaseURL: base, APIKey: testKey, Model: "test-model", Temperature: &temp, MaxTokens: 256}
			},
			wantAuth:    "Bearer " + testKey,
			wantOptions: map[string]any{"temperature": 0.3, "max_tokens": 256.0},
		},
		{
			name:        "no key, server defaults",
			cfg:         func(base string) llm.OpenAIConfig { return llm.OpenAIConfig{BaseURL: base + "/", Model: "test-model"} },
			wantAuth:    "",
			wantOptions: map[string]any{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeOpenAI(t)
			srv.set(func(f *fakeOpenAI) {
				f.reply = []string{"Tha", "t depends", " a good deal", " on where", " you want to get to."}
			})
			m := newChat(t, tt.cfg(srv.baseURL()))

			var tokens []string
			reply, err := m.Generate(t.Context(), prompt, collect(&tokens))
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			want := []string{"Tha", "t depends", " a good deal", " on where", " you want to get to."}
			if !reflect.DeepEqual(tokens, want) {
				t.Errorf("tokens = %q, want %q", tokens, want)
			}
			if reply != strings.Join(want, "") {
				t.Errorf("reply = %q, want the tokens joined", reply)
			}

			got := srv.requests("/v1/chat/completions")
			if len(got) != 1 {
				t.Fatalf("the provider got %d chat requests, want 1", len(got))
			}
			r := got[0]
			if r.Method != http.MethodPost || r.Auth != tt.wantAuth || r.ContentType != "application/json" {
				t.Errorf("request = %s, Authorization %q, Content-Type %q; want POST, %q, application/json", r.Method, r.Auth, r.ContentType, tt.wantAuth)
			}
			if r.Body["model"] != "test-model" || r.Body["stream"] != true {
				t.Errorf("body model = %v, stream = %v; want test-model, true", r.Body["model"], r.Body["stream"])
			}
			wantMessages := []any{
				map[string]any{"role": "system", "content": "You are the Cheshire Cat."},
				map[string]any{"role": "user", "content": "Which way should I go?"},
			}
			if !reflect.DeepEqual(r.Body["messages"], wantMessages) {
				t.Errorf("body messages = %v, want %v", r.Body["messages"], wantMessages)
			}
			for _, k := range []string{"temperature", "max_tokens"} {
				want, sent := tt.wantOptions[k]
				if r.Body[k] != want || (r.Body[k] != nil) != sent {
					t.Errorf("body %s = %v, want %v (sent: %v)", k, r.Body[k], want, sent)
				}
			}
		})
	}
}

func TestGenerateWithoutMessagesSendsTheInput(t *testing.T) {
	srv := newFakeOpenAI(t)
	m := newChat(t, llm.OpenAIConfig{BaseURL: srv.baseURL(), Model: "test-model"})
	if _, err := m.Generate(t.Context(), llm.Request{Input: "Who are you?"}, nil); err != nil {
		t.Fatalf("Generate: %v", err)
	}
	want := []any{map[string]any{"role": "user", "content": "Who are you?"}}
	if got := srv.requests("/v1/chat/completions")[0].Body["messages"]; !reflect.DeepEqual(got, want) {
		t.Errorf("messages = %v, want %v", got, want)
	}
}

// TestGenerateStreamShapes feeds the client the streams real servers
// send, byte for byte.
func TestGenerateStreamShapes(t *testing.T) {
	ev := func(data string) string { return "data: " + data + "\n\n" }
	tests := []struct {
		name        string
		contentType string
		body        string
		wantTokens  []string // nil when an error is expected
		wantErr     string
	}{
		{
			name:       "keepalive comments and role-only deltas are skipped",
			body:       ": OPENROUTER PROCESSING\n\n" + ev(roleChunk()) + ":\n\n" + ev(contentChunk("Curiouser")) + ": ping\n\n" + ev(contentChunk(" and curiouser")) + ev(finishChunk()) + ev("[DONE]"),
			wantTokens: []string{"Curiouser", " and curiouser"},
		},
		{
			name:       "chunks with no choices (usage, filter results) are skipped",
			body:       ev(`{"id":"x","choices":[],"prompt_filter_results":[]}`) + ev(contentChunk("Off")) + ev(contentChunk(" with")) + ev(`{"id":"x","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2}}`) + ev("[DONE]"),
			wantTokens: []string{"Off", " with"},
		},
		{
			name:       "nothing after [DONE] is taken",
			body:       ev(contentChunk("Her")) + ev(contentChunk(" head")) + ev("[DONE]") + ev(contentChunk(" NOT THIS")),
			wantTokens: []string{"Her", " head"},
		},
		{
			name:       "CRLF line endings, no space after data:, other fields",
			body:       "event: message\r\nid: 1\r\ndata:" + contentChunk("Tweedle") + "\r\n\r\nretry: 1000\r\ndata: " + contentChunk("dum") + "\r\n\r\ndata: [DONE]\r\n\r\n",
			wantTokens: []string{"Tweedle", "dum"},
		},
		{
			name:       "null content, as llama.cpp sends",
			body:       ev(`{"choices":[{"index":0,"delta":{"role":"assistant","content":null}}]}`) + ev(contentChunk("Jam")) + ev(`{"choices":[{"index":0,"delta":{"content":null},"finish_reason":"stop"}]}`) + ev("[DONE]"),
			wantTokens: []string{"Jam"},
		},
		{
			name:       "a stream that ends after content without [DONE] keeps the reply",
			body:       ev(contentChunk("Off with")) + ev(contentChunk(" their heads")),
			wantTokens: []string{"Off with", " their heads"},
		},
		{
			name:       "a last event without its blank line still counts",
			body:       ev(contentChunk("Tea")) + "data: " + contentChunk("time"),
			wantTokens: []string{"Tea", "time"},
		},
		{
			name:        "a whole JSON completion from a server that does not stream",
			contentType: "application/json",
			body:        `{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"We're all mad here."},"finish_reason":"stop"}]}`,
			wantTokens:  []string{"We're all mad here."},
		},
		{
			name:    "a stream that ends with neither [DONE] nor content is an error",
			body:    ev(roleChunk()),
			wantErr: "ended without a reply",
		},
		{
			name:    "an empty stream is an error",
			body:    ": keepalive\n\n",
			wantErr: "ended without a reply",
		},
		{
			name:    "a malformed chunk is an error that says so",
			body:    ev(contentChunk("Half")) + ev(`{"choices":[{"delta":{"content":"a sen`) + ev("[DONE]"),
			wantErr: "malformed stream chunk",
		},
		{
			name:    "an error sent mid-stream is an error with the provider's message",
			body:    ev(contentChunk("Half")) + ev(`{"error":{"message":"The server had an error while processing your request.","type":"server_error"}}`),
			wantErr: "The server had an error while processing your request.",
		},
		{
			name:        "a web page where the API should be is an error",
			contentType: "text/html",
			body:        "<!doctype html><html><body>Open WebUI</body></html>",
			wantErr:     "not an event stream",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeOpenAI(t)
			srv.set(func(f *fakeOpenAI) {
				f.chat = func(w http.ResponseWriter, r *http.Request) {
					ct := tt.contentType
					if ct == "" {
						ct = "text/event-stream"
					}
					w.Header().Set("Content-Type", ct)
					fmt.Fprint(w, tt.body)
				}
			})
			m := newChat(t, llm.OpenAIConfig{BaseURL: srv.baseURL(), Model: "test-model"})
			var tokens []string
			reply, err := m.Generate(t.Context(), prompt, collect(&tokens))
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, llm.ErrProvider) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Generate = %q, %v; want a provider error containing %q", reply, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			if !reflect.DeepEqual(tokens, tt.wantTokens) || reply != strings.Join(tt.wantTokens, "") {
				t.Errorf("tokens = %q, reply = %q; want %q joined", tokens, reply, tt.wantTokens)
			}
		})
	}
}

func TestGenerateProviderErrors(t *testing.T) {
	long := strings.Repeat("The Queen is displeased. ", 400)
	tests := []struct {
		name    string
		answer  http.HandlerFunc
		want    []string
		maxLen  int
		wantKey bool // false: the key must not appear
	}{
		{
			name: "401 in OpenAI's shape, echoing the key",
			answer: func(w http.ResponseWriter, r *http.Request) {
				openAIError(w, http.StatusUnauthorized, "Incorrect API key provided: "+testKey+".")
			},
			want: []string{"401", "Incorrect API key provided"},
		},
		{
			name: "500 with a plain-text body",
			answer: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "upstream model worker crashed", http.StatusInternalServerError)
			},
			want: []string{"500 Internal Server Error", "upstream model worker crashed"},
		},
		{
			name: "404 in Ollama's shape",
			answer: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusNotFound)
				fmt.Fprint(w, `{"error":"model \"llama9\" not found, try pulling it first"}`)
			},
			want: []string{"404", `model "llama9" not found, try pulling it first`},
		},
		{
			name: "400 in FastAPI's shape (vLLM)",
			answer: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprint(w, `{"object":"error","message":"This model's maximum context length is 4096 tokens.","type":"BadRequestError","code":400}`)
			},
			want: []string{"400", "maximum context length is 4096 tokens"},
		},
		{
			name: "a very long message is cut",
			answer: func(w http.ResponseWriter, r *http.Request) {
				openAIError(w, http.StatusTooManyRequests, long)
			},
			want:   []string{"429", "The Queen is displeased.", "…"},
			maxLen: 500,
		},
		{
			name: "a redirect is not followed, and says where it points",
			answer: func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "https://elsewhere.example/v1/chat/completions", http.StatusMovedPermanently)
			},
			want: []string{"301", "https://elsewhere.example/v1/chat/completions"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeOpenAI(t)
			srv.set(func(f *fakeOpenAI) { f.chat = tt.answer })
			m := newChat(t, llm.OpenAIConfig{BaseURL: srv.baseURL(), APIKey: testKey, Model: "test-model"})
			called := false
			_, err := m.Generate(t.Context(), prompt, func(string) error { called = true; return nil })
			if err == nil || !errors.Is(err, llm.ErrProvider) {
				t.Fatalf("Generate error = %v, want a provider error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), testKey) {
				t.Errorf("error %q contains the api key", err)
			}
			if tt.maxLen > 0 && len(err.Error()) > tt.maxLen {
				t.Errorf("error is %d bytes long, want at most %d", len(err.Error()), tt.maxLen)
			}
			if called {
				t.Error("onToken was called for a refused request")
			}
		})
	}
}

func TestGenerateServerClosesMidStream(t *testing.T) {
	srv := newFakeOpenAI(t)
	srv.set(func(f *fakeOpenAI) {
		f.chat = func(w http.ResponseWriter, r *http.Request) {
			startStream(w)
			sendEvent(w, contentChunk("Begin at the beginning"))
			panic(http.ErrAbortHandler) // drops the connection mid-stream
		}
	})
	m := newChat(t, llm.OpenAIConfig{BaseURL: srv.baseURL(), Model: "test-model"})
	var tokens []string
	_, err := m.Generate(t.Context(), prompt, collect(&tokens))
	if err == nil || !errors.Is(err, llm.ErrProvider) || !strings.Contains(err.Error(), "broke off") {
		t.Fatalf("Generate error = %v, want a provider error saying the stream broke off", err)
	}
	if !reflect.DeepEqual(tokens, []string{"Begin at the beginning"}) {
		t.Errorf("tokens = %q, want the one piece sent before the break", tokens)
	}
}

func TestGenerateUnreachableServer(t *testing.T) {
	m := newChat(t, llm.OpenAIConfig{BaseURL: closedURL(t), APIKey: testKey, Model: "test-model"})
	_, err := m.Generate(t.Context(), prompt, nil)
	if err == nil || !errors.Is(err, llm.ErrProvider) || !strings.Contains(err.Error(), "cannot reach") {
		t.Fatalf("Generate error = %v, want a provider error saying the server cannot be reached", err)
	}
	if strings.Contains(err.Error(), testKey) {
		t.Errorf("error %q contains the api key", err)
	}
}

// TestGenerateCancelledMidStream: a user who leaves stops the generation,
// and the provider's connection is let go, while the provider would go on.
func TestGenerateCancelledMidStream(t *testing.T) {
	gone := make(chan struct{}) // the provider saw the client leave
	srv := newFakeOpenAI(t)
	srv.set(func(f *fakeOpenAI) {
		f.chat = func(w http.ResponseWriter, r *http.Request) {
			startStream(w)
			sendEvent(w, contentChunk("Why is a raven"))
			<-r.Context().Done() // a slow model: nothing more until the client leaves
			close(gone)
		}
	})
	m := newChat(t, llm.OpenAIConfig{BaseURL: srv.baseURL(), Model: "test-model"})

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	first := make(chan struct{})
	var tokens []string
	done := make(chan error, 1)
	go func() {
		_, err := m.Generate(ctx, prompt, func(s string) error {
			tokens = append(tokens, s)
			if len(tokens) == 1 {
				close(first)
			}
			return nil
		})
		done <- err
	}()
	<-first
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Generate error = %v, want context.Canceled", err)
	}
	<-gone
	if !reflect.DeepEqual(tokens, []string{"Why is a raven"}) {
		t.Errorf("tokens = %q, want only the piece sent before the cancel", tokens)
	}
}

// TestGenerateOnTokenErrorStops: when the listener fails (the websocket
// closed), generation stops there and the provider's connection is let
// go.
func TestGenerateOnTokenErrorStops(t *testing.T) {
	gone := make(chan struct{})
	srv := newFakeOpenAI(t)
	srv.set(func(f *fakeOpenAI) {
		f.chat = func(w http.ResponseWriter, r *http.Request) {
			startStream(w)
			for _, p := range []string{"one", "two", "three", "four"} {
				sendEvent(w, contentChunk(p))
			}
			<-r.Context().Done() // the rest of a long reply, never asked for
			close(gone)
		}
	})
	m := newChat(t, llm.OpenAIConfig{BaseURL: srv.baseURL(), Model: "test-model"})
	errClosed := errors.New("websocket closed")
	var tokens []string
	_, err := m.Generate(t.Context(), prompt, func(s string) error {
		tokens = append(tokens, s)
		if len(tokens) == 2 {
			return errClosed
		}
		return nil
	})
	if !errors.Is(err, errClosed) {
		t.Fatalf("Generate error = %v, want the onToken error", err)
	}
	if !reflect.DeepEqual(tokens, []string{"one", "two"}) {
		t.Errorf("tokens = %q, want generation to stop after the failing one", tokens)
	}
	<-gone
}

func TestNewOpenAIChatReportsEveryProblem(t *testing.T) {
	hot := 2.5
	tests := []struct {
		name string
		cfg  llm.OpenAIConfig
		want []string
	}{
		{"nothing set", llm.OpenAIConfig{}, []string{"base_url is required", "model is required"}},
		{"ftp URL and hot temperature", llm.OpenAIConfig{BaseURL: "ftp://models.example/v1", Model: "m", Temperature: &hot},
			[]string{"base_url must be an http or https URL", "temperature must be between 0 and 2"}},
		{"no host", llm.OpenAIConfig{BaseURL: "http:///v1", Model: "m"}, []string{"base_url must be an http or https URL"}},
		{"not a URL", llm.OpenAIConfig{BaseURL: "localhost:11434", Model: "m"}, []string{"base_url must be an http or https URL"}},
		{"credentials in the URL", llm.OpenAIConfig{BaseURL: "https://user:pw@models.example/v1", Model: "m"}, []string{"must not carry credentials"}},
		{"a query", llm.OpenAIConfig{BaseURL: "https://models.example/v1?x=1", Model: "m"}, []string{"must not have a query"}},
		{"a key with a line break", llm.OpenAIConfig{BaseURL: "https://models.example/v1", Model: "m", APIKey: "sk-a\nb"}, []string{"api_key must not contain"}},
		{"negative max_tokens", llm.OpenAIConfig{BaseURL: "https://models.example/v1", Model: "m", MaxTokens: -1}, []string{"max_tokens must be positive"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := llm.NewOpenAIChat(tt.cfg)
			if err == nil {
				t.Fatal("NewOpenAIChat accepted the settings")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
