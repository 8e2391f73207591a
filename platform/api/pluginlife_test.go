package api_test

import (
	"strings"
	"testing"

	"github.com/grin-ai/grin/platform/app/apptest"
)

// greetManifest lists the redact guest's greeting hook, with settings
// whose schema gives defaults.
const greetManifest = `{"id":"greet","name":"Greet","version":"VERSION","hooks":[{"name":"before_cat_sends_message","priority":1}],
	"settings_schema":{"type":"object","additionalProperties":false,"properties":{
		"greeting":{"type":"string","default":"Hello"},
		"field":{"type":"string","enum":["text","content","both"],"default":"text"}}}}`

func greetArchive(t *testing.T, version string) []byte {
	return zipPlugin(t, strings.Replace(greetManifest, "VERSION", version, 1), buildWasm(t, "../../wasmhooks/testdata/guests/redact"))
}

func pluginSettings(t *testing.T, in *apptest.Instance, id string, headers ...string) map[string]any {
	t.Helper()
	var s struct {
		Value map[string]any `json:"value"`
	}
	in.Do("GET", "/plugins/settings/"+id, nil, headers...).JSON(t, &s)
	return s.Value
}

// TestPluginSettingsStartWithDefaults: a plugin's settings read back with
// its schema's defaults from install on, its hooks get them, and ctx
// names the user by username.
func TestPluginSettingsStartWithDefaults(t *testing.T) {
	cfg := apptest.Config(t.TempDir())
	cfg.AuthRequired = true
	in := apptest.StartWith(t, cfg)
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	if r := uploadPlugin(t, in, greetArchive(t, "1"), admin...); r.Status != 200 {
		t.Fatalf("install: %d %s", r.Status, r.Body)
	}
	if s := pluginSettings(t, in, "greet", admin...); s["greeting"] != "Hello" || s["field"] != "text" {
		t.Errorf("settings after install: %v, want the schema's defaults", s)
	}
	// A partial change keeps the defaults of what it leaves out.
	if r := in.Do("PUT", "/plugins/settings/greet", map[string]any{"greeting": "Good morning"}, admin...); r.Status != 200 {
		t.Fatalf("settings: %d %s", r.Status, r.Body)
	}
	if s := pluginSettings(t, in, "greet", admin...); s["greeting"] != "Good morning" || s["field"] != "text" {
		t.Errorf("settings after a partial change: %v", s)
	}
	// "user" is an internal user: its id is a uuid, its username "user".
	var f frame
	in.Do("POST", "/message", map[string]any{"text": "hello"}, apptest.Bearer(in.Login("user", apptest.UserPassword))...).JSON(t, &f)
	if !strings.HasPrefix(f.Text, "Good morning, user! ") {
		t.Errorf("reply %q: want the greeting setting and the username", f.Text)
	}
	if f.UserID == "user" {
		t.Fatalf("user's id is its name: the test cannot tell them apart")
	}
}

// TestReplyTextAndContentStayInStep: whichever of text and content a
// before_cat_sends_message hook changes, the reply's two fields and the
// history agree; when both change, content wins.
func TestReplyTextAndContentStayInStep(t *testing.T) {
	in := apptest.Start(t)
	if r := uploadPlugin(t, in, greetArchive(t, "1")); r.Status != 200 {
		t.Fatalf("install: %d %s", r.Status, r.Body)
	}
	for _, tc := range []struct {
		field string
		want  func(reply string) bool
	}{
		{"text", func(r string) bool { return strings.HasPrefix(r, "Hello, alice! ") }},
		{"content", func(r string) bool { return strings.HasPrefix(r, "HELLO, ALICE! ") }},
		{"both", func(r string) bool { return strings.HasPrefix(r, "HELLO, ALICE! ") }},
	} {
		t.Run(tc.field, func(t *testing.T) {
			if r := in.Do("PUT", "/plugins/settings/greet", map[string]any{"field": tc.field}); r.Status != 200 {
				t.Fatalf("settings: %d %s", r.Status, r.Body)
			}
			in.Do("DELETE", "/memory/conversation_history", nil, "user_id", "alice")
			var f frame
			in.Do("POST", "/message", map[string]any{"text": "hello"}, "user_id", "alice").JSON(t, &f)
			if f.Text != f.Content || !tc.want(f.Content) {
				t.Errorf("text %q, content %q", f.Text, f.Content)
			}
			var h struct {
				History []struct{ Who, Text string } `json:"history"`
			}
			in.Do("GET", "/memory/conversation_history", nil, "user_id", "alice").JSON(t, &h)
			if n := len(h.History); n != 2 || h.History[1].Text != f.Content {
				t.Errorf("history %+v, want the reply %q", h.History, f.Content)
			}
		})
	}
}

// TestUpgradeKeepsActiveState: re-uploading a plugin an administrator
// turned off leaves it off (and its settings as they were); an active
// one stays active.
func TestUpgradeKeepsActiveState(t *testing.T) {
	in := apptest.Start(t)
	greeted := func() bool {
		var f frame
		in.Do("POST", "/message", map[string]any{"text": "hello"}, "user_id", "alice").JSON(t, &f)
		return strings.Contains(f.Text, "alice! ")
	}
	active := func() bool {
		var d struct {
			Data struct {
				Active  bool   `json:"active"`
				Version string `json:"version"`
			} `json:"data"`
		}
		in.Do("GET", "/plugins/greet", nil).JSON(t, &d)
		return d.Data.Active
	}
	if r := uploadPlugin(t, in, greetArchive(t, "1")); r.Status != 200 {
		t.Fatalf("install: %d %s", r.Status, r.Body)
	}
	in.Do("PUT", "/plugins/settings/greet", map[string]any{"greeting": "Hi"})
	in.Do("PUT", "/plugins/toggle/greet", nil)
	r := uploadPlugin(t, in, greetArchive(t, "2"))
	if r.Status != 200 || !strings.Contains(r.Map(t)["info"].(string), "inactive") {
		t.Fatalf("upgrade of an inactive plugin: %d %s", r.Status, r.Body)
	}
	if active() || greeted() {
		t.Errorf("the upgrade turned the plugin on")
	}
	if s := pluginSettings(t, in, "greet"); s["greeting"] != "Hi" {
		t.Errorf("settings after the upgrade: %v", s)
	}
	in.Do("PUT", "/plugins/toggle/greet", nil)
	if r := uploadPlugin(t, in, greetArchive(t, "3")); r.Status != 200 {
		t.Fatalf("upgrade: %d %s", r.Status, r.Body)
	}
	if !active() || !greeted() {
		t.Errorf("the upgrade turned an active plugin off")
	}
}
