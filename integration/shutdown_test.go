package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// slowModel speaks the OpenAI chat-completions protocol and holds every
// answer until release is closed, so a test can have a turn in flight.
type slowModel struct {
	*httptest.Server
	arrived chan struct{} // one value per request that reached the model
	release chan struct{}
	once    sync.Once
}

func newSlowModel(t *testing.T, reply string) *slowModel {
	m := &slowModel{arrived: make(chan struct{}, 16), release: make(chan struct{})}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/models":
			fmt.Fprint(w, `{"object":"list","data":[{"id":"tiny","object":"model"}]}`)
		case "/v1/chat/completions":
			io.Copy(io.Discard, r.Body)
			m.arrived <- struct{}{}
			<-m.release
			w.Header().Set("Content-Type", "text/event-stream")
			b, _ := json.Marshal(map[string]any{"choices": []any{map[string]any{"index": 0, "delta": map[string]string{"role": "assistant", "content": reply}}}})
			fmt.Fprintf(w, "data: %s\n\ndata: [DONE]\n\n", b)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(func() { m.Release(); m.Close() })
	return m
}

// Release lets every held and later answer through.
func (m *slowModel) Release() { m.once.Do(func() { close(m.release) }) }

// grinProcess is the built binary running grin serve.
type grinProcess struct {
	cmd  *exec.Cmd
	url  string
	logs *syncBuffer
	done chan struct{} // closed when the process has exited, with err set
	err  error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startGrin runs the binary on a free loopback port with env until the
// test ends, and waits until /healthz answers.
func startGrin(t *testing.T, env ...string) *grinProcess {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := &grinProcess{cmd: exec.Command(binary, "serve"), url: "http://" + addr, logs: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), append([]string{"GRIN_ADDR=" + addr}, env...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if r, err := http.Get(p.url + "/healthz"); err == nil {
			r.Body.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("grin did not start; log:\n%s", p.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSIGTERMFinishesTheTurnInFlight: SIGTERM arrives while the model is
// still answering a user's message. grin stops being ready (503), refuses
// new sockets and messages, answers the message in flight on the socket
// that sent it, then closes the socket with 1012 (service restart) and
// exits 0; started again on the same data, the turn is in the user's
// history.
func TestSIGTERMFinishesTheTurnInFlight(t *testing.T) {
	model := newSlowModel(t, "Your cat is called Dinah.")
	dir := t.TempDir()
	env := []string{"GRIN_DATA_DIR=" + dir, "GRIN_LLM=openai-compatible", "GRIN_LLM_BASE_URL=" + model.URL + "/v1", "GRIN_LLM_MODEL=tiny"}
	g := startGrin(t, env...)
	ws := "ws" + strings.TrimPrefix(g.url, "http")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	conn, _, err := websocket.Dial(ctx, ws+"/ws/alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	if err := conn.Write(ctx, websocket.MessageText, []byte(`{"text":"My cat is called Dinah"}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-model.arrived: // the turn is in flight
	case <-ctx.Done():
		t.Fatalf("the message never reached the model; log:\n%s", g.logs.String())
	}
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	// Not ready any more, while the turn is still held by the model.
	for {
		r, err := http.Get(g.url + "/readyz")
		if err != nil {
			t.Fatalf("readyz during the shutdown: %v", err)
		}
		var body struct{ Status string }
		json.NewDecoder(r.Body).Decode(&body)
		r.Body.Close()
		if r.StatusCode == http.StatusServiceUnavailable {
			if body.Status != "shutting down" {
				t.Errorf("readyz says %q", body.Status)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("readyz stayed %d after SIGTERM", r.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, resp, err := websocket.Dial(ctx, ws+"/ws/bob", nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a new socket during the shutdown: %v %v", err, resp)
	}
	r, err := http.Post(g.url+"/message", "application/json", strings.NewReader(`{"text":"hello?"}`))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
		t.Errorf("a new message during the shutdown: %d, Retry-After %q", r.StatusCode, r.Header.Get("Retry-After"))
	}

	// The model answers: the socket gets the answer, then 1012.
	model.Release()
	var answer string
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.StatusServiceRestart || !strings.Contains(ce.Reason, "reconnect") {
				t.Fatalf("the socket ended with %v, want 1012 and a reason saying to reconnect; log:\n%s", err, g.logs.String())
			}
			break
		}
		var f struct{ Type, Text string }
		json.Unmarshal(b, &f)
		if f.Type == "chat" {
			answer = f.Text
		}
	}
	if !strings.Contains(answer, "Dinah") {
		t.Errorf("the turn in flight was not answered (%q); log:\n%s", answer, g.logs.String())
	}
	select {
	case <-g.done:
		if g.err != nil {
			t.Fatalf("grin exited with %v; log:\n%s", g.err, g.logs.String())
		}
	case <-ctx.Done():
		t.Fatalf("grin did not exit; log:\n%s", g.logs.String())
	}

	// Durable: the turn is in alice's history after a restart.
	g = startGrin(t, env...)
	req, _ := http.NewRequest("GET", g.url+"/memory/conversation_history", nil)
	req.Header.Set("user_id", "alice")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	hist, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(hist), "My cat is called Dinah") || !strings.Contains(string(hist), "Your cat is called Dinah.") {
		t.Errorf("history after the restart: %d %s", resp.StatusCode, hist)
	}
}

// TestShutdownTimeoutBoundsTheWait: a model that never answers does not
// keep grin up: at GRIN_SHUTDOWN_TIMEOUT the socket is closed with 1012
// anyway, the turn is cancelled, and grin exits 0.
func TestShutdownTimeoutBoundsTheWait(t *testing.T) {
	model := newSlowModel(t, "never sent")
	g := startGrin(t, "GRIN_DATA_DIR="+t.TempDir(), "GRIN_LLM=openai-compatible", "GRIN_LLM_BASE_URL="+model.URL+"/v1",
		"GRIN_LLM_MODEL=tiny", "GRIN_SHUTDOWN_TIMEOUT=1s")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(g.url, "http")+"/ws/alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	if err := conn.Write(ctx, websocket.MessageText, []byte(`{"text":"hello"}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-model.arrived:
	case <-ctx.Done():
		t.Fatalf("the message never reached the model; log:\n%s", g.logs.String())
	}
	g.cmd.Process.Signal(syscall.SIGTERM)
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != websocket.StatusServiceRestart {
				t.Fatalf("the socket ended with %v, want 1012; log:\n%s", err, g.logs.String())
			}
			break
		}
		if strings.Contains(string(b), `"type":"chat"`) {
			t.Errorf("an answer arrived from a model that never answered: %s", b)
		}
	}
	select {
	case <-g.done:
		if g.err != nil {
			t.Errorf("grin exited with %v; log:\n%s", g.err, g.logs.String())
		}
	case <-ctx.Done():
		t.Fatalf("grin did not exit; log:\n%s", g.logs.String())
	}
	if !strings.Contains(g.logs.String(), "shutdown timeout") {
		t.Errorf("the log does not say the timeout cut turns short:\n%s", g.logs.String())
	}
}

// TestShutdownDelayKeepsServing: during GRIN_SHUTDOWN_DELAY grin says it
// is not ready but still serves everything, messages included, so clients
// a load balancer still sends are answered; a second SIGTERM ends it at
// once.
func TestShutdownDelayKeepsServing(t *testing.T) {
	g := startGrin(t, "GRIN_DATA_DIR="+t.TempDir(), "GRIN_SHUTDOWN_DELAY=10m")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g.cmd.Process.Signal(syscall.SIGTERM)
	for {
		r, err := http.Get(g.url + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode == http.StatusServiceUnavailable {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("readyz stayed %d", r.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r, err := http.Post(g.url+"/message", "application/json", strings.NewReader(`{"text":"still there?"}`))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		t.Errorf("a message during the delay: %d", r.StatusCode)
	}
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(g.url, "http")+"/ws/alice", nil)
	if err != nil {
		t.Errorf("a socket during the delay: %v", err)
	} else {
		conn.CloseNow()
	}
	g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
		var exit *exec.ExitError
		if !errors.As(g.err, &exit) || exit.ExitCode() != -1 {
			t.Errorf("after a second SIGTERM grin exited with %v, want killed by the signal", g.err)
		}
	case <-ctx.Done():
		t.Fatalf("a second SIGTERM did not end grin (the delay is 10 minutes); log:\n%s", g.logs.String())
	}
}
