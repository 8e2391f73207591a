package settings_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/grin-ai/grin/platform/database"
	"github.com/grin-ai/grin/platform/redact"
	"github.com/grin-ai/grin/platform/settings"
)

type endpoint struct {
	URL    string `json:"url"`
	APIKey string `json:"api_key"`
}

func newRegistry(t *testing.T) (*settings.Registry[endpoint], *endpoint) {
	t.Helper()
	db, err := database.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
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

func TestSecretsAreMaskedAndKept(t *testing.T) {
	r, inForce := newRegistry(t)
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

func TestRefusedSettingsChangeNothing(t *testing.T) {
	r, inForce := newRegistry(t)
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

// TestMaskIsNeverSaved: a masked secret with nothing stored behind it (a
// client saving back a form it read) is no secret at all, new address or
// not; the mask must not become the key.
func TestMaskIsNeverSaved(t *testing.T) {
	for _, body := range []string{
		`{"url":"http://a.example","api_key":"********"}`, // a new address
		`{"url":"none","api_key":"********"}`,             // the same address
	} {
		r, inForce := newRegistry(t)
		if _, err := r.Put(context.Background(), "Remote", json.RawMessage(body)); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if inForce.APIKey != "" {
			t.Errorf("%s: the key in force is %q", body, inForce.APIKey)
		}
	}
}

// TestDocumentSavedAsReadKeepsItsSecrets: a client that reads a /settings
// document (its secrets masked at every depth) and saves it back as it
// read it, changing one plain field, keeps every stored secret; a secret it
// replaces with a new value is replaced.
func TestDocumentSavedAsReadKeepsItsSecrets(t *testing.T) {
	ctx := context.Background()
	db, err := database.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	docs := settings.NewDocuments(db)
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
