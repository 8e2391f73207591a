//go:build !wasip1

package pdk

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestTypedHooks: a hook registered with its typed form gets the payload
// decoded, and what it leaves is the output; fields the kit's type does
// not name (a client's extra fields) pass through; a payload left as it
// was is "unchanged".
func TestTypedHooks(t *testing.T) {
	for _, name := range []string{"before_cat_recalls_episodic_memories", "before_cat_reads_message"} {
		prev := hooks[name]
		t.Cleanup(func() { hooks[name] = prev })
	}
	OnBeforeCatRecallsEpisodicMemories(func(ctx Ctx, cfg *RecallConfig) error {
		if ctx.Username() == "" {
			return nil
		}
		cfg.K = 1
		cfg.Metadata["who"] = ctx.Username()
		return nil
	})
	OnBeforeCatReadsMessage(func(ctx Ctx, m *Message) error {
		m.Text = strings.ToUpper(m.Text)
		return nil
	})
	in := `{"abi":1,"ctx":{"user_id":"u1","username":"alice"},"payload":{"text":"hi","lang":"en"}}`
	status, out, msg := Invoke("before_cat_reads_message", []byte(in))
	var got map[string]any
	json.Unmarshal(out, &got)
	if status != 0 || got["text"] != "HI" || got["lang"] != "en" {
		t.Errorf("message: status %d, %s %s", status, out, msg)
	}
	in = `{"abi":1,"ctx":{"user_id":"u1","username":"alice"},"payload":{"embedding":[0.5],"k":3,"threshold":0.7,"metadata":{"source":"u1"}}}`
	status, out, msg = Invoke("before_cat_recalls_episodic_memories", []byte(in))
	var cfg RecallConfig
	json.Unmarshal(out, &cfg)
	if status != 0 || cfg.K != 1 || cfg.Metadata["who"] != "alice" || cfg.Metadata["source"] != "u1" || cfg.Embedding[0] != 0.5 {
		t.Errorf("recall config: status %d, %s %s", status, out, msg)
	}
	in = `{"abi":1,"ctx":{"user_id":"u1"},"payload":{"embedding":[0.5],"k":3,"threshold":0.7,"metadata":{"source":"u1"}}}`
	if status, out, _ := Invoke("before_cat_recalls_episodic_memories", []byte(in)); status != 2 {
		t.Errorf("a payload left as it was: status %d %s, want 2 (unchanged)", status, out)
	}
	if status, _, msg := Invoke("before_cat_reads_message", []byte(`{"abi":1,"payload":{"text":3}}`)); status != 1 || !strings.Contains(msg, "before_cat_reads_message") {
		t.Errorf("a payload of the wrong shape: status %d %q", status, msg)
	}
}
