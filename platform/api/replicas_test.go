package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/grin-ai/grin/platform/app/apptest"
	"github.com/grin-ai/grin/platform/cluster"
	"github.com/grin-ai/grin/platform/config"
	"github.com/grin-ai/grin/platform/memory/weaviate"
)

// replicaGroup is three grin instances on one PostgreSQL database and one
// Weaviate, as three `grin serve` processes behind a load balancer, with
// authentication required.
type replicaGroup struct {
	r     []*apptest.Instance
	admin []string // the administrator's token, from the first replica
}

func startReplicas(t *testing.T) *replicaGroup {
	t.Helper()
	r := apptest.StartReplicas(t, 3, func(c *config.Config) { c.AuthRequired = true })
	return &replicaGroup{r: r, admin: apptest.Bearer(r[0].Login("admin", apptest.AdminPassword))}
}

// within polls cond until it holds, and says how long that took: a change
// on one replica reaches the others within a second (the figure is
// logged, never asserted; the deadline only ends a test that is broken).
func within(t *testing.T, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > 15*time.Second {
			t.Fatalf("%s: not after 15 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%s after %v", what, time.Since(start).Round(time.Millisecond))
}

// closedWith waits for the socket to be closed by the server, past the
// frames still in flight, and returns the close status.
func closedWith(t *testing.T, c *wsClient) websocket.StatusCode {
	t.Helper()
	for {
		if ce := refusal(t, c); ce != nil {
			return ce.Code
		}
	}
}

// TestReplicasActAsOne: three replicas on one database behave as one grin:
// a login on one is good on all; a user's frames reach their sockets on
// every replica whichever replica got the message; their turns are
// answered in order; a policy edit, a permission change, a plugin install
// and toggle, a token revocation and a user deletion on one replica take
// effect on the others (within a second: the delays are logged).
func TestReplicasActAsOne(t *testing.T) {
	g := startReplicas(t)
	r0, r1, r2 := g.r[0], g.r[1], g.r[2]
	chat := map[string][]string{"CONVERSATION": {"READ", "WRITE", "DELETE"}, "MEMORY": {"READ", "LIST"}, "USERS": {"READ"}}
	var alice user
	if r := r1.Do("POST", "/users", map[string]any{"username": "alice", "password": "alice-pass", "permissions": chat}, g.admin...); r.Status != 200 {
		t.Fatalf("create alice on the second replica with the first one's token: %d %s", r.Status, r.Body)
	} else {
		r.JSON(t, &alice)
	}
	tok := r2.Login("alice", "alice-pass")
	for i, in := range g.r {
		if r := in.Do("GET", "/users/"+alice.ID, nil, apptest.Bearer(tok)...); r.Status != 200 {
			t.Fatalf("alice's token from replica 2 on replica %d: %d %s", i, r.Status, r.Body)
		}
	}

	t.Run("frames reach every socket", func(t *testing.T) {
		s0, s1 := dial(t, r0, "/ws?token="+tok), dial(t, r1, "/ws?token="+tok)
		// Frames go to a socket elsewhere once its presence has arrived.
		within(t, "the third replica heard of both sockets", func() bool { return r2.Sessions.Elsewhere(alice.ID) == 2 })
		r := r2.Do("POST", "/message", map[string]any{"text": "the white rabbit is late"}, apptest.Bearer(tok)...)
		if r.Status != 200 {
			t.Fatalf("message through replica 2: %d %s", r.Status, r.Body)
		}
		var sent frame
		r.JSON(t, &sent)
		for i, s := range []*wsClient{s0, s1} {
			got, tokens := s.reply()
			if got.Text != sent.Text || got.UserID != alice.ID || len(tokens) == 0 {
				t.Errorf("socket on replica %d: %d tokens, %+v; want the reply %q", i, len(tokens), got, sent.Text)
			}
		}
		// Each frame once: nothing more queued on either socket.
		s0.quiet()
		s1.quiet()
	})

	t.Run("turns in order whichever replica receives them", func(t *testing.T) {
		r1.Do("DELETE", "/memory/conversation_history", nil, apptest.Bearer(tok)...)
		socks := []*wsClient{dial(t, r0, "/ws?token="+tok), dial(t, r1, "/ws?token="+tok), dial(t, r2, "/ws?token="+tok)}
		within(t, "each replica heard of the sockets on the other two", func() bool {
			return r0.Sessions.Elsewhere(alice.ID) == 2 && r1.Sessions.Elsewhere(alice.ID) == 2 && r2.Sessions.Elsewhere(alice.ID) == 2
		})
		// One after another, each through the next replica.
		for i := range 6 {
			s := socks[i%3]
			s.send(map[string]string{"text": fmt.Sprintf("step %d", i)})
			for {
				f := s.next()
				if f.Type == "chat" && f.Why.Input == fmt.Sprintf("step %d", i) {
					break
				}
				if f.Type == "error" {
					t.Fatalf("step %d: %s", i, f.Description)
				}
			}
		}
		// Then at once, through all three.
		for i, s := range socks {
			s.send(map[string]string{"text": fmt.Sprintf("together %d", i)})
		}
		for _, s := range socks {
			// Every socket sees all three replies. The replies of the
			// steps other sockets sent are still queued before them, so
			// replies are told apart by what they answer.
			answered := map[string]bool{}
			for len(answered) < 3 {
				if f := s.next(); f.Type == "chat" && strings.HasPrefix(f.Why.Input, "together ") {
					answered[f.Why.Input] = true
				} else if f.Type == "error" {
					t.Fatalf("a message sent at once: %s", f.Description)
				}
			}
		}
		var h struct {
			History []struct{ Who, Text string } `json:"history"`
		}
		r2.Do("GET", "/memory/conversation_history", nil, apptest.Bearer(tok)...).JSON(t, &h)
		if len(h.History) != 18 {
			t.Fatalf("history holds %d turns, want 18: %+v", len(h.History), h.History)
		}
		together := map[string]bool{}
		for i := 0; i < len(h.History); i += 2 {
			human, ai := h.History[i], h.History[i+1]
			if human.Who != "Human" || ai.Who != "AI" || strings.TrimSpace(ai.Text) == "" {
				t.Errorf("turn %d: %+v then %+v, want a message and its reply", i/2, human, ai)
			}
			if i/2 < 6 && human.Text != fmt.Sprintf("step %d", i/2) {
				t.Errorf("turn %d is %q, want step %d: out of order", i/2, human.Text, i/2)
			}
			if i/2 >= 6 {
				together[human.Text] = true
			}
		}
		if len(together) != 3 {
			t.Errorf("the three messages sent at once: %v", together)
		}
	})

	t.Run("a policy edit reaches the others", func(t *testing.T) {
		check := func(in *apptest.Instance) bool {
			var d decision
			in.Do("POST", "/policies/check", map[string]string{"subject": "alice", "object": "conversation", "action": "delete"}, g.admin...).JSON(t, &d)
			return d.Allowed
		}
		for i, in := range g.r {
			if !check(in) {
				t.Fatalf("replica %d: alice may not delete her conversation before the edit", i)
			}
		}
		if r := r0.Do("POST", "/policies/rules", map[string]string{"rule": "p, user:alice, conversation, delete, deny"}, g.admin...); r.Status != 200 && r.Status != 201 {
			t.Fatalf("add a deny rule on replica 0: %d %s", r.Status, r.Body)
		}
		within(t, "the deny rule decides on replica 1", func() bool { return !check(r1) })
		within(t, "the deny rule decides on replica 2", func() bool { return !check(r2) })
		r := r2.Do("DELETE", "/memory/conversation_history", nil, apptest.Bearer(tok)...)
		if r.Status != http.StatusForbidden {
			t.Errorf("alice deletes her conversation on replica 2 after the deny on replica 0: %d %s", r.Status, r.Body)
		}
	})

	t.Run("a permission change reaches the others", func(t *testing.T) {
		if r := r1.Do("PUT", "/users/"+alice.ID, map[string]any{"permissions": map[string][]string{"CONVERSATION": {"READ"}, "USERS": {"READ"}}}, g.admin...); r.Status != 200 {
			t.Fatalf("take alice's chat on replica 1: %d %s", r.Status, r.Body)
		}
		for i, in := range []*apptest.Instance{r0, r2} {
			within(t, fmt.Sprintf("alice's chat refused on replica %d", []int{0, 2}[i]), func() bool {
				return in.Do("POST", "/message", map[string]any{"text": "still here?"}, apptest.Bearer(tok)...).Status == http.StatusForbidden
			})
		}
		if r := r1.Do("PUT", "/users/"+alice.ID, map[string]any{"permissions": chat}, g.admin...); r.Status != 200 {
			t.Fatalf("give alice's chat back: %d %s", r.Status, r.Body)
		}
		within(t, "alice's chat back on replica 2", func() bool {
			return r2.Do("POST", "/message", map[string]any{"text": "back again"}, apptest.Bearer(tok)...).Status == 200
		})
	})

	t.Run("a plugin installed on one runs on all", func(t *testing.T) {
		manifest := `{"id":"upper","name":"upper","version":"1","timeout_ms":200,"hooks":[{"name":"before_cat_reads_message","priority":1}]}`
		if r := uploadPlugin(t, r0, zipPlugin(t, manifest, buildWasm(t, "../../wasmhooks/testdata/guests/upper")), g.admin...); r.Status != 200 {
			t.Fatalf("install on replica 0: %d %s", r.Status, r.Body)
		}
		input := func(in *apptest.Instance) string {
			var f frame
			in.Do("POST", "/message", map[string]any{"text": "quiet words"}, apptest.Bearer(tok)...).JSON(t, &f)
			return f.Why.Input
		}
		within(t, "the plugin runs on replica 2", func() bool { return input(r2) == "QUIET WORDS" })
		if r := r1.Do("PUT", "/plugins/toggle/upper", nil, g.admin...); r.Status != 200 {
			t.Fatalf("toggle on replica 1: %d %s", r.Status, r.Body)
		}
		within(t, "the plugin is off on replica 0", func() bool { return input(r0) == "quiet words" })
		within(t, "the plugin is off on replica 2", func() bool { return input(r2) == "quiet words" })
	})

	t.Run("a model chosen on one answers on all", func(t *testing.T) {
		model := newOpenAIServer(t, "Off ", "with ", "her ", "head.")
		if r := r0.Do("PUT", "/llm/settings/LLMOpenAICompatibleConfig", map[string]any{
			"base_url": model.URL + "/v1", "model": "tiny", "api_key": "sk-replica-secret",
		}, g.admin...); r.Status != 200 {
			t.Fatalf("choose the model on replica 0: %d %s", r.Status, r.Body)
		}
		for _, i := range []int{1, 2} {
			within(t, fmt.Sprintf("replica %d answers with the model", i), func() bool {
				var f frame
				g.r[i].Do("POST", "/message", map[string]any{"text": "what does the queen say?"}, apptest.Bearer(tok)...).JSON(t, &f)
				return f.Text == "Off with her head."
			})
		}
		if r := r2.Do("PUT", "/llm/settings/LLMDefaultConfig", map[string]any{}, g.admin...); r.Status != 200 {
			t.Fatalf("back to the offline model on replica 2: %d %s", r.Status, r.Body)
		}
		within(t, "replica 0 answers offline again", func() bool {
			var f frame
			r0.Do("POST", "/message", map[string]any{"text": "what does the queen say?"}, apptest.Bearer(tok)...).JSON(t, &f)
			return f.Text != "" && f.Text != "Off with her head."
		})
	})

	t.Run("a revocation closes sockets everywhere", func(t *testing.T) {
		s1, s2 := dial(t, r1, "/ws?token="+tok), dial(t, r2, "/ws?token="+tok)
		if r := r0.Do("DELETE", "/users/"+alice.ID+"/tokens", nil, g.admin...); r.Status != http.StatusNoContent {
			t.Fatalf("revoke alice's tokens on replica 0: %d %s", r.Status, r.Body)
		}
		for i, s := range []*wsClient{s1, s2} {
			if code := closedWith(t, s); code != websocket.StatusPolicyViolation {
				t.Errorf("alice's socket on replica %d closed with %d, want 1008", i+1, code)
			}
		}
		for i, in := range g.r {
			if r := in.Do("GET", "/users/"+alice.ID, nil, apptest.Bearer(tok)...); r.Status != http.StatusForbidden {
				t.Errorf("the revoked token on replica %d: %d", i, r.Status)
			}
		}
		tok = r1.Login("alice", "alice-pass")
	})

	t.Run("a deletion closes sockets everywhere", func(t *testing.T) {
		s0, s2 := dial(t, r0, "/ws?token="+tok), dial(t, r2, "/ws?token="+tok)
		if r := r1.Do("DELETE", "/users/"+alice.ID, nil, g.admin...); r.Status != 200 {
			t.Fatalf("delete alice on replica 1: %d %s", r.Status, r.Body)
		}
		closedWith(t, s0)
		closedWith(t, s2)
		for i, in := range g.r {
			if r := in.Do("POST", "/auth/token", map[string]string{"username": "alice", "password": "alice-pass"}); r.Status == 200 {
				t.Errorf("deleted alice logs in on replica %d", i)
			}
		}
	})
}

// TestRandomizedUsersNeverCrossReplicas: the randomized isolation test,
// each user's socket on one replica and their other requests on the
// others.
func TestRandomizedUsersNeverCrossReplicas(t *testing.T) {
	rs := apptest.StartReplicas(t, 3, nil)
	randomizedUsers(t, func(user, step int) *apptest.Instance { return rs[(user+step)%len(rs)] },
		func(user int) *apptest.Instance { return rs[user%len(rs)] })
}

// TestLastAdministratorAcrossReplicas: the two administrators deleted at
// the same moment through two replicas (by the API key, which stays):
// one deletion goes through, the other is refused (409), so an
// administrator always remains, whichever replica each request reached.
func TestLastAdministratorAcrossReplicas(t *testing.T) {
	rs := apptest.StartReplicas(t, 3, func(c *config.Config) { c.APIKey = testAPIKey })
	key := []string{"Authorization", "Bearer " + testAPIKey}
	all := map[string][]string{}
	for _, p := range []string{"USERS", "PLUGINS", "SETTINGS", "LLM", "EMBEDDER", "AUTH_HANDLER", "MEMORY", "CONVERSATION", "STATUS", "UPLOAD", "STATIC"} {
		all[p] = []string{"READ", "WRITE", "EDIT", "LIST", "DELETE"}
	}
	var queen user
	if r := rs[0].Do("POST", "/users", map[string]any{"username": "queen", "password": "queen-pass", "permissions": all}, key...); r.Status != 200 {
		t.Fatalf("create a second administrator: %d %s", r.Status, r.Body)
	} else {
		r.JSON(t, &queen)
	}
	var admins []user
	rs[1].Do("GET", "/users?search=admin", nil, key...).JSON(t, &admins)
	if len(admins) != 1 {
		t.Fatalf("users named admin: %+v", admins)
	}
	statuses := make(chan int, 2)
	go func() { statuses <- rs[1].Do("DELETE", "/users/"+queen.ID, nil, key...).Status }()
	go func() { statuses <- rs[2].Do("DELETE", "/users/"+admins[0].ID, nil, key...).Status }()
	got := []int{<-statuses, <-statuses}
	if !(got[0] == 200 && got[1] == http.StatusConflict || got[0] == http.StatusConflict && got[1] == 200) {
		t.Errorf("the two administrators deleted at once on two replicas: %v, want one 200 and one 409", got)
	}
}

// TestReplicasTellWhichMemoriesTheyServe: the replica serving a user's
// turns tells the others, over the database's bus, that her Weaviate
// tenant is in use, so that none of them sets it cold while she chats
// elsewhere (the store's test, TestWeaviate/ReplicasDoNotCoolWhatAnotherServes,
// shows what a replica does with the news).
func TestReplicasTellWhichMemoriesTheyServe(t *testing.T) {
	rs := apptest.StartReplicas(t, 2, func(c *config.Config) { c.Memory.Weaviate.ColdAfter = 4 * time.Second })
	ctx := context.Background()
	listener, err := cluster.NewPostgres(ctx, cluster.PostgresConfig{URL: string(rs[0].Config.DatabaseURL)})
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	var mu sync.Mutex
	heard := map[string]string{} // tenant -> the replica that told it
	defer listener.Subscribe(cluster.TopicMemoryUsed, func(_ context.Context, e cluster.Event) {
		mu.Lock()
		defer mu.Unlock()
		for _, name := range strings.Split(string(e.Data), "\n") {
			heard[name] = e.Origin
		}
	})()
	sock := dial(t, rs[0], "/ws/alice")
	sock.send(map[string]string{"text": "hello"})
	if r, _ := sock.reply(); r.UserID != "alice" {
		t.Fatalf("reply for %q", r.UserID)
	}
	tenant := weaviate.TenantName("alice")
	within(t, "the other replicas heard alice's memories are in use", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return heard[tenant] != ""
	})
}
