package llm

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestGenerateSilentServer: a provider that stops sending without closing
// the connection (a dead peer, a wedged server) ends the chat with an
// error instead of holding it forever.
func TestGenerateSilentServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done() // silent until the client gives up
	}))
	defer srv.Close()
	m, err := NewOpenAIChat(OpenAIConfig{BaseURL: srv.URL + "/v1", Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	m.idle = time.Millisecond // the bound itself is not under test, only that it holds
	_, err = m.Generate(t.Context(), Request{Input: "hello?"}, nil)
	if !errors.Is(err, ErrProvider) || !strings.Contains(err.Error(), "sent nothing for") {
		t.Fatalf("Generate error = %v, want a provider error saying the server went silent", err)
	}
}
