package api_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/grin-ai/grin/platform/app/apptest"
	"github.com/grin-ai/grin/platform/database"
)

// stream reads a socket's frames in the background, so a test can wait
// for one with a time limit without closing the socket (a read whose
// context ends closes it).
type stream struct {
	t      *testing.T
	frames chan frame
}

func streamOf(c *wsClient) *stream {
	s := &stream{t: c.t, frames: make(chan frame, 256)}
	go func() {
		defer close(s.frames)
		for {
			_, b, err := c.conn.Read(context.Background())
			if err != nil {
				return
			}
			var f frame
			json.Unmarshal(b, &f)
			s.frames <- f
		}
	}()
	return s
}

func (s *stream) next() frame {
	s.t.Helper()
	select {
	case f, ok := <-s.frames:
		if !ok {
			s.t.Fatal("the socket closed")
		}
		return f
	case <-time.After(20 * time.Second):
		s.t.Fatal("no frame in 20 s")
	}
	return frame{}
}

// within returns the next frame if one comes in a short while: used only
// to show the absence of a frame that, if sent, would already be queued.
func (s *stream) within() (frame, bool) {
	select {
	case f, ok := <-s.frames:
		return f, ok
	case <-time.After(300 * time.Millisecond):
		return frame{}, false
	}
}

// readUntilEnd reads frames up to the turn's end: its chat frame, or its
// error frame.
func (s *stream) readUntilEnd() frame {
	s.t.Helper()
	for {
		if f := s.next(); f.Type == "chat" || f.Type == "error" {
			return f
		}
	}
}

// firstToken reads until the turn's first streamed token: the turn is
// past recall and the model, on its way to being recorded.
func (s *stream) firstToken() {
	s.t.Helper()
	for {
		switch f := s.next(); f.Type {
		case "chat_token":
			return
		case "chat", "error":
			s.t.Fatalf("the turn ended before streaming: %+v", f)
		}
	}
}

func historyTexts(t *testing.T, in *apptest.Instance, user string) []string {
	t.Helper()
	var h struct {
		History []struct{ Who, Text string } `json:"history"`
	}
	r := in.Do("GET", "/memory/conversation_history", nil, "user_id", user)
	if r.Status != 200 {
		t.Fatalf("history of %s: %d %s", user, r.Status, r.Body)
	}
	r.JSON(t, &h)
	var out []string
	for _, turn := range h.History {
		out = append(out, turn.Who+": "+turn.Text)
	}
	return out
}

func episodicCount(t *testing.T, in *apptest.Instance, user string) int {
	t.Helper()
	var cs struct {
		Collections []struct {
			Name         string `json:"name"`
			VectorsCount int    `json:"vectors_count"`
		} `json:"collections"`
	}
	in.Do("GET", "/memory/collections", nil, "user_id", user).JSON(t, &cs)
	for _, c := range cs.Collections {
		if c.Name == "episodic" {
			return c.VectorsCount
		}
	}
	t.Fatalf("no episodic collection: %+v", cs)
	return 0
}

// TestTurnIsAnsweredOnlyOnceCommitted: a chat frame means the turn is in
// the database. While the database refuses writes (another process holds
// SQLite's write lock), turns stream their tokens but get no chat frame,
// and the conversation can still be read; once the lock goes they are
// committed and answered. A turn whose write fails gets an error frame and
// leaves nothing behind, neither its history nor its episodic memory,
// while the turns committed with it are kept.
func TestTurnIsAnsweredOnlyOnceCommitted(t *testing.T) {
	in := apptest.Start(t)
	// Another handle on the same database, as a second process would
	// have: it makes one message's write fail, and can hold the lock.
	other := apptest.OpenDatabase(t, in.Dir)
	refuse := []string{`CREATE TRIGGER refuse_turn BEFORE INSERT ON conversation_history
		WHEN NEW.text = 'this one fails' BEGIN SELECT RAISE(ABORT, 'the disk refused it'); END`}
	// What holds the writes back: SQLite's one write lock; on PostgreSQL a
	// lock on the history's table that lets reads through.
	lockWrites := "BEGIN IMMEDIATE"
	if apptest.Engine() == database.Postgres {
		refuse = []string{`CREATE FUNCTION refuse_turn() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN IF NEW.text = 'this one fails' THEN RAISE EXCEPTION 'the disk refused it'; END IF; RETURN NEW; END $$`,
			`CREATE TRIGGER refuse_turn BEFORE INSERT ON conversation_history FOR EACH ROW EXECUTE FUNCTION refuse_turn()`}
		lockWrites = "BEGIN; LOCK TABLE conversation_history IN EXCLUSIVE MODE"
	}
	for _, q := range refuse {
		if _, err := other.Exec(q); err != nil {
			t.Fatal(err)
		}
	}

	aliceWS, bobWS := dial(t, in, "/ws/alice"), dial(t, in, "/ws/bob")
	alice, bob := streamOf(aliceWS), streamOf(bobWS)
	bobWS.send(map[string]string{"text": "my first words"})
	if f := bob.readUntilEnd(); f.Type != "chat" {
		t.Fatalf("bob's first turn: %+v", f)
	}

	ctx := context.Background()
	lock, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(ctx, lockWrites); err != nil {
		t.Fatal(err)
	}
	locked := true
	defer func() {
		if locked {
			lock.ExecContext(ctx, "ROLLBACK")
		}
	}()
	aliceWS.send(map[string]string{"text": "this one fails"})
	bobWS.send(map[string]string{"text": "remember the white rabbit"})
	alice.firstToken()
	bob.firstToken()
	// Bob's turn waits for the lock: no chat frame for it...
	for {
		if f, ok := bob.within(); !ok {
			break
		} else if f.Type == "chat" || f.Type == "error" {
			t.Fatalf("bob's turn ended while the database was locked: %+v", f)
		}
	}
	// ...and the conversation is read beside the waiting write, without it.
	if got := historyTexts(t, in, "bob"); len(got) != 2 {
		t.Errorf("bob's history while his turn waits: %q, want only the first turn", got)
	}
	if _, err := lock.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	locked = false

	if f := bob.readUntilEnd(); f.Type != "chat" {
		t.Fatalf("bob's turn after the lock: %+v", f)
	}
	f := alice.readUntilEnd()
	if f.Type != "error" || !strings.Contains(f.Description, "could not be saved") {
		t.Fatalf("alice's refused turn: %+v, want an error frame saying it was not saved", f)
	}
	if strings.Contains(f.Description, "disk refused") {
		t.Errorf("the error frame quotes the database: %q", f.Description)
	}
	if got := historyTexts(t, in, "alice"); len(got) != 0 {
		t.Errorf("alice's history after a refused turn: %q", got)
	}
	if n := episodicCount(t, in, "alice"); n != 0 {
		t.Errorf("alice's refused message is in her episodic memory (%d points)", n)
	}
	want := []string{"Human: my first words", "AI: ", "Human: remember the white rabbit", "AI: "}
	got := historyTexts(t, in, "bob")
	if len(got) != len(want) {
		t.Fatalf("bob's history %q", got)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("bob's history %q, want %q in turn %d", got, want[i], i)
		}
	}
	if n := episodicCount(t, in, "bob"); n != 2 {
		t.Errorf("bob's episodic memory holds %d points, want 2", n)
	}
	// The refusal was alice's alone: she can go on.
	aliceWS.send(map[string]string{"text": "this one is fine"})
	if f := alice.readUntilEnd(); f.Type != "chat" {
		t.Errorf("alice after a refused turn: %+v", f)
	}
}
