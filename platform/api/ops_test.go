package api_test

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/grin-ai/grin/integration/weaviatetest"
	"github.com/grin-ai/grin/platform/app/apptest"
	"github.com/grin-ai/grin/platform/config"
	"github.com/grin-ai/grin/platform/database"
)

// sample reads one sample of a Prometheus text exposition: the line that
// starts with series (the metric name and its labels, in the exposition's
// order). ok is false when there is none.
func sample(body, series string) (v float64, ok bool) {
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, found := strings.CutPrefix(line, series+" "); found {
			f, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
			return f, err == nil
		}
	}
	return 0, false
}

// TestMetricsShowWhatHappened: after users chat over HTTP and a socket
// through a plugin compiled from source, an administrator's scrape counts
// the requests by route pattern and status (never a raw path or an id),
// the turns, the plugin's calls exactly as its own figures do, the
// policy's decisions and cache hits, the memory's operations, the
// database's connections, the sessions and the open sockets.
func TestMetricsShowWhatHappened(t *testing.T) {
	cfg := apptest.Config(t.TempDir())
	cfg.AuthRequired = true
	in := apptest.StartWith(t, cfg)
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	userToken := in.Login("user", apptest.UserPassword)
	user := apptest.Bearer(userToken)
	manifest := `{"id":"upper","name":"upper","version":"1","hooks":[{"name":"before_cat_reads_message","priority":1}]}`
	if r := uploadPlugin(t, in, zipPlugin(t, manifest, buildWasm(t, "../../wasmhooks/testdata/guests/upper")), admin...); r.Status != 200 {
		t.Fatalf("install: %d %s", r.Status, r.Body)
	}
	const httpTurns = 3
	for range httpTurns {
		if r := in.Do("POST", "/message", map[string]any{"text": "my cat is called Dinah"}, user...); r.Status != 200 {
			t.Fatalf("message: %d %s", r.Status, r.Body)
		}
	}
	ws := dial(t, in, "/ws?token="+userToken)
	ws.send(map[string]string{"text": "what is my cat called?"})
	ws.reply()

	var me struct {
		ID string `json:"id"`
	}
	var list []struct{ ID, Username string }
	in.Do("GET", "/users", nil, admin...).JSON(t, &list)
	for _, u := range list {
		if u.Username == "user" {
			me.ID = u.ID
		}
	}
	if r := in.Do("GET", "/users/"+me.ID, nil, admin...); r.Status != 200 {
		t.Fatalf("get user: %d %s", r.Status, r.Body)
	}
	in.Do("GET", "/no/such/path/zq7x9", nil, admin...)
	if r := in.Do("GET", "/metrics", nil, user...); r.Status != http.StatusForbidden {
		t.Fatalf("a base user reads the metrics: %d", r.Status)
	}

	r := in.Do("GET", "/metrics", nil, admin...)
	if r.Status != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics: %d %s %s", r.Status, r.Header.Get("Content-Type"), r.Body)
	}
	body := string(r.Body)
	var stats struct{ Calls int }
	in.Do("GET", "/plugins/stats/upper", nil, admin...).JSON(t, &stats)
	// What differs between the passes: memories in the SQLite file or in
	// Weaviate, one SQLite writer or a pool of PostgreSQL connections.
	backend, conns := "embedded", 1.0
	if apptest.Engine() == database.Postgres {
		backend, conns = "weaviate", float64(database.PostgresConns)
	}
	type series struct {
		series string
		want   func(float64) bool
		says   string
	}
	cases := []series{
		{`grin_http_requests_total{method="POST",route="/message",status="200"}`, eq(httpTurns), "3"},
		{`grin_http_requests_total{method="GET",route="/users/{id}",status="200"}`, eq(1), "1"},
		{`grin_http_requests_total{method="GET",route="unmatched",status="404"}`, eq(1), "1"},
		{`grin_http_requests_total{method="GET",route="/metrics",status="403"}`, eq(1), "1"},
		{`grin_http_request_duration_seconds_count{method="POST",route="/message"}`, eq(httpTurns), "3"},
		{`grin_chat_turns_total{outcome="answered",transport="http"}`, eq(httpTurns), "3"},
		{`grin_chat_turns_total{outcome="answered",transport="websocket"}`, eq(1), "1"},
		{`grin_chat_turn_duration_seconds_count`, eq(httpTurns + 1), "4"},
		{`grin_plugin_hook_calls_total{plugin="upper"}`, eq(float64(stats.Calls)), "what /plugins/stats says, " + strconv.Itoa(stats.Calls)},
		{`grin_plugin_hook_calls_total{plugin="upper"}`, eq(httpTurns + 1), "one per turn"},
		{`grin_plugin_hook_seconds_total{plugin="upper"}`, positive, "> 0"},
		{`grin_policy_decisions_total{result="allowed"}`, positive, "> 0"},
		{`grin_policy_decisions_total{result="denied"}`, positive, "> 0 (the base user's scrape)"},
		{`grin_policy_cache_lookups_total{result="hit"}`, positive, "> 0"},
		{`grin_memory_operation_duration_seconds_count{backend="` + backend + `",operation="recall",outcome="ok"}`, positive, "> 0"},
		{`grin_memory_operation_duration_seconds_count{backend="` + backend + `",operation="upsert",outcome="ok"}`, positive, "> 0"},
		{`go_sql_max_open_connections{db_name="grin"}`, eq(conns), strconv.FormatFloat(conns, 'f', -1, 64)},
		{`grin_sessions_live`, positive, "> 0"},
		{`grin_websockets_open`, eq(1), "1"},
		// Every turn is one write of the chat path's committer.
		{`grin_database_committed_writes_total`, eq(httpTurns + 1), "4"},
		{`grin_database_commit_duration_seconds_count{outcome="ok"}`, positive, "> 0"},
	}
	if apptest.Engine() == database.Postgres {
		cases = append(cases, series{`grin_database_statement_duration_seconds_count{outcome="ok",statement="select"}`, positive, "> 0"})
	}
	for _, tc := range cases {
		v, ok := sample(body, tc.series)
		if !ok || !tc.want(v) {
			t.Errorf("%s = %v (present %v), want %s", tc.series, v, ok, tc.says)
		}
	}
	for _, leak := range []string{me.ID, "zq7x9", "Dinah", userToken} {
		if strings.Contains(body, leak) {
			t.Errorf("the metrics show %q", leak)
		}
	}
}

func eq(want float64) func(float64) bool { return func(v float64) bool { return v == want } }
func positive(v float64) bool            { return v > 0 }

// TestMetricsAccess: GRIN_METRICS decides who reads the figures. "auth"
// (the default) wants a caller the policy lets read them; "loopback" also
// lets in callers on this machine, but not through a proxy; "public" lets
// in anyone; "off" serves nothing.
func TestMetricsAccess(t *testing.T) {
	type caller struct {
		name    string
		headers func(in *apptest.Instance) []string
	}
	nobody := caller{"nobody", func(*apptest.Instance) []string { return nil }}
	proxied := caller{"nobody through a proxy", func(*apptest.Instance) []string { return []string{"X-Forwarded-For", "203.0.113.7"} }}
	user := caller{"base user", func(in *apptest.Instance) []string { return apptest.Bearer(in.Login("user", apptest.UserPassword)) }}
	admin := caller{"admin", func(in *apptest.Instance) []string { return apptest.Bearer(in.Login("admin", apptest.AdminPassword)) }}
	for _, tc := range []struct {
		mode string
		want map[*caller]int
	}{
		{"", map[*caller]int{&nobody: 403, &proxied: 403, &user: 403, &admin: 200}},
		{config.MetricsAuth, map[*caller]int{&nobody: 403, &user: 403, &admin: 200}},
		{config.MetricsLoopback, map[*caller]int{&nobody: 200, &proxied: 403, &user: 200, &admin: 200}},
		{config.MetricsPublic, map[*caller]int{&nobody: 200, &proxied: 200}},
		{config.MetricsOff, map[*caller]int{&nobody: 404, &admin: 404}},
	} {
		t.Run("mode="+tc.mode, func(t *testing.T) {
			cfg := apptest.Config(t.TempDir())
			cfg.AuthRequired = true
			cfg.Ops.Metrics = tc.mode
			in := apptest.StartWith(t, cfg)
			for c, want := range tc.want {
				r := in.Do("GET", "/metrics", nil, c.headers(in)...)
				if r.Status != want {
					t.Errorf("%s: %d %s, want %d", c.name, r.Status, r.Detail(), want)
				}
				if want == 200 && !strings.Contains(string(r.Body), "grin_websockets_open") {
					t.Errorf("%s: no figures in %.200s", c.name, r.Body)
				}
				if want != 200 && r.Detail() == "" {
					t.Errorf("%s: a refusal without a sentence: %s", c.name, r.Body)
				}
			}
		})
	}
}

// TestHealthAndReadiness: /healthz says the process is alive and /readyz
// that its database answers, to anyone and without secrets; when the
// database is stuck (its one connection held), /readyz answers 503 naming
// it, while /healthz still says alive; once released, ready again.
func TestHealthAndReadiness(t *testing.T) {
	cfg := apptest.Config(t.TempDir())
	cfg.AuthRequired = true
	cfg.Ops.ReadyTimeout = 200 * time.Millisecond
	cfg.DatabaseConns = 1 // on PostgreSQL: one connection, as SQLite's writer
	in := apptest.StartWith(t, cfg)
	wantChecks := 1 // the database
	if apptest.Engine() == database.Postgres {
		wantChecks = 2 // and Weaviate, where memories live beside PostgreSQL
	}
	type ready struct {
		Status string
		Checks map[string]string
	}
	read := func(wantStatus int) ready {
		t.Helper()
		r := in.Do("GET", "/readyz", nil)
		if r.Status != wantStatus {
			t.Fatalf("readyz: %d %s, want %d", r.Status, r.Body, wantStatus)
		}
		if r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("readyz may be cached: %q", r.Header.Get("Cache-Control"))
		}
		var rd ready
		r.JSON(t, &rd)
		return rd
	}
	if r := in.Do("GET", "/healthz", nil); r.Status != 200 || r.Map(t)["status"] != "alive" {
		t.Fatalf("healthz: %d %s", r.Status, r.Body)
	}
	if rd := read(200); rd.Status != "ready" || rd.Checks["database"] != "ok" || len(rd.Checks) != wantChecks {
		t.Fatalf("ready: %+v", rd)
	}
	// Hold the database's only connection, as a stuck writer would.
	conn, err := in.Database().Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rd := read(503); rd.Status != "not ready" || rd.Checks["database"] != "down" {
		t.Errorf("database held: %+v", rd)
	}
	if r := in.Do("GET", "/healthz", nil); r.Status != 200 {
		t.Errorf("healthz while the database is stuck: %d", r.Status)
	}
	conn.Close()
	if rd := read(200); rd.Checks["database"] != "ok" {
		t.Errorf("released: %+v", rd)
	}
	if !strings.Contains(in.Logs.String(), `dependency=database`) {
		t.Errorf("the log does not say the database was down:\n%s", in.Logs.String())
	}
}

// TestReadinessWithWeaviate: with memories in Weaviate, /readyz asks it
// too; Weaviate killed, /readyz answers 503 naming it, without its
// address.
func TestReadinessWithWeaviate(t *testing.T) {
	w := weaviatetest.Start(t)
	cfg := apptest.Config(t.TempDir())
	cfg.Memory = config.Memory{Backend: "weaviate", Weaviate: config.Weaviate{URL: w.URL, GRPCPort: w.GRPCPort, Prefix: "Ready"}}
	in := apptest.StartWith(t, cfg)
	r := in.Do("GET", "/readyz", nil)
	if m := r.Map(t); r.Status != 200 || m["checks"].(map[string]any)["weaviate"] != "ok" {
		t.Fatalf("readyz: %d %s", r.Status, r.Body)
	}
	w.Kill()
	r = in.Do("GET", "/readyz", nil)
	if m := r.Map(t); r.Status != 503 || m["checks"].(map[string]any)["weaviate"] != "down" || m["checks"].(map[string]any)["database"] != "ok" {
		t.Fatalf("weaviate killed: %d %s", r.Status, r.Body)
	}
	if strings.Contains(string(r.Body), strings.TrimPrefix(w.URL, "http://")) {
		t.Errorf("readyz shows Weaviate's address: %s", r.Body)
	}
}

// TestRequestIDs: a request's id (the client's sane X-Request-Id, else a
// new one) comes back in the response header, reaches the plugins' ctx
// (a plugin compiled from source writes it into the message the cat
// reads) and is on every log line of the request: the request's own, the
// plugin's. A document read in the background keeps its upload's id. Each
// WebSocket message is a request of its own, named after its socket's
// handshake.
func TestRequestIDs(t *testing.T) {
	in := apptest.Start(t)
	manifest := `{"id":"reqid","name":"reqid","version":"1","hooks":[{"name":"before_cat_reads_message","priority":1},{"name":"before_rabbithole_splits_text","priority":1}]}`
	if r := uploadPlugin(t, in, zipPlugin(t, manifest, buildWasm(t, "../../wasmhooks/testdata/guests/reqid"))); r.Status != 200 {
		t.Fatalf("install: %d %s", r.Status, r.Body)
	}
	type reply struct {
		Why struct{ Input string } `json:"why"`
	}
	logLines := func(id string) []string {
		var out []string
		for _, l := range strings.Split(in.Logs.String(), "\n") {
			if strings.Contains(l, "request_id="+id+" ") || strings.HasSuffix(l, "request_id="+id) {
				out = append(out, l)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name, sent string
		kept       bool
	}{
		{"sane id kept", "trace-7f3a.span:1", true},
		{"none sent", "", false},
		{"spaces refused", "two words", false},
		{"too long refused", strings.Repeat("x", 129), false},
		{"log syntax refused", "a=b;level=ERROR", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var headers []string
			if tc.sent != "" {
				headers = []string{"X-Request-Id", tc.sent}
			}
			r := in.Do("POST", "/message", map[string]any{"text": "hello"}, headers...)
			if r.Status != 200 {
				t.Fatalf("message: %d %s", r.Status, r.Body)
			}
			id := r.Header.Get("X-Request-Id")
			if tc.kept && id != tc.sent {
				t.Fatalf("X-Request-Id %q, want %q kept", id, tc.sent)
			}
			if !tc.kept && (id == "" || id == tc.sent || strings.ContainsAny(id, " \n")) {
				t.Fatalf("X-Request-Id %q for %q sent", id, tc.sent)
			}
			var rep reply
			r.JSON(t, &rep)
			if !strings.Contains(rep.Why.Input, "[request "+id+"]") {
				t.Errorf("the plugin's ctx did not carry %q: %q", id, rep.Why.Input)
			}
			lines := logLines(id)
			joined := strings.Join(lines, "\n")
			if !strings.Contains(joined, "msg=request") || !strings.Contains(joined, "route=/message") || !strings.Contains(joined, `msg="reqid saw its request"`) {
				t.Errorf("log lines of %s:\n%s", id, joined)
			}
		})
	}

	// A document read after the upload was answered: its hooks see the
	// upload's id.
	carol := dial(t, in, "/ws/carol")
	if r := upload(t, in, "", "story.txt", "text/plain", []byte("Alice follows the white rabbit."), nil,
		"user_id", "carol", "X-Request-Id", "upload-5"); r.Status != 200 {
		t.Fatalf("upload: %d %s", r.Status, r.Body)
	}
	if f := carol.next(); f.Type != "notification" || !strings.Contains(f.Content, "Finished") {
		t.Fatalf("notification: %+v", f)
	}
	var rec struct {
		Vectors struct {
			Collections map[string][]struct {
				PageContent string `json:"page_content"`
			} `json:"collections"`
		} `json:"vectors"`
	}
	in.Do("POST", "/memory/recall", map[string]any{"text": "white rabbit"}, "user_id", "carol").JSON(t, &rec)
	if d := rec.Vectors.Collections["declarative"]; len(d) == 0 || !strings.Contains(d[0].PageContent, "[request upload-5]") {
		t.Errorf("the document's hook did not see the upload's id: %+v", d)
	}

	// A socket: its messages are <handshake id>.1, .2
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(in.URL, "http")+"/ws/alice",
		&websocket.DialOptions{HTTPHeader: http.Header{"X-Request-Id": {"sock-9"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	if got := resp.Header.Get("X-Request-Id"); got != "sock-9" {
		t.Errorf("handshake X-Request-Id %q", got)
	}
	ws := &wsClient{t: t, conn: conn}
	for n := 1; n <= 2; n++ {
		ws.send(map[string]string{"text": "hi"})
		f, _ := ws.reply()
		want := "sock-9." + strconv.Itoa(n)
		if !strings.Contains(f.Why.Input, "[request "+want+"]") {
			t.Errorf("message %d: the plugin saw %q, want %s", n, f.Why.Input, want)
		}
		// The socket's line is logged once the reply is sent: it may
		// come a moment after the frame.
		within(t, "the log lines of "+want, func() bool {
			joined := strings.Join(logLines(want), "\n")
			return strings.Contains(joined, `msg="socket message"`) && strings.Contains(joined, "outcome=answered") && strings.Contains(joined, `msg="reqid saw its request"`)
		})
	}
}

// TestMetricsForAScraper: a scraper's own user, given nothing but
// "p, <its id>, metrics, read" in the policy, reads the metrics and
// nothing else an administrator could.
func TestMetricsForAScraper(t *testing.T) {
	cfg := apptest.Config(t.TempDir())
	cfg.AuthRequired = true
	in := apptest.StartWith(t, cfg)
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	var u struct{ ID string }
	if r := in.Do("POST", "/users", map[string]any{"username": "prometheus", "password": "scrape-secret", "permissions": map[string][]string{}}, admin...); r.Status != 200 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	} else {
		r.JSON(t, &u)
	}
	scraper := apptest.Bearer(in.Login("prometheus", "scrape-secret"))
	if r := in.Do("GET", "/metrics", nil, scraper...); r.Status != http.StatusForbidden {
		t.Fatalf("before the grant: %d", r.Status)
	}
	var docs struct {
		Model  string `json:"model"`
		Policy string `json:"policy"`
	}
	in.Do("GET", "/policies", nil, admin...).JSON(t, &docs)
	docs.Policy += "\np, " + u.ID + ", metrics, read\n"
	if r := in.Do("PUT", "/policies", docs, admin...); r.Status != 200 {
		t.Fatalf("grant: %d %s", r.Status, r.Body)
	}
	if r := in.Do("GET", "/metrics", nil, scraper...); r.Status != 200 {
		t.Errorf("after the grant: %d %s", r.Status, r.Body)
	}
	if r := in.Do("GET", "/users", nil, scraper...); r.Status != http.StatusForbidden {
		t.Errorf("the scraper lists users: %d", r.Status)
	}
}
