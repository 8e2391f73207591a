package session

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
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

// History keeps every user's conversation in grin's database.
//
// Notes: safe for concurrent use.
type History struct{ db *sql.DB }

// NewHistory returns the history store.
func NewHistory(db *sql.DB) *History { return &History{db: db} }

// Append adds turns at the end of a user's conversation.
func (h *History) Append(ctx context.Context, userID string, turns ...Turn) error {
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("append history: %w", err)
	}
	defer tx.Rollback()
	var next int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) + 1 FROM conversation_history WHERE user_id = ?`, userID).Scan(&next); err != nil {
		return fmt.Errorf("append history: %w", err)
	}
	for i, t := range turns {
		var why any
		if len(t.Why) > 0 {
			why = string(t.Why)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO conversation_history (user_id, seq, who, text, why, at) VALUES (?, ?, ?, ?, ?, ?)`,
			userID, next+int64(i), t.Who, t.Text, why, t.When); err != nil {
			return fmt.Errorf("append history: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("append history: %w", err)
	}
	return nil
}

// Recent returns a user's last n turns, oldest first (all when n <= 0).
func (h *History) Recent(ctx context.Context, userID string, n int) ([]Turn, error) {
	limit := n
	if limit <= 0 {
		limit = -1
	}
	rows, err := h.db.QueryContext(ctx, `SELECT who, text, why, at FROM (
		SELECT seq, who, text, why, at FROM conversation_history WHERE user_id = ? ORDER BY seq DESC LIMIT ?
	) ORDER BY seq`, userID, limit)
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	defer rows.Close()
	out := []Turn{}
	for rows.Next() {
		var t Turn
		var why sql.NullString
		if err := rows.Scan(&t.Who, &t.Text, &why, &t.When); err != nil {
			return nil, fmt.Errorf("read history: %w", err)
		}
		if why.Valid {
			t.Why = json.RawMessage(why.String)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Delete erases a user's conversation.
func (h *History) Delete(ctx context.Context, userID string) error {
	if _, err := h.db.ExecContext(ctx, `DELETE FROM conversation_history WHERE user_id = ?`, userID); err != nil {
		return fmt.Errorf("delete history: %w", err)
	}
	return nil
}
