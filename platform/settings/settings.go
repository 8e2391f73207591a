// Package settings keeps the Cat-style configurable components: a family of
// named configurations (auth handlers, language models, embedders), each
// with a JSON Schema and a settings document, one of which is selected and
// in force.
//
// Put builds the component before anything is saved, so settings that do
// not work are refused and change nothing. Properties the schema marks
// "writeOnly" (API keys) are never shown again: reads replace them with
// Masked, and a write that sends Masked or leaves them out keeps the
// stored value.
package settings

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/grin-ai/grin/platform/cluster"
	"github.com/grin-ai/grin/platform/redact"
)

// Masked stands for a stored secret in what reads return; it is
// redact.Masked, the one mask grin shows.
const Masked = redact.Masked

// Errors; package api maps them to 404 and 422.
var (
	ErrUnknown = errors.New("unknown configuration")
	ErrInvalid = errors.New("invalid settings")
)

// Factory builds one configuration's component from its settings.
type Factory[T any] struct {
	// Name is the configuration's name, as the Cat names them.
	Name string
	// Schema is the JSON Schema of the settings; properties with
	// "writeOnly": true are secrets.
	Schema map[string]any
	// Defaults is the settings document before anyone saved one.
	Defaults json.RawMessage
	// Build validates the settings and returns a ready component. It may
	// reach the outside world and should fail when that fails.
	Build func(ctx context.Context, settings json.RawMessage) (T, error)
	// Aliases maps the Cat's names of fields to this configuration's
	// ("openai_api_key" → "api_key"): a write may use either name (both
	// only with one value), reads show both, so the Cat's clients read and
	// write the fields they know.
	Aliases map[string]string
	// Unused names fields of the Cat's configuration that this one has no
	// use for (tuning knobs of the Cat's providers): a write may send
	// them, and they are dropped.
	Unused []string
}

// Setting is one configuration as clients see it, secrets masked.
type Setting struct {
	Name   string          `json:"name"`
	Value  json.RawMessage `json:"value"`
	Schema map[string]any  `json:"schema"`
}

// Registry stores the settings of one family of configurations in the
// settings table and installs the selected one.
//
// Notes: safe for concurrent use.
type Registry[T any] struct {
	db        *sql.DB
	kind      string
	apply     func(T)
	check     func(context.Context, T) error
	factories []Factory[T]
	bus       cluster.Bus
	logger    *slog.Logger

	mu sync.Mutex // serializes Put and Restore
}

// New returns a registry whose rows are named after kind ("llm"), that
// calls apply with the component of each configuration put in force. The
// first factory is the default selection.
func New[T any](db *sql.DB, kind string, apply func(T), factories ...Factory[T]) *Registry[T] {
	return &Registry[T]{db: db, kind: kind, apply: apply, factories: factories, bus: cluster.Local{}, logger: slog.New(slog.DiscardHandler)}
}

// Share makes the registry one of several replicas' on one database: a
// configuration put in force here is announced on bus, and one put in
// force by another replica is restored here from the database, so every
// replica answers with the same model. Call it before serving; it follows
// until ctx is done.
func (r *Registry[T]) Share(ctx context.Context, bus cluster.Bus, logger *slog.Logger) {
	r.mu.Lock()
	r.bus, r.logger = bus, logger
	r.mu.Unlock()
	cancel := bus.Subscribe(cluster.TopicSettings, func(ctx context.Context, e cluster.Event) {
		if e.Key != r.kind && !e.Missed {
			return
		}
		if err := r.Restore(ctx); err != nil {
			logger.Error("another replica put a configuration in force that this one cannot build; keeping the one in force here",
				"kind", r.kind, "err", err)
		}
	})
	context.AfterFunc(ctx, cancel)
}

// Check makes Put refuse, as invalid, a component check finds unusable:
// one that works on its own but not with the rest of grin (an embedder
// whose vectors do not fit the memory already stored).
func (r *Registry[T]) Check(check func(context.Context, T) error) {
	r.mu.Lock()
	r.check = check
	r.mu.Unlock()
}

// List returns every configuration and the selected one's name.
func (r *Registry[T]) List(ctx context.Context) ([]Setting, string, error) {
	out := make([]Setting, 0, len(r.factories))
	for _, f := range r.factories {
		v, err := r.stored(ctx, f)
		if err != nil {
			return nil, "", err
		}
		out = append(out, Setting{Name: f.Name, Value: f.view(v), Schema: f.Schema})
	}
	sel, err := r.selected(ctx)
	return out, sel, err
}

// Get returns one configuration.
func (r *Registry[T]) Get(ctx context.Context, name string) (Setting, error) {
	f, err := r.factory(name)
	if err != nil {
		return Setting{}, err
	}
	v, err := r.stored(ctx, f)
	if err != nil {
		return Setting{}, err
	}
	return Setting{Name: f.Name, Value: f.view(v), Schema: f.Schema}, nil
}

// Put validates and saves a configuration's settings, selects it and puts
// its component in force. Refused settings change nothing.
func (r *Registry[T]) Put(ctx context.Context, name string, value json.RawMessage) (Setting, error) {
	f, err := r.factory(name)
	if err != nil {
		return Setting{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	value, c, err := r.build(ctx, f, value)
	if err != nil {
		return Setting{}, err
	}
	if err := r.save(ctx, name, value); err != nil {
		closeIfCloser(c)
		return Setting{}, err
	}
	r.apply(c)
	if err := r.bus.Publish(ctx, cluster.Event{Topic: cluster.TopicSettings, Key: r.kind}); err != nil {
		r.logger.Error("the other replicas were not told of a new configuration; they keep theirs until their bus reconnects",
			"kind", r.kind, "err", err)
	}
	return Setting{Name: name, Value: f.view(value), Schema: f.Schema}, nil
}

// Try builds a configuration as Put would (a remote one is contacted),
// then drops it: nothing is saved or selected. Secrets sent as ******** or
// left out are the stored ones. Its error says why the configuration
// would be refused.
func (r *Registry[T]) Try(ctx context.Context, name string, value json.RawMessage) error {
	f, err := r.factory(name)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, c, err := r.build(ctx, f, value)
	if err != nil {
		return err
	}
	closeIfCloser(c)
	return nil
}

// build normalizes value, fills in the stored secrets, and builds and
// checks the component; it returns the value to save. Hold r.mu.
func (r *Registry[T]) build(ctx context.Context, f Factory[T], value json.RawMessage) (json.RawMessage, T, error) {
	var zero T
	old, err := r.stored(ctx, f)
	if err != nil {
		return nil, zero, err
	}
	value, err = f.normalize(value)
	if err != nil {
		return nil, zero, fmt.Errorf("%w: %s: %v", ErrInvalid, f.Name, err)
	}
	value, err = keepSecrets(value, old, f.Schema)
	if err != nil {
		return nil, zero, fmt.Errorf("%w: %s: %v", ErrInvalid, f.Name, err)
	}
	c, err := f.Build(ctx, value)
	if err != nil {
		return nil, zero, fmt.Errorf("%w: %s: %v", ErrInvalid, f.Name, err)
	}
	if r.check != nil {
		if err := r.check(ctx, c); err != nil {
			closeIfCloser(c)
			return nil, zero, fmt.Errorf("%w: %s: %v", ErrInvalid, f.Name, err)
		}
	}
	return value, c, nil
}

// Restore puts the saved selection in force, at start.
func (r *Registry[T]) Restore(ctx context.Context) error {
	sel, err := r.selected(ctx)
	if err != nil {
		return err
	}
	f, err := r.factory(sel)
	if err != nil {
		return fmt.Errorf("the saved %s configuration %q is not offered by this grin", r.kind, sel)
	}
	v, err := r.stored(ctx, f)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := f.Build(ctx, v)
	if err != nil {
		return fmt.Errorf("%s configuration %s: %w", r.kind, sel, err)
	}
	r.apply(c)
	return nil
}

func (r *Registry[T]) factory(name string) (Factory[T], error) {
	names := make([]string, len(r.factories))
	for i, f := range r.factories {
		if f.Name == name {
			return f, nil
		}
		names[i] = f.Name
	}
	return Factory[T]{}, fmt.Errorf("%w %q; the %s configurations are %v", ErrUnknown, name, r.kind, names)
}

func (r *Registry[T]) stored(ctx context.Context, f Factory[T]) (json.RawMessage, error) {
	var v string
	err := r.db.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = $1`, r.kind+":"+f.Name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return f.Defaults, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s settings: %w", r.kind, err)
	}
	return json.RawMessage(v), nil
}

func (r *Registry[T]) selected(ctx context.Context) (string, error) {
	var v string
	err := r.db.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = $1`, r.kind).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return r.factories[0].Name, nil
	}
	if err != nil {
		return "", fmt.Errorf("read selected %s: %w", r.kind, err)
	}
	return v, nil
}

func (r *Registry[T]) save(ctx context.Context, name string, value json.RawMessage) error {
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save %s settings: %w", r.kind, err)
	}
	defer tx.Rollback()
	for _, kv := range [][2]string{{r.kind + ":" + name, string(value)}, {r.kind, name}} {
		if _, err := tx.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value`, kv[0], kv[1]); err != nil {
			return fmt.Errorf("save %s settings: %w", r.kind, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save %s settings: %w", r.kind, err)
	}
	return nil
}

// secretFields lists the schema's writeOnly properties.
func secretFields(schema map[string]any) []string {
	props, _ := schema["properties"].(map[string]any)
	var out []string
	for name, p := range props {
		if m, ok := p.(map[string]any); ok && m["writeOnly"] == true {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// normalize rewrites the Cat's field names of a written document to this
// configuration's and drops the Cat's fields it does not use.
func (f Factory[T]) normalize(v json.RawMessage) (json.RawMessage, error) {
	if len(f.Aliases) == 0 && len(f.Unused) == 0 {
		return v, nil
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, errors.New("settings must be a JSON object")
	}
	cats := make([]string, 0, len(f.Aliases))
	for cat := range f.Aliases {
		cats = append(cats, cat)
	}
	sort.Strings(cats)
	for _, cat := range cats {
		own := f.Aliases[cat]
		cv, ok := m[cat]
		if !ok {
			continue
		}
		if ov, both := m[own]; both && fmt.Sprint(ov) != fmt.Sprint(cv) {
			return nil, fmt.Errorf("%s and %s name the same setting (the Cat's name and grin's) but have different values; give one", cat, own)
		}
		m[own] = cv
		delete(m, cat)
	}
	for _, k := range f.Unused {
		delete(m, k)
	}
	return json.Marshal(m)
}

// view is a stored document as reads show it: secrets masked, and each
// aliased field under the Cat's name too.
func (f Factory[T]) view(v json.RawMessage) json.RawMessage {
	v = mask(v, f.Schema)
	if len(f.Aliases) == 0 {
		return v
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	if dec.Decode(&m) != nil || m == nil {
		return v
	}
	for cat, own := range f.Aliases {
		if ov, ok := m[own]; ok {
			m[cat] = ov
		}
	}
	b, _ := json.Marshal(m)
	return b
}

// mask replaces set secrets with Masked.
func mask(v json.RawMessage, schema map[string]any) json.RawMessage {
	secrets := secretFields(schema)
	if len(secrets) == 0 {
		return v
	}
	var m map[string]any
	if json.Unmarshal(v, &m) != nil {
		return v
	}
	for _, k := range secrets {
		if s, ok := m[k].(string); ok && s != "" {
			m[k] = Masked
		}
	}
	b, _ := json.Marshal(m)
	return b
}

// keepSecrets fills secrets that a write left out or sent as Masked from
// the stored settings, so a client can save what it read.
func keepSecrets(v, old json.RawMessage, schema map[string]any) (json.RawMessage, error) {
	secrets := secretFields(schema)
	if len(secrets) == 0 {
		return v, nil
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("settings must be a JSON object: %v", err)
	}
	var prev map[string]any
	json.Unmarshal(old, &prev)
	// A stored secret follows its endpoint: when a URL changes, the
	// secret must be sent again, or anyone allowed to edit settings could
	// point the component at their own server and receive it.
	urlKeys := map[string]bool{}
	for k := range m {
		urlKeys[k] = true
	}
	for k := range prev {
		urlKeys[k] = true // a URL left out falls back to a default: a change too
	}
	for k := range urlKeys {
		if strings.Contains(strings.ToLower(k), "url") && fmt.Sprint(m[k]) != fmt.Sprint(prev[k]) {
			for _, sk := range secrets {
				if cur, present := m[sk]; !present || cur == Masked {
					if had, _ := prev[sk].(string); had != "" {
						return nil, fmt.Errorf("%s changed, so send %s again: the stored one is not sent to a new address", k, sk)
					}
				}
			}
		}
	}
	// A secret left out or sent masked keeps the stored one (none, when
	// nothing was stored: the mask itself is never saved).
	for _, k := range secrets {
		if cur, present := m[k]; !present || cur == Masked {
			if p, ok := prev[k]; ok {
				m[k] = p
			} else {
				delete(m, k)
			}
		}
	}
	return json.Marshal(m)
}

func closeIfCloser(c any) {
	if cl, ok := c.(io.Closer); ok {
		cl.Close()
	}
}
