package auth

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
)

// CoreOnly is the configuration that installs no configurable handler:
// only the embedder's handlers and the built-in JWT and key paths.
const CoreOnly = "CoreOnlyAuthConfig"

// ErrUnknownHandler is returned for a configuration name no factory has.
var ErrUnknownHandler = errors.New("unknown auth handler configuration")

// ErrInvalidSettings wraps a settings document a factory refused.
var ErrInvalidSettings = errors.New("invalid auth handler settings")

// HandlerFactory builds a configurable Handler from its settings document.
type HandlerFactory struct {
	// Name is the configuration's name, as the Cat names them
	// ("OIDCAuthConfig").
	Name string
	// Schema is the JSON Schema of the settings, shown to clients.
	Schema map[string]any
	// Defaults is the settings document before anyone saved one.
	Defaults json.RawMessage
	// Build validates settings and returns a ready handler. It may contact
	// the outside world (fetch keys) and should fail if that fails.
	Build func(ctx context.Context, settings json.RawMessage) (Handler, error)
}

// HandlerSetting is one configuration as the Cat's API shows it.
type HandlerSetting struct {
	Name   string          `json:"name"`
	Value  json.RawMessage `json:"value"`
	Schema map[string]any  `json:"schema"`
}

// HandlerSettings stores the configurable handlers' settings and which one
// is selected, and installs the selected one in an Authenticator.
//
// Notes: safe for concurrent use.
type HandlerSettings struct {
	db        *sql.DB
	auth      *Authenticator
	factories []HandlerFactory

	mu sync.Mutex // serializes Put and Restore
}

const (
	selectedKey      = "auth_handler"
	settingKeyPrefix = "auth_handler:"
)

// NewHandlerSettings returns the settings manager. CoreOnly is always
// offered; factories add more.
func NewHandlerSettings(db *sql.DB, a *Authenticator, factories ...HandlerFactory) *HandlerSettings {
	core := HandlerFactory{
		Name:     CoreOnly,
		Schema:   map[string]any{"type": "object", "title": "Core only", "description": "grin's own JWTs and keys only.", "properties": map[string]any{}, "additionalProperties": false},
		Defaults: json.RawMessage(`{}`),
		Build: func(_ context.Context, raw json.RawMessage) (Handler, error) {
			var v map[string]any
			if err := json.Unmarshal(raw, &v); err != nil || len(v) != 0 {
				return nil, fmt.Errorf("%s takes no settings; send {}", CoreOnly)
			}
			return nil, nil
		},
	}
	return &HandlerSettings{db: db, auth: a, factories: append([]HandlerFactory{core}, factories...)}
}

// List returns every configuration and the selected one's name.
func (s *HandlerSettings) List(ctx context.Context) ([]HandlerSetting, string, error) {
	out := make([]HandlerSetting, 0, len(s.factories))
	for _, f := range s.factories {
		v, err := s.value(ctx, f)
		if err != nil {
			return nil, "", err
		}
		out = append(out, HandlerSetting{Name: f.Name, Value: v, Schema: f.Schema})
	}
	sel, err := s.selected(ctx)
	return out, sel, err
}

// Get returns one configuration.
func (s *HandlerSettings) Get(ctx context.Context, name string) (HandlerSetting, error) {
	f, ok := s.factory(name)
	if !ok {
		return HandlerSetting{}, s.unknown(name)
	}
	v, err := s.value(ctx, f)
	if err != nil {
		return HandlerSetting{}, err
	}
	return HandlerSetting{Name: f.Name, Value: v, Schema: f.Schema}, nil
}

// Put validates and saves a configuration, selects it, and installs its
// handler. Nothing changes when the settings are refused.
func (s *HandlerSettings) Put(ctx context.Context, name string, value json.RawMessage) (HandlerSetting, error) {
	f, ok := s.factory(name)
	if !ok {
		return HandlerSetting{}, s.unknown(name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h, err := f.Build(ctx, value)
	if err != nil {
		return HandlerSetting{}, fmt.Errorf("%w: %s: %v", ErrInvalidSettings, name, err)
	}
	if err := s.save(ctx, name, value); err != nil {
		if c, ok := h.(io.Closer); ok {
			c.Close()
		}
		return HandlerSetting{}, err
	}
	s.auth.SetSelected(h)
	return HandlerSetting{Name: name, Value: value, Schema: f.Schema}, nil
}

func (s *HandlerSettings) save(ctx context.Context, name string, value json.RawMessage) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save auth handler settings: %w", err)
	}
	defer tx.Rollback()
	for k, v := range map[string]string{settingKeyPrefix + name: string(value), selectedKey: name} {
		if _, err := tx.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`, k, v); err != nil {
			return fmt.Errorf("save auth handler settings: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save auth handler settings: %w", err)
	}
	return nil
}

// Restore installs the selected configuration saved earlier, at start.
func (s *HandlerSettings) Restore(ctx context.Context) error {
	sel, err := s.selected(ctx)
	if err != nil {
		return err
	}
	f, ok := s.factory(sel)
	if !ok {
		return fmt.Errorf("the saved auth handler %q is not offered by this grin", sel)
	}
	v, err := s.value(ctx, f)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h, err := f.Build(ctx, v)
	if err != nil {
		return fmt.Errorf("auth handler %s: %w", sel, err)
	}
	s.auth.SetSelected(h)
	return nil
}

func (s *HandlerSettings) factory(name string) (HandlerFactory, bool) {
	for _, f := range s.factories {
		if f.Name == name {
			return f, true
		}
	}
	return HandlerFactory{}, false
}

func (s *HandlerSettings) unknown(name string) error {
	names := make([]string, len(s.factories))
	for i, f := range s.factories {
		names[i] = f.Name
	}
	return fmt.Errorf("%w %q; the configurations are %v", ErrUnknownHandler, name, names)
}

func (s *HandlerSettings) value(ctx context.Context, f HandlerFactory) (json.RawMessage, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, settingKeyPrefix+f.Name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return f.Defaults, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read auth handler settings: %w", err)
	}
	return json.RawMessage(v), nil
}

func (s *HandlerSettings) selected(ctx context.Context) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, selectedKey).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return CoreOnly, nil
	}
	if err != nil {
		return "", fmt.Errorf("read selected auth handler: %w", err)
	}
	return v, nil
}
