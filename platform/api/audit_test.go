package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grin-ai/grin/platform/app/apptest"
	"github.com/grin-ai/grin/platform/config"
)

// auditEntry is an entry of GET /audit.
type auditEntry struct {
	ID    int64     `json:"id"`
	Time  time.Time `json:"time"`
	Actor struct {
		Kind string `json:"kind"`
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"actor"`
	Address string          `json:"address"`
	Action  string          `json:"action"`
	Target  string          `json:"target"`
	Before  json.RawMessage `json:"before"`
	After   json.RawMessage `json:"after"`
	Outcome string          `json:"outcome"`
	Detail  string          `json:"detail"`
}

type auditPage struct {
	Entries []auditEntry `json:"entries"`
	Next    int64        `json:"next"`
}

// client sends requests from the loopback address ip (all of 127/8 is
// this machine), with X-Forwarded-For when forwarded is set.
type client struct {
	t         *testing.T
	in        *apptest.Instance
	http      *http.Client
	forwarded string
}

func from(t *testing.T, in *apptest.Instance, ip, forwarded string) *client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &client{t: t, in: in, forwarded: forwarded,
		http: &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}}
}

func (c *client) do(method, path string, body any, headers ...string) apptest.Response {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, _ := json.Marshal(b)
		rd = bytes.NewReader(buf)
		headers = append([]string{"Content-Type", "application/json"}, headers...)
	}
	req, _ := http.NewRequest(method, c.in.URL+path, rd)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if c.forwarded != "" {
		req.Header.Set("X-Forwarded-For", c.forwarded)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func (c *client) must(status int, method, path string, body any, headers ...string) apptest.Response {
	c.t.Helper()
	r := c.do(method, path, body, headers...)
	if r.Status != status {
		c.t.Fatalf("%s %s: %d %s, want %d", method, path, r.Status, r.Body, status)
	}
	return r
}

func (c *client) login(username, password string) []string {
	c.t.Helper()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	c.must(200, "POST", "/auth/token", map[string]string{"username": username, "password": password}).JSON(c.t, &tok)
	return apptest.Bearer(tok.AccessToken)
}

// readAudit reads every entry GET /audit gives for query, page by page.
func readAudit(t *testing.T, in *apptest.Instance, query string, headers ...string) []auditEntry {
	t.Helper()
	var all []auditEntry
	before := int64(0)
	for {
		q := query
		if before > 0 {
			q += fmt.Sprintf("&before=%d", before)
		}
		r := in.Do("GET", "/audit?"+q, nil, headers...)
		if r.Status != 200 {
			t.Fatalf("GET /audit?%s: %d %s", q, r.Status, r.Body)
		}
		var p auditPage
		r.JSON(t, &p)
		all = append(all, p.Entries...)
		if p.Next == 0 {
			return all
		}
		before = p.Next
	}
}

// storedAudit is the whole audit table as stored in the instance's
// database, every column of every row.
func storedAudit(t *testing.T, dir string) string {
	t.Helper()
	db := apptest.OpenDatabase(t, dir)
	rows, err := db.Query(`SELECT * FROM audit`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var sb strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			fmt.Fprintf(&sb, "%s\t", v)
		}
		sb.WriteString("\n")
	}
	return sb.String()
}

// waitForAudit polls until an entry of action with outcome is recorded
// (the policy watcher records file edits on its own goroutine).
func waitForAudit(t *testing.T, in *apptest.Instance, action, outcome string, headers ...string) auditEntry {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, e := range readAudit(t, in, "action="+action, headers...) {
			if e.Outcome == outcome {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s entry with outcome %s was recorded", action, outcome)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAuditLogRecordsEveryChange: every kind of change (users, their
// permissions and passwords, tokens, logins, the policy through the API
// and its files, plugins and their settings, the model, embedder and auth
// handler settings, /settings documents) leaves an entry naming who, from
// which address (the client a trusted proxy forwards for), what before and
// after, and how it ended; and no secret set along the way is anywhere in
// the stored log.
func TestAuditLogRecordsEveryChange(t *testing.T) {
	in := authRequired(t, func(c *config.Config) {
		c.Login.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.5/32")}
	})
	in.App.Login.FailDelay = time.Millisecond
	const clientAddr = "203.0.113.7"
	proxy := from(t, in, "127.0.0.5", "198.51.100.99, "+clientAddr)
	// A client that is not a trusted proxy cannot choose its address.
	direct := from(t, in, "127.0.0.6", "198.51.100.66")

	secrets := map[string]string{
		"wrong password":    "wrong-SECRET-pw-1",
		"bob's password":    "bob-SECRET-pw-2",
		"bob's new one":     "bob-SECRET-pw-3",
		"plugin key":        "plug-SECRET-key-4",
		"model key":         "llm-SECRET-key-5",
		"document URL pass": "url-SECRET-pass-6",
		"document token":    "doc-SECRET-token-7",
		"document bearer":   "hdr-SECRET-bearer-8",
		"document access":   "ak-SECRET-access-9",
		"document cookie":   "ck-SECRET-cookie-10",
		"document new key":  "doc-SECRET-key-11",
		"admin password":    apptest.AdminPassword,
	}

	direct.must(403, "POST", "/auth/token", map[string]string{"username": "admin", "password": secrets["wrong password"]})
	admin := proxy.login("admin", apptest.AdminPassword)
	adminID := userNamed(t, in, "admin", admin...).ID

	var bob user
	proxy.must(200, "POST", "/users", map[string]any{"username": "bob", "password": secrets["bob's password"],
		"permissions": map[string][]string{"MEMORY": {"READ"}}}, admin...).JSON(t, &bob)
	proxy.must(200, "PUT", "/users/"+bob.ID, map[string]any{"permissions": map[string][]string{"MEMORY": {"READ", "LIST"}}}, admin...)
	proxy.must(200, "PUT", "/users/"+bob.ID, map[string]any{"password": secrets["bob's new one"]}, admin...)
	proxy.must(204, "DELETE", "/users/"+bob.ID+"/tokens", nil, admin...)
	bobTok := proxy.login("bob", secrets["bob's new one"])
	proxy.must(204, "POST", "/auth/logout", nil, bobTok...)
	// A refused change is recorded too, with the refusal.
	proxy.must(403, "PUT", "/users/"+bob.ID, map[string]any{"permissions": map[string][]string{"USERS": {"EDIT"}}}, proxy.login("bob", secrets["bob's new one"])...)

	var docs documents
	in.Do("GET", "/policies", nil, admin...).JSON(t, &docs)
	docs.Policy += "\np, role:auditor, audit, read\n"
	proxy.must(200, "PUT", "/policies", docs, admin...)
	proxy.must(200, "PUT", "/policies?dry_run=true", docs, admin...) // changes nothing: not recorded
	// The single changes beside a whole PUT: one rule, one member, a
	// version put back.
	var inForce struct {
		Version int64 `json:"version"`
	}
	proxy.must(200, "POST", "/policies/rules", map[string]any{"rule": "p, role:auditor, plugins, read"}, admin...).JSON(t, &inForce)
	proxy.must(200, "DELETE", "/policies/rules?rule="+url.QueryEscape("p, role:auditor, plugins, read"), nil, admin...)
	proxy.must(200, "PUT", "/roles/role:auditor/members/bob", nil, admin...)
	proxy.must(200, "DELETE", "/roles/role:auditor/members/bob", nil, admin...)
	proxy.must(200, "POST", fmt.Sprintf("/policies/versions/%d/restore", inForce.Version), nil, admin...)

	upper := buildWasm(t, "../../wasmhooks/testdata/guests/upper")
	manifest := `{"id":"shout","name":"Shout","version":"0.1.0","hooks":[{"name":"before_cat_reads_message","priority":5}],
		"settings_schema":{"type":"object","properties":{"suffix":{"type":"string"},"api_key":{"type":"string"}}}}`
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	part, _ := w.CreateFormFile("file", "shout.zip")
	part.Write(zipPlugin(t, manifest, upper))
	w.Close()
	proxy.must(200, "POST", "/plugins/upload", body.Bytes(), append([]string{"Content-Type", w.FormDataContentType()}, admin...)...)
	proxy.must(200, "PUT", "/plugins/settings/shout", map[string]any{"suffix": "!", "api_key": secrets["plugin key"]}, admin...)
	proxy.must(200, "PUT", "/plugins/toggle/shout", nil, admin...)
	proxy.must(200, "PUT", "/plugins/isolation/shout", map[string]any{"isolation": "per-user"}, admin...)
	proxy.must(200, "DELETE", "/plugins/shout", nil, admin...)

	model := newOpenAIServer(t, "hi")
	proxy.must(200, "PUT", "/llm/settings/LLMOpenAICompatibleConfig", map[string]any{
		"base_url": model.URL + "/v1", "model": "tiny", "api_key": secrets["model key"]}, admin...)
	proxy.must(200, "PUT", "/embedder/settings/EmbedderDefaultConfig", map[string]any{}, admin...)
	proxy.must(200, "PUT", "/auth_handler/settings/CoreOnlyAuthConfig", map[string]any{}, admin...)

	var setting struct {
		SettingID string `json:"setting_id"`
	}
	proxy.must(200, "POST", "/settings", map[string]any{"name": "client", "value": map[string]any{
		"token": secrets["document token"], "headers": map[string]any{"Authorization": "Bearer " + secrets["document bearer"], "Cookie": "sid=" + secrets["document cookie"]},
		"accessKey": secrets["document access"], "webhook": "https://hook:" + secrets["document URL pass"] + "@hooks.example.com/in",
		"theme": "dark"}}, admin...).JSON(t, &setting)
	proxy.must(200, "PUT", "/settings/"+setting.SettingID, map[string]any{"name": "client", "value": map[string]any{
		"apiKey": secrets["document new key"], "theme": "light"}}, admin...)
	proxy.must(200, "DELETE", "/settings/"+setting.SettingID, nil, admin...)
	proxy.must(200, "DELETE", "/users/"+bob.ID, nil, admin...)

	// Policy file edits: one that loads, one that does not.
	policyFile := filepath.Join(in.Dir, "policy.csv")
	good, err := os.ReadFile(policyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(policyFile, append(good, []byte("\np, role:auditor, users, read\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	waitForAudit(t, in, "policy.file", "success", admin...)
	if err := os.WriteFile(policyFile, []byte("p, role:admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	refusedEdit := waitForAudit(t, in, "policy.file", "refused", admin...)
	if !strings.Contains(refusedEdit.Detail, "refused") || !strings.Contains(refusedEdit.Detail, "line 1") {
		t.Errorf("the refused file edit says %q, want why, by line", refusedEdit.Detail)
	}

	entries := readAudit(t, in, "limit=7", admin...)
	// find is the newest entry of action, outcome and target by actor
	// whose before and after have what they should.
	find := func(action, outcome, target, actor, beforeHas, afterHas string) auditEntry {
		t.Helper()
		for _, e := range entries {
			if e.Action == action && e.Outcome == outcome && e.Target == target && e.Actor.Name == actor &&
				strings.Contains(string(e.Before), beforeHas) && strings.Contains(string(e.After), afterHas) {
				return e
			}
		}
		t.Errorf("no %s entry (%s, target %q, by %s, before with %s, after with %s) in the audit log", action, outcome, target, actor, beforeHas, afterHas)
		return auditEntry{}
	}
	for _, tc := range []struct {
		action, outcome, target string
		actor, address          string
		beforeHas, afterHas     string
	}{
		{"login", "refused", adminID, "admin", "127.0.0.6", "", ""},
		{"login", "success", adminID, "admin", clientAddr, "", ""},
		{"user.create", "success", bob.ID, "admin", clientAddr, "", `"username":"bob"`},
		{"user.update", "success", bob.ID, "admin", clientAddr, `"MEMORY":["READ"]`, `"MEMORY":["LIST","READ"]`},
		{"user.update", "refused", bob.ID, "bob", clientAddr, "", ""},
		{"tokens.revoke", "success", bob.ID, "admin", clientAddr, "", ""},
		{"tokens.revoke", "success", bob.ID, "bob", clientAddr, "", ""},
		{"user.delete", "success", bob.ID, "admin", clientAddr, `"username":"bob"`, ""},
		{"policy.update", "success", "policies", "admin", clientAddr, "", "role:auditor, audit, read"},
		{"policy.file", "success", "policies", "model.conf, policy.csv", "", "", "role:auditor, users, read"},
		{"policy.rule.add", "success", "policies", "admin", clientAddr, "", "role:auditor, plugins, read"},
		{"policy.rule.remove", "success", "policies", "admin", clientAddr, "role:auditor, plugins, read", ""},
		{"role.member.add", "success", "policies", "admin", clientAddr, "", "user:bob, role:auditor"},
		{"role.member.remove", "success", "policies", "admin", clientAddr, "user:bob, role:auditor", ""},
		{"policy.restore", "success", "policies", "admin", clientAddr, "", "role:auditor, plugins, read"},
		{"plugin.install", "success", "shout", "admin", clientAddr, "", `"version":"0.1.0"`},
		{"plugin.settings", "success", "shout", "admin", clientAddr, "", `"suffix":"!"`},
		{"plugin.toggle", "success", "shout", "admin", clientAddr, `"active":true`, `"active":false`},
		{"plugin.isolation", "success", "shout", "admin", clientAddr, "", `"forced_isolation":"per-user"`},
		{"plugin.delete", "success", "shout", "admin", clientAddr, `"id":"shout"`, ""},
		{"llm.update", "success", "LLMOpenAICompatibleConfig", "admin", clientAddr, "", `"model":"tiny"`},
		{"embedder.update", "success", "EmbedderDefaultConfig", "admin", clientAddr, "", `"selected":"EmbedderDefaultConfig"`},
		{"auth_handler.update", "success", "CoreOnlyAuthConfig", "admin", clientAddr, "", `"selected":"CoreOnlyAuthConfig"`},
		{"setting.create", "success", setting.SettingID, "admin", clientAddr, "", `"theme":"dark"`},
		{"setting.update", "success", setting.SettingID, "admin", clientAddr, `"theme":"dark"`, `"theme":"light"`},
		{"setting.delete", "success", setting.SettingID, "admin", clientAddr, `"theme":"light"`, ""},
	} {
		e := find(tc.action, tc.outcome, tc.target, tc.actor, tc.beforeHas, tc.afterHas)
		if e.Action != "" && e.Address != tc.address {
			t.Errorf("%s %s by %s: from %q, want %q", tc.action, tc.outcome, tc.actor, e.Address, tc.address)
		}
	}
	// The new password: the update says it changed, and its revocation
	// of bob's tokens has an entry of its own.
	revokes := 0
	for _, e := range entries {
		if e.Action == "tokens.revoke" && e.Target == bob.ID && e.Detail == "the password changed" {
			revokes++
		}
		if e.Action == "user.update" && e.Outcome == "success" && strings.Contains(string(e.After), `"password":"********"`) {
			revokes++
		}
	}
	if revokes != 2 {
		t.Errorf("the password change left %d of its 2 marks (user.update with the password ********, tokens.revoke)", revokes)
	}
	if n := len(readAudit(t, in, "action=policy.update", admin...)); n != 1 {
		t.Errorf("%d policy.update entries, want 1: a dry run changes nothing", n)
	}
	if e := find("user.update", "refused", bob.ID, "bob", "", ""); !strings.Contains(e.Detail, "USERS EDIT") {
		t.Errorf("the refused update says %q, want the refusal's reason", e.Detail)
	}

	stored := storedAudit(t, in.Dir)
	for what, s := range secrets {
		if strings.Contains(stored, s) {
			t.Errorf("the %s (%s) is in the stored audit log", what, s)
		}
	}
	if !strings.Contains(stored, "********") {
		t.Error("nothing in the stored audit log is masked: the secrets were not recorded at all")
	}
}

// TestAuditLogIsForThoseThePolicyAllows: reading the audit log is the
// policy's object audit, action read: role:admin holds it, a user with no
// role gets 403, and a role granted it in the policy reads it. A user
// editor cannot take over (reset the password of) a user who may read it.
func TestAuditLogIsForThoseThePolicyAllows(t *testing.T) {
	in := authRequired(t)
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	var carol, dave user
	in.Do("POST", "/users", map[string]any{"username": "carol", "password": "carol-pw",
		"permissions": map[string][]string{"USERS": {"READ", "LIST", "WRITE", "EDIT"}, "STATUS": {"READ"}}}, admin...).JSON(t, &carol)
	in.Do("POST", "/users", map[string]any{"username": "dave", "password": "dave-pw",
		"permissions": map[string][]string{"STATUS": {"READ"}}}, admin...).JSON(t, &dave)

	c := apptest.Bearer(in.Login("carol", "carol-pw"))
	d := apptest.Bearer(in.Login("dave", "dave-pw"))
	for _, tok := range [][]string{c, d} {
		if r := in.Do("GET", "/audit", nil, tok...); r.Status != http.StatusForbidden || !strings.Contains(r.Detail(), "audit read") {
			t.Errorf("GET /audit without the right: %d %s, want 403 naming audit read", r.Status, r.Body)
		}
	}
	if r := in.Do("GET", "/audit", nil, admin...); r.Status != 200 {
		t.Fatalf("the administrator reads the audit log: %d %s", r.Status, r.Body)
	}

	// dave may read the audit log by a rule of his own, no role.
	var docs documents
	in.Do("GET", "/policies", nil, admin...).JSON(t, &docs)
	docs.Policy += "\np, " + dave.ID + ", audit, read\n"
	if r := in.Do("PUT", "/policies", docs, admin...); r.Status != 200 {
		t.Fatalf("policy edit: %d %s", r.Status, r.Body)
	}
	if r := in.Do("GET", "/audit?action=policy.update", nil, d...); r.Status != 200 {
		t.Errorf("dave, granted audit read, reads the audit log: %d %s", r.Status, r.Body)
	}
	// carol may edit users, but not become dave to read the log.
	r := in.Do("PUT", "/users/"+dave.ID, map[string]any{"password": "carol-knows"}, c...)
	if r.Status != http.StatusForbidden || !strings.Contains(r.Detail(), "read the audit log") {
		t.Errorf("carol resets the password of dave, who may read the audit log: %d %s, want 403 saying why", r.Status, r.Body)
	}
	if r := in.Do("DELETE", "/users/"+dave.ID, nil, c...); r.Status != http.StatusForbidden {
		t.Errorf("carol deletes dave, who may read the audit log: %d %s, want 403", r.Status, r.Body)
	}
	if r := in.Do("POST", "/auth/token", map[string]string{"username": "dave", "password": "dave-pw"}); r.Status != 200 {
		t.Errorf("dave's password changed after all: %d", r.Status)
	}
	// No operation changes or deletes an entry.
	for _, m := range []string{"PUT", "PATCH", "DELETE", "POST"} {
		if r := in.Do(m, "/audit", map[string]any{}, admin...); r.Status != http.StatusMethodNotAllowed {
			t.Errorf("%s /audit: %d, want 405", m, r.Status)
		}
	}
}

// TestAuditLogPagesAndFilters: pages walk the whole log once, newest
// first; actor (by name or id), action and target (exact or by prefix)
// and since/until select; bad filters are 422 saying why.
func TestAuditLogPagesAndFilters(t *testing.T) {
	in := authRequired(t)
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	userTok := apptest.Bearer(in.Login("user", apptest.UserPassword))
	in.Do("POST", "/auth/token", map[string]string{"username": "user", "password": "not-it"})
	var ids []string
	for i := range 7 {
		var s struct {
			SettingID string `json:"setting_id"`
		}
		in.Do("POST", "/settings", map[string]any{"name": fmt.Sprintf("s%d", i), "value": map[string]any{"n": i}}, admin...).JSON(t, &s)
		ids = append(ids, s.SettingID)
	}
	in.Do("POST", "/auth/logout", nil, userTok...)

	all := readAudit(t, in, "limit=1000", admin...)
	paged := readAudit(t, in, "limit=3", admin...)
	if len(all) != 11 || len(paged) != len(all) {
		t.Fatalf("%d entries, %d through pages of 3; want 11 (3 logins, 7 settings, 1 logout): %+v", len(all), len(paged), all)
	}
	for i := range all {
		if paged[i].ID != all[i].ID || (i > 0 && all[i].ID >= all[i-1].ID) {
			t.Fatalf("pages: entry %d is %d, want %d, newest first", i, paged[i].ID, all[i].ID)
		}
	}
	count := func(query string) int { return len(readAudit(t, in, query, admin...)) }
	var userID string
	for _, e := range all {
		if e.Action == "tokens.revoke" {
			userID = e.Actor.ID
		}
	}
	for _, tc := range []struct {
		query string
		want  int
	}{
		{"action=setting.create", 7},
		{"action=setting.*", 7},
		{"action=login", 3},
		{"action=log", 0},
		{"actor=admin", 8},
		{"actor=user", 3},
		{"actor=" + userID, 3},
		{"actor_kind=user", 11},
		{"actor_kind=api_key", 0},
		{"target=" + ids[2], 1},
		{"target=user", 3}, // the username, and the entries naming the user by id
		{"actor=admin&action=login", 1},
		{"actor=nobody", 0},
	} {
		if got := count(tc.query); got != tc.want {
			t.Errorf("%s: %d entries, want %d", tc.query, got, tc.want)
		}
	}
	// since and until, at the time of the fifth entry from the end.
	mid := all[len(all)-5].Time.Format(time.RFC3339Nano)
	atOrAfter, atOrBefore := 0, 0
	for _, e := range all {
		if !e.Time.Before(all[len(all)-5].Time) {
			atOrAfter++
		}
		if !e.Time.After(all[len(all)-5].Time) {
			atOrBefore++
		}
	}
	if got := count("since=" + url.QueryEscape(mid)); got != atOrAfter {
		t.Errorf("since %s: %d entries, want %d", mid, got, atOrAfter)
	}
	if got := count("until=" + url.QueryEscape(mid)); got != atOrBefore {
		t.Errorf("until %s: %d entries, want %d", mid, got, atOrBefore)
	}
	for _, tc := range []struct{ query, says string }{
		{"since=yesterday", "RFC 3339"},
		{"since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", "before since"},
		{"limit=0", "limit"},
		{"limit=5000", "limit"},
		{"actor_kind=robot", "actor_kind"},
	} {
		r := in.Do("GET", "/audit?"+tc.query, nil, admin...)
		if r.Status != http.StatusUnprocessableEntity || !strings.Contains(string(r.Body), tc.says) {
			t.Errorf("%s: %d %s, want 422 saying %q", tc.query, r.Status, r.Body, tc.says)
		}
	}
}

// TestAuditLogRetention: entries older than GRIN_AUDIT_RETENTION are
// pruned in the background (here at the start after a restart), younger
// ones stay; and the stored log refuses to change an entry or delete a
// young one, whoever asks.
func TestAuditLogRetention(t *testing.T) {
	dir := t.TempDir()
	cfg := apptest.Config(dir)
	cfg.APIKey = testAPIKey
	cfg.AuditRetention = 30 * 24 * time.Hour
	in := apptest.StartWith(t, cfg)
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	in.Close()

	db := apptest.OpenDatabase(t, dir)
	now := time.Now()
	for _, e := range []struct {
		age    time.Duration
		target string
	}{{400 * 24 * time.Hour, "ancient"}, {31 * 24 * time.Hour, "last-month"}, {10 * 24 * time.Hour, "recent"}} {
		if _, err := db.Exec(`INSERT INTO audit (at, actor_kind, action, target, outcome) VALUES ($1, 'user', 'user.update', $2, 'success')`,
			now.Add(-e.age).UnixMilli(), e.target); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`UPDATE audit SET target = 'changed'`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("changing an entry: %v, want it refused", err)
	}
	if _, err := db.Exec(`DELETE FROM audit WHERE action = 'login'`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("deleting a young entry: %v, want it refused", err)
	}

	in = apptest.StartWith(t, cfg)
	deadline := time.Now().Add(20 * time.Second)
	for {
		targets := map[string]bool{}
		for _, e := range readAudit(t, in, "action=user.update", admin...) {
			targets[e.Target] = true
		}
		if !targets["recent"] {
			t.Fatalf("an entry within the retention was pruned: %v", targets)
		}
		if !targets["ancient"] && !targets["last-month"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("entries older than the retention were not pruned: %v", targets)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(readAudit(t, in, "action=login", admin...)); n != 1 {
		t.Errorf("%d login entries after pruning, want the one of today", n)
	}
}
