package api_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"mime/multipart"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/grin-ai/grin/platform/app/apptest"
)

var (
	wasmMu    sync.Mutex
	wasmBuilt = map[string][]byte{}
)

// buildWasm compiles a Go plugin from source with the build line hook
// authors use.
func buildWasm(t *testing.T, dir string) []byte {
	t.Helper()
	wasmMu.Lock()
	defer wasmMu.Unlock()
	if b, ok := wasmBuilt[dir]; ok {
		return b
	}
	out := filepath.Join(t.TempDir(), "plugin.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", dir, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	wasmBuilt[dir] = b
	return b
}

func zipPlugin(t *testing.T, manifest string, wasm []byte) []byte {
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	w, _ := z.Create("manifest.json")
	w.Write([]byte(manifest))
	w, _ = z.Create("plugin.wasm")
	w.Write(wasm)
	z.Close()
	return buf.Bytes()
}

func uploadPlugin(t *testing.T, in *apptest.Instance, archive []byte, headers ...string) apptest.Response {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	part, _ := w.CreateFormFile("file", "plugin.zip")
	part.Write(archive)
	w.Close()
	return in.Do("POST", "/plugins/upload", body.Bytes(), append([]string{"Content-Type", w.FormDataContentType()}, headers...)...)
}

// TestSeedExamplePlugin: the seed's two Python hooks, shipped as a Go
// WebAssembly plugin. Installed, each user recalls only the documents they
// uploaded; toggled off, everything shared; it survives a restart.
func TestSeedExamplePlugin(t *testing.T) {
	manifest, err := os.ReadFile("../../wasmhooks/examples/author/manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	archive := zipPlugin(t, string(manifest), buildWasm(t, "../../wasmhooks/examples/author"))
	dir := t.TempDir()
	in := apptest.StartWith(t, apptest.Config(dir))
	if r := uploadPlugin(t, in, archive); r.Status != 200 {
		t.Fatalf("install: %d %s", r.Status, r.Body)
	}
	// Compiled once, into the data directory's cache, for restarts.
	if entries, err := os.ReadDir(filepath.Join(dir, "wasm-cache")); err != nil || len(entries) == 0 {
		t.Errorf("compilation cache in the data directory: %v, %d entries", err, len(entries))
	}
	upload(t, in, "?wait=true", "alice.txt", "text/plain", []byte("The tarts were stolen by the Knave of Hearts."), nil, "user_id", "alice")
	upload(t, in, "?wait=true", "bob.txt", "text/plain", []byte("The tarts were baked by the Queen of Hearts."), nil, "user_id", "bob")
	recallOwn := func(in *apptest.Instance, u string) []doc {
		var f frame
		in.Do("POST", "/message", map[string]any{"text": "Who made the tarts of Hearts?"}, "user_id", u).JSON(t, &f)
		return f.Why.Memory.Declarative
	}
	for _, u := range []string{"alice", "bob"} {
		got := recallOwn(in, u)
		if len(got) != 1 || got[0].Metadata["author"] != u {
			t.Errorf("%s recalls %+v, want only their own upload", u, got)
		}
	}
	// Toggled off: everything shared, at once.
	if r := in.Do("PUT", "/plugins/toggle/author", nil); r.Status != 200 || !strings.Contains(r.Map(t)["info"].(string), "deactivated") {
		t.Fatalf("toggle: %d %s", r.Status, r.Body)
	}
	if got := recallOwn(in, "alice"); len(got) != 2 {
		t.Errorf("plugin off: alice recalls %d documents, want both", len(got))
	}
	in.Do("PUT", "/plugins/toggle/author", nil)
	in.Close()

	// Installed plugins persist and load at start.
	again := apptest.StartWith(t, apptest.Config(dir))
	var list struct {
		Installed []struct {
			ID     string `json:"id"`
			Active bool   `json:"active"`
		} `json:"installed"`
	}
	again.Do("GET", "/plugins", nil).JSON(t, &list)
	if len(list.Installed) != 1 || list.Installed[0].ID != "author" || !list.Installed[0].Active {
		t.Fatalf("after restart: %+v", list)
	}
	if got := recallOwn(again, "bob"); len(got) != 1 || got[0].Metadata["author"] != "bob" {
		t.Errorf("after restart bob recalls %+v", got)
	}
	// Deleted: gone, and memories shared again.
	if r := again.Do("DELETE", "/plugins/author", nil); r.Status != 200 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if r := again.Do("GET", "/plugins/author", nil); r.Status != 404 {
		t.Errorf("deleted plugin: %d", r.Status)
	}
	if got := recallOwn(again, "bob"); len(got) != 2 {
		t.Errorf("plugin deleted: bob recalls %d", len(got))
	}
}

func TestPluginSettingsAndRefusals(t *testing.T) {
	in := apptest.Start(t)
	upper := buildWasm(t, "../../wasmhooks/testdata/guests/upper")
	manifest := `{"id":"shout","name":"Shout","version":"0.1.0","hooks":[{"name":"before_cat_reads_message","priority":5}],
		"settings_schema":{"type":"object","properties":{"suffix":{"type":"string","maxLength":3}},"additionalProperties":false}}`
	if r := uploadPlugin(t, in, zipPlugin(t, manifest, upper)); r.Status != 200 {
		t.Fatalf("install: %d %s", r.Status, r.Body)
	}
	var f frame
	in.Do("POST", "/message", map[string]any{"text": "hello"}, "user_id", "alice").JSON(t, &f)
	if f.Why.Input != "HELLO" {
		t.Errorf("the hook did not run: input %q", f.Why.Input)
	}
	if r := in.Do("PUT", "/plugins/settings/shout", map[string]any{"suffix": "!!"}); r.Status != 200 {
		t.Fatalf("settings: %d %s", r.Status, r.Body)
	}
	in.Do("POST", "/message", map[string]any{"text": "hello"}, "user_id", "alice").JSON(t, &f)
	if f.Why.Input != "HELLO!!" {
		t.Errorf("settings not in force: %q", f.Why.Input)
	}
	for _, bad := range []map[string]any{{"suffix": "toolong"}, {"suffix": 3}, {"other": "x"}} {
		if r := in.Do("PUT", "/plugins/settings/shout", bad); r.Status != 422 {
			t.Errorf("settings %v: %d %s", bad, r.Status, r.Body)
		}
	}
	var s struct {
		Value map[string]any `json:"value"`
	}
	in.Do("GET", "/plugins/settings/shout", nil).JSON(t, &s)
	if s.Value["suffix"] != "!!" {
		t.Errorf("refused settings changed the saved ones: %v", s.Value)
	}

	bad := buildWasm(t, "../../wasmhooks/testdata/guests/badimport")
	for _, tc := range []struct {
		name    string
		archive []byte
		says    string
	}{
		{"unknown import", zipPlugin(t, strings.Replace(manifest, `"shout"`, `"bad"`, 1), bad), "env.open_socket"},
		{"no manifest", func() []byte {
			var buf bytes.Buffer
			z := zip.NewWriter(&buf)
			w, _ := z.Create("plugin.wasm")
			w.Write(upper)
			z.Close()
			return buf.Bytes()
		}(), "manifest.json"},
		{"hook not exported", zipPlugin(t, strings.Replace(manifest, "before_cat_reads_message", "nonsense_hook", 1), upper), "nonsense_hook"},
		{"bad id", zipPlugin(t, strings.Replace(manifest, `"shout"`, `"../etc"`, 1), upper), "id"},
		{"not an archive", []byte("hello"), "zip or tar"},
		{"not wasm", zipPlugin(t, manifest, []byte("\x00asm garbage")), "invalid module"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := uploadPlugin(t, in, tc.archive)
			if r.Status != 422 || !strings.Contains(r.Detail(), tc.says) {
				t.Errorf("%d %s, want 422 mentioning %q", r.Status, r.Body, tc.says)
			}
		})
	}
	var list struct {
		Installed []json.RawMessage `json:"installed"`
	}
	in.Do("GET", "/plugins", nil).JSON(t, &list)
	if len(list.Installed) != 1 {
		t.Errorf("refused uploads installed something: %d plugins", len(list.Installed))
	}
}

// TestFailingPluginIsSkipped: a plugin that loops fails alone; the chat
// answers, with the previous payload.
func TestFailingPluginIsSkipped(t *testing.T) {
	in := apptest.Start(t)
	loop := buildWasm(t, "../../wasmhooks/testdata/guests/loop")
	uploadPlugin(t, in, zipPlugin(t, `{"id":"loop","name":"Loop","version":"1","timeout_ms":50,"hooks":[{"name":"before_cat_reads_message","priority":1}]}`, loop))
	var f frame
	r := in.Do("POST", "/message", map[string]any{"text": "still answering?"}, "user_id", "alice")
	r.JSON(t, &f)
	if r.Status != 200 || f.Why.Input != "still answering?" {
		t.Fatalf("with a looping plugin: %d %s", r.Status, r.Body)
	}
	if !strings.Contains(in.Logs.String(), "plugin=loop") || !strings.Contains(in.Logs.String(), "deadline") {
		t.Errorf("the failure is not logged with the plugin's id")
	}
}

// TestAdministratorForcesIsolation: a careless plugin keeps the previous
// caller in a global; forced per-user, nothing passes between users.
func TestAdministratorForcesIsolation(t *testing.T) {
	in := apptest.Start(t)
	global := buildWasm(t, "../../wasmhooks/testdata/guests/global")
	uploadPlugin(t, in, zipPlugin(t, `{"id":"careless","name":"Careless","version":"1","hooks":[{"name":"before_cat_reads_message","priority":1}]}`, global))
	said := func(u string) string {
		var f frame
		in.Do("POST", "/message", map[string]any{"text": "hi"}, "user_id", u).JSON(t, &f)
		return f.Why.Input
	}
	said("alice")
	if got := said("bob"); got != "previous caller: alice" {
		t.Fatalf("shared isolation: bob's message became %q (the leak the mode allows)", got)
	}
	if r := in.Do("PUT", "/plugins/isolation/careless", map[string]any{"isolation": "per-user"}); r.Status != 200 {
		t.Fatalf("force: %d %s", r.Status, r.Body)
	}
	said("alice")
	if got := said("bob"); got != "previous caller: " {
		t.Errorf("per-user: bob's message became %q", got)
	}
	if r := in.Do("PUT", "/plugins/isolation/careless", map[string]any{"isolation": "sometimes"}); r.Status != 422 {
		t.Errorf("bad isolation: %d", r.Status)
	}
	var p struct {
		Data struct {
			Forced string `json:"forced_isolation"`
		} `json:"data"`
	}
	in.Do("GET", "/plugins/careless", nil).JSON(t, &p)
	if p.Data.Forced != "per-user" {
		t.Errorf("forced isolation not shown: %+v", p)
	}
}

// TestChangesDoNotDropMessagesInFlight: while messages pass through a slow
// plugin, it is toggled, upgraded and deleted; every message is answered.
func TestChangesDoNotDropMessagesInFlight(t *testing.T) {
	in := apptest.Start(t)
	slow := buildWasm(t, "../../wasmhooks/testdata/guests/slow")
	manifest := `{"id":"slow","name":"Slow","version":"1","timeout_ms":2000,"hooks":[{"name":"before_cat_reads_message","priority":1}]}`
	if r := uploadPlugin(t, in, zipPlugin(t, manifest, slow)); r.Status != 200 {
		t.Fatalf("install: %d %s", r.Status, r.Body)
	}
	var wg sync.WaitGroup
	failures := make(chan string, 100)
	for u := range 6 {
		wg.Go(func() {
			for range 5 {
				r := in.Do("POST", "/message", map[string]any{"text": "still there?"}, "user_id", "u"+string(rune('a'+u)))
				if r.Status != 200 {
					failures <- r.Detail()
				}
			}
		})
	}
	in.Do("PUT", "/plugins/toggle/slow", nil)
	in.Do("PUT", "/plugins/toggle/slow", nil)
	uploadPlugin(t, in, zipPlugin(t, strings.Replace(manifest, `"version":"1"`, `"version":"2"`, 1), slow))
	in.Do("DELETE", "/plugins/slow", nil)
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Errorf("a message failed while the plugin changed: %s", f)
	}
}
