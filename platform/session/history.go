package session

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/grin-ai/grin/platform/database"
)

// Who said a turn, as the Cat writes it.
const (
	Human = "Human"
	AI    = "AI"
)

// Turn is one message of a conversation.
type Turn struct {
	Who  string          `json:"who"`
	Text string          `json:"text"`
	When float64         `json:"when" doc:"Unix seconds."`
	Why  json.RawMessage `json:"why,omitempty"`
}

// History keeps every user's conversation in grin's database. Writes go
// through the database's single writer, which commits many users' turns
// together; reads go to the read-only connections. Statements are
// prepared once.
//
// Notes: safe for concurrent use. Close releases the prepared statements.
type History struct {
	commit *database.Committer
	append *sql.Stmt // on the writing connection, used within its transactions
	remove *sql.Stmt
	recent *sql.Stmt // on the read-only connections
	window *sql.Stmt // recent's, without the whys
	users  *sql.Stmt
	// known is the set of users with a history, on SQLite only, so that a
	// new user's first message reads nothing (nil on PostgreSQL, whose
	// replicas write each other's users).
	known *database.KnownSet
	// pack is set on SQLite, where large whys are stored compressed
	// (database.Pack); PostgreSQL compresses large values itself.
	pack bool
}

// NewHistory returns the history store: writes through commit, reads on
// reads (the writing handle itself will do, e.g. in tests).
func NewHistory(ctx context.Context, commit *database.Committer, reads *sql.DB) (*History, error) {
	h := &History{commit: commit}
	var err error
	// The next number is the user's last plus one, read in the statement
	// that writes it: turns of one user keep their order within a group
	// commit too. A scalar subquery in VALUES, not INSERT … SELECT: SQLite
	// copies the rows of a SELECT from the table being written into a
	// temporary table first, on every insert.
	if h.append, err = commit.DB().PrepareContext(ctx, `INSERT INTO conversation_history (user_id, seq, who, text, why, at)
		VALUES ($1, (SELECT coalesce(max(seq), 0) + 1 FROM conversation_history WHERE user_id = $1), $2, $3, $4, CAST($5 AS DOUBLE PRECISION))`); err != nil {
		return nil, fmt.Errorf("prepare the history: %w", err)
	}
	if h.remove, err = commit.DB().PrepareContext(ctx, `DELETE FROM conversation_history WHERE user_id = $1`); err != nil {
		h.Close()
		return nil, fmt.Errorf("prepare the history: %w", err)
	}
	// A user's last $2 turns, oldest first, with these columns.
	lastTurns := func(cols string) string {
		return `SELECT ` + cols + ` FROM (
		SELECT seq, ` + cols + ` FROM conversation_history WHERE user_id = $1 ORDER BY seq DESC LIMIT $2
	) AS last ORDER BY seq`
	}
	if h.recent, err = reads.PrepareContext(ctx, lastTurns("who, text, at, why")); err != nil {
		h.Close()
		return nil, fmt.Errorf("prepare the history: %w", err)
	}
	if h.window, err = reads.PrepareContext(ctx, lastTurns("who, text, at")); err != nil {
		h.Close()
		return nil, fmt.Errorf("prepare the history: %w", err)
	}
	if database.EngineOf(commit.DB()) == database.SQLite {
		h.pack = true
		// A skip scan along the (user_id, seq) key: one index lookup per
		// user, however long each one's history.
		if h.users, err = reads.PrepareContext(ctx, `WITH RECURSIVE u(x) AS (
				SELECT min(user_id) FROM conversation_history
				UNION ALL
				SELECT (SELECT min(user_id) FROM conversation_history WHERE user_id > x) FROM u WHERE x IS NOT NULL)
			SELECT x FROM u WHERE x IS NOT NULL`); err != nil {
			h.Close()
			return nil, fmt.Errorf("prepare the history: %w", err)
		}
		h.known = database.LoadKnownSet(database.KeysOf(h.users))
	}
	return h, nil
}

// Close releases the prepared statements.
func (h *History) Close() error {
	if h.known != nil {
		h.known.Close()
	}
	var errs []error
	for _, s := range []*sql.Stmt{h.append, h.remove, h.recent, h.window, h.users} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
}

// AppendOp is the write that adds turns at the end of a user's
// conversation, for a caller that commits it together with other writes
// of its own (a chat turn's episodic memory).
func (h *History) AppendOp(userID string, turns ...Turn) database.Op {
	var committed func()
	if h.known != nil && len(turns) > 0 {
		committed = func() { h.known.Set(userID, true) }
	}
	// The whys are made ready here, in the caller's goroutine: packing
	// them inside Write would hold up the single writer, and every user
	// whose turn shares its group.
	whys := make([]any, len(turns))
	for i, t := range turns {
		switch {
		case len(t.Why) == 0:
		case h.pack:
			whys[i] = database.Pack(t.Why)
		default:
			whys[i] = string(t.Why)
		}
	}
	return database.Op{Committed: committed, Write: func(ctx context.Context, tx *sql.Tx) error {
		stmt := tx.StmtContext(ctx, h.append)
		for i, t := range turns {
			if _, err := stmt.ExecContext(ctx, userID, t.Who, t.Text, whys[i], t.When); err != nil {
				return fmt.Errorf("append history: %w", err)
			}
		}
		return nil
	}}
}

// Append adds turns at the end of a user's conversation and returns once
// they are committed.
func (h *History) Append(ctx context.Context, userID string, turns ...Turn) error {
	return h.commit.Do(ctx, h.AppendOp(userID, turns...))
}

// Recent returns a user's last n turns, oldest first (all when n <= 0).
func (h *History) Recent(ctx context.Context, userID string, n int) ([]Turn, error) {
	return h.read(ctx, h.recent, true, userID, n)
}

// Window is Recent without the whys: what a session keeps for prompts,
// which need only who said what. A why holds the turn's whole prompt
// (kilobytes by a user's fifth message), so a session holding them held
// ten times what its prompts use, and loading one unpacked them all.
func (h *History) Window(ctx context.Context, userID string, n int) ([]Turn, error) {
	return h.read(ctx, h.window, false, userID, n)
}

// read runs recent (withWhy) or window: who, text and at, then the why.
func (h *History) read(ctx context.Context, stmt *sql.Stmt, withWhy bool, userID string, n int) ([]Turn, error) {
	if h.known != nil && h.known.Absent(userID) {
		return []Turn{}, nil
	}
	limit := int64(n)
	if limit <= 0 {
		limit = math.MaxInt64 // PostgreSQL refuses SQLite's -1
	}
	rows, err := stmt.QueryContext(ctx, userID, limit)
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	defer rows.Close()
	var t Turn
	var why any
	dest := []any{&t.Who, &t.Text, &t.When}
	if withWhy {
		dest = append(dest, &why)
	}
	out := []Turn{}
	for rows.Next() {
		t, why = Turn{}, nil
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("read history: %w", err)
		}
		b, err := database.Unpack(why)
		if err != nil {
			return nil, fmt.Errorf("read the history of %s: %w", userID, err)
		}
		if b != nil {
			t.Why = json.RawMessage(b)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Delete erases a user's conversation.
func (h *History) Delete(ctx context.Context, userID string) error {
	var committed func()
	if h.known != nil {
		committed = func() { h.known.Set(userID, false) }
	}
	err := h.commit.Do(ctx, database.Op{Committed: committed, Write: func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.StmtContext(ctx, h.remove).ExecContext(ctx, userID)
		return err
	}})
	if err != nil {
		return fmt.Errorf("delete history: %w", err)
	}
	return nil
}
