package llm_test

import (
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeOpenAI is a model provider over real HTTP that speaks the OpenAI
// API under /v1, as OpenAI, Ollama and vLLM do. It records every request
// and answers with what the test set.
type fakeOpenAI struct {
	*httptest.Server
	t *testing.T

	mu   sync.Mutex
	seen []seenRequest
	// key, when set, must come as the bearer token; otherwise the answer
	// is OpenAI's 401, echoing the key that was sent, as OpenAI does
	// (partly masked) and some servers do whole.
	key string
	// reply is what /chat/completions streams, piece by piece.
	reply []string
	// dims is the length of the vectors /embeddings answers.
	dims int
	// chat, models and embeddings replace the default answers.
	chat, models, embeddings http.HandlerFunc
}

// seenRequest is a request as the provider received it.
type seenRequest struct {
	Method, Path, Auth, ContentType string
	Body                            map[string]any
}

func newFakeOpenAI(t *testing.T) *fakeOpenAI {
	t.Helper()
	f := &fakeOpenAI{t: t, reply: []string{"Hello", ", ", "world", "!"}, dims: 8}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

// baseURL is the API root clients are configured with.
func (f *fakeOpenAI) baseURL() string { return f.URL + "/v1" }

func (f *fakeOpenAI) serve(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s := seenRequest{Method: r.Method, Path: r.URL.Path, Auth: r.Header.Get("Authorization"), ContentType: r.Header.Get("Content-Type")}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &s.Body); err != nil {
			openAIError(w, http.StatusBadRequest, "We could not parse the JSON body of your request.")
			return
		}
	}
	f.mu.Lock()
	f.seen = append(f.seen, s)
	key, chat, models, embeddings := f.key, f.chat, f.models, f.embeddings
	f.mu.Unlock()

	if key != "" && s.Auth != "Bearer "+key {
		sent := strings.TrimPrefix(s.Auth, "Bearer ")
		openAIError(w, http.StatusUnauthorized, "Incorrect API key provided: "+sent+". You can find your API key at https://platform.openai.com/account/api-keys.")
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v1/models":
		if models != nil {
			models(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"object":"list","data":[{"id":"test-model","object":"model","owned_by":"grin"}]}`)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/chat/completions":
		if chat != nil {
			chat(w, r)
			return
		}
		f.mu.Lock()
		reply := f.reply
		f.mu.Unlock()
		streamReply(w, reply...)
	case r.Method == http.MethodPost && r.URL.Path == "/v1/embeddings":
		if embeddings != nil {
			embeddings(w, r)
			return
		}
		in, _ := s.Body["input"].([]any)
		f.mu.Lock()
		dims := f.dims
		f.mu.Unlock()
		answerEmbeddings(w, in, dims)
	default:
		openAIError(w, http.StatusNotFound, "Unknown request URL: "+r.Method+" "+r.URL.Path)
	}
}

// requests returns what the provider received on path.
func (f *fakeOpenAI) requests(path string) []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []seenRequest
	for _, s := range f.seen {
		if s.Path == path {
			out = append(out, s)
		}
	}
	return out
}

func (f *fakeOpenAI) set(fn func(f *fakeOpenAI)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// openAIError answers as OpenAI does when it refuses a request.
func openAIError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"message": msg, "type": "invalid_request_error", "param": nil, "code": nil,
	}})
}

// streamReply streams a chat completion as OpenAI does: a role-only
// delta, one delta per piece, a finish chunk and [DONE], each flushed
// on its own.
func streamReply(w http.ResponseWriter, pieces ...string) {
	startStream(w)
	sendEvent(w, roleChunk())
	for _, p := range pieces {
		sendEvent(w, contentChunk(p))
	}
	sendEvent(w, finishChunk())
	sendEvent(w, "[DONE]")
}

func startStream(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
}

// sendEvent writes one server-sent event and flushes it to the client.
func sendEvent(w http.ResponseWriter, data string) {
	fmt.Fprintf(w, "data: %s\n\n", data)
	w.(http.Flusher).Flush()
}

func chunk(delta map[string]any, finish any) string {
	b, _ := json.Marshal(map[string]any{
		"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000, "model": "test-model",
		"choices": []any{map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}},
	})
	return string(b)
}

func roleChunk() string            { return chunk(map[string]any{"role": "assistant", "content": ""}, nil) }
func contentChunk(s string) string { return chunk(map[string]any{"content": s}, nil) }
func finishChunk() string          { return chunk(map[string]any{}, "stop") }

// vectorOf is the provider's embedding of a text: its first component
// identifies the text, so a test can tell which vector is whose.
func vectorOf(text string, dims int) []float32 {
	v := make([]float32, dims)
	v[0] = float32(crc32.ChecksumIEEE([]byte(text)) % 1000003)
	for i := 1; i < dims; i++ {
		v[i] = float32(i)
	}
	return v
}

// answerEmbeddings answers an embeddings request as OpenAI does, but
// with the data in reverse order: the index is what says whose vector
// is whose.
func answerEmbeddings(w http.ResponseWriter, input []any, dims int) {
	data := make([]any, 0, len(input))
	for i := len(input) - 1; i >= 0; i-- {
		text, _ := input[i].(string)
		data = append(data, map[string]any{"object": "embedding", "index": i, "embedding": vectorOf(text, dims)})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"object": "list", "data": data, "model": "test-embedder",
		"usage": map[string]any{"prompt_tokens": len(input), "total_tokens": len(input)},
	})
}

// closedURL is the API root of a server that is no longer there.
func closedURL(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(http.NotFoundHandler())
	u := s.URL + "/v1"
	s.Close()
	return u
}
