package session_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/grin-ai/grin/platform/database"
	"github.com/grin-ai/grin/platform/database/databasetest"
	"github.com/grin-ai/grin/platform/session"
)

// TestHistory runs the conversation history's behaviour suite on SQLite
// and on PostgreSQL, written through the group committer as the chat path
// writes it: each case gets a new, empty database of the engine.
func TestHistory(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, h *session.History, commit *database.Committer)
	}{
		{"turns come back in order, the last n or all", testRecent},
		{"a turn is committed with its caller's other writes, or not at all", testAppendOp},
		{"users' conversations stay apart and are deleted apart", testApart},
		{"turns appended at once keep each user's order", testConcurrent},
		{"a long why is stored compressed on SQLite and read back whole", testPackedWhy},
	}
	databasetest.EachEngine(t, func(t *testing.T, _ database.Engine, open databasetest.Open) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				db := open(t)
				commit := database.NewCommitter(db)
				h, err := session.NewHistory(context.Background(), commit, db)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { h.Close() })
				c.run(t, h, commit)
			})
		}
	})
}

func texts(t *testing.T, h *session.History, user string, n int) string {
	t.Helper()
	turns, err := h.Recent(context.Background(), user, n)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, tr := range turns {
		out = append(out, tr.Text)
	}
	return fmt.Sprint(out)
}

func testRecent(t *testing.T, h *session.History, _ *database.Committer) {
	ctx := context.Background()
	if got := texts(t, h, "alice", 0); got != "[]" {
		t.Errorf("a new user's history: %s", got)
	}
	why := json.RawMessage(`{"input":"hi","memory":{"episodic":[]}}`)
	if err := h.Append(ctx, "alice", session.Turn{Who: session.Human, Text: "one", When: 1.5},
		session.Turn{Who: session.AI, Text: "two", When: 2.25, Why: why}); err != nil {
		t.Fatal(err)
	}
	if err := h.Append(ctx, "alice", session.Turn{Who: session.Human, Text: "three", When: 3}); err != nil {
		t.Fatal(err)
	}
	for n, want := range map[int]string{0: "[one two three]", -1: "[one two three]", 2: "[two three]", 1: "[three]", 10: "[one two three]"} {
		if got := texts(t, h, "alice", n); got != want {
			t.Errorf("last %d: %s, want %s", n, got, want)
		}
	}
	turns, _ := h.Recent(ctx, "alice", 0)
	if turns[1].Who != session.AI || turns[1].When != 2.25 || string(turns[1].Why) != string(why) || turns[0].Why != nil || turns[0].When != 1.5 {
		t.Errorf("turns read back: %+v", turns)
	}
	// The window is the same turns without their whys.
	window, err := h.Window(ctx, "alice", 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []session.Turn{{Who: session.AI, Text: "two", When: 2.25}, {Who: session.Human, Text: "three", When: 3}}
	if fmt.Sprint(window) != fmt.Sprint(want) {
		t.Errorf("window of 2: %+v, want %+v", window, want)
	}
}

// TestSessionWindowHoldsNoWhys: a live session keeps its recent turns for
// prompts without their whys, whether it recorded them or loaded them
// from the database, while the history keeps every why.
func TestSessionWindowHoldsNoWhys(t *testing.T) {
	ctx := context.Background()
	_, db := databasetest.SQLite(t)
	commit := database.NewCommitter(db)
	h, err := session.NewHistory(ctx, commit, db)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	why := json.RawMessage(`{"input":"hi","memory":{"episodic":[]}}`)
	reg := session.NewRegistry(h, 0, 0, nil)
	s, release, err := reg.Acquire(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	err = reg.Record(ctx, s, []session.Turn{{Who: session.Human, Text: "hi", When: 1}, {Who: session.AI, Text: "hello", When: 2, Why: why}})
	release()
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, recent []session.Turn) {
		t.Helper()
		if len(recent) != 2 || recent[0].Text != "hi" || recent[1].Text != "hello" || recent[1].Who != session.AI {
			t.Fatalf("%s: %+v", what, recent)
		}
		for _, tr := range recent {
			if tr.Why != nil {
				t.Errorf("%s holds a why: %s", what, tr.Why)
			}
		}
	}
	check("the window after recording", s.Recent)
	// Another process's registry loads the window from the database.
	s2, release2, err := session.NewRegistry(h, 0, 0, nil).Acquire(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	release2()
	check("the window loaded", s2.Recent)
	all, err := h.Recent(ctx, "alice", 0)
	if err != nil || len(all) != 2 || string(all[1].Why) != string(why) {
		t.Errorf("the history: %+v, %v; want the why kept", all, err)
	}
}

func testAppendOp(t *testing.T, h *session.History, commit *database.Committer) {
	ctx := context.Background()
	committed := false
	err := commit.Do(ctx, h.AppendOp("bob", session.Turn{Who: session.Human, Text: "kept"}),
		database.Op{Write: func(context.Context, *sql.Tx) error { return nil }, Committed: func() { committed = true }})
	if err != nil || !committed {
		t.Fatalf("%v, committed %v", err, committed)
	}
	failing := errors.New("the other write failed")
	err = commit.Do(ctx, h.AppendOp("bob", session.Turn{Who: session.Human, Text: "taken back"}),
		database.Op{Write: func(context.Context, *sql.Tx) error { return failing }})
	if !errors.Is(err, failing) {
		t.Errorf("a failing write: %v", err)
	}
	if got := texts(t, h, "bob", 0); got != "[kept]" {
		t.Errorf("after a failed group: %s", got)
	}
}

func testApart(t *testing.T, h *session.History, _ *database.Committer) {
	ctx := context.Background()
	for _, u := range []string{"alice", "bob", "alice"} {
		if err := h.Append(ctx, u, session.Turn{Who: session.Human, Text: "from " + u}); err != nil {
			t.Fatal(err)
		}
	}
	if a, b := texts(t, h, "alice", 0), texts(t, h, "bob", 0); a != "[from alice from alice]" || b != "[from bob]" {
		t.Errorf("alice %s, bob %s", a, b)
	}
	if err := h.Delete(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if a, b := texts(t, h, "alice", 0), texts(t, h, "bob", 0); a != "[]" || b != "[from bob]" {
		t.Errorf("after deleting alice: alice %s, bob %s", a, b)
	}
}

func testConcurrent(t *testing.T, h *session.History, _ *database.Committer) {
	ctx := context.Background()
	const users, turns = 8, 25
	var wg sync.WaitGroup
	for u := range users {
		wg.Go(func() {
			for i := range turns {
				if err := h.Append(ctx, fmt.Sprint("user-", u), session.Turn{Who: session.Human, Text: fmt.Sprint(i)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	want := make([]string, turns)
	for i := range want {
		want[i] = fmt.Sprint(i)
	}
	for u := range users {
		if got := texts(t, h, fmt.Sprint("user-", u), 0); got != fmt.Sprint(want) {
			t.Errorf("user-%d: %s", u, got)
		}
	}
}

func testPackedWhy(t *testing.T, h *session.History, commit *database.Committer) {
	ctx := context.Background()
	var b strings.Builder
	b.WriteString(`{"input":"and the rabbit?","model_interactions":[{"model_type":"llm","prompt":"`)
	for i := range 60 {
		fmt.Fprintf(&b, "- Human: message %d about the white rabbit\\n", i)
	}
	b.WriteString(`"}]}`)
	why := json.RawMessage(b.String())
	if err := h.Append(ctx, "carol", session.Turn{Who: session.Human, Text: "and the rabbit?"},
		session.Turn{Who: session.AI, Text: "it ran", Why: why}); err != nil {
		t.Fatal(err)
	}
	// A row as grin wrote it before whys were packed: JSON text.
	db := commit.DB()
	if _, err := db.Exec(`INSERT INTO conversation_history (user_id, seq, who, text, why, at) VALUES ('carol', 3, 'AI', 'older', $1, 3)`, string(why)); err != nil {
		t.Fatal(err)
	}
	turns, err := h.Recent(ctx, "carol", 0)
	if err != nil || len(turns) != 3 {
		t.Fatalf("%d turns, %v", len(turns), err)
	}
	for _, i := range []int{1, 2} {
		if string(turns[i].Why) != string(why) {
			t.Errorf("turn %d's why read back: %.80s…, want the %d bytes written", i+1, turns[i].Why, len(why))
		}
	}
	var stored int
	if err := db.QueryRow(`SELECT length(why) FROM conversation_history WHERE user_id = 'carol' AND seq = 2`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	switch database.EngineOf(db) {
	case database.SQLite:
		// What the database file holds: a quarter of the JSON or less.
		if stored*4 > len(why) {
			t.Errorf("a %d-byte why takes %d bytes on SQLite", len(why), stored)
		}
	default:
		// PostgreSQL keeps the text (and compresses it itself).
		if stored != len(why) {
			t.Errorf("a %d-byte why is %d characters on PostgreSQL", len(why), stored)
		}
	}
}

// TestSessionWindowSlides: after many exchanges the live window holds the
// last WindowTurns turns, in order, the same as a window loaded from the
// database.
func TestSessionWindowSlides(t *testing.T) {
	ctx := context.Background()
	_, db := databasetest.SQLite(t)
	h, err := session.NewHistory(ctx, database.NewCommitter(db), db)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	reg := session.NewRegistry(h, 0, 0, nil)
	s, release, err := reg.Acquire(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range session.WindowTurns + 7 {
		q, a := fmt.Sprintf("question %d", i), fmt.Sprintf("answer %d", i)
		if err := reg.Record(ctx, s, []session.Turn{{Who: session.Human, Text: q, When: 1}, {Who: session.AI, Text: a, When: 2}}); err != nil {
			t.Fatal(err)
		}
		want = append(want, q, a)
	}
	release()
	want = want[len(want)-session.WindowTurns:]
	texts := func(turns []session.Turn) []string {
		var out []string
		for _, tr := range turns {
			out = append(out, tr.Text)
		}
		return out
	}
	if got := texts(s.Recent); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the live window: %q, want %q", got, want)
	}
	s2, release2, err := session.NewRegistry(h, 0, 0, nil).Acquire(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	release2()
	if got := texts(s2.Recent); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the window loaded: %q, want %q", got, want)
	}
}
