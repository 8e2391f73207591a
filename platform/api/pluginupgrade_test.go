package api_test

import (
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/grin-ai/grin/platform/app/apptest"
)

// oldDataDir lays out a data directory as grin left it before plugin
// modules moved into the database: the database at schema version 10
// (the last before), the plugin's row, and its module and manifest in
// plugins/<id>/.
func oldDataDir(t *testing.T, manifest string, wasm []byte) string {
	t.Helper()
	dir := t.TempDir()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "grin.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	files, err := filepath.Glob("../database/migrations/00*.sql")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	for _, f := range files[:10] {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(string(b)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	// As that grin wrote them: a user's settings and a forced isolation.
	for _, q := range []string{
		"PRAGMA user_version = 10",
		`INSERT INTO plugins (id, enabled, settings, isolation, installed_at) VALUES ('greet', 1, '{"greeting":"Welcome back","field":"text"}', 'per-user', 1700000000000)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	plugin := filepath.Join(dir, "plugins", "greet")
	if err := os.MkdirAll(plugin, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"manifest.json": []byte(manifest), "plugin.wasm": wasm} {
		if err := os.WriteFile(filepath.Join(plugin, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestOldDataDirKeepsItsPlugins: a data directory made by a grin that
// kept plugin modules as files keeps its plugins after the upgrade, with
// their settings and isolation; the module moves into the database and
// its files go, so later starts need the database alone.
func TestOldDataDirKeepsItsPlugins(t *testing.T) {
	apptest.SQLiteOnly(t, "a data directory an older grin wrote, which only ran on SQLite")
	dir := oldDataDir(t, strings.Replace(greetManifest, "VERSION", "1", 1), buildWasm(t, "../../wasmhooks/testdata/guests/redact"))
	check := func(in *apptest.Instance, when string) {
		t.Helper()
		var p struct {
			Data struct {
				Version string         `json:"version"`
				Active  bool           `json:"active"`
				Forced  string         `json:"forced_isolation"`
				Setting map[string]any `json:"settings"`
			}
		}
		if r := in.Do("GET", "/plugins/greet", nil); r.Status != 200 {
			t.Fatalf("%s: GET /plugins/greet: %d %s", when, r.Status, r.Body)
		} else {
			r.JSON(t, &p)
		}
		if p.Data.Version != "1" || !p.Data.Active || p.Data.Forced != "per-user" || p.Data.Setting["greeting"] != "Welcome back" {
			t.Errorf("%s: %+v", when, p.Data)
		}
		var f frame
		in.Do("POST", "/message", map[string]any{"text": "hello"}, "user_id", "alice").JSON(t, &f)
		if !strings.HasPrefix(f.Text, "Welcome back, alice! ") {
			t.Errorf("%s: reply %q, want the plugin's greeting", when, f.Text)
		}
	}
	in := apptest.StartWith(t, apptest.Config(dir))
	check(in, "after the upgrade")
	if _, err := os.Stat(filepath.Join(dir, "plugins")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the module files are still in the data directory: %v", err)
	}
	var n int
	if err := in.Database().QueryRow(`SELECT count(*) FROM plugin_modules WHERE plugin_id = 'greet'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("modules in the database: %d, %v", n, err)
	}
	if !strings.Contains(in.Logs.String(), "plugin module moved from the data directory into the database") {
		t.Errorf("the move is not logged:\n%s", in.Logs.String())
	}
	in.Close()
	check(apptest.StartWith(t, apptest.Config(dir)), "at the next start")
}
