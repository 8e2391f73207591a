package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/grin-ai/grin/platform/app"
	"github.com/grin-ai/grin/platform/app/apptest"
	"github.com/grin-ai/grin/platform/memory/weaviate"
)

type pointsPage struct {
	Points []struct {
		ID          string         `json:"id"`
		PageContent string         `json:"page_content"`
		Metadata    map[string]any `json:"metadata"`
	} `json:"points"`
	NextOffset *int `json:"next_offset"`
}

func counts(t *testing.T, in *apptest.Instance, headers ...string) map[string]int {
	t.Helper()
	var c struct {
		Collections []struct {
			Name  string `json:"name"`
			Count int    `json:"vectors_count"`
		} `json:"collections"`
	}
	in.Do("GET", "/memory/collections", nil, headers...).JSON(t, &c)
	out := map[string]int{}
	for _, x := range c.Collections {
		out[x.Name] = x.Count
	}
	return out
}

// TestMemoryEndpointsStayWithinReach: the Cat lets any MEMORY holder list
// or wipe everyone's points; grin keeps each caller to their own.
func TestMemoryEndpointsStayWithinReach(t *testing.T) {
	apptest.EachBackend(t, func(t *testing.T, backend apptest.Backend) {
		in := authRequired(t, backend.Use(t))
		admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
		// Two ordinary users with every Cat permission but no role:admin.
		full := map[string][]string{}
		for _, r := range []string{"STATUS", "MEMORY", "CONVERSATION", "UPLOAD"} {
			full[r] = []string{"WRITE", "EDIT", "LIST", "READ", "DELETE"}
		}
		var alice, bob user
		in.Do("POST", "/users", map[string]any{"username": "alice", "password": "alice-pw", "permissions": full}, admin...).JSON(t, &alice)
		in.Do("POST", "/users", map[string]any{"username": "bob", "password": "bob-pw", "permissions": full}, admin...).JSON(t, &bob)
		a := apptest.Bearer(in.Login("alice", "alice-pw"))
		b := apptest.Bearer(in.Login("bob", "bob-pw"))

		in.Do("POST", "/message", map[string]any{"text": "alice's secret is the rabbit hole"}, a...)
		in.Do("POST", "/message", map[string]any{"text": "bob's secret is the looking glass"}, b...)
		r := in.Do("POST", "/memory/collections/declarative/points", map[string]any{"content": "The Queen of Hearts rules Wonderland"}, a...)
		if r.Status != 200 {
			t.Fatalf("alice stores shared knowledge: %d %s", r.Status, r.Body)
		}

		if c := counts(t, in, a...); c["episodic"] != 1 || c["declarative"] != 1 {
			t.Errorf("alice's counts = %v, want her 1 episodic and the 1 shared", c)
		}
		var spaces struct {
			Spaces []struct {
				Name  string `json:"name"`
				Count int    `json:"vectors_count"`
			} `json:"spaces"`
		}
		in.Do("GET", "/memory/spaces", nil, a...).JSON(t, &spaces)
		if len(spaces.Spaces) != 1 || spaces.Spaces[0].Name != "shared" || spaces.Spaces[0].Count != 1 {
			t.Errorf("spaces = %+v", spaces)
		}
		var page pointsPage
		in.Do("GET", "/memory/collections/episodic/points", nil, a...).JSON(t, &page)
		if len(page.Points) != 1 || !strings.HasPrefix(page.Points[0].PageContent, "alice's") {
			t.Errorf("alice lists %+v", page.Points)
		}
		// Naming bob's partition is refused; so is recalling his words.
		if r := in.Do("GET", "/memory/collections/episodic/points?partition="+bob.ID, nil, a...); r.Status != 403 {
			t.Errorf("alice lists bob's memory: %d", r.Status)
		}
		if r := in.Do("DELETE", "/memory/collections/episodic?partition="+bob.ID, nil, a...); r.Status != 403 {
			t.Errorf("alice wipes bob's memory: %d", r.Status)
		}
		var rec struct {
			Vectors struct {
				Collections map[string][]struct {
					PageContent string `json:"page_content"`
				} `json:"collections"`
			} `json:"vectors"`
		}
		in.Do("POST", "/memory/recall", map[string]any{"text": "secret"}, a...).JSON(t, &rec)
		for _, p := range rec.Vectors.Collections["episodic"] {
			if strings.Contains(p.PageContent, "bob") {
				t.Errorf("alice recalled bob's memory: %q", p.PageContent)
			}
		}
		if len(rec.Vectors.Collections["declarative"]) != 1 {
			t.Errorf("alice recalls the shared space: %+v", rec.Vectors.Collections["declarative"])
		}

		// Alice wipes "all collections": her own episodic memory goes, bob's
		// stays; the shared space needs more than MEMORY DELETE.
		r = in.Do("DELETE", "/memory/collections", nil, a...)
		if r.Status != 200 {
			t.Fatalf("wipe: %d %s", r.Status, r.Body)
		}
		if c := counts(t, in, b...); c["episodic"] != 1 || c["declarative"] != 1 {
			t.Errorf("after alice's wipe bob sees %v; his memory and the shared space must stay", c)
		}
		if c := counts(t, in, a...); c["episodic"] != 0 {
			t.Errorf("alice's own memory after her wipe: %v", c)
		}
		// Procedural memory is read-only through the API.
		if r := in.Do("POST", "/memory/collections/procedural/points", map[string]any{"content": "x"}, admin...); r.Status != 403 {
			t.Errorf("writing procedural memory: %d", r.Status)
		}
		// The administrator may browse and delete bob's memory by name.
		in.Do("GET", "/memory/collections/episodic/points?partition="+bob.ID, nil, admin...).JSON(t, &page)
		if len(page.Points) != 1 {
			t.Fatalf("admin browsing bob: %+v", page)
		}
		if r := in.Do("DELETE", "/memory/collections/episodic/points/"+page.Points[0].ID+"?partition="+bob.ID, nil, admin...); r.Status != 200 {
			t.Errorf("admin deletes bob's point: %d %s", r.Status, r.Body)
		}
		if r := in.Do("GET", "/memory/conversation_history?user_id="+bob.ID, nil, a...); r.Status != 403 {
			t.Errorf("alice reads bob's history: %d", r.Status)
		}
		if r := in.Do("GET", "/memory/conversation_history?user_id="+bob.ID, nil, admin...); r.Status != 200 {
			t.Errorf("admin reads bob's history: %d", r.Status)
		}
		// A base user may read the shared space but not add to it.
		u := apptest.Bearer(in.Login("user", apptest.UserPassword))
		if r := in.Do("POST", "/memory/collections/declarative/points", map[string]any{"content": "x"}, u...); r.Status != 403 {
			t.Errorf("base user writes shared knowledge: %d", r.Status)
		}
		for _, bad := range []string{"/memory/collections/kitchen/points", "/memory/collections/declarative/points?partition=has%20space"} {
			if r := in.Do("GET", bad, nil, admin...); r.Status != 422 {
				t.Errorf("GET %s: %d, want 422", bad, r.Status)
			}
		}
	})
}

func TestDeletingAUserErasesEverything(t *testing.T) {
	apptest.EachBackend(t, func(t *testing.T, backend apptest.Backend) {
		in := authRequired(t, backend.Use(t))
		admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
		var carol user
		in.Do("POST", "/users", map[string]any{"username": "carol", "password": "carol-pw"}, admin...).JSON(t, &carol)
		tok := in.Login("carol", "carol-pw")
		sock := dial(t, in, "/ws?token="+tok)
		sock.send(map[string]string{"text": "remember my phone number 555-0100"})
		sock.reply()
		if c := counts(t, in, apptest.Bearer(tok)...); c["episodic"] != 1 {
			t.Fatalf("carol's memory before: %v", c)
		}

		wv, onWeaviate := in.Memory.(*weaviate.Store)
		if onWeaviate {
			if st, err := wv.Activity(context.Background(), carol.ID); st != "HOT" {
				t.Fatalf("carol's tenant before: %q %v", st, err)
			}
		}

		in.Do("DELETE", "/users/"+carol.ID, nil, admin...)

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _, err := sock.conn.Read(ctx)
		var ce websocket.CloseError
		if !errors.As(err, &ce) || !strings.Contains(ce.Reason, "deleted") {
			t.Errorf("carol's socket: %v, want closed saying she was deleted", err)
		}
		var page pointsPage
		in.Do("GET", "/memory/collections/episodic/points?partition="+carol.ID, nil, admin...).JSON(t, &page)
		if len(page.Points) != 0 {
			t.Errorf("carol's memory survived her: %+v", page.Points)
		}
		var h struct {
			History []any `json:"history"`
		}
		in.Do("GET", "/memory/conversation_history?user_id="+carol.ID, nil, admin...).JSON(t, &h)
		if len(h.History) != 0 {
			t.Errorf("carol's history survived her: %+v", h.History)
		}
		if onWeaviate {
			if st, err := wv.Activity(context.Background(), carol.ID); st != "" || err != nil {
				t.Errorf("carol's Weaviate tenant survived her: %q %v", st, err)
			}
		}
	})
}

// TestRandomizedUsersNeverCross: many shadow users chat, recall, delete
// their history and wipe their memory at once; every frame, memory and
// history entry any of them sees must be their own.
func TestRandomizedUsersNeverCross(t *testing.T) {
	apptest.EachBackend(t, func(t *testing.T, backend apptest.Backend) {
		in := backend.Start(t)
		randomizedUsers(t, func(int, int) *apptest.Instance { return in }, func(int) *apptest.Instance { return in })
	})
}

// randomizedUsers runs the randomized isolation test: user u's socket on
// sockAt(u), their other requests of step i on at(u, i).
func randomizedUsers(t *testing.T, at func(user, step int) *apptest.Instance, sockAt func(user int) *apptest.Instance) {
	const users, steps = 12, 10
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	var wg sync.WaitGroup
	for u := range users {
		wg.Go(func() {
			name := fmt.Sprintf("user-%02d", u)
			rng := rand.New(rand.NewPCG(seed, uint64(u)))
			sock := dial(t, sockAt(u), "/ws/"+name)
			hdr := []string{"user_id", name}
			stored := false // this user has episodic memories now
			for i := range steps {
				in := at(u, i)
				switch rng.IntN(5) {
				case 0, 1:
					sock.send(map[string]string{"text": fmt.Sprintf("%s says secret %d", name, i)})
					r, _ := sock.reply()
					if r.UserID != name {
						t.Errorf("%s got a reply for %s", name, r.UserID)
					}
					for _, d := range r.Why.Memory.Episodic {
						if d.Metadata["source"] != name || !strings.HasPrefix(d.PageContent, name) {
							t.Errorf("%s recalled %q from %v", name, d.PageContent, d.Metadata["source"])
						}
					}
					if stored && len(r.Why.Memory.Episodic) == 0 {
						t.Errorf("%s recalled none of their own earlier messages", name)
					}
					stored = true
				case 2:
					var rec struct {
						Vectors struct {
							Collections map[string][]struct {
								PageContent string         `json:"page_content"`
								Metadata    map[string]any `json:"metadata"`
							} `json:"collections"`
						} `json:"vectors"`
					}
					in.Do("POST", "/memory/recall", map[string]any{"text": "says secret"}, hdr...).JSON(t, &rec)
					for _, p := range rec.Vectors.Collections["episodic"] {
						if !strings.HasPrefix(p.PageContent, name) {
							t.Errorf("%s recalled %q", name, p.PageContent)
						}
					}
					if stored && len(rec.Vectors.Collections["episodic"]) == 0 {
						t.Errorf("%s's recall found none of their own messages", name)
					}
				case 3:
					var h struct {
						History []struct{ Who, Text string } `json:"history"`
					}
					in.Do("GET", "/memory/conversation_history", nil, hdr...).JSON(t, &h)
					for _, turn := range h.History {
						if turn.Who == "Human" && !strings.HasPrefix(turn.Text, name) {
							t.Errorf("%s's history holds %q", name, turn.Text)
						}
					}
					if rng.IntN(2) == 0 {
						in.Do("DELETE", "/memory/conversation_history", nil, hdr...)
					}
				case 4:
					in.Do("DELETE", "/memory/collections/episodic", nil, hdr...)
					stored = false
				}
			}
		})
	}
	wg.Wait()
}

// TestDeletingUsersWhileOthersChat: internal users chat over their own
// sockets while an administrator deletes some of them; the deleted lose
// everything, the others keep exactly their own.
func TestDeletingUsersWhileOthersChat(t *testing.T) {
	apptest.EachBackend(t, func(t *testing.T, backend apptest.Backend) {
		in := authRequired(t, backend.Use(t))
		admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
		const n = 8
		ids := make([]string, n)
		toks := make([]string, n)
		for i := range n {
			var u user
			in.Do("POST", "/users", map[string]any{"username": fmt.Sprintf("u%d", i), "password": "password"}, admin...).JSON(t, &u)
			ids[i], toks[i] = u.ID, in.Login(fmt.Sprintf("u%d", i), "password")
		}
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(in.URL, "http")+"/ws?token="+toks[i], nil)
				if err != nil {
					if i%2 != 0 { // a deleted user may be refused at the door
						t.Errorf("u%d dial: %v", i, err)
					}
					return
				}
				defer c.CloseNow()
				for m := range 5 {
					msg, _ := json.Marshal(map[string]string{"text": fmt.Sprintf("u%d message %d", i, m)})
					if c.Write(ctx, websocket.MessageText, msg) != nil {
						return // deleted: the socket was closed
					}
					for {
						_, b, err := c.Read(ctx)
						if err != nil {
							return
						}
						var f frame
						json.Unmarshal(b, &f)
						if f.Type == "chat" {
							if f.UserID != ids[i] {
								t.Errorf("u%d got a reply for %s", i, f.UserID)
							}
							break
						}
					}
				}
			})
		}
		for i := 0; i < n; i += 2 {
			in.Do("DELETE", "/users/"+ids[i], nil, admin...)
		}
		wg.Wait()
		for i := range n {
			var page pointsPage
			in.Do("GET", "/memory/collections/episodic/points?partition="+ids[i], nil, admin...).JSON(t, &page)
			var h struct {
				History []struct{ Who, Text string } `json:"history"`
			}
			in.Do("GET", "/memory/conversation_history?user_id="+ids[i], nil, admin...).JSON(t, &h)
			if i%2 == 0 {
				if len(page.Points) != 0 || len(h.History) != 0 {
					t.Errorf("deleted u%d kept %d memories and %d turns", i, len(page.Points), len(h.History))
				}
				continue
			}
			if len(page.Points) != 5 || len(h.History) != 10 {
				t.Errorf("u%d has %d memories and %d turns, want 5 and 10", i, len(page.Points), len(h.History))
			}
			for _, p := range page.Points {
				if !strings.HasPrefix(p.PageContent, fmt.Sprintf("u%d ", i)) {
					t.Errorf("u%d holds %q", i, p.PageContent)
				}
			}
		}
	})
}

// TestEmbedderChangeOnWeaviateIsExplained: Weaviate keeps one vector size
// per collection, so choosing an embedder whose vectors differ from the
// stored ones is refused in words, and the stored memories stay usable.
func TestEmbedderChangeOnWeaviateIsExplained(t *testing.T) {
	in := apptest.Weaviate.Start(t)
	in.Do("POST", "/message", map[string]any{"text": "my boat is called Nautilus"}, "user_id", "nemo")
	r := in.Do("PUT", "/embedder/settings/EmbedderDefaultConfig", map[string]any{"dimensions": 128})
	if r.Status != 422 || !strings.Contains(string(r.Body), "512-dimensional") || !strings.Contains(string(r.Body), "GRIN_WEAVIATE_PREFIX") {
		t.Fatalf("choosing a 128-dimensional embedder: %d %s", r.Status, r.Body)
	}
	var f struct {
		Why struct {
			Memory struct {
				Episodic []any `json:"episodic"`
			} `json:"memory"`
		} `json:"why"`
	}
	in.Do("POST", "/message", map[string]any{"text": "what is my boat called?"}, "user_id", "nemo").JSON(t, &f)
	if len(f.Why.Memory.Episodic) == 0 {
		t.Errorf("after the refused change, recall found nothing")
	}
	// The same size is fine.
	if r := in.Do("PUT", "/embedder/settings/EmbedderDefaultConfig", map[string]any{"dimensions": 512}); r.Status != 200 {
		t.Errorf("re-choosing the same embedder: %d %s", r.Status, r.Body)
	}
}

// TestEmbedderMismatch: Weaviate keeps one vector size per collection.
// A grin whose embedder does not fit the stored vectors does not start,
// and says why; one whose embedder stopped fitting while it ran (another
// grin recorded first) answers writes with 409 and the explanation, over
// HTTP and WebSocket alike, never a 500.
func TestEmbedderMismatch(t *testing.T) {
	dirA := t.TempDir()
	a := apptest.StartWith(t, apptest.Weaviate.Config(t, dirA))
	// b shares a's collections, and chooses 128 dimensions before anything
	// is stored.
	cfgB := apptest.Weaviate.Config(t, dirA)
	cfgB.DataDir = t.TempDir()
	b := apptest.StartWith(t, cfgB)
	if r := b.Do("PUT", "/embedder/settings/EmbedderDefaultConfig", map[string]any{"dimensions": 128}); r.Status != 200 {
		t.Fatalf("choosing 128 dimensions with nothing stored: %d %s", r.Status, r.Body)
	}
	a.Do("POST", "/message", map[string]any{"text": "remember the lighthouse"}, "user_id", "ahab")

	r := b.Do("POST", "/message", map[string]any{"text": "and the whale"}, "user_id", "ahab")
	if r.Status != 409 || !strings.Contains(string(r.Body), "512-dimensional") {
		t.Errorf("chat with a mismatched embedder: %d %s", r.Status, r.Body)
	}
	sock := dial(t, b, "/ws/ahab")
	sock.send(map[string]string{"text": "and the sea"})
	f := sock.next()
	for f.Type == "chat_token" {
		f = sock.next()
	}
	if f.Type != "error" || !strings.Contains(f.Description, "512-dimensional") {
		t.Errorf("over WebSocket: %+v", f)
	}
	b.Close()

	// Restarted, b's saved 128-dimensional embedder stops the start.
	logs := &apptest.LogBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	apptest.OnEngine(t, &cfgB) // b's own database, as StartWith gave it
	_, err := app.New(ctx, cfgB, slog.New(slog.NewTextHandler(logs, nil)))
	if err == nil || !strings.Contains(err.Error(), "does not fit the memories stored in Weaviate") || !strings.Contains(err.Error(), "512-dimensional") {
		t.Errorf("start with a mismatched embedder: %v", err)
	}
}
