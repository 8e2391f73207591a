package hooks_test

import (
	"encoding/json"
	"testing"

	"github.com/grin-ai/grin/platform/hooks"
)

// TestExtraFieldsSurviveAHook: fields a payload type does not name (a
// client's, or a plugin's own placeholder) come back from a hook's JSON.
func TestExtraFieldsSurviveAHook(t *testing.T) {
	var m hooks.Message
	if err := json.Unmarshal([]byte(`{"text":"hi","lang":"en"}`), &m); err != nil || m.Text != "hi" || m.Extra["lang"] != "en" {
		t.Fatalf("message: %+v %v", m, err)
	}
	if b, _ := json.Marshal(m); string(b) != `{"lang":"en","text":"hi"}` {
		t.Errorf("message encoded as %s", b)
	}
	var a hooks.AgentInput
	if err := json.Unmarshal([]byte(`{"input":"hi","mood":"curious","episodic_memory":"- x"}`), &a); err != nil {
		t.Fatal(err)
	}
	if v := a.Values(); v["mood"] != "curious" || v["input"] != "hi" || v["episodic_memory"] != "- x" || v["tools_output"] != "" {
		t.Errorf("agent input values: %v", v)
	}
}
