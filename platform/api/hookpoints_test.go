package api_test

import (
	"strings"
	"testing"

	"github.com/grin-ai/grin/platform/app/apptest"
)

// TestAgentHooksChangeTheReply: a plugin compiled from source implements
// the Cat's agent hooks. before_agent_starts gets the agent input and adds
// to it, agent_prompt_suffix gets the Cat's suffix and uses the addition,
// so the prompt the model is given (why.model_interactions) shows both;
// agent_fast_reply, once it has an output, answers instead of the model,
// and the message is still remembered, as in the Cat.
func TestAgentHooksChangeTheReply(t *testing.T) {
	in := apptest.Start(t)
	manifest := `{"id":"agent","name":"Agent","version":"0.1.0","hooks":[
		{"name":"before_agent_starts","priority":1},{"name":"agent_prompt_suffix","priority":1},{"name":"agent_fast_reply","priority":1}],
		"settings_schema":{"type":"object","properties":{"fast":{"type":"string"}}}}`
	if r := uploadPlugin(t, in, zipPlugin(t, manifest, buildWasm(t, "../../wasmhooks/testdata/guests/agent"))); r.Status != 200 {
		t.Fatalf("install: %d %s", r.Status, r.Body)
	}
	in.Do("POST", "/message", map[string]any{"text": "My cat is called Dinah"}, "user_id", "alice")
	var f frame
	in.Do("POST", "/message", map[string]any{"text": "What is my cat called?"}, "user_id", "alice").JSON(t, &f)
	llmInteraction := func(f frame) map[string]any {
		for _, mi := range f.Why.ModelInteractions {
			if mi["model_type"] == "llm" {
				return mi
			}
		}
		return nil
	}
	mi := llmInteraction(f)
	if mi == nil {
		t.Fatalf("no model interaction of the LLM in %v", f.Why.ModelInteractions)
	}
	// The Cat records the prompt as one text, a message a line after its
	// speaker; the system prompt comes first.
	system, _ := mi["prompt"].(string)
	if !strings.HasPrefix(system, "System: ") {
		t.Fatalf("the prompt does not start with the system message: %v", mi)
	}
	system, _, _ = strings.Cut(system, "\nHuman: ")
	for _, want := range []string{
		"# What you know", // agent_prompt_suffix changed the Cat's suffix
		"Dinah",           // whose {episodic_memory} still holds the recalled memory
		"Note: the agent started for: What is my cat called?", // before_agent_starts' addition, filled in
	} {
		if !strings.Contains(system, want) {
			t.Errorf("the prompt lacks %q:\n%s", want, system)
		}
	}
	if strings.Contains(system, "{") {
		t.Errorf("a placeholder is left in the prompt:\n%s", system)
	}

	if r := in.Do("PUT", "/plugins/settings/agent", map[string]any{"fast": "Dinah, of course."}); r.Status != 200 {
		t.Fatalf("settings: %d %s", r.Status, r.Body)
	}
	in.Do("POST", "/message", map[string]any{"text": "And my dog?"}, "user_id", "alice").JSON(t, &f)
	if f.Text != "Dinah, of course." || f.Why.AgentOutput["output"] != "Dinah, of course." || llmInteraction(f) != nil {
		t.Errorf("agent_fast_reply did not answer: text %q, agent output %v, model interactions %v", f.Text, f.Why.AgentOutput, f.Why.ModelInteractions)
	}
	var h struct {
		History []struct {
			Who  string `json:"who"`
			Text string `json:"text"`
		} `json:"history"`
	}
	in.Do("GET", "/memory/conversation_history", nil, "user_id", "alice").JSON(t, &h)
	if n := len(h.History); n < 2 || h.History[n-2].Text != "And my dog?" || h.History[n-1].Text != "Dinah, of course." {
		t.Errorf("the fast reply is not in the history: %+v", h.History)
	}
}

// TestManifestNamingAnUncalledHookIsRefused: a hook point grin never calls
// is refused at upload, and the refusal lists the ones it calls.
func TestManifestNamingAnUncalledHookIsRefused(t *testing.T) {
	in := apptest.Start(t)
	manifest := `{"id":"tools","name":"Tools","version":"0.1.0","hooks":[{"name":"agent_allowed_tools","priority":1}]}`
	r := uploadPlugin(t, in, zipPlugin(t, manifest, buildWasm(t, "../../wasmhooks/testdata/guests/agent")))
	if r.Status != 422 || !strings.Contains(r.Detail(), `"agent_allowed_tools" is not a hook point grin calls`) ||
		!strings.Contains(r.Detail(), "agent_prompt_suffix") || !strings.Contains(r.Detail(), "before_agent_starts") {
		t.Errorf("%d %s, want 422 listing the hook points", r.Status, r.Body)
	}
}
