package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/grin-ai/grin/platform/app/apptest"
)

// An administrator browsing a user's memory (as the panel does) searches
// that user's memories with scores and counts them; a user without the
// policy's permission can do neither for another user.
func TestRecallAndCountAnotherUsersMemory(t *testing.T) {
	apptest.EachBackend(t, func(t *testing.T, backend apptest.Backend) {
		in := authRequired(t, backend.Use(t))
		admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
		full := map[string][]string{"MEMORY": {"WRITE", "EDIT", "LIST", "READ", "DELETE"}, "CONVERSATION": {"WRITE", "READ"}}
		var alice, bob user
		in.Do("POST", "/users", map[string]any{"username": "alice", "password": "alice-pw", "permissions": full}, admin...).JSON(t, &alice)
		in.Do("POST", "/users", map[string]any{"username": "bob", "password": "bob-pw", "permissions": full}, admin...).JSON(t, &bob)
		a := apptest.Bearer(in.Login("alice", "alice-pw"))
		b := apptest.Bearer(in.Login("bob", "bob-pw"))
		in.Do("POST", "/message", map[string]any{"text": "bob keeps his teacups in the looking glass"}, b...)
		in.Do("POST", "/message", map[string]any{"text": "bob likes the croquet"}, b...)
		in.Do("POST", "/message", map[string]any{"text": "alice keeps teacups too"}, a...)

		type recalled struct {
			Vectors struct {
				Collections map[string][]struct {
					PageContent string   `json:"page_content"`
					Score       *float64 `json:"score"`
				} `json:"collections"`
			} `json:"vectors"`
		}
		var rec recalled
		r := in.Do("POST", "/memory/recall", map[string]any{"text": "teacups", "collection": "episodic", "partition": bob.ID}, admin...)
		r.JSON(t, &rec)
		got := rec.Vectors.Collections["episodic"]
		if len(got) != 2 || !strings.Contains(got[0].PageContent, "teacups") || got[0].Score == nil || *got[0].Score <= *got[1].Score {
			t.Errorf("the admin's recall in bob's memory: %s", r.Body)
		}
		for _, p := range got {
			if strings.Contains(p.PageContent, "alice") {
				t.Errorf("a recall in bob's memory found alice's: %q", p.PageContent)
			}
		}
		if n := len(rec.Vectors.Collections["declarative"]) + len(rec.Vectors.Collections["procedural"]); n != 0 {
			t.Errorf("a recall in one collection returned %d memories of others", n)
		}
		// Counts of bob's memory, for the admin.
		var c struct {
			Collections []struct {
				Name  string `json:"name"`
				Count int    `json:"vectors_count"`
			} `json:"collections"`
		}
		in.Do("GET", "/memory/collections?user_id="+bob.ID, nil, admin...).JSON(t, &c)
		if len(c.Collections) == 0 || c.Collections[0].Name != "episodic" || c.Collections[0].Count != 2 {
			t.Errorf("bob's counts for the admin: %+v", c)
		}

		// Alice may do neither for bob.
		for _, r := range []apptest.Response{
			in.Do("POST", "/memory/recall", map[string]any{"text": "teacups", "collection": "episodic", "partition": bob.ID}, a...),
			in.Do("GET", "/memory/collections?user_id="+bob.ID, nil, a...),
		} {
			if r.Status != http.StatusForbidden || strings.Contains(string(r.Body), "looking glass") {
				t.Errorf("alice reaching bob's memory: %d %s", r.Status, r.Body)
			}
		}
		// A partition needs its collection.
		r = in.Do("POST", "/memory/recall", map[string]any{"text": "teacups", "partition": bob.ID}, admin...)
		if r.Status != http.StatusUnprocessableEntity || !strings.Contains(string(r.Body), "name the collection") {
			t.Errorf("a partition without its collection: %d %s", r.Status, r.Body)
		}
	})
}
