package api_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/grin-ai/grin/platform/app"
	"github.com/grin-ai/grin/platform/app/apptest"
	"github.com/grin-ai/grin/platform/hooks"
)

// hookEntry is one hook point as GET /plugins/hooks lists it.
type hookEntry struct {
	Name    string         `json:"name"`
	Stage   string         `json:"stage"`
	When    string         `json:"when"`
	Reaches []string       `json:"reaches"`
	Effects []hooks.Effect `json:"effects"`
	Cat     string         `json:"cat"`
	Payload map[string]any `json:"payload"`
	Example any            `json:"example"`
}

func hookReference(t *testing.T, in *apptest.Instance) map[string]hookEntry {
	t.Helper()
	r := in.Do("GET", "/plugins/hooks", nil)
	if r.Status != 200 {
		t.Fatalf("GET /plugins/hooks: %d %s", r.Status, r.Body)
	}
	var list []hookEntry
	r.JSON(t, &list)
	out := map[string]hookEntry{}
	for _, e := range list {
		out[e.Name] = e
	}
	return out
}

// TestHookReferenceIsPublic: with authentication required, anyone can
// read the reference, one entry per hook point the pipeline calls, each
// with its schema, an example and what it changes.
func TestHookReferenceIsPublic(t *testing.T) {
	cfg := apptest.Config(t.TempDir())
	cfg.AuthRequired = true
	in := apptest.StartWith(t, cfg)
	if r := in.Do("GET", "/plugins", nil); r.Status != 403 {
		t.Fatalf("GET /plugins without credentials: %d, want 403 (authentication is required)", r.Status)
	}
	ref := hookReference(t, in)
	var want []string
	for _, h := range hooks.Catalogue() {
		want = append(want, h.Describe().Name)
	}
	if len(ref) != len(want) {
		t.Errorf("%d entries, want %d (%v)", len(ref), len(want), want)
	}
	for _, name := range want {
		e, ok := ref[name]
		switch {
		case !ok:
			t.Errorf("%s is missing", name)
		case e.When == "" || e.Cat == "" || len(e.Effects) == 0 || e.Payload == nil || e.Example == nil:
			t.Errorf("%s is incomplete: %+v", name, e)
		}
	}
	// A plugin cannot take the reference's place.
	upper := buildWasm(t, "../../wasmhooks/testdata/guests/upper")
	manifest := `{"id":"hooks","name":"Hooks","version":"1","hooks":[{"name":"before_cat_reads_message","priority":1}]}`
	token := in.Login("admin", apptest.AdminPassword)
	if r := uploadPlugin(t, in, zipPlugin(t, manifest, upper), apptest.Bearer(token)...); r.Status != 422 || !strings.Contains(r.Detail(), `id "hooks" is taken`) {
		t.Errorf("a plugin with the id hooks: %d %s", r.Status, r.Body)
	}
	if got := ref[hooks.BeforeCatSendsMessage].Payload["$defs"]; !strings.Contains(fmt.Sprint(got), "content") {
		t.Errorf("before_cat_sends_message's schema does not describe the reply: %v", got)
	}
}

// TestPipelineCallsTheCatalogue: the hooks a message and an upload run
// are the catalogue's, in its order, so the reference lists no hook the
// pipeline does not call and misses none it does.
func TestPipelineCallsTheCatalogue(t *testing.T) {
	rec := &recorder{}
	in := apptest.Start(t, app.WithHooks(rec))
	in.Do("POST", "/message", map[string]any{"text": "hello"}, "user_id", "alice")
	upload(t, in, "?wait=true", "a.txt", "text/plain", []byte("one chunk"), nil)
	var want []string
	for _, h := range hooks.Catalogue() {
		want = append(want, h.Describe().Name)
	}
	if got := rec.take(); !slices.Equal(got, want) {
		t.Errorf("hooks run:\n got %v\nwant %v (the catalogue)", got, want)
	}
}

// TestRedactionReachesWhatTheReferenceSays: the first author redacted an
// e-mail address in before_cat_stores_episodic_memory and still found it
// in the history and why.input. A real plugin redacts at each hook in
// turn; the address is gone from exactly what the reference says the
// hook reaches.
func TestRedactionReachesWhatTheReferenceSays(t *testing.T) {
	wasm := buildWasm(t, "../../wasmhooks/testdata/guests/redact")
	const email = "alice@example.com"
	for _, hook := range []string{hooks.BeforeCatReadsMessage, hooks.BeforeCatStoresEpisodicMemory} {
		t.Run(hook, func(t *testing.T) {
			in := apptest.Start(t)
			manifest := fmt.Sprintf(`{"id":"redact","name":"Redact","version":"1","hooks":[{"name":%q,"priority":1}]}`, hook)
			if r := uploadPlugin(t, in, zipPlugin(t, manifest, wasm)); r.Status != 200 {
				t.Fatalf("install: %d %s", r.Status, r.Body)
			}
			reaches := hookReference(t, in)[hook].Reaches
			r := in.Do("POST", "/message", map[string]any{"text": "Write to me at " + email + " please"}, "user_id", "alice")
			var f frame
			r.JSON(t, &f)
			seen := map[hooks.Target]string{
				hooks.TargetWhy:      f.Why.Input,
				hooks.TargetHistory:  string(in.Do("GET", "/memory/conversation_history", nil, "user_id", "alice").Body),
				hooks.TargetEpisodic: string(in.Do("GET", "/memory/collections/episodic/points", nil, "user_id", "alice").Body),
			}
			for target, body := range seen {
				if !strings.Contains(body, "Write to me") {
					t.Fatalf("%s does not hold the message at all: %s", target, body)
				}
				redacted := !strings.Contains(body, email)
				if says := slices.Contains(reaches, string(target)); redacted != says {
					t.Errorf("%s: address redacted %v, but the reference says %s reaches it: %v\n%s", target, redacted, hook, says, body)
				}
			}
		})
	}
}

// TestTypedKitPlugin: a plugin written with the Go kit's typed hooks
// (generated from the same catalogue) runs on the server: the redaction
// reaches why.input, and a change of the reply's content reaches text too.
func TestTypedKitPlugin(t *testing.T) {
	in := apptest.Start(t)
	manifest := `{"id":"typed","name":"Typed","version":"1","hooks":[{"name":"before_cat_reads_message","priority":1},{"name":"before_cat_sends_message","priority":1}]}`
	if r := uploadPlugin(t, in, zipPlugin(t, manifest, buildWasm(t, "../../wasmhooks/testdata/guests/typed"))); r.Status != 200 {
		t.Fatalf("install: %d %s", r.Status, r.Body)
	}
	var f frame
	in.Do("POST", "/message", map[string]any{"text": "Write to me at alice@example.com", "lang": "en"}, "user_id", "alice").JSON(t, &f)
	if f.Why.Input != "Write to me at [email]" {
		t.Errorf("why.input %q, want the address redacted", f.Why.Input)
	}
	if !strings.HasSuffix(f.Content, " (for alice)") || f.Text != f.Content {
		t.Errorf("text %q, content %q: want both signed", f.Text, f.Content)
	}
}
