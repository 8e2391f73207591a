package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/grin-ai/grin/platform/app/apptest"
)

// openAIServer speaks the OpenAI chat-completions wire protocol: it
// streams a fixed reply as server-sent events and records what it was
// asked.
type openAIServer struct {
	*httptest.Server
	pieces []string

	mu       sync.Mutex
	requests []map[string]any
	auth     []string
	embedded []string // every text /v1/embeddings was asked for
}

func newOpenAIServer(t *testing.T, pieces ...string) *openAIServer {
	s := &openAIServer{pieces: pieces}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/models":
			fmt.Fprint(w, `{"object":"list","data":[{"id":"tiny","object":"model"}]}`)
		case "/v1/chat/completions":
			var body map[string]any
			json.NewDecoder(r.Body).Decode(&body)
			s.mu.Lock()
			s.requests = append(s.requests, body)
			s.auth = append(s.auth, r.Header.Get("Authorization"))
			s.mu.Unlock()
			w.Header().Set("Content-Type", "text/event-stream")
			fl := w.(http.Flusher)
			fmt.Fprint(w, ": keepalive\n\n")
			fmt.Fprintf(w, "data: %s\n\n", `{"choices":[{"index":0,"delta":{"role":"assistant"}}]}`)
			for _, p := range s.pieces {
				b, _ := json.Marshal(map[string]any{"choices": []any{map[string]any{"index": 0, "delta": map[string]string{"content": p}}}})
				fmt.Fprintf(w, "data: %s\n\n", b)
				fl.Flush()
			}
			fmt.Fprint(w, "data: [DONE]\n\n")
		case "/v1/embeddings":
			var body struct{ Input []string }
			json.NewDecoder(r.Body).Decode(&body)
			data := []any{}
			for i, text := range body.Input {
				// A small vector that depends on the text.
				v := []float64{1, float64(len(text) % 7), float64(strings.Count(text, "e")), 0.5}
				data = append(data, map[string]any{"object": "embedding", "index": i, "embedding": v})
			}
			s.mu.Lock()
			s.embedded = append(s.embedded, body.Input...)
			s.mu.Unlock()
			json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": data, "model": "tiny-embedder"})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func TestStreamingFromAnOpenAICompatibleServer(t *testing.T) {
	model := newOpenAIServer(t, "The ", "rabbit ", "is ", "late.")
	in := apptest.Start(t)
	r := in.Do("PUT", "/llm/settings/LLMOpenAICompatibleConfig", map[string]any{
		"base_url": model.URL + "/v1", "model": "tiny", "api_key": "sk-test-secret",
	})
	if r.Status != 200 {
		t.Fatalf("configure the model: %d %s", r.Status, r.Body)
	}
	list := in.Do("GET", "/llm/settings", nil)
	if strings.Contains(string(list.Body), "sk-test-secret") {
		t.Fatal("GET /llm/settings shows the API key")
	}
	if list.Map(t)["selected_configuration"] != "LLMOpenAICompatibleConfig" {
		t.Errorf("selected: %s", list.Body)
	}

	c := dial(t, in, "/ws/alice")
	c.send(map[string]string{"text": "The White Rabbit carries a pocket watch"})
	reply, tokens := c.reply()
	if fmt.Sprint(tokens) != "[The  rabbit  is  late.]" || reply.Text != "The rabbit is late." {
		t.Fatalf("tokens %q, reply %q", tokens, reply.Text)
	}
	c.send(map[string]string{"text": "What does the White Rabbit carry?"})
	c.reply()

	model.mu.Lock()
	defer model.mu.Unlock()
	if len(model.requests) != 2 || model.auth[1] != "Bearer sk-test-secret" {
		t.Fatalf("the model saw %d requests, auth %q", len(model.requests), model.auth)
	}
	req := model.requests[1]
	if req["stream"] != true || req["model"] != "tiny" {
		t.Errorf("request %v", req)
	}
	msgs, _ := req["messages"].([]any)
	first := msgs[0].(map[string]any)
	last := msgs[len(msgs)-1].(map[string]any)
	// The Cat's order: prefix and recalled memories, history, the message.
	if first["role"] != "system" || !strings.Contains(first["content"].(string), "Cheshire Cat") ||
		!strings.Contains(first["content"].(string), "pocket watch") {
		t.Errorf("system message lacks the prefix or the recalled memory: %v", first["content"])
	}
	if len(msgs) != 4 || msgs[1].(map[string]any)["content"] != "The White Rabbit carries a pocket watch" ||
		msgs[2].(map[string]any)["role"] != "assistant" {
		t.Errorf("history not in the prompt: %v", msgs)
	}
	if last["role"] != "user" || last["content"] != "What does the White Rabbit carry?" {
		t.Errorf("last message %v", last)
	}
	if strings.Contains(in.Logs.String(), "sk-test-secret") {
		t.Error("the API key was logged")
	}
}

// TestATurnEmbedsItsMessageOnce: the message is embedded for the recall
// and the same vector is stored as its episodic memory, so a remote
// embedder is called once a turn, not twice; and the memory is found by
// the next turn's recall.
func TestATurnEmbedsItsMessageOnce(t *testing.T) {
	provider := newOpenAIServer(t, "ok")
	in := apptest.Start(t)
	if r := in.Do("PUT", "/embedder/settings/EmbedderOpenAICompatibleConfig", map[string]any{
		"base_url": provider.URL + "/v1", "model": "tiny-embedder",
	}); r.Status != 200 {
		t.Fatalf("configure the embedder: %d %s", r.Status, r.Body)
	}
	provider.mu.Lock()
	probes := len(provider.embedded)
	provider.mu.Unlock()
	c := dial(t, in, "/ws/alice")
	messages := []string{"The White Rabbit carries a pocket watch", "What does the White Rabbit carry?"}
	var last frame
	for _, m := range messages {
		c.send(map[string]string{"text": m})
		last, _ = c.reply()
	}
	provider.mu.Lock()
	embedded := provider.embedded[probes:]
	provider.mu.Unlock()
	if fmt.Sprint(embedded) != fmt.Sprint(messages) {
		t.Errorf("the embedder was asked for %q, want each message once: %q", embedded, messages)
	}
	if !strings.Contains(fmt.Sprint(last.Why.Memory.Episodic), "pocket watch") {
		t.Errorf("the second turn did not recall the first: %+v", last.Why.Memory.Episodic)
	}
}

func TestBrokenModelIsAnErrorFrame(t *testing.T) {
	model := newOpenAIServer(t, "ok")
	in := apptest.Start(t)
	if r := in.Do("PUT", "/llm/settings/LLMOpenAICompatibleConfig", map[string]any{"base_url": model.URL + "/v1", "model": "tiny"}); r.Status != 200 {
		t.Fatalf("configure: %d %s", r.Status, r.Body)
	}
	model.Close() // the provider goes away
	c := dial(t, in, "/ws/alice")
	c.send(map[string]string{"text": "hello?"})
	for {
		f := c.next()
		if f.Type == "chat_token" {
			continue
		}
		if f.Type != "error" || f.Description == "" {
			t.Fatalf("got %+v, want an error frame", f)
		}
		break
	}
	// Unreachable settings are refused and change nothing.
	r := in.Do("PUT", "/llm/settings/LLMOpenAICompatibleConfig", map[string]any{"base_url": "http://127.0.0.1:1/v1", "model": "tiny"})
	if r.Status != 422 {
		t.Errorf("unreachable model: %d %s", r.Status, r.Body)
	}
	if r := in.Do("PUT", "/llm/settings/LLMDefaultConfig", map[string]any{}); r.Status != 200 {
		t.Fatalf("back to the default: %d", r.Status)
	}
	c.send(map[string]string{"text": "hello again"})
	if r, _ := c.reply(); !strings.Contains(r.Text, "No language model is configured") {
		t.Errorf("offline reply: %q", r.Text)
	}
}

func TestProviderFromEnvironment(t *testing.T) {
	model := newOpenAIServer(t, "from ", "the ", "environment")
	cfg := apptest.Config(t.TempDir())
	cfg.LLM.Kind, cfg.LLM.BaseURL, cfg.LLM.Model = "openai-compatible", model.URL+"/v1", "tiny"
	in := apptest.StartWith(t, cfg)
	var f frame
	in.Do("POST", "/message", map[string]any{"text": "hello"}).JSON(t, &f)
	if f.Text != "from the environment" {
		t.Errorf("reply %q, want the configured model's", f.Text)
	}
	if in.Do("GET", "/llm/settings", nil).Map(t)["selected_configuration"] != "LLMOpenAICompatibleConfig" {
		t.Error("the environment's choice is not shown as selected")
	}
}
