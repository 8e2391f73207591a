package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/grin-ai/grin/platform/app/apptest"
)

type frame struct {
	Type        string `json:"type"`
	UserID      string `json:"user_id"`
	Text        string `json:"text"`
	Content     string `json:"content"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Why         struct {
		Input  string `json:"input"`
		Memory struct {
			Episodic    []doc `json:"episodic"`
			Declarative []doc `json:"declarative"`
			Procedural  []doc `json:"procedural"`
		} `json:"memory"`
		ModelInteractions []map[string]any `json:"model_interactions"`
		AgentOutput       map[string]any   `json:"agent_output"`
	} `json:"why"`
}

type doc struct {
	ID          string         `json:"id"`
	PageContent string         `json:"page_content"`
	Metadata    map[string]any `json:"metadata"`
	Score       float64        `json:"score"`
}

type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
}

func dial(t *testing.T, in *apptest.Instance, path string) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(in.URL, "http")+path, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", path, err, status)
	}
	t.Cleanup(func() { c.CloseNow() })
	return &wsClient{t: t, conn: c}
}

func (c *wsClient) send(v any) {
	c.t.Helper()
	var b []byte
	if s, ok := v.(string); ok {
		b = []byte(s)
	} else {
		b, _ = json.Marshal(v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// next reads the next frame, failing after 20 s.
func (c *wsClient) next() frame {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, b, err := c.conn.Read(ctx)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		c.t.Fatalf("frame %s: %v", b, err)
	}
	return f
}

// reply reads frames until a chat frame, returning it and the tokens seen.
func (c *wsClient) reply() (frame, []string) {
	c.t.Helper()
	var tokens []string
	for {
		f := c.next()
		switch f.Type {
		case "chat_token":
			tokens = append(tokens, f.Content)
		case "chat":
			return f, tokens
		case "error":
			c.t.Fatalf("error frame: %s: %s", f.Name, f.Description)
		}
	}
}

// quiet asserts that no frame arrives within a short wait: used only to
// show the absence of a frame that, if sent, would already be queued.
func (c *wsClient) quiet() {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, b, err := c.conn.Read(ctx); err == nil {
		c.t.Fatalf("unexpected frame: %s", b)
	}
}

func TestChatRemembersEachUserApart(t *testing.T) {
	apptest.EachBackend(t, func(t *testing.T, backend apptest.Backend) {
		in := backend.Start(t)
		alice := dial(t, in, "/ws/alice")
		alice2 := dial(t, in, "/ws/alice") // a second tab
		bob := dial(t, in, "/ws/bob")

		alice.send(map[string]string{"text": "My favourite colour is blue"})
		r, tokens := alice.reply()
		if r.UserID != "alice" || r.Text == "" || r.Content != r.Text || r.Why.Input != "My favourite colour is blue" {
			t.Fatalf("reply = %+v", r)
		}
		if len(tokens) < 2 || strings.Join(tokens, "") != r.Text {
			t.Errorf("streamed tokens %q do not make the reply %q", tokens, r.Text)
		}
		// As the Cat: the query's embedding, then the LLM's call.
		if mi := r.Why.ModelInteractions; len(mi) != 2 || mi[0]["model_type"] != "embedder" || mi[0]["source"] != "recall" ||
			mi[1]["model_type"] != "llm" || mi[1]["source"] != "agent" || mi[1]["reply"] != r.Text ||
			!strings.HasSuffix(fmt.Sprint(mi[1]["prompt"]), "Human: My favourite colour is blue") || r.Why.AgentOutput["output"] != r.Text {
			t.Errorf("why lacks the model interactions or agent output: %+v", r.Why)
		}
		// The second tab sees alice's reply too.
		if r2, _ := alice2.reply(); r2.Text != r.Text {
			t.Errorf("alice's second socket got %q", r2.Text)
		}

		alice.send(map[string]string{"text": "What is my favourite colour?"})
		r, _ = alice.reply()
		alice2.reply()
		if len(r.Why.Memory.Episodic) == 0 || r.Why.Memory.Episodic[0].PageContent != "My favourite colour is blue" {
			t.Fatalf("alice does not recall her own words: %+v", r.Why.Memory.Episodic)
		}
		if r.Why.Memory.Episodic[0].Metadata["source"] != "alice" {
			t.Errorf("episodic point source = %v", r.Why.Memory.Episodic[0].Metadata["source"])
		}
		if !strings.Contains(r.Text, "blue") {
			t.Errorf("the offline model should quote what it recalls: %q", r.Text)
		}

		// Bob asks the same and recalls nothing of alice's; he saw none of
		// her frames.
		bob.send(map[string]string{"text": "What is my favourite colour?"})
		rb, _ := bob.reply()
		if rb.UserID != "bob" || len(rb.Why.Memory.Episodic) != 0 || strings.Contains(rb.Text, "blue") {
			t.Fatalf("bob got alice's memory: %+v", rb)
		}
		bob.quiet()

		// History is per user.
		var h struct {
			History []struct{ Who, Text string } `json:"history"`
		}
		in.Do("GET", "/memory/conversation_history", nil, "user_id", "alice").JSON(t, &h)
		if len(h.History) != 4 || h.History[0].Who != "Human" || h.History[1].Who != "AI" || h.History[0].Text != "My favourite colour is blue" {
			t.Errorf("alice's history = %+v", h.History)
		}
		in.Do("GET", "/memory/conversation_history", nil, "user_id", "bob").JSON(t, &h)
		if len(h.History) != 2 {
			t.Errorf("bob's history = %+v", h.History)
		}
		// Deleting alice's history leaves bob's.
		if r := in.Do("DELETE", "/memory/conversation_history", nil, "user_id", "alice"); r.Status != 200 || r.Map(t)["deleted"] != true {
			t.Fatalf("delete history: %d %s", r.Status, r.Body)
		}
		in.Do("GET", "/memory/conversation_history", nil, "user_id", "alice").JSON(t, &h)
		if len(h.History) != 0 {
			t.Errorf("alice's history after deleting: %+v", h.History)
		}
		in.Do("GET", "/memory/conversation_history", nil, "user_id", "bob").JSON(t, &h)
		if len(h.History) != 2 {
			t.Errorf("bob's history after alice deleted hers: %+v", h.History)
		}
	})
}

func TestMalformedFramesKeepTheSocket(t *testing.T) {
	in := apptest.Start(t)
	c := dial(t, in, "/ws")
	for _, bad := range []string{"not json", `{"text": 5}`, `{"text": "   "}`, `[1,2,3]`, `{}`} {
		c.send(bad)
		f := c.next()
		if f.Type != "error" || f.Description == "" {
			t.Errorf("frame %q: got %+v, want an error frame", bad, f)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.conn.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3})
	if f := c.next(); f.Type != "error" {
		t.Errorf("binary frame: %+v", f)
	}
	// Still usable, and the default user is "user".
	c.send(map[string]string{"text": "hello"})
	if r, _ := c.reply(); r.UserID != "user" {
		t.Errorf("reply user %q, want the default user", r.UserID)
	}
	// An oversize frame is refused with a close reason.
	c.send(map[string]string{"text": strings.Repeat("x", 100_000)})
	_, _, err := c.conn.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusMessageTooBig {
		t.Errorf("oversize frame: %v, want close 1009", err)
	}
}

func TestWebSocketAuth(t *testing.T) {
	in := authRequired(t, func(c *configT) { c.APIKeyWS = "ws-key-0123456789abcdef" })
	url := "ws" + strings.TrimPrefix(in.URL, "http")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, path := range []string{"/ws/alice", "/ws/alice?token=wrong", "/ws?token=" + testAPIKey} {
		_, resp, err := websocket.Dial(ctx, url+path, nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %v, want a refused handshake (403)", path, err)
		}
	}
	// The WS key gives base permissions acting as the path's user.
	c := dial(t, in, "/ws/carol?token=ws-key-0123456789abcdef")
	c.send(map[string]string{"text": "hi"})
	if r, _ := c.reply(); r.UserID != "carol" {
		t.Errorf("ws key user = %q", r.UserID)
	}
	// A JWT names its own user; the path is ignored.
	tok := in.Login("user", apptest.UserPassword)
	var users []user
	in.Do("GET", "/users", nil, "Authorization", "Bearer "+testAPIKey).JSON(t, &users)
	c = dial(t, in, "/ws/somebody-else?token="+tok)
	c.send(map[string]string{"text": "hi"})
	if r, _ := c.reply(); r.UserID != users[1].ID {
		t.Errorf("JWT socket user = %q, want the token's user %q", r.UserID, users[1].ID)
	}
}

func TestMessageOverHTTP(t *testing.T) {
	apptest.EachBackend(t, func(t *testing.T, backend apptest.Backend) {
		in := backend.Start(t)
		sock := dial(t, in, "/ws/dora")
		r := in.Do("POST", "/message", map[string]any{"text": "I live in Lisbon", "client": "test"}, "user_id", "dora")
		if r.Status != 200 {
			t.Fatalf("POST /message: %d %s", r.Status, r.Body)
		}
		var f frame
		r.JSON(t, &f)
		if f.Type != "chat" || f.UserID != "dora" || f.Text == "" {
			t.Errorf("reply = %+v", f)
		}
		// Tokens and the reply reach dora's open socket too.
		if got, tokens := sock.reply(); len(tokens) == 0 || got.Text != f.Text {
			t.Errorf("socket saw %d tokens and %q", len(tokens), got.Text)
		}
		for _, bad := range []any{map[string]any{}, map[string]any{"text": 3}, map[string]any{"text": ""}, "nope"} {
			if r := in.Do("POST", "/message", bad); r.Status < 400 || r.Status >= 500 {
				t.Errorf("bad message %v: %d", bad, r.Status)
			}
		}
		// U+0000 is refused in words on every engine (PostgreSQL keeps no
		// NUL in text), and nothing of it is kept.
		r = in.Do("POST", "/message", map[string]any{"text": "nul\u0000here"}, "user_id", "dora")
		if r.Status != 422 || !strings.Contains(r.Detail(), "NUL character") {
			t.Errorf("a message with NUL: %d %s, want 422 naming the NUL", r.Status, r.Body)
		}
		if got := historyTexts(t, in, "dora"); len(got) != 2 {
			t.Errorf("dora's history after the refused message: %q", got)
		}
	})
}

func TestRestartKeepsHistoryAndMemory(t *testing.T) {
	apptest.EachBackend(t, func(t *testing.T, backend apptest.Backend) {
		dir := t.TempDir()
		first := apptest.StartWith(t, backend.Config(t, dir))
		first.Do("POST", "/message", map[string]any{"text": "My cat is called Dinah"}, "user_id", "alice")
		first.Close()

		second := apptest.StartWith(t, backend.Config(t, dir))
		var h struct {
			History []struct{ Who, Text string } `json:"history"`
		}
		second.Do("GET", "/memory/conversation_history", nil, "user_id", "alice").JSON(t, &h)
		if len(h.History) != 2 || h.History[0].Text != "My cat is called Dinah" {
			t.Fatalf("history after restart = %+v", h.History)
		}
		var f frame
		second.Do("POST", "/message", map[string]any{"text": "What is my cat called?"}, "user_id", "alice").JSON(t, &f)
		if len(f.Why.Memory.Episodic) == 0 || !strings.Contains(f.Text, "Dinah") {
			t.Errorf("memory after restart: %+v", f)
		}
	})
}

func TestIdleSessionsComeBackIntact(t *testing.T) {
	in := apptest.Start(t)
	in.Do("POST", "/message", map[string]any{"text": "first"}, "user_id", "eve")
	if n := in.Sessions.EvictIdle(time.Now().Add(time.Hour)); n == 0 {
		t.Fatal("nothing evicted")
	}
	if in.Sessions.Live() != 0 {
		t.Fatalf("%d sessions live after eviction", in.Sessions.Live())
	}
	in.Do("POST", "/message", map[string]any{"text": "second"}, "user_id", "eve")
	var h struct {
		History []struct{ Text string } `json:"history"`
	}
	in.Do("GET", "/memory/conversation_history", nil, "user_id", "eve").JSON(t, &h)
	if len(h.History) != 4 || h.History[0].Text != "first" || h.History[2].Text != "second" {
		t.Errorf("history across eviction = %+v", h.History)
	}
}

// TestRevokedPermissionStopsAnOpenSocket: permissions are asked again for
// every message, so a socket opened before a revocation cannot chat on.
func TestRevokedPermissionStopsAnOpenSocket(t *testing.T) {
	in := authRequired(t)
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	var u user
	in.Do("POST", "/users", map[string]any{"username": "dinah", "password": "dinah-pw",
		"permissions": map[string][]string{"CONVERSATION": {"WRITE"}}}, admin...).JSON(t, &u)
	c := dial(t, in, "/ws?token="+in.Login("dinah", "dinah-pw"))
	c.send(map[string]string{"text": "meow"})
	c.reply()
	in.Do("PUT", "/users/"+u.ID, map[string]any{"permissions": map[string][]string{}}, admin...)
	c.send(map[string]string{"text": "meow again"})
	if f := c.next(); f.Type != "error" || f.Name != "PermissionDenied" {
		t.Errorf("after the revocation: %+v, want a PermissionDenied error frame", f)
	}
}

// TestAnOpenSocketCostsThreeGoroutines: what holding a chatting user's
// socket open costs the server in goroutines, which each hold a stack and
// are scanned by every garbage collection: the connection's reader, the
// socket's writer and the worker that answers its messages in order.
// Watching for the shutdown costs none (context.AfterFunc).
func TestAnOpenSocketCostsThreeGoroutines(t *testing.T) {
	in := apptest.Start(t)
	settle := func() int {
		// Goroutines of earlier requests end a moment after their answers.
		n := runtime.NumGoroutine()
		for range 50 {
			time.Sleep(20 * time.Millisecond)
			m := runtime.NumGoroutine()
			if m == n {
				return n
			}
			n = m
		}
		return n
	}
	open := func(from, to int) {
		for i := from; i < to; i++ {
			c := dial(t, in, fmt.Sprintf("/ws/user%d", i))
			c.send(map[string]string{"text": "hello"})
			c.reply()
		}
	}
	// The first sockets also start what every socket shares (the
	// database's connections, the session registry's sweeper): counted
	// from the second batch on, what one more socket costs.
	open(0, 10)
	const sockets = 20
	before := settle()
	open(10, 10+sockets)
	added := settle() - before
	// The test's own client sockets run no goroutine between reads.
	// Short-lived goroutines elsewhere (a transaction's or a query's
	// watcher) may still be counted, so the test fails only from one
	// more per socket on.
	if added >= 4*sockets {
		t.Errorf("%d goroutines for %d more open sockets (%.2f each), want at most 3 each", added, sockets, float64(added)/sockets)
	}
	t.Logf("%.2f goroutines per open socket", float64(added)/sockets)
}
