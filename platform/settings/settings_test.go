package settings_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/grin-ai/grin/platform/database"
	"github.com/grin-ai/grin/platform/database/databasetest"
	"github.com/grin-ai/grin/platform/redact"
	"github.com/grin-ai/grin/platform/settings"
)

type endpoint struct {
	URL    string `json:"url"`
	APIKey string `json:"api_key"`
}

// TestSettings runs the settings store's behaviour suite on SQLite and on
// PostgreSQL: each case gets a new, empty database of the engine.
func TestSettings(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, open databasetest.Open)
	}{
		{"secrets are masked and kept", testSecretsAreMaskedAndKept},
		{"refused settings change nothing", testRefusedSettingsChangeNothing},
		{"the mask is never saved", testMaskIsNeverSaved},
		{"a document saved as read keeps its secrets", testDocumentSavedAsReadKeepsItsSecrets},
		{"documents are listed, found, updated and deleted", testDocuments},
	}
	databasetest.EachEngine(t, func(t *testing.T, _ database.Engine, open databasetest.Open) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) { c.run(t, open) })
		}
	})
}

func newRegistry(t *testing.T, open databasetest.Open) (*settings.Registry[endpoint], *endpoint) {
	t.Helper()
	db := open(t)
	var inForce endpoint
	schema := map[string]any{"type": "object", "properties": map[string]any{
		"url": map[string]any{"type": "string"}, "api_key": map[string]any{"type": "string", "writeOnly": true},
	}}
	build := func(_ context.Context, raw json.RawMessage) (endpoint, error) {
		var e endpoint
		if err := json.Unmarshal(raw, &e); err != nil {
			return e, err
		}
		if e.URL == "" {
			return e, errors.New("url is required")
		}
		return e, nil
	}
	r := settings.New(db, "test", func(e endpoint) { inForce = e },
		settings.Factory[endpoint]{Name: "Default", Schema: schema, Defaults: json.RawMessage(`{"url":"none"}`), Build: build},
		settings.Factory[endpoint]{Name: "Remote", Schema: schema, Defaults: json.RawMessage(`{}`), Build: build},
	)
	return r, &inForce
}

func testSecretsAreMaskedAndKept(t *testing.T, open databasetest.Open) {
	r, inForce := newRegistry(t, open)
	ctx := context.Background()
	s, err := r.Put(ctx, "Remote", json.RawMessage(`{"url":"http://a.example","api_key":"sk-secret"}`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(s.Value), "sk-secret") || inForce.APIKey != "sk-secret" {
		t.Errorf("put answered %s, in force %+v", s.Value, *inForce)
	}
	list, sel, _ := r.List(ctx)
	for _, x := range list {
		if strings.Contains(string(x.Value), "sk-secret") {
			t.Errorf("list shows the secret: %s", x.Value)
		}
	}
	if sel != "Remote" {
		t.Errorf("selected %q", sel)
	}
	// Saving back what was read keeps the secret.
	got, _ := r.Get(ctx, "Remote")
	if _, err := r.Put(ctx, "Remote", got.Value); err != nil || inForce.APIKey != "sk-secret" {
		t.Errorf("round trip: %v, key %q", err, inForce.APIKey)
	}
	// A new address needs the secret again.
	_, err = r.Put(ctx, "Remote", json.RawMessage(`{"url":"http://evil.example","api_key":"********"}`))
	if !errors.Is(err, settings.ErrInvalid) || !strings.Contains(err.Error(), "api_key") {
		t.Errorf("url change kept the secret: %v", err)
	}
	if inForce.URL != "http://a.example" {
		t.Errorf("a refused put changed what is in force: %+v", *inForce)
	}
	if _, err := r.Put(ctx, "Remote", json.RawMessage(`{"url":"http://b.example","api_key":"sk-new"}`)); err != nil || inForce.APIKey != "sk-new" {
		t.Errorf("url change with a new key: %v %+v", err, *inForce)
	}
	// Leaving the URL out falls back to a default address: a change too.
	if _, err := r.Put(ctx, "Remote", json.RawMessage(`{"api_key":"********"}`)); err == nil || !strings.Contains(err.Error(), "send api_key again") {
		t.Errorf("url left out kept the secret: %v", err)
	}
}

func testRefusedSettingsChangeNothing(t *testing.T, open databasetest.Open) {
	r, inForce := newRegistry(t, open)
	ctx := context.Background()
	if _, err := r.Put(ctx, "Remote", json.RawMessage(`{"api_key":"k"}`)); !errors.Is(err, settings.ErrInvalid) {
		t.Errorf("invalid put: %v", err)
	}
	if _, sel, _ := r.List(ctx); sel != "Default" {
		t.Errorf("selection after a refused put: %q", sel)
	}
	if _, err := r.Put(ctx, "Nope", json.RawMessage(`{}`)); !errors.Is(err, settings.ErrUnknown) {
		t.Errorf("unknown: %v", err)
	}
	if err := r.Restore(ctx); err != nil || inForce.URL != "none" {
		t.Errorf("restore of the default: %v %+v", err, *inForce)
	}
}

// testMaskIsNeverSaved: a masked secret with nothing stored behind it (a
// client saving back a form it read) is no secret at all, new address or
// not; the mask must not become the key.
func testMaskIsNeverSaved(t *testing.T, open databasetest.Open) {
	for _, body := range []string{
		`{"url":"http://a.example","api_key":"********"}`, // a new address
		`{"url":"none","api_key":"********"}`,             // the same address
	} {
		r, inForce := newRegistry(t, open)
		if _, err := r.Put(context.Background(), "Remote", json.RawMessage(body)); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if inForce.APIKey != "" {
			t.Errorf("%s: the key in force is %q", body, inForce.APIKey)
		}
	}
}

// testDocumentSavedAsReadKeepsItsSecrets: a client that reads a /settings
// document (its secrets masked at every depth) and saves it back as it
// read it, changing one plain field, keeps every stored secret; a secret it
// replaces with a new value is replaced.
func testDocumentSavedAsReadKeepsItsSecrets(t *testing.T, open databasetest.Open) {
	ctx := context.Background()
	docs := settings.NewDocuments(open(t))
	stored := `{"llm":{"api_key":"sk-real","model":"m1"},"credentials":{"user":"a","pass":"b"},"token":"t","keys":[{"secret":"s1"}]}`
	doc, err := docs.Create(ctx, "providers", json.RawMessage(stored), "")
	if err != nil {
		t.Fatal(err)
	}
	shown := redact.JSON(doc.Value)
	if strings.Contains(string(shown), "sk-real") || strings.Contains(string(shown), `"s1"`) {
		t.Fatalf("a secret is shown: %s", shown)
	}
	var edited map[string]any
	json.Unmarshal(shown, &edited)
	edited["llm"].(map[string]any)["model"] = "m2"
	edited["token"] = "t2"
	b, _ := json.Marshal(edited)
	if _, err := docs.Update(ctx, doc.ID, "providers", b, ""); err != nil {
		t.Fatal(err)
	}
	got, err := docs.Get(ctx, doc.ID)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	json.Unmarshal(got.Value, &v)
	llm := v["llm"].(map[string]any)
	creds := v["credentials"].(map[string]any)
	key := v["keys"].([]any)[0].(map[string]any)
	if llm["api_key"] != "sk-real" || llm["model"] != "m2" || creds["user"] != "a" || creds["pass"] != "b" || v["token"] != "t2" || key["secret"] != "s1" {
		t.Errorf("saved back as read, the document became %s", got.Value)
	}
}

// testDocuments: free settings documents are listed by name (a search
// matching part of it; a LIKE wildcard in it is a plain character), read,
// updated in place and deleted; a deleted or unknown one is not found.
func testDocuments(t *testing.T, open databasetest.Open) {
	ctx := context.Background()
	docs := settings.NewDocuments(open(t))
	a, err := docs.Create(ctx, "beta_100%", json.RawMessage(`{"n":1}`), "c")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := docs.Create(ctx, "alpha", json.RawMessage(`{"n":2}`), ""); err != nil {
		t.Fatal(err)
	}
	names := func(search string) string {
		t.Helper()
		list, err := docs.List(ctx, search)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range list {
			out = append(out, d.Name)
		}
		return strings.Join(out, ",")
	}
	for search, want := range map[string]string{"": "alpha,beta_100%", "a%": "", "0%": "beta_100%", "alp": "alpha"} {
		if got := names(search); got != want {
			t.Errorf("search %q: %q, want %q", search, got, want)
		}
	}
	if _, err := docs.Update(ctx, a.ID, "gamma", json.RawMessage(`{"n":3}`), "c2"); err != nil {
		t.Fatal(err)
	}
	got, err := docs.Get(ctx, a.ID)
	if err != nil || got.Name != "gamma" || string(got.Value) != `{"n":3}` || got.Category != "c2" {
		t.Errorf("after the update: %+v %v", got, err)
	}
	if err := docs.Delete(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := docs.Get(ctx, a.ID); !errors.Is(err, settings.ErrNoDocument) {
		t.Errorf("a deleted document: %v", err)
	}
	if err := docs.Delete(ctx, a.ID); !errors.Is(err, settings.ErrNoDocument) {
		t.Errorf("deleting it again: %v", err)
	}
	if _, err := docs.Update(ctx, "no-such-id", "x", json.RawMessage(`{}`), ""); !errors.Is(err, settings.ErrNoDocument) {
		t.Errorf("updating an unknown document: %v", err)
	}
	if got := names(""); got != "alpha" {
		t.Errorf("after the deletion: %q", got)
	}
}
