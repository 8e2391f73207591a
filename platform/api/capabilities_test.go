package api_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/grin-ai/grin/platform/app/apptest"
	"github.com/grin-ai/grin/platform/config"
)

// capsManifest declares every capability; http.fetch lists the test's
// page on two names with its port, and a host without one (which means
// its scheme's default port only).
func capsManifest(port string) string {
	return `{"id":"caps","name":"Caps","version":"0.1.0","timeout_ms":20000,
	"hooks":[{"name":"before_cat_reads_message","priority":1}],
	"capabilities":{"memory.recall":{},"memory.store":{},"kv":{},"notify":{},"llm.complete":{},
		"http.fetch":{"hosts":["127.0.0.1:` + port + `","localhost:` + port + `","docs.example.test"]}}}`
}

// capsSay sends text as user and returns what the caps guest made of it
// (the reply's why.input).
func capsSay(t *testing.T, in *apptest.Instance, user, text string, headers ...string) string {
	t.Helper()
	var f frame
	r := in.Do("POST", "/message", map[string]any{"text": text}, append([]string{"user_id", user}, headers...)...)
	if r.Status != 200 {
		t.Fatalf("%s says %q: %d %s", user, text, r.Status, r.Body)
	}
	r.JSON(t, &f)
	return f.Why.Input
}

// editPolicy adds the lines to the policy and removes the rules in drop.
func editPolicy(t *testing.T, in *apptest.Instance, add []string, drop []string, headers ...string) {
	t.Helper()
	var docs documents
	in.Do("GET", "/policies", nil, headers...).JSON(t, &docs)
	for _, d := range drop {
		docs.Policy = strings.ReplaceAll(docs.Policy, d+"\n", "")
	}
	docs.Policy += "\n" + strings.Join(add, "\n") + "\n"
	if r := in.Do("PUT", "/policies", docs, headers...); r.Status != 200 {
		t.Fatalf("edit the policy: %d %s", r.Status, r.Body)
	}
}

func grantRule(c string) string { return "p, plugin:caps, capability:" + c + ", use" }

// TestPluginCapabilities: a plugin compiled from source uses each host
// capability as the user its hook runs for. Nothing works before the
// policy grants it, and the guest reads why; granted, user A reaches only
// A's memories, key-value store and sockets, never B's; http.fetch
// reaches only an approved host; a revoked grant stops the next call;
// the user's deletion and the plugin's erase what the plugin kept.
func TestPluginCapabilities(t *testing.T) {
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello from the approved host") }))
	t.Cleanup(page.Close)
	port := page.URL[strings.LastIndex(page.URL, ":")+1:]
	dir := t.TempDir()
	cfg := apptest.Config(dir)
	cfg.RabbitholeAllowPrivate = true // the test's page is on loopback
	cfg.PluginCaps = config.PluginCaps{LLMMaxTokens: 1, KVQuotaBytes: 30_000}
	in := apptest.StartWith(t, cfg)
	archive := zipPlugin(t, capsManifest(port), buildWasm(t, "../../wasmhooks/testdata/guests/caps"))
	if r := uploadPlugin(t, in, archive); r.Status != 200 {
		t.Fatalf("install: %d %s", r.Status, r.Body)
	}
	// The administrator sees what the plugin asks for.
	var got struct {
		Data struct {
			Capabilities map[string]struct {
				Hosts []string `json:"hosts"`
			} `json:"capabilities"`
		} `json:"data"`
	}
	in.Do("GET", "/plugins/caps", nil).JSON(t, &got)
	if caps := got.Data.Capabilities; len(caps) != 6 || len(caps["http.fetch"].Hosts) != 3 {
		t.Errorf("GET /plugins/caps shows capabilities %+v", caps)
	}

	// Nothing is granted by default; the guest reads why.
	if out := capsSay(t, in, "alice", "recall: tea"); !strings.HasPrefix(out, "ERR denied:") || !strings.Contains(out, grantRule("memory.recall")) {
		t.Errorf("recall without a grant: %q", out)
	}
	grants := []string{grantRule("memory.recall"), grantRule("memory.store"), grantRule("kv"), grantRule("notify"),
		grantRule("llm.complete"), grantRule("http.fetch:127.0.0.1:" + port)}
	editPolicy(t, in, grants, nil)

	// Bob's memories, from the chat and from the plugin, and his KV.
	capsSay(t, in, "bob", "My secret is the blue key")
	if out := capsSay(t, in, "bob", "store: bob keeps the blue key under the tea pot"); !strings.HasPrefix(out, "STORED ") {
		t.Fatalf("bob stores: %q", out)
	}
	capsSay(t, in, "bob", "kvset: secret=bob-value")

	t.Run("memory", func(t *testing.T) {
		if out := capsSay(t, in, "alice", "store: alice drinks green tea"); !strings.HasPrefix(out, "STORED ") {
			t.Fatalf("alice stores: %q", out)
		}
		out := capsSay(t, in, "alice", "recall: blue key tea pot green tea secret")
		if !strings.Contains(out, "episodic:alice drinks green tea") {
			t.Errorf("alice does not recall what her plugin stored: %q", out)
		}
		if strings.Contains(out, "blue key") {
			t.Errorf("alice's plugin recalls bob's memories: %q", out)
		}
		// What the plugin stored is alice's memory as the chat sees it.
		var f frame
		in.Do("POST", "/message", map[string]any{"text": "Do I drink green tea?"}, "user_id", "alice").JSON(t, &f)
		if len(f.Why.Memory.Episodic) == 0 || !strings.Contains(f.Why.Memory.Episodic[0].PageContent, "green tea") {
			t.Errorf("the chat does not recall the stored memory: %+v", f.Why.Memory.Episodic)
		}
	})

	t.Run("kv", func(t *testing.T) {
		if out := capsSay(t, in, "alice", "kvget: secret"); out != `GOT "" false` {
			t.Errorf("alice reads bob's key: %q", out)
		}
		capsSay(t, in, "alice", "kvset: secret=alice-value")
		for user, want := range map[string]string{"alice": `GOT "alice-value" true`, "bob": `GOT "bob-value" true`} {
			if out := capsSay(t, in, user, "kvget: secret"); out != want {
				t.Errorf("%s reads %q, want %q", user, out, want)
			}
		}
		capsSay(t, in, "alice", "pkvset: shared=one")
		if out := capsSay(t, in, "bob", "pkvget: shared"); out != `GOT "one" true` {
			t.Errorf("the plugin's own store, read for bob: %q", out)
		}
		capsSay(t, in, "alice", "kvdel: secret")
		if out := capsSay(t, in, "alice", "kvget: secret"); out != `GOT "" false` {
			t.Errorf("after delete: %q", out)
		}
		// A store holds 30,000 bytes here: a second value of 20,000 does
		// not fit beside the first, but replaces it.
		big := strings.Repeat("x", 20_000)
		if out := capsSay(t, in, "alice", "kvset: big="+big); out != "SET" {
			t.Errorf("a value within the quota: %.100q", out)
		}
		if out := capsSay(t, in, "alice", "kvset: big2="+big); !strings.HasPrefix(out, "ERR quota:") {
			t.Errorf("a value beyond the quota: %.100q", out)
		}
		if out := capsSay(t, in, "alice", "kvset: big=y"+big); out != "SET" {
			t.Errorf("replacing a value within the quota: %.100q", out)
		}
		if out := capsSay(t, in, "bob", "kvset: big="+big); out != "SET" {
			t.Errorf("bob's store has its own quota: %.100q", out)
		}
	})

	t.Run("notify", func(t *testing.T) {
		aliceWS, bobWS := dial(t, in, "/ws/alice"), dial(t, in, "/ws/bob")
		if out := capsSay(t, in, "alice", "notify: your tea is ready"); out != "NOTIFIED" {
			t.Fatalf("notify: %q", out)
		}
		for {
			f := aliceWS.next()
			if f.Type == "notification" {
				if f.Content != "your tea is ready" {
					t.Errorf("notification %+v", f)
				}
				break
			}
			if f.Type == "chat" {
				t.Fatal("alice's socket got the reply but no notification")
			}
		}
		bobWS.quiet()
	})

	t.Run("llm", func(t *testing.T) {
		out := capsSay(t, in, "alice", "complete: What is the White Rabbit late for?")
		// The offline model answers in pieces and ends by saying no model
		// is configured; a budget of one token keeps only the first piece.
		if !strings.HasPrefix(out, "COMPLETED ") || len(out) <= len("COMPLETED ") || strings.Contains(out, "No language model") {
			t.Errorf("complete within one token: %q", out)
		}
	})

	t.Run("http", func(t *testing.T) {
		if out := capsSay(t, in, "alice", "fetch: http://127.0.0.1:"+port+"/"); out != "FETCHED 200 hello from the approved host" {
			t.Errorf("approved host: %q", out)
		}
		if out := capsSay(t, in, "alice", "fetch: http://localhost:"+port+"/"); !strings.HasPrefix(out, "ERR denied:") {
			t.Errorf("listed but not approved: %q", out)
		}
		if out := capsSay(t, in, "alice", "fetch: http://example.org/"); !strings.HasPrefix(out, "ERR undeclared:") {
			t.Errorf("not listed: %q", out)
		}
		if out := capsSay(t, in, "alice", "fetch: http://docs.example.test:22/"); !strings.HasPrefix(out, "ERR undeclared:") {
			t.Errorf("a host listed without a port, on another port than its scheme's: %q", out)
		}
	})

	// A revoked grant stops the next call.
	editPolicy(t, in, nil, []string{grantRule("memory.recall")})
	if out := capsSay(t, in, "alice", "recall: tea"); !strings.HasPrefix(out, "ERR denied:") {
		t.Errorf("recall after the grant was revoked: %q", out)
	}

	// Deleting a user erases their stores; deleting the plugin, all. A
	// deleted user's id is refused from then on, so look in the database.
	db := apptest.OpenDatabase(t, dir)
	kept := func(where string, args ...any) int {
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM plugin_kv WHERE `+where, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	var dora struct {
		ID string `json:"id"`
	}
	in.Do("POST", "/users", map[string]any{"username": "dora", "password": "dora-pass"}).JSON(t, &dora)
	capsSay(t, in, dora.ID, "kvset: k=dora-value")
	if n := kept("user_id = $1", dora.ID); n != 1 {
		t.Fatalf("dora's key is not stored: %d", n)
	}
	if r := in.Do("DELETE", "/users/"+dora.ID, nil); r.Status != 200 {
		t.Fatalf("delete dora: %d %s", r.Status, r.Body)
	}
	if n := kept("user_id = $1", dora.ID); n != 0 {
		t.Errorf("after the user's deletion the plugin keeps %d of her keys", n)
	}
	if kept("plugin_id = 'caps'") == 0 {
		t.Fatal("the plugin's other keys went with her")
	}
	if r := in.Do("DELETE", "/plugins/caps", nil); r.Status != 200 {
		t.Fatalf("delete the plugin: %d %s", r.Status, r.Body)
	}
	if r := uploadPlugin(t, in, archive); r.Status != 200 {
		t.Fatalf("reinstall: %d %s", r.Status, r.Body)
	}
	for _, c := range []string{"pkvget: shared", "kvget: secret"} {
		if out := capsSay(t, in, "bob", c); out != `GOT "" false` {
			t.Errorf("%s after the plugin was deleted: %q", c, out)
		}
	}
}

// TestPluginCapabilitiesStayWithinTheUser: a granted memory.store still
// cannot do what the user may not: carol, without MEMORY WRITE, gets
// "forbidden".
func TestPluginCapabilitiesStayWithinTheUser(t *testing.T) {
	in := authRequired(t)
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	if r := uploadPlugin(t, in, zipPlugin(t, capsManifest("8080"), buildWasm(t, "../../wasmhooks/testdata/guests/caps")), admin...); r.Status != 200 {
		t.Fatalf("install: %d %s", r.Status, r.Body)
	}
	editPolicy(t, in, []string{grantRule("memory.store")}, nil, admin...)
	perms := map[string][]string{"CONVERSATION": {"READ", "WRITE"}, "MEMORY": {"READ"}}
	in.Do("POST", "/users", map[string]any{"username": "carol", "password": "carol-pass", "permissions": perms}, admin...)
	carol := apptest.Bearer(in.Login("carol", "carol-pass"))
	if out := capsSay(t, in, "carol", "store: a note", carol...); !strings.HasPrefix(out, "ERR forbidden:") {
		t.Errorf("carol stores through the plugin: %q", out)
	}
}
