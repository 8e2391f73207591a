package wasmhooks

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grin-ai/grin/platform/hooks"
)

// ErrNotFound is returned for a plugin id that is not installed.
var ErrNotFound = errors.New("plugin not found")

// Installed is a plugin as the API shows it.
type Installed struct {
	Manifest
	Enabled  bool           `json:"active"`
	Settings map[string]any `json:"settings"`
	// Forced is the isolation an administrator imposed ("" for none).
	Forced Isolation `json:"forced_isolation,omitempty"`
	// DisabledReason says why grin turned the plugin off by itself (its
	// instances failed to start too many times in a row); empty when it
	// did not. Turning the plugin on again clears it.
	DisabledReason string `json:"disabled_reason,omitempty" doc:"Why grin turned the plugin off by itself (its instances failed to start too many times in a row); absent when it did not."`
}

type loaded struct {
	info   Installed
	module *Module
	plugin *Plugin
	stats  *counters // since installed or grin started; kept across upgrades
}

// Manager installs plugins, keeps them across restarts, and runs their
// hooks: it is the hooks.Runner the pipeline calls.
//
// Notes: safe for concurrent use. Changes build a new table of hooks and
// swap it in; a call in flight keeps the plugin it started with, which
// closes its instances once idle.
type Manager struct {
	engine *Engine
	db     *sql.DB
	dir    string
	logger *slog.Logger

	mu      sync.Mutex // serializes changes
	plugins map[string]*loaded
	table   atomic.Pointer[hookTable]
}

type hookTable map[string][]tableEntry

type tableEntry struct {
	id       string
	priority int
	plugin   *Plugin
	settings []byte
	stats    *counters
}

// KnownHooks are the hook points plugins may name.
var KnownHooks = []string{
	hooks.FastReply, hooks.BeforeCatReadsMessage, hooks.CatRecallQuery, hooks.BeforeCatRecallsMemories,
	hooks.BeforeCatRecallsEpisodicMemories, hooks.BeforeCatRecallsDeclarativeMemories, hooks.BeforeCatRecallsProceduralMemories,
	hooks.AfterCatRecallsMemories, hooks.BeforeAgentStarts, hooks.AgentFastReply, hooks.AgentPromptPrefix,
	hooks.AgentPromptSuffix, hooks.BeforeCatStoresEpisodicMemory, hooks.BeforeCatSendsMessage,
	hooks.BeforeRabbitholeSplitsText, hooks.AfterRabbitholeSplittedText, hooks.BeforeRabbitholeStoresDocuments,
	hooks.BeforeRabbitholeInsertMemory, hooks.AfterRabbitholeStoredDocuments,
}

// NewManager loads the plugins installed in dir.
func NewManager(ctx context.Context, e *Engine, db *sql.DB, dir string, logger *slog.Logger) (*Manager, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create plugin directory: %w", err)
	}
	m := &Manager{engine: e, db: db, dir: dir, logger: logger, plugins: map[string]*loaded{}}
	rows, err := db.QueryContext(ctx, `SELECT id, enabled, settings, isolation, disabled_reason FROM plugins ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list plugins: %w", err)
	}
	type row struct {
		id, settings, iso, reason string
		enabled                   bool
	}
	var saved []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.enabled, &r.settings, &r.iso, &r.reason); err != nil {
			rows.Close()
			return nil, err
		}
		saved = append(saved, r)
	}
	rows.Close()
	for _, r := range saved {
		man, wasm, err := m.readInstalled(r.id)
		if err != nil {
			logger.Error("plugin not loaded", "plugin", r.id, "err", err)
			continue
		}
		var settings map[string]any
		json.Unmarshal([]byte(r.settings), &settings)
		l, err := m.build(ctx, man, wasm, Isolation(r.iso))
		if err != nil {
			logger.Error("plugin not loaded", "plugin", r.id, "err", err)
			continue
		}
		l.info.Enabled, l.info.Settings, l.info.DisabledReason = r.enabled, man.WithDefaults(settings), r.reason
		m.plugins[r.id] = l
	}
	m.rebuild()
	return m, nil
}

func (m *Manager) readInstalled(id string) (Manifest, []byte, error) {
	raw, err := os.ReadFile(filepath.Join(m.dir, id, "manifest.json"))
	if err != nil {
		return Manifest{}, nil, err
	}
	var man Manifest
	if err := json.Unmarshal(raw, &man); err != nil {
		return Manifest{}, nil, err
	}
	wasm, err := os.ReadFile(filepath.Join(m.dir, id, "plugin.wasm"))
	return man, wasm, err
}

func (m *Manager) build(ctx context.Context, man Manifest, wasm []byte, forced Isolation) (*loaded, error) {
	mod, err := m.engine.Compile(ctx, wasm)
	if err != nil {
		return nil, err
	}
	if err := man.Validate(mod.Hooks, KnownHooks); err != nil {
		mod.Close(ctx)
		return nil, err
	}
	iso := man.Isolation
	if forced != "" {
		iso = forced
	}
	p, err := m.newPlugin(man.ID, mod, iso, Limits{Timeout: time.Duration(man.TimeoutMS) * time.Millisecond})
	if err != nil {
		mod.Close(ctx)
		return nil, err
	}
	return &loaded{info: Installed{Manifest: man, Enabled: true, Settings: map[string]any{}, Forced: forced}, module: mod, plugin: p, stats: &counters{}}, nil
}

// newPlugin prepares a plugin that the manager turns off when its
// instances keep failing to start.
func (m *Manager) newPlugin(id string, mod *Module, iso Isolation, limits Limits) (*Plugin, error) {
	p, err := m.engine.NewPlugin(id, mod, iso, limits)
	if err != nil {
		return nil, err
	}
	p.disable = func(reason error) { m.disableFailing(id, p, reason) }
	return p, nil
}

// disableFailing turns off a plugin whose instances keep failing to
// start, remembering why, and says so at error level: until an
// administrator turns it on again, chat turns skip it for nothing.
func (m *Manager) disableFailing(id string, p *Plugin, reason error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.plugins[id]
	if l == nil || l.plugin != p || !l.info.Enabled {
		return // replaced, deleted or already off meanwhile
	}
	why := reason.Error()
	// The caller's request may be over: this change must happen anyway.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := m.db.ExecContext(ctx, `UPDATE plugins SET enabled = 0, disabled_reason = ? WHERE id = ?`, why, id); err != nil {
		m.logger.Error("could not save that a failing plugin is disabled", "plugin", id, "err", err)
	}
	l.info.Enabled, l.info.DisabledReason = false, why
	m.rebuild()
	m.logger.Error("plugin disabled: an administrator must turn it on again (PUT /plugins/toggle/"+id+") once it is fixed", "plugin", id, "reason", why)
	m.engine.record(id, slog.LevelError, "", "", "grin turned the plugin off: "+why)
}

// Install reads an uploaded archive and installs its plugin, enabled, or
// upgrades it, keeping whether it was on or off (and why grin turned it
// off) and its settings, when the new schema accepts them. Settings the
// schema gives defaults for and that are missing get those defaults.
// Nothing changes when it is refused.
func (m *Manager) Install(ctx context.Context, archive []byte) (Installed, error) {
	man, wasm, err := ReadArchive(archive)
	if err != nil {
		return Installed{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var forced Isolation
	settings := map[string]any{}
	if old := m.plugins[man.ID]; old != nil {
		forced, settings = old.info.Forced, old.info.Settings
	}
	l, err := m.build(ctx, man, wasm, forced)
	if err != nil {
		return Installed{}, err
	}
	// A failure from here on leaves nothing running: the new plugin's
	// instances and module are closed.
	abandon := func(err error) (Installed, error) {
		l.plugin.Close(ctx)
		l.module.Close(ctx)
		return Installed{}, err
	}
	// One instance now, so a module whose initialisation loops or traps
	// is refused here, with the cause, rather than costing every chat
	// turn its deadline.
	first, err := m.engine.instantiate(ctx, l.module, man.ID)
	if err != nil {
		return abandon(fmt.Errorf("%w: %w", ErrInvalid, err))
	}
	l.plugin.adopt(ctx, first)
	settings = l.info.Manifest.WithDefaults(settings)
	if man.SettingsSchema != nil && l.info.Manifest.ValidateSettings(settings) != nil {
		// The new version's schema refuses the old settings.
		settings = l.info.Manifest.WithDefaults(nil)
	}
	l.info.Settings = settings
	dir := filepath.Join(m.dir, man.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return abandon(fmt.Errorf("store plugin %s: %w", man.ID, err))
	}
	manRaw, _ := json.MarshalIndent(man, "", "  ")
	for name, b := range map[string][]byte{"plugin.wasm": wasm, "manifest.json": manRaw} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return abandon(fmt.Errorf("store plugin %s: %w", man.ID, err))
		}
	}
	sraw, _ := json.Marshal(settings)
	// An upgrade keeps the row's enabled and disabled_reason: an
	// administrator who turned a plugin off did not ask for a new version
	// to run.
	if err := m.db.QueryRowContext(ctx, `INSERT INTO plugins (id, enabled, settings, isolation, installed_at) VALUES (?, 1, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET settings = excluded.settings
		RETURNING enabled, disabled_reason`, man.ID, string(sraw), string(forced), time.Now().UnixMilli()).Scan(&l.info.Enabled, &l.info.DisabledReason); err != nil {
		return abandon(fmt.Errorf("store plugin %s: %w", man.ID, err))
	}
	old := m.plugins[man.ID]
	if old != nil {
		l.stats = old.stats // an upgrade keeps counting
	}
	m.plugins[man.ID] = l
	m.rebuild()
	if old != nil {
		old.plugin.Close(ctx)
		old.module.Close(ctx) // calls in flight keep running (wazero allows it)
	}
	m.logger.Info("plugin installed", "plugin", man.ID, "version", man.Version, "active", l.info.Enabled)
	return l.info, nil
}

// List returns the installed plugins by id.
func (m *Manager) List() []Installed {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Installed, 0, len(m.plugins))
	for _, l := range m.plugins {
		out = append(out, l.info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Get returns one plugin.
func (m *Manager) Get(id string) (Installed, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.plugins[id]
	if l == nil {
		return Installed{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return l.info, nil
}

// Toggle enables a disabled plugin and disables an enabled one.
func (m *Manager) Toggle(ctx context.Context, id string) (Installed, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.plugins[id]
	if l == nil {
		return Installed{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if _, err := m.db.ExecContext(ctx, `UPDATE plugins SET enabled = ?, disabled_reason = '' WHERE id = ?`, !l.info.Enabled, id); err != nil {
		return Installed{}, fmt.Errorf("toggle plugin %s: %w", id, err)
	}
	l.info.Enabled, l.info.DisabledReason = !l.info.Enabled, ""
	if l.info.Enabled {
		l.plugin.resetStarts() // an administrator's word: try at once
	}
	m.rebuild()
	return l.info, nil
}

// SetSettings validates settings against the plugin's schema and saves them.
func (m *Manager) SetSettings(ctx context.Context, id string, settings map[string]any) (Installed, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.plugins[id]
	if l == nil {
		return Installed{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	settings = l.info.Manifest.WithDefaults(settings)
	if err := l.info.Manifest.ValidateSettings(settings); err != nil {
		return Installed{}, fmt.Errorf("%w: settings of %s: %v", ErrArchive, id, err)
	}
	raw, _ := json.Marshal(settings)
	if _, err := m.db.ExecContext(ctx, `UPDATE plugins SET settings = ? WHERE id = ?`, string(raw), id); err != nil {
		return Installed{}, fmt.Errorf("save settings of %s: %w", id, err)
	}
	l.info.Settings = settings
	m.rebuild()
	return l.info, nil
}

// ForceIsolation makes a plugin run in the given mode whatever its
// manifest says ("" restores the manifest's).
func (m *Manager) ForceIsolation(ctx context.Context, id string, iso Isolation) (Installed, error) {
	if iso != "" && !iso.Valid() {
		return Installed{}, fmt.Errorf("%w: isolation %q must be shared, per-user or per-call", ErrArchive, iso)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.plugins[id]
	if l == nil {
		return Installed{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	effective := l.info.Manifest.Isolation
	if iso != "" {
		effective = iso
	}
	p, err := m.newPlugin(id, l.module, effective, l.plugin.limits)
	if err != nil {
		return Installed{}, err
	}
	if _, err := m.db.ExecContext(ctx, `UPDATE plugins SET isolation = ? WHERE id = ?`, string(iso), id); err != nil {
		return Installed{}, err
	}
	old := l.plugin
	l.plugin, l.info.Forced = p, iso
	m.rebuild()
	old.Close(ctx)
	return l.info, nil
}

// Logs returns an installed plugin's recent log lines and failures,
// oldest first.
func (m *Manager) Logs(id string) ([]LogEntry, error) {
	if _, err := m.Get(id); err != nil {
		return nil, err
	}
	return m.engine.Logs(id), nil
}

// Stats returns a plugin's figures: calls, errors, deadline hits, calls
// skipped while it could not start, time spent and live instances.
func (m *Manager) Stats(id string) (Stats, error) {
	m.mu.Lock()
	l := m.plugins[id]
	var p *Plugin
	var c *counters
	if l != nil {
		p, c = l.plugin, l.stats // ForceIsolation replaces the plugin under mu
	}
	m.mu.Unlock()
	if l == nil {
		return Stats{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return c.stats(p.Idle()), nil
}

// AllStats returns every installed plugin's figures by id, for the
// metrics endpoint: the same counters as Stats, read once per scrape.
func (m *Manager) AllStats() map[string]Stats {
	type entry struct {
		p *Plugin
		c *counters
	}
	m.mu.Lock()
	entries := make(map[string]entry, len(m.plugins))
	for id, l := range m.plugins {
		entries[id] = entry{l.plugin, l.stats}
	}
	m.mu.Unlock()
	out := make(map[string]Stats, len(entries))
	for id, e := range entries {
		out[id] = e.c.stats(e.p.Idle())
	}
	return out
}

// Delete uninstalls a plugin, and forgets its recent logs.
func (m *Manager) Delete(ctx context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.plugins[id]
	if l == nil {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if _, err := m.db.ExecContext(ctx, `DELETE FROM plugins WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete plugin %s: %w", id, err)
	}
	if err := (keyValues{m.db}).erasePlugin(ctx, id); err != nil {
		return fmt.Errorf("delete plugin %s's stored data: %w", id, err)
	}
	delete(m.plugins, id)
	m.rebuild()
	m.engine.clearLogs(id)
	l.plugin.Close(ctx)
	l.module.Close(ctx)
	return os.RemoveAll(filepath.Join(m.dir, id))
}

// rebuild makes the table of enabled hooks by descending priority, then
// id, and swaps it in. The caller holds mu.
func (m *Manager) rebuild() {
	t := hookTable{}
	for id, l := range m.plugins {
		if !l.info.Enabled {
			continue
		}
		settings, _ := json.Marshal(l.info.Settings)
		for _, h := range l.info.Hooks {
			t[h.Name] = append(t[h.Name], tableEntry{id: id, priority: h.Priority, plugin: l.plugin, settings: settings, stats: l.stats})
		}
	}
	for _, es := range t {
		sort.Slice(es, func(i, j int) bool {
			if es[i].priority != es[j].priority {
				return es[i].priority > es[j].priority
			}
			return es[i].id < es[j].id
		})
	}
	m.table.Store(&t)
}

// PerUserIdle is how long a per-user plugin instance may sit unused
// before EvictIdleLoop evicts it, in grin serve.
const PerUserIdle = 5 * time.Minute

// EvictIdleLoop evicts per-user instances idle longer than idle, until ctx is done,
// so a plugin isolated per user holds instances only for active users.
func (m *Manager) EvictIdleLoop(ctx context.Context, idle time.Duration) {
	t := time.NewTicker(max(idle/4, time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			m.mu.Lock()
			ps := make([]*Plugin, 0, len(m.plugins))
			for _, l := range m.plugins {
				ps = append(ps, l.plugin)
			}
			m.mu.Unlock()
			for _, p := range ps {
				p.EvictIdle(ctx, now.Add(-idle))
			}
		}
	}
}

// Has implements hooks.Runner.
func (m *Manager) Has(hook string) bool {
	t := m.table.Load()
	return t != nil && len((*t)[hook]) > 0
}

// Run implements hooks.Runner: each enabled plugin's hook gets the
// previous one's output; a failing hook is logged with its plugin and
// skipped.
func (m *Manager) Run(ctx context.Context, hook string, caller hooks.Caller, payload json.RawMessage) (json.RawMessage, error) {
	t := m.table.Load()
	if t == nil {
		return payload, nil
	}
	for _, e := range (*t)[hook] {
		e.stats.running.Add(1)
		started := time.Now()
		out, err := e.plugin.Invoke(ctx, hook, NewCallContext(caller, e.id), e.settings, payload)
		e.stats.running.Add(-1)
		if errors.Is(err, ErrBackingOff) || errors.Is(err, ErrInit) {
			e.stats.skipped.Add(1)
			// Said once per failure when it happened (Plugin.start).
			m.logger.DebugContext(ctx, "plugin not started; skipped", "plugin", e.id, "hook", hook, "user", caller.UserID, "err", err)
			continue
		}
		e.stats.done(time.Since(started), err)
		if err != nil {
			m.logger.WarnContext(ctx, "hook failed; skipped", "plugin", e.id, "hook", hook, "user", caller.UserID, "err", err)
			m.engine.record(e.id, slog.LevelWarn, caller.UserID, hook, "the hook failed and was skipped: "+err.Error())
			continue
		}
		if out != nil {
			payload = out
		}
	}
	return payload, nil
}

var _ hooks.Runner = (*Manager)(nil)
