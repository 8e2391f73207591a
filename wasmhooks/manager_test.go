package wasmhooks

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grin-ai/grin/integration/pgtest"
	"github.com/grin-ai/grin/platform/cluster"
	"github.com/grin-ai/grin/platform/cluster/clustertest"
	"github.com/grin-ai/grin/platform/database"
	"github.com/grin-ai/grin/platform/database/databasetest"
	"github.com/grin-ai/grin/platform/hooks"
)

// greetPlugin is the redact guest's greeting hook with settings whose
// schema gives defaults; version names the upload.
const greetPlugin = `{"id":"greet","name":"Greet","version":"VERSION","hooks":[{"name":"before_cat_sends_message","priority":1}],
	"settings_schema":{"type":"object","additionalProperties":false,"properties":{
		"greeting":{"type":"string","default":"Hello"},
		"field":{"type":"string","enum":["text","content","both"],"default":"text"}}}}`

// zipArchive is a plugin archive of manifest and module.
func zipArchive(t testing.TB, manifest string, wasm []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	for name, b := range map[string][]byte{"manifest.json": []byte(manifest), "plugin.wasm": wasm} {
		w, err := z.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func greetArchive(t testing.TB, version string) []byte {
	return zipArchive(t, strings.Replace(greetPlugin, "VERSION", version, 1), guest(t, "redact"))
}

// replica is one grin process's plugin host: its own engine and
// compilation cache, a manager on a shared database, and its log.
type replica struct {
	*Manager
	log *bytes.Buffer
}

type replicaConfig struct {
	legacyDir string
	bus       cluster.Bus
	engine    EngineConfig
}

func newReplica(t *testing.T, db *sql.DB, c replicaConfig) replica {
	t.Helper()
	var log bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &log}, nil))
	c.engine.CacheDir = filepath.Join(t.TempDir(), "wasm-cache")
	c.engine.Logger = logger
	e, err := NewEngine(context.Background(), c.engine)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var opts []ManagerOption
	if c.bus != nil {
		opts = append(opts, WithBus(c.bus))
	}
	m, err := NewManager(ctx, e, db, c.legacyDir, logger, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return replica{m, &log}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// reply is what the replica's plugins make of a reply "hi" to alice: the
// greeting when greet runs there, "hi" when it does not.
func (r replica) reply(t *testing.T) string {
	t.Helper()
	out, err := r.Run(context.Background(), hooks.BeforeCatSendsMessage, hooks.Caller{UserID: "alice-id", Username: "alice"}, json.RawMessage(`{"text":"hi"}`))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("reply %s: %v", out, err)
	}
	s, _ := m["text"].(string)
	return s
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// TestManagerOnEachEngine runs the installed plugins' behaviour suite on
// SQLite and on PostgreSQL: each case gets a new, empty database.
func TestManagerOnEachEngine(t *testing.T) {
	databasetest.Suite(t, databasetest.DB, []databasetest.Case[*sql.DB]{
		{Name: "a plugin, its settings, state and isolation outlive the manager", Run: testManagerKeeps},
		{Name: "the module is kept in the database, with its hash", Run: testManagerModuleInDatabase},
		{Name: "an upgrade replaces the module and keeps settings and state", Run: testManagerUpgrade},
		{Name: "deleting takes the row, the module and the plugin's data", Run: testManagerDelete},
		{Name: "a damaged module is not run, and the log says why", Run: testManagerDamagedModule},
		{Name: "an older grin's module files move into the database", Run: testManagerMovesLegacyFiles},
	}...)
}

func testManagerKeeps(t *testing.T, db *sql.DB) {
	ctx := context.Background()
	a := newReplica(t, db, replicaConfig{})
	if _, err := a.Install(ctx, greetArchive(t, "1")); err != nil {
		t.Fatal(err)
	}
	if got := a.reply(t); got != "Hello, alice! hi" {
		t.Fatalf("installed: %q", got)
	}
	must[Installed](t)(a.SetSettings(ctx, "greet", map[string]any{"greeting": "Bonjour"}))
	must[Installed](t)(a.ForceIsolation(ctx, "greet", PerCall))
	if p := must[Installed](t)(a.Toggle(ctx, "greet")); p.Enabled {
		t.Fatalf("toggled off: %+v", p)
	}
	if got := a.reply(t); got != "hi" {
		t.Errorf("turned off, the plugin still runs: %q", got)
	}

	b := newReplica(t, db, replicaConfig{})
	p := must[Installed](t)(b.Get("greet"))
	if p.Enabled || p.Settings["greeting"] != "Bonjour" || p.Settings["field"] != "text" || p.Forced != PerCall || p.Version != "1" {
		t.Errorf("read back: %+v", p)
	}
	if p := must[Installed](t)(b.Toggle(ctx, "greet")); !p.Enabled {
		t.Fatalf("toggled on: %+v", p)
	}
	if got := b.reply(t); got != "Bonjour, alice! hi" {
		t.Errorf("turned on again: %q", got)
	}
}

func testManagerModuleInDatabase(t *testing.T, db *sql.DB) {
	ctx := context.Background()
	legacy := filepath.Join(t.TempDir(), "plugins")
	a := newReplica(t, db, replicaConfig{legacyDir: legacy})
	wasm := guest(t, "redact")
	if _, err := a.Install(ctx, greetArchive(t, "1")); err != nil {
		t.Fatal(err)
	}
	var sha, manifest string
	var module []byte
	if err := db.QueryRow(`SELECT sha256, manifest, module FROM plugin_modules WHERE plugin_id = 'greet'`).Scan(&sha, &manifest, &module); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(wasm)
	if !bytes.Equal(module, wasm) || sha != hex.EncodeToString(sum[:]) {
		t.Errorf("stored module: %d bytes, sha256 %s; want the uploaded %d bytes, %x", len(module), sha, len(wasm), sum)
	}
	var man Manifest
	if err := json.Unmarshal([]byte(manifest), &man); err != nil || man.ID != "greet" || man.Version != "1" {
		t.Errorf("stored manifest %s: %v", manifest, err)
	}
	if _, err := os.Stat(legacy); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the data directory's plugins folder: %v, want none", err)
	}
}

func testManagerUpgrade(t *testing.T, db *sql.DB) {
	ctx := context.Background()
	a := newReplica(t, db, replicaConfig{})
	must[Installed](t)(a.Install(ctx, greetArchive(t, "1")))
	must[Installed](t)(a.SetSettings(ctx, "greet", map[string]any{"greeting": "Hi"}))
	must[Installed](t)(a.Toggle(ctx, "greet"))
	p := must[Installed](t)(a.Install(ctx, greetArchive(t, "2")))
	if p.Version != "2" || p.Enabled || p.Settings["greeting"] != "Hi" {
		t.Errorf("upgraded: %+v, want version 2, still off, its settings", p)
	}
	b := newReplica(t, db, replicaConfig{})
	if p := must[Installed](t)(b.Get("greet")); p.Version != "2" || p.Enabled || p.Settings["greeting"] != "Hi" {
		t.Errorf("upgrade read back: %+v", p)
	}
	var n int
	db.QueryRow(`SELECT count(*) FROM plugin_modules`).Scan(&n)
	if n != 1 {
		t.Errorf("%d modules stored after an upgrade, want 1", n)
	}
}

func testManagerDelete(t *testing.T, db *sql.DB) {
	ctx := context.Background()
	a := newReplica(t, db, replicaConfig{})
	must[Installed](t)(a.Install(ctx, greetArchive(t, "1")))
	if err := (keyValues{db}).set(ctx, "greet", "alice-id", "k", []byte("v"), 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete(ctx, "greet"); err != nil {
		t.Fatal(err)
	}
	if got := a.reply(t); got != "hi" {
		t.Errorf("deleted, the plugin still runs: %q", got)
	}
	for _, table := range []string{"plugins", "plugin_modules", "plugin_kv"} {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s after deletion: %d rows, %v", table, n, err)
		}
	}
	if err := a.Delete(ctx, "greet"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted twice: %v", err)
	}
	if _, err := a.Toggle(ctx, "greet"); !errors.Is(err, ErrNotFound) {
		t.Errorf("toggling a deleted plugin: %v", err)
	}
	if l := newReplica(t, db, replicaConfig{}).List(); len(l) != 0 {
		t.Errorf("a new manager lists %+v", l)
	}
}

func testManagerDamagedModule(t *testing.T, db *sql.DB) {
	ctx := context.Background()
	a := newReplica(t, db, replicaConfig{})
	must[Installed](t)(a.Install(ctx, greetArchive(t, "1")))
	damaged := bytes.Clone(guest(t, "redact"))
	damaged[len(damaged)/2] ^= 0xff
	if _, err := db.Exec(`UPDATE plugin_modules SET module = $1`, damaged); err != nil {
		t.Fatal(err)
	}
	b := newReplica(t, db, replicaConfig{})
	if l := b.List(); len(l) != 0 {
		t.Errorf("a damaged module is loaded: %+v", l)
	}
	if got := b.reply(t); got != "hi" {
		t.Errorf("a damaged module runs: %q", got)
	}
	if !strings.Contains(b.log.String(), "damaged") || !strings.Contains(b.log.String(), "upload it again") {
		t.Errorf("the log does not say the module is damaged:\n%s", b.log)
	}
}

func testManagerMovesLegacyFiles(t *testing.T, db *sql.DB) {
	ctx := context.Background()
	a := newReplica(t, db, replicaConfig{})
	must[Installed](t)(a.Install(ctx, greetArchive(t, "1")))
	must[Installed](t)(a.SetSettings(ctx, "greet", map[string]any{"greeting": "Hi"}))
	// What an older grin left: the row, and the files in the data
	// directory; no module in the database.
	legacy := filepath.Join(t.TempDir(), "plugins")
	writeLegacy(t, legacy, "greet", strings.Replace(greetPlugin, "VERSION", "1", 1), guest(t, "redact"))
	if _, err := db.Exec(`DELETE FROM plugin_modules`); err != nil {
		t.Fatal(err)
	}
	b := newReplica(t, db, replicaConfig{legacyDir: legacy})
	if got := b.reply(t); got != "Hi, alice! hi" {
		t.Errorf("after the move: %q", got)
	}
	if _, err := os.Stat(legacy); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the old files are still there: %v", err)
	}
	// Once moved, the database alone suffices.
	if got := newReplica(t, db, replicaConfig{}).reply(t); got != "Hi, alice! hi" {
		t.Errorf("a later start without the files: %q", got)
	}
}

// writeLegacy lays out a plugin as grin kept it before modules moved into
// the database: <dir>/<id>/manifest.json and plugin.wasm.
func writeLegacy(t *testing.T, dir, id, manifest string, wasm []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, id), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"manifest.json": []byte(manifest), "plugin.wasm": wasm} {
		if err := os.WriteFile(filepath.Join(dir, id, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReplicasShareOnePostgres: two managers on one PostgreSQL database,
// as two replicas. What one installs, toggles, configures, isolates,
// upgrades or deletes, the other runs or stops running once it refreshes.
func TestReplicasShareOnePostgres(t *testing.T) {
	server := pgtest.Start(t)
	url := server.Database(t)
	open := func() *sql.DB {
		db, err := database.OpenPostgres(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	ctx := context.Background()
	a, b := newReplica(t, open(), replicaConfig{}), newReplica(t, open(), replicaConfig{})
	steps := []struct {
		name   string
		change func() error
		id     string // refreshed on b: one plugin, or "" for all
		want   string
	}{
		{"installed", func() error { _, err := a.Install(ctx, greetArchive(t, "1")); return err }, "greet", "Hello, alice! hi"},
		{"configured", func() error {
			_, err := a.SetSettings(ctx, "greet", map[string]any{"greeting": "Bonjour"})
			return err
		}, "greet", "Bonjour, alice! hi"},
		{"turned off", func() error { _, err := a.Toggle(ctx, "greet"); return err }, "greet", "hi"},
		{"turned on", func() error { _, err := a.Toggle(ctx, "greet"); return err }, "", "Bonjour, alice! hi"},
		{"isolated per call", func() error { _, err := a.ForceIsolation(ctx, "greet", PerCall); return err }, "greet", "Bonjour, alice! hi"},
		{"greeting the content too", func() error {
			_, err := a.SetSettings(ctx, "greet", map[string]any{"greeting": "Bonjour", "field": "both"})
			return err
		}, "greet", "Bonjour, alice! hi"},
		{"upgraded", func() error { _, err := a.Install(ctx, greetArchive(t, "2")); return err }, "greet", "Bonjour, alice! hi"},
		{"deleted", func() error { return a.Delete(ctx, "greet") }, "greet", "hi"},
		{"installed again, everything refreshed", func() error { _, err := a.Install(ctx, greetArchive(t, "3")); return err }, "", "Hello, alice! hi"},
	}
	for _, s := range steps {
		before := b.List()
		if err := s.change(); err != nil {
			t.Fatalf("%s on a: %v", s.name, err)
		}
		if got := a.reply(t); got != s.want {
			t.Errorf("%s: a answers %q, want %q", s.name, got, s.want)
		}
		if got := b.List(); !sameList(got, before) {
			t.Errorf("%s: b changed before it refreshed: %+v", s.name, got)
		}
		if err := b.Refresh(ctx, s.id); err != nil {
			t.Fatalf("%s: refresh b: %v", s.name, err)
		}
		if got := b.reply(t); got != s.want {
			t.Errorf("%s: b answers %q, want %q", s.name, got, s.want)
		}
		if got, want := b.List(), a.List(); !sameList(got, want) {
			t.Errorf("%s: b lists %+v, a %+v", s.name, got, want)
		}
	}
	p := must[Installed](t)(b.Get("greet"))
	if p.Version != "3" || p.Forced != "" {
		t.Errorf("b's plugin at the end: %+v", p)
	}
}

// sameList compares what two managers list, as the API would show it.
func sameList(a, b []Installed) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// TestReplicasFollowTheBus: every change a manager makes, auto-disabling
// included, is published on the bus given to it, and a replica told of it
// brings its copy in line without being asked.
func TestReplicasFollowTheBus(t *testing.T) {
	databasetest.EachEngine(t, func(t *testing.T, engine database.Engine, open databasetest.Open) {
		db := open(t)
		ctx := context.Background()
		bus := &clustertest.Hub{Synchronous: true}
		a := newReplica(t, db, replicaConfig{bus: bus.Join("a")})
		// b runs its plugins with less memory than the hungry one needs:
		// its instances fail there, and b turns it off everywhere.
		b := newReplica(t, db, replicaConfig{bus: bus.Join("b"), engine: EngineConfig{MemoryMiB: 32, InitFailures: 1, InitBackoff: time.Nanosecond}})
		hungry := zipArchive(t, `{"id":"hungry","name":"Hungry","version":"1","hooks":[{"name":"before_cat_reads_message","priority":1}]}`, guest(t, "hungryinit"))
		steps := []struct {
			name   string
			change func() error
			want   string // b's reply
		}{
			{"install", func() error { _, err := a.Install(ctx, greetArchive(t, "1")); return err }, "Hello, alice! hi"},
			{"settings", func() error {
				_, err := a.SetSettings(ctx, "greet", map[string]any{"greeting": "Hey"})
				return err
			}, "Hey, alice! hi"},
			{"isolation", func() error { _, err := a.ForceIsolation(ctx, "greet", PerUser); return err }, "Hey, alice! hi"},
			{"toggle", func() error { _, err := a.Toggle(ctx, "greet"); return err }, "hi"},
			{"delete", func() error { return a.Delete(ctx, "greet") }, "hi"},
		}
		for _, s := range steps {
			if err := s.change(); err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			if got := b.reply(t); got != s.want {
				t.Errorf("after %s on a, b answers %q, want %q", s.name, got, s.want)
			}
			if got, want := b.List(), a.List(); !sameList(got, want) {
				t.Errorf("after %s on a, b lists %+v, a %+v", s.name, got, want)
			}
		}
		if p, err := b.Get("greet"); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleted on a, b still has %+v", p)
		}
		must[Installed](t)(a.Install(ctx, hungry))
		if _, err := b.Run(ctx, hooks.BeforeCatReadsMessage, hooks.Caller{UserID: "alice-id"}, json.RawMessage(`{"text":"hello"}`)); err != nil {
			t.Fatal(err)
		}
		for _, r := range []replica{b, a} {
			if p := must[Installed](t)(r.Get("hungry")); p.Enabled || !strings.Contains(p.DisabledReason, "failed to start") {
				t.Errorf("after b's failures to start it: %+v, want off with the reason", p)
			}
		}
		want := []string{"plugin:greet@a", "plugin:greet@a", "plugin:greet@a", "plugin:greet@a", "plugin:greet@a", "plugin:hungry@a", "plugin:hungry@b"}
		var got []string
		for _, e := range bus.Published() {
			got = append(got, e.Topic+":"+e.Key+"@"+e.Origin)
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("published %v, want %v", got, want)
		}
	})
}
