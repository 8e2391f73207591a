package api_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/grin-ai/grin/platform/app/apptest"
)

type logEntry struct {
	Time    time.Time `json:"time"`
	Level   string    `json:"level"`
	Message string    `json:"message"`
	UserID  string    `json:"user_id"`
	Hook    string    `json:"hook"`
}

func pluginLogs(t *testing.T, in *apptest.Instance, id string, headers ...string) []logEntry {
	t.Helper()
	r := in.Do("GET", "/plugins/logs/"+id, nil, headers...)
	if r.Status != 200 {
		t.Fatalf("GET /plugins/logs/%s: %d %s", id, r.Status, r.Body)
	}
	var l struct {
		Entries []logEntry `json:"entries"`
	}
	r.JSON(t, &l)
	return l.Entries
}

// TestPluginLogsThroughTheAPI: an administrator reads a plugin's recent
// log lines and its hooks' failures (a deadline overrun), each with the
// user and hook, without the server's log; the buffer keeps the newest
// GRIN_PLUGIN_LOG_ENTRIES, deleting the plugin clears it, and users
// without PLUGINS EDIT cannot read it.
func TestPluginLogsThroughTheAPI(t *testing.T) {
	cfg := apptest.Config(t.TempDir())
	cfg.AuthRequired = true
	cfg.PluginLogEntries = 3
	in := apptest.StartWith(t, cfg)
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	user := apptest.Bearer(in.Login("user", apptest.UserPassword))
	loop := zipPlugin(t, `{"id":"loop","name":"Loop","version":"1","timeout_ms":50,"hooks":[{"name":"before_cat_reads_message","priority":1}]}`,
		buildWasm(t, "../../wasmhooks/testdata/guests/loop"))
	for _, archive := range [][]byte{greetArchive(t, "1"), loop} {
		if r := uploadPlugin(t, in, archive, admin...); r.Status != 200 {
			t.Fatalf("install: %d %s", r.Status, r.Body)
		}
	}
	if got := pluginLogs(t, in, "greet", admin...); len(got) != 0 {
		t.Errorf("logs before any call: %+v", got)
	}
	var me struct {
		ID string `json:"id"`
	}
	for i := range 5 {
		r := in.Do("POST", "/message", map[string]any{"text": fmt.Sprint("hello ", i)}, user...)
		if r.Status != 200 {
			t.Fatalf("message: %d %s", r.Status, r.Body)
		}
		r.JSON(t, &struct {
			UserID *string `json:"user_id"`
		}{&me.ID})
	}

	greet := pluginLogs(t, in, "greet", admin...)
	if len(greet) != 3 {
		t.Fatalf("%d entries after 5 calls, want the newest 3: %+v", len(greet), greet)
	}
	for i, e := range greet {
		if e.Level != "info" || e.Message != "greeted user" || e.Hook != "before_cat_sends_message" || e.UserID != me.ID || e.Time.IsZero() {
			t.Errorf("entry %d: %+v, want greet's line for user %s", i, e, me.ID)
		}
		if i > 0 && e.Time.Before(greet[i-1].Time) {
			t.Errorf("entries are not oldest first: %+v", greet)
		}
	}
	failures := pluginLogs(t, in, "loop", admin...)
	if len(failures) == 0 {
		t.Fatal("the looping hook's failures are not in its logs")
	}
	if e := failures[len(failures)-1]; e.Level != "warn" || !strings.Contains(e.Message, "deadline") || e.Hook != "before_cat_reads_message" || e.UserID != me.ID {
		t.Errorf("the looping hook's failure: %+v", e)
	}

	for _, tc := range []struct {
		name    string
		path    string
		headers []string
		status  int
	}{
		{"base user", "/plugins/logs/greet", user, 403},
		{"no credentials", "/plugins/logs/greet", nil, 403},
		{"unknown plugin", "/plugins/logs/nothing", admin, 404},
	} {
		if r := in.Do("GET", tc.path, nil, tc.headers...); r.Status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, r.Status, r.Body, tc.status)
		}
	}

	// Deleted, then installed again: nothing of the old logs is left.
	if r := in.Do("DELETE", "/plugins/greet", nil, admin...); r.Status != 200 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if r := in.Do("GET", "/plugins/logs/greet", nil, admin...); r.Status != 404 {
		t.Errorf("logs of a deleted plugin: %d %s", r.Status, r.Body)
	}
	if r := uploadPlugin(t, in, greetArchive(t, "1"), admin...); r.Status != 200 {
		t.Fatalf("install: %d %s", r.Status, r.Body)
	}
	if got := pluginLogs(t, in, "greet", admin...); len(got) != 0 {
		t.Errorf("logs after delete and reinstall: %+v", got)
	}
}
