package api_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/grin-ai/grin/platform/app/apptest"
)

// TestPluginStats: an administrator reads each plugin's figures. Every
// chat turn is one call of each plugin's hook; a trapping hook's calls are
// all errors, a looping one's all deadline hits; instances are alive after
// the calls; a base user may not read them, and an unknown plugin is 404.
func TestPluginStats(t *testing.T) {
	cfg := apptest.Config(t.TempDir())
	cfg.AuthRequired = true
	in := apptest.StartWith(t, cfg)
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	user := apptest.Bearer(in.Login("user", apptest.UserPassword))
	manifest := func(id string) string {
		return `{"id":"` + id + `","name":"` + id + `","version":"1","timeout_ms":50,"hooks":[{"name":"before_cat_reads_message","priority":1}]}`
	}
	for _, g := range []string{"upper", "trap", "loop"} {
		if r := uploadPlugin(t, in, zipPlugin(t, manifest(g), buildWasm(t, "../../wasmhooks/testdata/guests/"+g)), admin...); r.Status != 200 {
			t.Fatalf("install %s: %d %s", g, r.Status, r.Body)
		}
	}
	const turns = 4
	for i := range turns {
		if r := in.Do("POST", "/message", map[string]any{"text": fmt.Sprint("hello ", i)}, user...); r.Status != 200 {
			t.Fatalf("message: %d %s", r.Status, r.Body)
		}
	}
	type stats struct {
		Calls, Errors, Skipped, Instances int
		DeadlineHits                      int     `json:"deadline_hits"`
		TimeSpentMS                       float64 `json:"time_spent_ms"`
	}
	read := func(id string) stats {
		t.Helper()
		r := in.Do("GET", "/plugins/stats/"+id, nil, admin...)
		if r.Status != 200 {
			t.Fatalf("stats of %s: %d %s", id, r.Status, r.Body)
		}
		var s stats
		r.JSON(t, &s)
		return s
	}
	for _, tc := range []struct {
		id                string
		errors, deadlines int
	}{
		{"upper", 0, 0},
		{"trap", turns, 0},
		{"loop", turns, turns},
	} {
		s := read(tc.id)
		if s.Calls != turns || s.Errors != tc.errors || s.DeadlineHits != tc.deadlines || s.Skipped != 0 {
			t.Errorf("%s: %+v, want %d calls, %d errors, %d deadline hits", tc.id, s, turns, tc.errors, tc.deadlines)
		}
		if s.TimeSpentMS <= 0 {
			t.Errorf("%s: no time spent after %d calls: %+v", tc.id, turns, s)
		}
	}
	if s := read("upper"); s.Instances < 1 {
		t.Errorf("upper answered every call, yet has no instance alive: %+v", s)
	}
	if r := in.Do("GET", "/plugins/stats/upper", nil, user...); r.Status != http.StatusForbidden {
		t.Errorf("a base user reads the figures: %d", r.Status)
	}
	if r := in.Do("GET", "/plugins/stats/nothing", nil, admin...); r.Status != http.StatusNotFound {
		t.Errorf("an unknown plugin's figures: %d %s", r.Status, r.Body)
	}
}
