package session

import (
	"context"
	"testing"

	"github.com/grin-ai/grin/platform/database"
	"github.com/grin-ai/grin/platform/database/databasetest"
)

// TestHistoryKnowsWhoHasNone: on SQLite the history knows which users have
// one, read at open and kept in step with every append and deletion, so a
// new user's first message reads nothing; users with a history are read
// as before. The read connections are closed once the set is in: any read
// would then fail.
func TestHistoryKnowsWhoHasNone(t *testing.T) {
	ctx := context.Background()
	dir, db := databasetest.SQLite(t)
	commit := database.NewCommitter(db)
	first, err := NewHistory(ctx, commit, db)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Append(ctx, "alice", Turn{Who: Human, Text: "hello", When: 1}); err != nil {
		t.Fatal(err)
	}
	first.Close()

	reads, err := database.OpenReads(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHistory(ctx, commit, reads)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.known.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := h.Recent(ctx, "alice", 0); err != nil || len(got) != 1 || got[0].Text != "hello" {
		t.Fatalf("alice's history, read: %+v, %v", got, err)
	}
	reads.Close()

	steps := []struct {
		name, user string
		do         func() error
		want       int // turns, or -1: a read is needed (and fails)
	}{
		{"a user never seen", "newcomer", nil, 0},
		{"a user with a history from before the start", "alice", nil, -1},
		{"the newcomer's first turn", "newcomer", func() error {
			return h.Append(ctx, "newcomer", Turn{Who: Human, Text: "hi", When: 2})
		}, -1},
		{"the newcomer's history deleted", "newcomer", func() error { return h.Delete(ctx, "newcomer") }, 0},
		{"alice's history deleted", "alice", func() error { return h.Delete(ctx, "alice") }, 0},
	}
	for _, st := range steps {
		if st.do != nil {
			if err := st.do(); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
		}
		got, err := h.Recent(ctx, st.user, 0)
		switch {
		case st.want < 0 && err == nil:
			t.Errorf("%s: answered %+v without reading the database", st.name, got)
		case st.want >= 0 && (err != nil || len(got) != st.want):
			t.Errorf("%s: %+v, %v; want %d turns without reading", st.name, got, err, st.want)
		}
	}
}
