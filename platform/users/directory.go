package users

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/grin-ai/grin/policies"
)

// Directory lists internal users straight from the database, for the
// policy's lockout check (policies.WithUsers). It exists apart from Store
// because the policy is opened before the Store, which needs it.
//
// Notes: safe for concurrent use.
type Directory struct{ db *sql.DB }

// NewDirectory returns the directory of the users stored in db.
func NewDirectory(db *sql.DB) Directory { return Directory{db: db} }

// directoryPage is how many users EachUser reads at a time; rows are
// closed before fn runs, as the one database connection requires.
const directoryPage = 1000

// EachUser calls fn with every user's id and username in creation order
// until fn returns false.
func (d Directory) EachUser(ctx context.Context, fn func(id, username string) bool) error {
	type row struct {
		seq          int64
		id, username string
	}
	after := int64(-1)
	for {
		rows, err := d.db.QueryContext(ctx, `SELECT seq, id, username FROM users WHERE seq > $1 ORDER BY seq LIMIT $2`, after, directoryPage)
		if err != nil {
			return fmt.Errorf("list users: %w", err)
		}
		var page []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.seq, &r.id, &r.username); err != nil {
				rows.Close()
				return fmt.Errorf("list users: %w", err)
			}
			page = append(page, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("list users: %w", err)
		}
		for _, r := range page {
			if !fn(r.id, r.username) {
				return nil
			}
		}
		if len(page) < directoryPage {
			return nil
		}
		after = page[len(page)-1].seq
	}
}

// Username returns the username of the user id, and whether there is one.
func (d Directory) Username(ctx context.Context, id string) (string, bool, error) {
	var name string
	err := d.db.QueryRowContext(ctx, `SELECT username FROM users WHERE id = $1`, id).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("look up user %q: %w", id, err)
	}
	return name, true, nil
}

// UserID returns the id of the user called username, and whether there is
// one; the name is looked up in its normalized form (NormalizeUsername).
func (d Directory) UserID(ctx context.Context, username string) (string, bool, error) {
	var id string
	err := d.db.QueryRowContext(ctx, `SELECT id FROM users WHERE username = $1`, NormalizeUsername(username)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("look up user %q: %w", username, err)
	}
	return id, true, nil
}

var _ policies.Directory = Directory{}
