package api_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grin-ai/grin/platform/app/apptest"
)

// logLines returns the lines of the instance's log that contain every one
// of words.
func logLines(in *apptest.Instance, words ...string) []string {
	var out []string
	for _, l := range strings.Split(in.Logs.String(), "\n") {
		ok := l != ""
		for _, w := range words {
			ok = ok && strings.Contains(l, w)
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// TestPluginLogFloodIsBounded: a plugin logging 20,000 lines in a loop
// gets its burst and its rate, cut to the line cap; the rest is dropped and
// counted in the log, and the hook's answer still arrives.
func TestPluginLogFloodIsBounded(t *testing.T) {
	cfg := apptest.Config(t.TempDir())
	cfg.PluginLogRate, cfg.PluginLogBurst, cfg.PluginLogLineBytes = 1, 10, 256
	in := apptest.StartWith(t, cfg)
	flood := buildWasm(t, "../../wasmhooks/testdata/guests/flood")
	manifest := `{"id":"flood","name":"Flood","version":"1","timeout_ms":60000,"hooks":[{"name":"before_cat_reads_message","priority":1}]}`
	if r := uploadPlugin(t, in, zipPlugin(t, manifest, flood)); r.Status != 200 {
		t.Fatalf("install: %d %s", r.Status, r.Body)
	}
	const lines = 20_000
	if r := in.Do("PUT", "/plugins/settings/flood", map[string]any{"lines": lines, "bytes": 1000}); r.Status != 200 {
		t.Fatalf("settings: %d %s", r.Status, r.Body)
	}
	start := time.Now()
	r := in.Do("POST", "/message", map[string]any{"text": "hello"}, "user_id", "alice")
	elapsed := time.Since(start)
	var f frame
	r.JSON(t, &f)
	if r.Status != 200 || f.Why.Input != "flooded" {
		t.Fatalf("the hook's answer: %d %s", r.Status, r.Body)
	}

	written := logLines(in, "plugin=flood", "xxxxxxxx")
	// The bucket holds 10 and refills 1 a second, whatever the machine.
	if most := 10 + int(elapsed.Seconds()) + 1; len(written) > most {
		t.Errorf("%d of the plugin's lines reached the log in %v, want at most %d", len(written), elapsed, most)
	}
	for _, l := range written {
		if !strings.Contains(l, "[truncated: 256 of 1000 bytes]") || len(l) > 256+300 {
			t.Errorf("a 1000-byte line is not cut to 256 bytes with a marker: %.400s", l)
			break
		}
	}
	dropped := 0
	report := regexp.MustCompile(`plugin flood: dropped (\d+) log lines \(rate limit\)`)
	for _, l := range logLines(in, "plugin=flood", "rate limit") {
		m := report.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("report line: %s", l)
			continue
		}
		n, _ := strconv.Atoi(m[1])
		dropped += n
	}
	if len(written)+dropped != lines {
		t.Errorf("%d lines written and %d reported dropped, want %d in all", len(written), dropped, lines)
	}
}

// TestPluginSettingsSchemaReachesNothing: a settings schema may refer only
// to itself. One that points at a server file is refused without echoing
// the file or its path; one that points at an address is refused and the
// address never asked; errors name no server path.
func TestPluginSettingsSchemaReachesNothing(t *testing.T) {
	in := apptest.Start(t)
	upper := buildWasm(t, "../../wasmhooks/testdata/guests/upper")
	secretPath := filepath.Join(t.TempDir(), "jwt-secret")
	const secret = "s3cret-bytes-of-the-server"
	if err := os.WriteFile(secretPath, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int32
	probe := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		w.Write([]byte(`{"type":"string"}`))
	}))
	defer probe.Close()
	cwd, _ := os.Getwd()
	leaks := func(t *testing.T, msg string) {
		t.Helper()
		for _, s := range []string{secret, secretPath, filepath.Dir(secretPath), os.TempDir() + "/", "/tmp", cwd} {
			if strings.Contains(msg, s) {
				t.Errorf("the answer contains %q: %s", s, msg)
			}
		}
	}
	manifest := func(id, schema string) string {
		return `{"id":"` + id + `","name":"S","version":"1","hooks":[{"name":"before_cat_reads_message","priority":1}],"settings_schema":` + schema + `}`
	}
	for _, tc := range []struct{ name, schema string }{
		{"a file", `{"type":"object","properties":{"key":{"$ref":"file://` + secretPath + `"}}}`},
		{"an address", `{"type":"object","properties":{"key":{"$ref":"` + probe.URL + `/x"}}}`},
		{"a metaschema at an address", `{"$schema":"` + probe.URL + `/schema","type":"object"}`},
		{"a base at a directory", `{"$id":"file://` + filepath.Dir(secretPath) + `/","type":"object","properties":{"key":{"$ref":"jwt-secret"}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := uploadPlugin(t, in, zipPlugin(t, manifest("reach", tc.schema), upper))
			if r.Status != 422 || !strings.Contains(r.Detail(), "may refer only to itself") {
				t.Errorf("%d %s, want 422 saying the schema may refer only to itself", r.Status, r.Body)
			}
			leaks(t, string(r.Body))
		})
	}
	if n := asked.Load(); n != 0 {
		t.Errorf("the schema's address was asked %d times", n)
	}

	self := `{"type":"object","properties":{"suffix":{"$ref":"#/$defs/short"}},"$defs":{"short":{"type":"string","maxLength":3}}}`
	if r := uploadPlugin(t, in, zipPlugin(t, manifest("selfref", self), upper)); r.Status != 200 {
		t.Fatalf("a schema referring to itself: %d %s", r.Status, r.Body)
	}
	if r := in.Do("PUT", "/plugins/settings/selfref", map[string]any{"suffix": "!"}); r.Status != 200 {
		t.Errorf("valid settings: %d %s", r.Status, r.Body)
	}
	for _, bad := range []map[string]any{{"suffix": "toolong"}, {"suffix": 3}} {
		r := in.Do("PUT", "/plugins/settings/selfref", bad)
		if r.Status != 422 || !strings.Contains(r.Detail(), "/suffix") {
			t.Errorf("settings %v: %d %s, want 422 naming /suffix", bad, r.Status, r.Body)
		}
		leaks(t, string(r.Body))
	}
}

// TestPluginInitRefusedAtUpload: a module whose initialisation never
// finishes, or fails, is refused at upload with the cause.
func TestPluginInitRefusedAtUpload(t *testing.T) {
	cfg := apptest.Config(t.TempDir())
	cfg.PluginInitTimeout = 100 * time.Millisecond // the guest loops for ever: any deadline is too short
	cfg.PluginMemoryMiB = 32                       // hungryinit needs 40 MiB
	in := apptest.StartWith(t, cfg)
	for _, tc := range []struct{ guest, says string }{
		{"initloop", "its initialisation did not finish within 100ms"},
		{"hungryinit", "its initialisation failed"},
	} {
		t.Run(tc.guest, func(t *testing.T) {
			wasm := buildWasm(t, "../../wasmhooks/testdata/guests/"+tc.guest)
			r := uploadPlugin(t, in, zipPlugin(t, `{"id":"`+tc.guest+`","name":"I","version":"1","hooks":[{"name":"before_cat_reads_message","priority":1}]}`, wasm))
			if r.Status != 422 || !strings.Contains(r.Detail(), tc.says) {
				t.Errorf("%d %s, want 422 saying %q", r.Status, r.Body, tc.says)
			}
			if r := in.Do("GET", "/plugins/"+tc.guest, nil); r.Status != 404 {
				t.Errorf("refused plugin is installed: %d", r.Status)
			}
		})
	}
}

// TestPluginFailingToStartBacksOffThenIsDisabled: a plugin installed under
// a 64 MiB cap needs 40 MiB to start; the operator lowers the cap to 32
// MiB. Chat turns answer throughout. While it waits after a failure, turns
// skip it without trying again; after the configured failures in a row it
// is disabled, with the reason shown and logged at error level, and kept
// disabled across a restart.
func TestPluginFailingToStartBacksOffThenIsDisabled(t *testing.T) {
	dir := t.TempDir()
	in := apptest.StartWith(t, apptest.Config(dir))
	hungry := buildWasm(t, "../../wasmhooks/testdata/guests/hungryinit")
	if r := uploadPlugin(t, in, zipPlugin(t, `{"id":"hungry","name":"Hungry","version":"1","hooks":[{"name":"before_cat_reads_message","priority":1}]}`, hungry)); r.Status != 200 {
		t.Fatalf("install: %d %s", r.Status, r.Body)
	}
	said := func(in *apptest.Instance) string {
		t.Helper()
		var f frame
		r := in.Do("POST", "/message", map[string]any{"text": "hello"}, "user_id", "alice")
		r.JSON(t, &f)
		if r.Status != 200 {
			t.Fatalf("a chat turn: %d %s", r.Status, r.Body)
		}
		return f.Why.Input
	}
	if got := said(in); got != "started" {
		t.Fatalf("the plugin did not run: %q", got)
	}
	in.Close()

	type plugin struct {
		Active         bool   `json:"active"`
		DisabledReason string `json:"disabled_reason"`
	}
	get := func(in *apptest.Instance) plugin {
		var p struct{ Data plugin }
		in.Do("GET", "/plugins/hungry", nil).JSON(t, &p)
		return p.Data
	}
	// Every warning about the plugin is one attempt to start it.
	attempts := func(in *apptest.Instance) int { return len(logLines(in, "level=WARN", "plugin=hungry")) }

	t.Run("backing off", func(t *testing.T) {
		cfg := apptest.Config(dir)
		cfg.PluginMemoryMiB, cfg.PluginInitBackoff = 32, time.Hour
		in := apptest.StartWith(t, cfg)
		for range 4 {
			if got := said(in); got != "hello" {
				t.Errorf("the turn's message became %q", got)
			}
		}
		if n := attempts(in); n != 1 {
			t.Errorf("%d attempts to start the plugin in 4 turns, want 1 (then wait)", n)
		}
		if p := get(in); !p.Active || p.DisabledReason != "" {
			t.Errorf("one failure disabled the plugin: %+v", p)
		}
	})

	cfg := apptest.Config(dir)
	cfg.PluginMemoryMiB, cfg.PluginInitBackoff, cfg.PluginInitFailures = 32, time.Nanosecond, 3
	in = apptest.StartWith(t, cfg)
	for range 3 {
		if got := said(in); got != "hello" {
			t.Errorf("the turn's message became %q", got)
		}
	}
	p := get(in)
	if p.Active || !strings.Contains(p.DisabledReason, "failed to start 3 times in a row") || !strings.Contains(p.DisabledReason, "initialisation failed") {
		t.Errorf("after 3 failures: %+v, want disabled with the reason", p)
	}
	if len(logLines(in, "level=ERROR", "plugin=hungry", "plugin disabled")) != 1 {
		t.Errorf("the disabling is not logged at error level once:\n%s", in.Logs.String())
	}
	for range 3 {
		said(in)
	}
	if n := attempts(in); n != 3 {
		t.Errorf("%d attempts to start the plugin, want 3: a disabled plugin costs nothing", n)
	}
	in.Close()
	again := apptest.StartWith(t, cfg)
	if p := get(again); p.Active || p.DisabledReason == "" {
		t.Errorf("after a restart: %+v, want still disabled with the reason", p)
	}
	// Turned on by an administrator: the reason goes, and it tries again.
	if r := again.Do("PUT", "/plugins/toggle/hungry", nil); r.Status != 200 {
		t.Fatalf("toggle: %d %s", r.Status, r.Body)
	}
	if p := get(again); !p.Active || p.DisabledReason != "" {
		t.Errorf("turned on again: %+v", p)
	}
}
