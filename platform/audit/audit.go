// Package audit keeps grin's audit log: who changed users, permissions,
// policies, plugins and settings, who logged in or failed to, and whose
// tokens were revoked; when, from which address, what the thing was before
// and after, and how it ended.
//
// The log is append-only. The store has no way to change or delete an
// entry, only to add one and to prune those older than the retention, and
// the database's triggers refuse any other change, whoever asks. Every
// value is masked (package redact) as it is written, so no caller can
// leave a secret in the log by forgetting to.
package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/grin-ai/grin/platform/redact"
)

// ActorKind says what kind of caller made a change.
type ActorKind string

// Kinds of actors.
const (
	// ActorUser is an internal user (a token grin issued), or at a login
	// the username tried.
	ActorUser ActorKind = "user"
	// ActorAPIKey is GRIN_API_KEY, acting as the user_id header's user.
	ActorAPIKey ActorKind = "api_key"
	// ActorWSKey is GRIN_API_KEY_WS.
	ActorWSKey ActorKind = "ws_key"
	// ActorAnonymous is a shadow user while authentication is off.
	ActorAnonymous ActorKind = "anonymous"
	// ActorHandler is a user a custom auth handler vouched for.
	ActorHandler ActorKind = "handler"
	// ActorPlugin is a plugin acting through a host capability.
	ActorPlugin ActorKind = "plugin"
	// ActorFile is whoever edited the policy files in the data directory:
	// grin cannot tell who.
	ActorFile ActorKind = "file"
	// ActorUnknown made a request whose credentials were refused.
	ActorUnknown ActorKind = "unknown"
)

// Actor is who made a change.
type Actor struct {
	Kind ActorKind `json:"kind"`
	// ID is the user's id (for a key or a shadow user, the id it acted
	// as; for a plugin, its id).
	ID string `json:"id,omitempty"`
	// Name is the username, or the id.
	Name string `json:"name,omitempty"`
}

// Outcome says how a change ended.
type Outcome string

// Outcomes.
const (
	Success Outcome = "success"
	// Refused: grin said no (a permission, a check, bad input, a wrong
	// password); nothing changed.
	Refused Outcome = "refused"
	// Failed: grin tried and failed (its own error).
	Failed Outcome = "failed"
)

// Actions recorded.
const (
	Login        = "login"
	TokensRevoke = "tokens.revoke"
	UserCreate   = "user.create"
	UserUpdate   = "user.update"
	UserDelete   = "user.delete"
	PolicyUpdate = "policy.update"
	PolicyFile   = "policy.file"
	// PolicyRuleAdd … PolicyRestore are the single changes of the policy
	// beside a whole PUT: one rule, one role member, a version put back.
	PolicyRuleAdd    = "policy.rule.add"
	PolicyRuleRemove = "policy.rule.remove"
	RoleMemberAdd    = "role.member.add"
	RoleMemberRemove = "role.member.remove"
	PolicyRestore    = "policy.restore"
	PluginInstall    = "plugin.install"
	PluginToggle     = "plugin.toggle"
	PluginDelete     = "plugin.delete"
	PluginSettings   = "plugin.settings"
	PluginIsolation  = "plugin.isolation"
	SettingCreate    = "setting.create"
	SettingUpdate    = "setting.update"
	SettingDelete    = "setting.delete"
	// LLMUpdate, EmbedderUpdate and AuthHandlerUpdate select and configure
	// a component (PUT /llm/settings/{name} and the like).
	LLMUpdate         = "llm.update"
	EmbedderUpdate    = "embedder.update"
	AuthHandlerUpdate = "auth_handler.update"
)

// Entry is one line of the audit log.
type Entry struct {
	ID      int64     `json:"id"`
	Time    time.Time `json:"time"`
	Actor   Actor     `json:"actor"`
	Address string    `json:"address,omitempty"`
	Action  string    `json:"action"`
	Target  string    `json:"target,omitempty"`
	// Before and After are the thing changed, as JSON, secrets masked;
	// absent where there was nothing (before a creation, after a
	// deletion) or nothing to show (a login).
	Before  json.RawMessage `json:"before,omitempty"`
	After   json.RawMessage `json:"after,omitempty"`
	Outcome Outcome         `json:"outcome"`
	// Detail says why a change was refused or failed, or what else
	// happened ("the password changed").
	Detail string `json:"detail,omitempty"`
}

// JSON is v as an entry's Before or After: nil for nil, and otherwise its
// JSON (secrets are masked when the entry is written).
func JSON(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	if raw, ok := v.(json.RawMessage); ok {
		return raw
	}
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(fmt.Sprintf("(not recordable: %v)", err))
	}
	return b
}

// Filter selects entries; zero fields select everything.
type Filter struct {
	// Actor selects entries whose actor has any of these as user id or
	// name.
	Actor []string
	// ActorKind selects entries by the kind of actor (api_key, file…).
	ActorKind ActorKind
	// Action is matched exactly, or by prefix when it ends in "*"
	// ("plugin.*").
	Action string
	// Target selects entries whose target is any of these, each matched
	// as Action is.
	Target []string
	// Since and Until bound the entries' time, both included.
	Since, Until time.Time
	// Before is a cursor: only entries older than the entry with this id
	// (the previous page's Next). 0 starts at the newest.
	Before int64
	// Limit is how many entries at most; 0 means DefaultLimit.
	Limit int
}

// DefaultLimit and MaxLimit bound a page.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// ErrInvalid marks a filter that cannot select anything sensible; package
// api maps it to 422.
var ErrInvalid = errors.New("invalid audit filter")

// Store keeps the audit log in the database.
//
// Notes: safe for concurrent use.
type Store struct {
	db  *sql.DB
	now func() time.Time
}

// New returns the audit log kept in db.
func New(db *sql.DB) *Store { return &Store{db: db, now: time.Now} }

// Append adds an entry, masking every secret in it first, and returns it
// as stored. Its ID and, when zero, its Time are set here.
func (s *Store) Append(ctx context.Context, e Entry) (Entry, error) {
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	e.Time = e.Time.UTC().Truncate(time.Millisecond)
	e.Target, e.Detail = redact.Text(e.Target), redact.Text(e.Detail)
	e.Actor.Name = redact.Text(e.Actor.Name)
	if e.Before != nil {
		e.Before = redact.JSON(e.Before)
	}
	if e.After != nil {
		e.After = redact.JSON(e.After)
	}
	if e.Outcome == "" {
		e.Outcome = Success
	}
	err := s.db.QueryRowContext(ctx, `INSERT INTO audit
		(at, actor_kind, actor_id, actor_name, address, action, target, before, after, outcome, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
		e.Time.UnixMilli(), string(e.Actor.Kind), e.Actor.ID, e.Actor.Name, e.Address, e.Action, e.Target,
		nullJSON(e.Before), nullJSON(e.After), string(e.Outcome), e.Detail).Scan(&e.ID)
	if err != nil {
		return Entry{}, fmt.Errorf("record %s in the audit log: %w", e.Action, err)
	}
	return e, nil
}

func nullJSON(b json.RawMessage) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// List returns the entries f selects, newest first, and the cursor of the
// next page (0 when there is none).
func (s *Store) List(ctx context.Context, f Filter) (_ []Entry, next int64, _ error) {
	if f.Limit == 0 {
		f.Limit = DefaultLimit
	}
	if f.Limit < 1 || f.Limit > MaxLimit {
		return nil, 0, fmt.Errorf("%w: limit must be from 1 to %d, got %d", ErrInvalid, MaxLimit, f.Limit)
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		return nil, 0, fmt.Errorf("%w: until (%s) is before since (%s)", ErrInvalid, f.Until.Format(time.RFC3339), f.Since.Format(time.RFC3339))
	}
	var where []string
	var args []any
	// arg binds v and returns its placeholder.
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	if len(f.Actor) > 0 {
		var alts []string
		for _, a := range f.Actor {
			p := arg(a)
			alts = append(alts, "actor_id = "+p+" OR actor_name = "+p)
		}
		where = append(where, "("+strings.Join(alts, " OR ")+")")
	}
	if f.ActorKind != "" {
		where = append(where, "actor_kind = "+arg(string(f.ActorKind)))
	}
	// match is the condition that col is v, or starts with v's prefix.
	match := func(col, v string) string {
		if prefix, ok := strings.CutSuffix(v, "*"); ok {
			return col + ` LIKE ` + arg(likeEscape(prefix)+"%") + ` ESCAPE '\'`
		}
		return col + " = " + arg(v)
	}
	if f.Action != "" {
		where = append(where, match("action", f.Action))
	}
	if len(f.Target) > 0 {
		var alts []string
		for _, t := range f.Target {
			alts = append(alts, match("target", t))
		}
		where = append(where, "("+strings.Join(alts, " OR ")+")")
	}
	if !f.Since.IsZero() {
		where = append(where, "at >= "+arg(f.Since.UnixMilli()))
	}
	if !f.Until.IsZero() {
		where = append(where, "at <= "+arg(f.Until.UnixMilli()))
	}
	if f.Before > 0 {
		where = append(where, "id < "+arg(f.Before))
	}
	q := `SELECT id, at, actor_kind, actor_id, actor_name, address, action, target, before, after, outcome, detail FROM audit`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT " + arg(f.Limit+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("read the audit log: %w", err)
	}
	defer rows.Close()
	out := []Entry{}
	for rows.Next() {
		var e Entry
		var at int64
		var kind, outcome string
		var before, after sql.NullString
		if err := rows.Scan(&e.ID, &at, &kind, &e.Actor.ID, &e.Actor.Name, &e.Address, &e.Action, &e.Target,
			&before, &after, &outcome, &e.Detail); err != nil {
			return nil, 0, fmt.Errorf("read the audit log: %w", err)
		}
		e.Time = time.UnixMilli(at).UTC()
		e.Actor.Kind, e.Outcome = ActorKind(kind), Outcome(outcome)
		if before.Valid {
			e.Before = json.RawMessage(before.String)
		}
		if after.Valid {
			e.After = json.RawMessage(after.String)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("read the audit log: %w", err)
	}
	if len(out) > f.Limit {
		out = out[:f.Limit]
		next = out[len(out)-1].ID
	}
	return out, next, nil
}

// MinRetention is the shortest retention: the database refuses to delete
// younger entries, so a mistaken setting cannot empty the log.
const MinRetention = 24 * time.Hour

// Prune deletes the entries older than retention and says how many.
func (s *Store) Prune(ctx context.Context, retention time.Duration) (int64, error) {
	if retention < MinRetention {
		return 0, fmt.Errorf("prune the audit log: a retention of %s is shorter than the least, %s", retention, MinRetention)
	}
	cut := s.now().Add(-retention).UnixMilli()
	res, err := s.db.ExecContext(ctx, `DELETE FROM audit WHERE at < $1`, cut)
	if err != nil {
		return 0, fmt.Errorf("prune the audit log: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune the audit log: %w", err)
	}
	return n, nil
}

// PruneEvery is how often Retain prunes.
const PruneEvery = time.Hour

// Retain prunes entries older than retention now and every PruneEvery,
// until ctx is done. A retention of 0 keeps every entry.
func (s *Store) Retain(ctx context.Context, retention time.Duration, logger *slog.Logger) {
	if retention == 0 {
		return
	}
	t := time.NewTicker(PruneEvery)
	defer t.Stop()
	for {
		n, err := s.Prune(ctx, retention)
		switch {
		case err != nil && ctx.Err() == nil:
			logger.Error("audit log not pruned; it will be tried again", "err", err, "retry_in", PruneEvery)
		case n > 0:
			logger.Info("audit log pruned", "entries", n, "older_than", retention)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// likeEscape escapes a LIKE pattern's wildcards in a literal prefix.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
