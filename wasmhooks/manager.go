package wasmhooks

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grin-ai/grin/platform/cluster"
	"github.com/grin-ai/grin/platform/database"
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
	info Installed
	sha  string // hex sha256 of the module's bytes
	// manifest is the manifest as the database keeps it: an upgrade may
	// change it and not the module.
	manifest string
	module   *Module
	plugin   *Plugin
	stats    *counters // since installed or grin started; kept across upgrades
}

// Manager installs plugins, keeps them in the database (their rows and
// modules), and runs their hooks: it is the hooks.Runner the pipeline
// calls. Replicas sharing a database each keep a Manager; a change made
// through one is published on the cluster bus, and the others bring their
// copy in line with the database (Refresh).
//
// Notes: safe for concurrent use. Changes build a new table of hooks and
// swap it in; a call in flight keeps the plugin it started with, which
// closes its instances once idle.
type Manager struct {
	engine *Engine
	db     *sql.DB
	bus    cluster.Bus
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

// ManagerOption adjusts a Manager.
type ManagerOption func(*Manager)

// WithBus has the manager tell the other replicas of every change it
// makes (cluster.TopicPlugin, keyed by plugin id) and refresh its own
// copy of a plugin when another replica tells it of one. Without it the
// manager is alone (cluster.Local).
func WithBus(b cluster.Bus) ManagerOption { return func(m *Manager) { m.bus = b } }

// NewManager loads the plugins installed in the database. legacyDir is
// where grin kept modules before they moved into the database (the data
// directory's plugins/): a plugin found there whose module the database
// lacks is moved in, once, and its files removed.
//
// Background work (following the bus) stops when ctx is done.
func NewManager(ctx context.Context, e *Engine, db *sql.DB, legacyDir string, logger *slog.Logger, opts ...ManagerOption) (*Manager, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{engine: e, db: db, bus: cluster.Local{}, logger: logger, plugins: map[string]*loaded{}}
	for _, o := range opts {
		o(m)
	}
	if err := m.moveLegacyModules(ctx, legacyDir); err != nil {
		return nil, err
	}
	m.mu.Lock()
	err := m.refreshAll(ctx)
	m.mu.Unlock()
	if err != nil {
		// A plugin that cannot load (its module refused by this grin) is
		// logged and left out, as before; grin starts.
		logger.Error("some plugins are not loaded", "err", err)
	}
	cancel := m.bus.Subscribe(cluster.TopicPlugin, func(ctx context.Context, ev cluster.Event) {
		id := ev.Key
		if ev.Missed {
			id = "" // changes may have been lost: everything
		}
		if err := m.Refresh(ctx, id); err != nil {
			m.logger.Error("could not bring a plugin in line with another replica's change", "plugin", id, "err", err)
		}
	})
	context.AfterFunc(ctx, cancel)
	return m, nil
}

// moveLegacyModules moves the modules and manifests that an older grin
// kept in dir/<id>/ into the database, for the plugins whose rows have
// none, and removes the files once the database holds them.
func (m *Manager) moveLegacyModules(ctx context.Context, dir string) error {
	if dir == "" {
		return nil
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	rows, err := m.db.QueryContext(ctx, `SELECT p.id FROM plugins p
		WHERE NOT EXISTS (SELECT 1 FROM plugin_modules m WHERE m.plugin_id = p.id) ORDER BY p.id`)
	if err != nil {
		return fmt.Errorf("list plugins without their module: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("list plugins without their module: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list plugins without their module: %w", err)
	}
	for _, id := range ids {
		pdir := filepath.Join(dir, id)
		manRaw, err := os.ReadFile(filepath.Join(pdir, "manifest.json"))
		if err != nil {
			m.logger.Error("an installed plugin's module is neither in the database nor in the data directory: upload it again", "plugin", id, "err", err)
			continue
		}
		wasm, err := os.ReadFile(filepath.Join(pdir, "plugin.wasm"))
		if err != nil {
			m.logger.Error("an installed plugin's module is neither in the database nor in the data directory: upload it again", "plugin", id, "err", err)
			continue
		}
		// Another replica may move the same files at once: the first wins.
		if _, err := m.db.ExecContext(ctx, `INSERT INTO plugin_modules (plugin_id, sha256, manifest, module) VALUES ($1, $2, $3, $4)
			ON CONFLICT (plugin_id) DO NOTHING`, id, moduleSum(wasm), string(manRaw), wasm); err != nil {
			return fmt.Errorf("move plugin %s's module into the database: %w", id, err)
		}
		if err := os.RemoveAll(pdir); err != nil {
			m.logger.Warn("plugin module moved into the database; its old files could not be removed", "plugin", id, "dir", pdir, "err", err)
			continue
		}
		m.logger.Info("plugin module moved from the data directory into the database", "plugin", id)
	}
	os.Remove(dir) // only once empty: anything else there stays
	return nil
}

// moduleSum is the hex sha256 of a module's bytes.
func moduleSum(wasm []byte) string {
	sum := sha256.Sum256(wasm)
	return hex.EncodeToString(sum[:])
}

// stored is a plugin's row as the database keeps it.
type stored struct {
	id, settings, isolation, reason, sha, manifest string
	enabled                                        bool
}

// readStored reads the row of plugin id, or of every plugin when id is "".
func (m *Manager) readStored(ctx context.Context, id string) ([]stored, error) {
	q := `SELECT p.id, p.enabled, p.settings, p.isolation, p.disabled_reason, COALESCE(mo.sha256, ''), COALESCE(mo.manifest, '')
		FROM plugins p LEFT JOIN plugin_modules mo ON mo.plugin_id = p.id`
	args := []any{}
	if id != "" {
		q += ` WHERE p.id = $1`
		args = append(args, id)
	}
	rows, err := m.db.QueryContext(ctx, q+` ORDER BY p.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("read installed plugins: %w", err)
	}
	defer rows.Close()
	var out []stored
	for rows.Next() {
		var r stored
		if err := rows.Scan(&r.id, &r.enabled, &r.settings, &r.isolation, &r.reason, &r.sha, &r.manifest); err != nil {
			return nil, fmt.Errorf("read installed plugins: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read installed plugins: %w", err)
	}
	return out, nil
}

// readModule reads a plugin's manifest and module from the database and
// checks the module against its recorded hash.
func (m *Manager) readModule(ctx context.Context, id string) (Manifest, []byte, string, error) {
	var sha, manRaw string
	var wasm []byte
	err := m.db.QueryRowContext(ctx, `SELECT sha256, manifest, module FROM plugin_modules WHERE plugin_id = $1`, id).Scan(&sha, &manRaw, &wasm)
	if errors.Is(err, sql.ErrNoRows) {
		return Manifest{}, nil, "", fmt.Errorf("plugin %s has no module in the database: upload it again", id)
	}
	if err != nil {
		return Manifest{}, nil, "", fmt.Errorf("read plugin %s's module: %w", id, err)
	}
	if got := moduleSum(wasm); got != sha {
		return Manifest{}, nil, "", fmt.Errorf("plugin %s's module in the database is damaged (sha256 %s, recorded %s): upload it again", id, got, sha)
	}
	var man Manifest
	if err := json.Unmarshal([]byte(manRaw), &man); err != nil {
		return Manifest{}, nil, "", fmt.Errorf("read plugin %s's manifest: %w", id, err)
	}
	return man, wasm, sha, nil
}

// Refresh brings this replica's copy of plugin id in line with the
// database: installed, upgraded, turned on or off, configured, isolated
// otherwise or deleted by another replica. With id "" every plugin is
// refreshed. A module this replica has not run yet is compiled (from the
// local compilation cache when it holds it).
//
// A replica calls it when the bus tells it of another's change
// (cluster.TopicPlugin); WithBus does so.
func (m *Manager) Refresh(ctx context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id == "" {
		return m.refreshAll(ctx)
	}
	if _, err := m.refreshLocked(ctx, id); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil // deleted: this replica has dropped it too
}

// refreshAll refreshes every plugin; the caller holds mu.
func (m *Manager) refreshAll(ctx context.Context) error {
	rows, err := m.readStored(ctx, "")
	if err != nil {
		return err
	}
	var errs []error
	seen := map[string]bool{}
	for _, r := range rows {
		seen[r.id] = true
		if err := m.sync(ctx, r); err != nil {
			errs = append(errs, err)
		}
	}
	for id := range m.plugins {
		if !seen[id] {
			m.drop(ctx, id)
		}
	}
	m.rebuild()
	return errors.Join(errs...)
}

// refreshLocked refreshes one plugin and returns it, or ErrNotFound when
// the database no longer has it; the caller holds mu.
func (m *Manager) refreshLocked(ctx context.Context, id string) (*loaded, error) {
	rows, err := m.readStored(ctx, id)
	if err != nil {
		return nil, err
	}
	defer m.rebuild()
	if len(rows) == 0 {
		m.drop(ctx, id)
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	if err := m.sync(ctx, rows[0]); err != nil {
		return nil, err
	}
	return m.plugins[id], nil
}

// sync makes this replica's copy of one plugin match its row r, loading
// its module when this replica runs another version or none; the caller
// holds mu and rebuilds the table.
func (m *Manager) sync(ctx context.Context, r stored) error {
	l := m.plugins[r.id]
	forced := Isolation(r.isolation)
	if l == nil || l.sha != r.sha || l.manifest != r.manifest {
		man, wasm, sha, err := m.readModule(ctx, r.id)
		if err != nil {
			return err
		}
		nl, err := m.build(ctx, man, wasm, forced)
		if err != nil {
			return fmt.Errorf("load plugin %s: %w", r.id, err)
		}
		nl.sha, nl.manifest = sha, r.manifest
		if l != nil {
			nl.stats = l.stats // an upgrade keeps counting
			l.plugin.Close(ctx)
			l.module.Close(ctx) // calls in flight keep running (wazero allows it)
		}
		m.plugins[r.id], l = nl, nl
	} else if l.info.Forced != forced {
		iso := l.info.Manifest.Isolation
		if forced != "" {
			iso = forced
		}
		p, err := m.newPlugin(r.id, l.module, iso, l.plugin.limits)
		if err != nil {
			return fmt.Errorf("isolate plugin %s: %w", r.id, err)
		}
		old := l.plugin
		l.plugin = p
		old.Close(ctx)
	}
	var settings map[string]any
	if err := json.Unmarshal([]byte(r.settings), &settings); err != nil {
		m.logger.Error("a plugin's saved settings are not JSON; using its defaults", "plugin", r.id, "err", err)
	}
	wasOn := l.info.Enabled
	l.info.Enabled, l.info.DisabledReason, l.info.Forced = r.enabled, r.reason, forced
	l.info.Settings = l.info.Manifest.WithDefaults(settings)
	if l.info.Enabled && !wasOn {
		l.plugin.resetStarts() // an administrator's word: try at once
	}
	return nil
}

// drop forgets a plugin this replica runs: its instances, module and
// recent logs; the caller holds mu and rebuilds the table.
func (m *Manager) drop(ctx context.Context, id string) {
	l := m.plugins[id]
	if l == nil {
		return
	}
	delete(m.plugins, id)
	m.engine.clearLogs(id)
	l.plugin.Close(ctx)
	l.module.Close(ctx)
}

// publish tells the other replicas that plugin id changed. The change is
// made already: a failure is logged, and the others catch up when the bus
// reports the gap (cluster.Event.Missed).
func (m *Manager) publish(ctx context.Context, id string) {
	if err := m.bus.Publish(context.WithoutCancel(ctx), cluster.Event{Topic: cluster.TopicPlugin, Key: id}); err != nil {
		m.logger.Error("other replicas were not told of a plugin change", "plugin", id, "err", err)
	}
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
// administrator turns it on again, chat turns skip it for nothing. Every
// replica turns it off: the module is the same everywhere.
func (m *Manager) disableFailing(id string, p *Plugin, reason error) {
	// The caller's request may be over: this change must happen anyway.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m.mu.Lock()
	l := m.plugins[id]
	if l == nil || l.plugin != p || !l.info.Enabled {
		m.mu.Unlock()
		return // replaced, deleted or already off meanwhile
	}
	why := reason.Error()
	if _, err := m.db.ExecContext(ctx, `UPDATE plugins SET enabled = FALSE, disabled_reason = $1 WHERE id = $2`, why, id); err != nil {
		m.logger.Error("could not save that a failing plugin is disabled", "plugin", id, "err", err)
	}
	l.info.Enabled, l.info.DisabledReason = false, why
	m.rebuild()
	m.mu.Unlock()
	m.logger.Error("plugin disabled: an administrator must turn it on again (PUT /plugins/toggle/"+id+") once it is fixed", "plugin", id, "reason", why)
	m.engine.record(id, slog.LevelError, "", "", "grin turned the plugin off: "+why)
	m.publish(ctx, id)
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
	info, err := m.install(ctx, man, wasm)
	if err != nil {
		return Installed{}, err
	}
	m.publish(ctx, man.ID)
	return info, nil
}

func (m *Manager) install(ctx context.Context, man Manifest, wasm []byte) (Installed, error) {
	sha := moduleSum(wasm)
	m.mu.Lock()
	defer m.mu.Unlock()
	// An upgrade keeps the isolation an administrator forced, as the
	// database has it (another replica may have changed it).
	var forced Isolation
	var iso string
	switch err := m.db.QueryRowContext(ctx, `SELECT isolation FROM plugins WHERE id = $1`, man.ID).Scan(&iso); {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return Installed{}, fmt.Errorf("read plugin %s: %w", man.ID, err)
	default:
		forced = Isolation(iso)
	}
	l, err := m.build(ctx, man, wasm, forced)
	if err != nil {
		return Installed{}, err
	}
	manRaw, _ := json.MarshalIndent(man, "", "  ")
	l.sha, l.manifest = sha, string(manRaw)
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
	// The settings are read and written in one transaction under the
	// plugin's lock, so a change of settings on another replica meanwhile
	// is kept or replaced whole, never half.
	err = database.Locked(ctx, m.db, "grin.plugin:"+man.ID, func(tx *sql.Tx) error {
		var raw string
		saved := map[string]any{}
		switch err := tx.QueryRowContext(ctx, `SELECT settings FROM plugins WHERE id = $1`, man.ID).Scan(&raw); {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		default:
			json.Unmarshal([]byte(raw), &saved)
		}
		settings := l.info.Manifest.WithDefaults(saved)
		if man.SettingsSchema != nil && l.info.Manifest.ValidateSettings(settings) != nil {
			// The new version's schema refuses the old settings.
			settings = l.info.Manifest.WithDefaults(nil)
		}
		l.info.Settings = settings
		sraw, _ := json.Marshal(settings)
		// An upgrade keeps the row's enabled and disabled_reason: an
		// administrator who turned a plugin off did not ask for a new
		// version to run.
		if err := tx.QueryRowContext(ctx, `INSERT INTO plugins (id, enabled, settings, isolation, installed_at) VALUES ($1, TRUE, $2, $3, $4)
			ON CONFLICT (id) DO UPDATE SET settings = excluded.settings
			RETURNING enabled, disabled_reason`, man.ID, string(sraw), string(forced), time.Now().UnixMilli()).Scan(&l.info.Enabled, &l.info.DisabledReason); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO plugin_modules (plugin_id, sha256, manifest, module) VALUES ($1, $2, $3, $4)
			ON CONFLICT (plugin_id) DO UPDATE SET sha256 = excluded.sha256, manifest = excluded.manifest, module = excluded.module`,
			man.ID, sha, string(manRaw), wasm)
		return err
	})
	if err != nil {
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

// Toggle enables a disabled plugin and disables an enabled one, as the
// database has it (another replica may have toggled it meanwhile).
func (m *Manager) Toggle(ctx context.Context, id string) (Installed, error) {
	return m.change(ctx, id, func(l *loaded) error {
		res, err := m.db.ExecContext(ctx, `UPDATE plugins SET enabled = NOT enabled, disabled_reason = '' WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("toggle plugin %s: %w", id, err)
		}
		return found(res, id)
	})
}

// SetSettings validates settings against the plugin's schema and saves them.
func (m *Manager) SetSettings(ctx context.Context, id string, settings map[string]any) (Installed, error) {
	return m.change(ctx, id, func(l *loaded) error {
		settings = l.info.Manifest.WithDefaults(settings)
		if err := l.info.Manifest.ValidateSettings(settings); err != nil {
			return fmt.Errorf("%w: settings of %s: %v", ErrArchive, id, err)
		}
		raw, _ := json.Marshal(settings)
		res, err := m.db.ExecContext(ctx, `UPDATE plugins SET settings = $1 WHERE id = $2`, string(raw), id)
		if err != nil {
			return fmt.Errorf("save settings of %s: %w", id, err)
		}
		return found(res, id)
	})
}

// ForceIsolation makes a plugin run in the given mode whatever its
// manifest says ("" restores the manifest's).
func (m *Manager) ForceIsolation(ctx context.Context, id string, iso Isolation) (Installed, error) {
	if iso != "" && !iso.Valid() {
		return Installed{}, fmt.Errorf("%w: isolation %q must be shared, per-user or per-call", ErrArchive, iso)
	}
	return m.change(ctx, id, func(l *loaded) error {
		res, err := m.db.ExecContext(ctx, `UPDATE plugins SET isolation = $1 WHERE id = $2`, string(iso), id)
		if err != nil {
			return fmt.Errorf("isolate plugin %s: %w", id, err)
		}
		return found(res, id)
	})
}

// change applies write to plugin id's row, given the plugin as the
// database has it, then brings this replica's copy in line with the database and
// tells the others.
func (m *Manager) change(ctx context.Context, id string, write func(l *loaded) error) (Installed, error) {
	info, err := func() (Installed, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		// The database's version of the plugin, which another replica
		// may have installed, upgraded or deleted since this one heard.
		l, err := m.refreshLocked(ctx, id)
		if err != nil {
			return Installed{}, err
		}
		if err := write(l); err != nil {
			if errors.Is(err, ErrNotFound) {
				m.drop(ctx, id) // deleted on another replica
				m.rebuild()
			}
			return Installed{}, err
		}
		if l, err = m.refreshLocked(ctx, id); err != nil {
			return Installed{}, err
		}
		return l.info, nil
	}()
	if err != nil {
		return Installed{}, err
	}
	m.publish(ctx, id)
	return info, nil
}

// found is ErrNotFound when an update changed no row.
func found(res sql.Result, id string) error {
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return nil
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

// Delete uninstalls a plugin, its module and its stored data, and
// forgets its recent logs.
func (m *Manager) Delete(ctx context.Context, id string) error {
	err := func() error {
		m.mu.Lock()
		defer m.mu.Unlock()
		res, err := m.db.ExecContext(ctx, `DELETE FROM plugins WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("delete plugin %s: %w", id, err)
		}
		if err := found(res, id); err != nil {
			m.drop(ctx, id)
			m.rebuild()
			return err
		}
		// Its module goes with the row (ON DELETE CASCADE).
		if err := (keyValues{m.db}).erasePlugin(ctx, id); err != nil {
			return fmt.Errorf("delete plugin %s's stored data: %w", id, err)
		}
		m.drop(ctx, id)
		m.rebuild()
		return nil
	}()
	if err != nil {
		return err
	}
	m.publish(ctx, id)
	return nil
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
