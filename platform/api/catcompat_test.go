package api_test

import (
	"strings"
	"testing"

	"github.com/grin-ai/grin/platform/app/apptest"
)

// TestCatShapes: what the Cat 1.8 and its TypeScript client (ccat-api)
// read, over a real server (integration/catclient runs the client itself).
func TestCatShapes(t *testing.T) {
	in := authRequired(t)
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	var alice user
	in.Do("POST", "/users", map[string]any{"username": "alice", "password": "alice-pw",
		"permissions": map[string][]string{"CONVERSATION": {"WRITE", "READ"}, "MEMORY": {"READ", "LIST", "DELETE"}}}, admin...).JSON(t, &alice)
	a := apptest.Bearer(in.Login("alice", "alice-pw"))

	// The reply is the Cat's CatMessage.
	var reply map[string]any
	in.Do("POST", "/message", map[string]any{"text": "My teacup has a crack"}, a...).JSON(t, &reply)
	if reply["type"] != "chat" || reply["who"] != "AI" || reply["user_id"] != alice.ID || reply["text"] == "" ||
		reply["content"] != reply["text"] || reply["message"] != reply["text"] || reply["when"] == nil {
		t.Errorf("reply is not a CatMessage: %v", reply)
	}

	// History items are ConversationMessages.
	var hist struct {
		History []map[string]any `json:"history"`
	}
	in.Do("GET", "/memory/conversation_history", nil, a...).JSON(t, &hist)
	if len(hist.History) != 2 || hist.History[0]["who"] != "Human" || hist.History[0]["message"] != "My teacup has a crack" ||
		hist.History[1]["who"] != "AI" || hist.History[1]["message"] != reply["text"] || hist.History[1]["why"] == nil {
		t.Errorf("history = %v", hist.History)
	}

	// GET /memory/recall, as the Cat still serves it.
	var rec struct {
		Query struct {
			Text string `json:"text"`
		} `json:"query"`
		Vectors struct {
			Collections map[string][]map[string]any `json:"collections"`
		} `json:"vectors"`
	}
	r := in.Do("GET", "/memory/recall?text=teacup&k=1", nil, a...)
	r.JSON(t, &rec)
	if r.Status != 200 || rec.Query.Text != "teacup" || len(rec.Vectors.Collections["episodic"]) != 1 ||
		rec.Vectors.Collections["episodic"][0]["page_content"] != "My teacup has a crack" {
		t.Errorf("GET /memory/recall: %d %s", r.Status, r.Body)
	}
	if r := in.Do("GET", "/memory/recall", nil, a...); r.Status != 422 || !strings.Contains(string(r.Body), "text") {
		t.Errorf("GET /memory/recall without text: %d %s", r.Status, r.Body)
	}

	// DELETE …/points with no body wipes what is within reach.
	if r := in.Do("DELETE", "/memory/collections/episodic/points", nil, a...); r.Status != 200 {
		t.Errorf("delete points with no body: %d %s", r.Status, r.Body)
	}
	if c := counts(t, in, a...); c["episodic"] != 0 {
		t.Errorf("alice's memory after deleting with no filter: %v", c)
	}

	// Procedural memory: the policy decides who may wipe it.
	if r := in.Do("DELETE", "/memory/collections/procedural", nil, a...); r.Status != 403 {
		t.Errorf("alice wipes procedural memory: %d %s", r.Status, r.Body)
	}
	if r := in.Do("DELETE", "/memory/collections/procedural", nil, admin...); r.Status != 200 {
		t.Errorf("the administrator wipes procedural memory: %d %s", r.Status, r.Body)
	}

	// /settings: for administrators; secrets and hashes never shown.
	var created struct {
		SettingID string         `json:"setting_id"`
		Name      string         `json:"name"`
		Value     map[string]any `json:"value"`
		Setting   struct {
			SettingID string `json:"setting_id"`
		} `json:"setting"`
	}
	r = in.Do("POST", "/settings", map[string]any{"name": "app", "value": map[string]any{"colour": "blue", "api_key": "sk-hidden", "hash": "$2b$12$abcdefghijklmnopqrstuv"}}, admin...)
	r.JSON(t, &created)
	if r.Status != 200 || created.SettingID == "" || created.Setting.SettingID != created.SettingID || created.Value["colour"] != "blue" {
		t.Fatalf("create setting: %d %s", r.Status, r.Body)
	}
	for _, path := range []string{"/settings", "/settings?search=ap", "/settings/" + created.SettingID} {
		r := in.Do("GET", path, nil, admin...)
		if r.Status != 200 || strings.Contains(string(r.Body), "sk-hidden") || strings.Contains(string(r.Body), "$2b$") || !strings.Contains(string(r.Body), "blue") {
			t.Errorf("GET %s: %d %s", path, r.Status, r.Body)
		}
	}
	if r := in.Do("GET", "/settings?search=nothing", nil, admin...); !strings.Contains(string(r.Body), `"settings":[]`) {
		t.Errorf("search: %s", r.Body)
	}
	// Saving back what was read keeps the secret.
	in.Do("PUT", "/settings/"+created.SettingID, map[string]any{"name": "app", "value": map[string]any{"colour": "red", "api_key": "********"}}, admin...)
	if r := in.Do("GET", "/settings/"+created.SettingID, nil, admin...); !strings.Contains(string(r.Body), "red") || !strings.Contains(string(r.Body), "********") {
		t.Errorf("after update: %s", r.Body)
	}
	for _, m := range []string{"GET", "DELETE"} {
		if r := in.Do(m, "/settings/"+created.SettingID, nil, a...); r.Status != 403 {
			t.Errorf("alice %s a setting: %d", m, r.Status)
		}
	}
	if r := in.Do("POST", "/settings", map[string]any{"name": "x", "value": "a string"}, admin...); r.Status != 422 {
		t.Errorf("a setting whose value is a string: %d %s", r.Status, r.Body)
	}
	if r := in.Do("DELETE", "/settings/"+created.SettingID, nil, admin...); r.Status != 200 || !strings.Contains(string(r.Body), created.SettingID) {
		t.Errorf("delete: %d %s", r.Status, r.Body)
	}
	if r := in.Do("GET", "/settings/"+created.SettingID, nil, admin...); r.Status != 404 || !strings.Contains(r.Detail(), "No setting with this id") {
		t.Errorf("deleted setting: %d %s", r.Status, r.Body)
	}

	// Plugins: the Cat's list shape, and a clear answer for its registry.
	r = in.Do("GET", "/plugins?query=anything", nil, admin...)
	if r.Status != 200 || !strings.Contains(string(r.Body), `"filters":{"query":"anything"}`) || !strings.Contains(string(r.Body), `"registry":[]`) {
		t.Errorf("plugin list: %d %s", r.Status, r.Body)
	}
	if r := in.Do("POST", "/plugins/upload/registry", map[string]any{"url": "https://github.com/x/y"}, admin...); r.Status != 501 || !strings.Contains(r.Detail(), "no plugin registry") {
		t.Errorf("registry install: %d %s", r.Status, r.Body)
	}
}

// TestTheCatsSettingNames: the Cat's configuration classes and field
// names configure grin's providers, and reads show both names.
func TestTheCatsSettingNames(t *testing.T) {
	in := authRequired(t)
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	for _, name := range []string{"EmbedderDumbConfig", "LLMOpenAIChatConfig"} {
		if r := in.Do("GET", "/"+map[bool]string{true: "embedder", false: "llm"}[strings.HasPrefix(name, "Embedder")]+"/settings/"+name, nil, admin...); r.Status != 200 {
			t.Errorf("%s: %d %s", name, r.Status, r.Body)
		}
	}
	r := in.Do("PUT", "/embedder/settings/EmbedderDumbConfig", map[string]any{}, admin...)
	if r.Status != 200 {
		t.Fatalf("select the Cat's default embedder: %d %s", r.Status, r.Body)
	}
	// Both names of one field with different values are refused, saying why.
	r = in.Do("PUT", "/llm/settings/LLMOpenAIConfig", map[string]any{"openai_api_key": "sk-a", "api_key": "sk-b", "base_url": "http://127.0.0.1:1/v1"}, admin...)
	if r.Status != 422 || !strings.Contains(r.Detail(), "openai_api_key and api_key") {
		t.Errorf("two values for one field: %d %s", r.Status, r.Body)
	}
}
