package api_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/grin-ai/grin/platform/app/apptest"
)

// refusal reads from a socket the server should close at once, and
// returns the close error (nil if a frame arrived instead).
func refusal(t *testing.T, c *wsClient) *websocket.CloseError {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, _, err := c.conn.Read(ctx)
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return &ce
	}
	if err != nil {
		t.Fatalf("read: %v, want a close frame", err)
	}
	return nil
}

// TestSocketsPerUserAreCapped: with GRIN_MAX_SOCKETS_PER_USER=3 a user's
// fourth socket is closed with 1013 and a reason a person understands,
// while the first three keep chatting and another user is not affected;
// closing one frees a place.
func TestSocketsPerUserAreCapped(t *testing.T) {
	cfg := apptest.Config(t.TempDir())
	cfg.MaxSocketsPerUser = 3
	in := apptest.StartWith(t, cfg)
	open := []*wsClient{dial(t, in, "/ws/alice"), dial(t, in, "/ws/alice"), dial(t, in, "/ws/alice")}

	extra := dial(t, in, "/ws/alice")
	ce := refusal(t, extra)
	if ce == nil || ce.Code != websocket.StatusTryAgainLater || !strings.Contains(ce.Reason, "3 sockets open") || !strings.Contains(ce.Reason, "close one") {
		t.Fatalf("fourth socket: %v, want close 1013 saying 3 are open and to close one", ce)
	}

	// The three still work: a reply reaches each of them.
	open[0].send(map[string]string{"text": "The Cheshire Cat grins"})
	for i, c := range open {
		if r, _ := c.reply(); r.UserID != "alice" {
			t.Errorf("socket %d: reply for %q", i, r.UserID)
		}
	}
	// Another user has places of their own.
	bob := dial(t, in, "/ws/bob")
	bob.send(map[string]string{"text": "hello"})
	if r, _ := bob.reply(); r.UserID != "bob" {
		t.Errorf("bob's reply for %q", r.UserID)
	}

	// Closing one frees a place once the server has seen the close.
	if err := open[2].conn.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("close: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		again := dial(t, in, "/ws/alice")
		again.send(map[string]string{"text": "Is there room now?"})
		ce := refusal(t, again)
		if ce == nil {
			break // a frame of the reply arrived: the socket was admitted
		}
		if ce.Code != websocket.StatusTryAgainLater {
			t.Fatalf("after closing one: %v", ce)
		}
		if time.Now().After(deadline) {
			t.Fatal("a place was not freed by closing a socket")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
