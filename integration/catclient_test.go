package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestCatClient runs the Cheshire Cat's official TypeScript client
// (ccat-api, pinned in integration/catclient) against the built binary in
// the three ways the Cat is run: without authentication, with API keys and
// with JWTs. Every method the client offers is called and every response is
// checked against the client's own types. Without Node or `npm ci` in
// integration/catclient it skips, saying how to run it; CI sets
// GRIN_REQUIRE_NODE=1, which turns the skip into a failure.
func TestCatClient(t *testing.T) {
	dir := "catclient"
	_, errNode := exec.LookPath("node")
	_, errMods := os.Stat(dir + "/node_modules/ccat-api")
	if errNode != nil || errMods != nil {
		msg := "the Cat's client test needs Node and its packages: cd integration/catclient && npm ci"
		if os.Getenv("GRIN_REQUIRE_NODE") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	tsc := exec.Command("npx", "--no-install", "tsc", "-p", ".")
	tsc.Dir = dir
	if out, err := tsc.CombinedOutput(); err != nil {
		t.Fatalf("the test does not type-check against the client's types: %v\n%s", err, out)
	}
	wasm, manifest := buildAuthorPlugin(t)
	zipPath := filepath.Join(t.TempDir(), "author.zip")
	if err := os.WriteFile(zipPath, zipOf(t, map[string][]byte{"manifest.json": manifest, "plugin.wasm": wasm}), 0o600); err != nil {
		t.Fatal(err)
	}
	const key = "catclient-key-0123456789"
	const password = "catclient-admin-password"
	modes := []struct {
		name string
		env  []string
	}{
		{"off", nil},
		{"keys", []string{"GRIN_API_KEY=" + key, "GRIN_API_KEY_WS=" + key}},
		{"jwt", []string{"GRIN_AUTH=required"}},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			url := server(t, append(m.env, "GRIN_ADMIN_PASSWORD="+password)...)
			node := exec.Command("node", "--test", "--test-reporter=spec", "build/test.js")
			node.Dir = dir
			node.Env = append(os.Environ(), "GRIN_URL="+url, "GRIN_MODE="+m.name, "GRIN_API_KEY="+key,
				"GRIN_ADMIN_PASSWORD="+password, "GRIN_PLUGIN_ZIP="+zipPath)
			if out, err := node.CombinedOutput(); err != nil {
				t.Fatalf("node test: %v\n%s", err, out)
			}
		})
	}
}
