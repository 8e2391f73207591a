// Guest agent implements the Cat's three agent hooks: before_agent_starts
// adds a note to the agent input (naming the input it was given),
// agent_prompt_suffix renames the Cat's context heading and uses the note,
// and agent_fast_reply answers instead of the model when the "fast"
// setting is set.
package main

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/grin-ai/grin/wasmhooks/pdk"
)

func init() {
	pdk.Hook("before_agent_starts", func(ctx pdk.Ctx, in json.RawMessage) (json.RawMessage, error) {
		var input map[string]any
		if err := json.Unmarshal(in, &input); err != nil {
			return nil, err
		}
		text, ok := input["input"].(string)
		if !ok {
			return nil, errors.New("the agent input has no input")
		}
		input["plugin_note"] = "the agent started for: " + text
		return json.Marshal(input)
	})
	pdk.Hook("agent_prompt_suffix", func(ctx pdk.Ctx, in json.RawMessage) (json.RawMessage, error) {
		var suffix string
		if err := json.Unmarshal(in, &suffix); err != nil {
			return nil, err
		}
		if !strings.Contains(suffix, "{episodic_memory}") {
			return nil, errors.New("the suffix is not the Cat's")
		}
		suffix = strings.Replace(suffix, "# Context", "# What you know", 1) + "\nNote: {plugin_note}\n"
		return json.Marshal(suffix)
	})
	pdk.Hook("agent_fast_reply", func(ctx pdk.Ctx, in json.RawMessage) (json.RawMessage, error) {
		fast, _ := ctx.Settings()["fast"].(string)
		if fast == "" {
			return nil, nil
		}
		return json.Marshal(map[string]any{"output": fast})
	})
}

func main() {}
