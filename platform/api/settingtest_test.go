package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/grin-ai/grin/platform/app/apptest"
)

// An administrator tests a model's settings before using them: the
// answer says whether it works and why not, never shows the key, and
// nothing is saved or selected.
func TestTestingAModelConfiguration(t *testing.T) {
	model := newOpenAIServer(t, "hi")
	var refusing []string
	keyless := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refusing = append(refusing, r.Header.Get("Authorization"))
		http.Error(w, `{"error":{"message":"bad key"}}`, http.StatusUnauthorized)
	}))
	defer keyless.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()

	in := authRequired(t)
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	const secret = "sk-never-shown-0123456789"
	for _, c := range []struct {
		name, base string
		ok         bool
		detail     string
	}{
		{"a working server", model.URL + "/v1", true, "It works: the language model is ready."},
		{"a refused key", keyless.URL + "/v1", false, "refused the api_key"},
		{"nobody there", gone.URL + "/v1", false, gone.URL},
	} {
		r := in.Do("POST", "/llm/settings/LLMOpenAICompatibleConfig/test", map[string]any{"base_url": c.base, "model": "tiny", "api_key": secret}, admin...)
		if r.Status != http.StatusOK {
			t.Errorf("%s: %d %s", c.name, r.Status, r.Body)
			continue
		}
		m := r.Map(t)
		if m["ok"] != c.ok || !strings.Contains(m["detail"].(string), c.detail) {
			t.Errorf("%s: %s, want ok %v and %q", c.name, r.Body, c.ok, c.detail)
		}
		if strings.Contains(string(r.Body), secret) || strings.Contains(string(r.Body), "LLMOpenAICompatibleConfig") {
			t.Errorf("%s: the answer shows the key or the configuration's code name: %s", c.name, r.Body)
		}
	}
	if len(refusing) == 0 || refusing[0] != "Bearer "+secret {
		t.Errorf("the key was not sent to the server tested: %q", refusing)
	}
	// Nothing was saved or selected.
	list := in.Do("GET", "/llm/settings", nil, admin...)
	if list.Map(t)["selected_configuration"] != "LLMDefaultConfig" || strings.Contains(string(list.Body), model.URL) {
		t.Errorf("a test changed the settings: %s", list.Body)
	}
	// Unknown configurations, bad settings, callers without LLM EDIT.
	if r := in.Do("POST", "/llm/settings/NoSuchConfig/test", map[string]any{}, admin...); r.Status != http.StatusNotFound {
		t.Errorf("an unknown configuration: %d %s", r.Status, r.Body)
	}
	if r := in.Do("POST", "/embedder/settings/EmbedderDefaultConfig/test", map[string]any{}, admin...); r.Status != http.StatusOK || r.Map(t)["ok"] != true {
		t.Errorf("the offline embedder: %d %s", r.Status, r.Body)
	}
	user := apptest.Bearer(in.Login("user", apptest.UserPassword))
	if r := in.Do("POST", "/llm/settings/LLMOpenAICompatibleConfig/test", map[string]any{"base_url": model.URL + "/v1", "model": "tiny"}, user...); r.Status != http.StatusForbidden {
		t.Errorf("a user without LLM EDIT tests a model: %d", r.Status)
	}
}
