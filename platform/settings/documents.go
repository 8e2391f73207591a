package settings

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/grin-ai/grin/platform/redact"
)

// ErrNoDocument is returned for a document id that names none; package api
// maps it to 404.
var ErrNoDocument = errors.New("no setting with this id")

// documentPrefix keys free documents in the settings table, apart from the
// registries' rows ("llm", "llm:LLMOpenAIConfig"…).
const documentPrefix = "document:"

// Document is one of the Cat's free settings (/settings): a named JSON
// value with a category, kept for clients that store their own
// configuration in the Cat.
type Document struct {
	ID        string          `json:"setting_id"`
	Name      string          `json:"name"`
	Value     json.RawMessage `json:"value"`
	Category  string          `json:"category"`
	UpdatedAt int64           `json:"updated_at"`
}

// Documents keeps the Cat's free settings in the settings table.
//
// Reads are shown through redact.JSON: the Cat's /settings shows
// everything in its database, password hashes included; grin shows no
// secret, whoever asks.
//
// Notes: safe for concurrent use.
type Documents struct{ db *sql.DB }

// NewDocuments returns the free settings kept in db.
func NewDocuments(db *sql.DB) *Documents { return &Documents{db: db} }

// List returns the documents whose name contains search, by name.
func (d *Documents) List(ctx context.Context, search string) ([]Document, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT value FROM settings WHERE name LIKE $1 ESCAPE '\'`, likePrefix(documentPrefix)+"%")
	if err != nil {
		return nil, fmt.Errorf("list settings: %w", err)
	}
	defer rows.Close()
	out := []Document{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("list settings: %w", err)
		}
		var doc Document
		if err := json.Unmarshal([]byte(v), &doc); err != nil {
			return nil, fmt.Errorf("list settings: %w", err)
		}
		if strings.Contains(doc.Name, search) {
			out = append(out, doc)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list settings: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Get returns one document.
func (d *Documents) Get(ctx context.Context, id string) (Document, error) {
	var v string
	err := d.db.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = $1`, documentPrefix+id).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return Document{}, fmt.Errorf("%w: %s", ErrNoDocument, id)
	}
	if err != nil {
		return Document{}, fmt.Errorf("read setting: %w", err)
	}
	var doc Document
	if err := json.Unmarshal([]byte(v), &doc); err != nil {
		return Document{}, fmt.Errorf("read setting: %w", err)
	}
	return doc, nil
}

// Create stores a new document under a new id.
func (d *Documents) Create(ctx context.Context, name string, value json.RawMessage, category string) (Document, error) {
	doc := Document{ID: uuid.NewString(), Name: name, Value: value, Category: category, UpdatedAt: time.Now().Unix()}
	return doc, d.write(ctx, doc, `INSERT INTO settings (name, value) VALUES ($1, $2)`)
}

// Update replaces a document's name, value and category. A value sent as
// Masked, at any depth, keeps the stored value at the same place, so a
// client can save what it read without losing the secrets it was not
// shown.
func (d *Documents) Update(ctx context.Context, id, name string, value json.RawMessage, category string) (Document, error) {
	old, err := d.Get(ctx, id)
	if err != nil {
		return Document{}, err
	}
	var nv, ov any
	if json.Unmarshal(value, &nv) == nil && json.Unmarshal(old.Value, &ov) == nil {
		if b, err := json.Marshal(unmask(nv, ov)); err == nil {
			value = b
		}
	}
	doc := Document{ID: id, Name: name, Value: value, Category: category, UpdatedAt: time.Now().Unix()}
	return doc, d.write(ctx, doc, `UPDATE settings SET value = $2 WHERE name = $1`)
}

// unmask puts back the stored value wherever the new one is Masked, or is
// the stored string as redact.Text shows it:
// objects field by field, arrays item by item, at any depth.
func unmask(nv, ov any) any {
	switch n := nv.(type) {
	case string:
		if n == Masked && ov != nil {
			return ov
		}
		// A string shown with its credentials masked (a URL's password)
		// and sent back unchanged keeps them.
		if o, ok := ov.(string); ok && n != o && n == redact.Text(o) {
			return ov
		}
	case map[string]any:
		o, _ := ov.(map[string]any)
		for k, v := range n {
			n[k] = unmask(v, o[k])
		}
	case []any:
		o, _ := ov.([]any)
		for i, v := range n {
			var prev any
			if i < len(o) {
				prev = o[i]
			}
			n[i] = unmask(v, prev)
		}
	}
	return nv
}

// Delete removes a document.
func (d *Documents) Delete(ctx context.Context, id string) error {
	res, err := d.db.ExecContext(ctx, `DELETE FROM settings WHERE name = $1`, documentPrefix+id)
	if err != nil {
		return fmt.Errorf("delete setting: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %s", ErrNoDocument, id)
	}
	return nil
}

func (d *Documents) write(ctx context.Context, doc Document, query string) error {
	b, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("save setting: %w", err)
	}
	if _, err := d.db.ExecContext(ctx, query, documentPrefix+doc.ID, string(b)); err != nil {
		return fmt.Errorf("save setting: %w", err)
	}
	return nil
}

// likePrefix escapes a LIKE pattern's wildcards in a literal prefix.
func likePrefix(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}
