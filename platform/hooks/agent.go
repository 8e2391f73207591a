package hooks

import (
	"encoding/json"
)

// The agent's hook points (before_agent_starts, agent_fast_reply,
// agent_prompt_suffix), with the payload types only the agent uses;
// Catalogue lists them in the order the pipeline calls them.

// AgentInput is the Cat's agent input: its strings fill the prompt's
// {placeholders}, so a key a plugin adds can be used by a prefix or suffix
// of its own.
type AgentInput struct {
	_                 struct{}       `additionalProperties:"true"`
	EpisodicMemory    string         `json:"episodic_memory" doc:"The recalled episodic memories, as the prompt shows them."`
	DeclarativeMemory string         `json:"declarative_memory" doc:"The recalled declarative memories, as the prompt shows them."`
	ToolsOutput       string         `json:"tools_output" doc:"What tools returned (empty: grin runs no tools)."`
	Input             string         `json:"input" doc:"The user's message."`
	ChatHistory       string         `json:"chat_history" doc:"The recent conversation, as text."`
	Extra             map[string]any `json:"-"`
}

// named is the fields AgentInput names, by their JSON names: the one list
// Values and UnmarshalJSON both read, so they cannot drift apart.
func (a AgentInput) named() map[string]any {
	return map[string]any{
		"episodic_memory": a.EpisodicMemory, "declarative_memory": a.DeclarativeMemory, "tools_output": a.ToolsOutput,
		"input": a.Input, "chat_history": a.ChatHistory,
	}
}

// Values returns every field, the extra ones too, by name: what fills
// the prompt's placeholders.
func (a AgentInput) Values() map[string]any {
	out := a.named()
	for k, v := range a.Extra {
		if _, isNamed := out[k]; !isNamed {
			out[k] = v
		}
	}
	return out
}

// MarshalJSON writes the extra fields beside the named ones.
func (a AgentInput) MarshalJSON() ([]byte, error) { return json.Marshal(a.Values()) }

// UnmarshalJSON reads the named fields and keeps the others in Extra.
func (a *AgentInput) UnmarshalJSON(b []byte) error {
	type plain AgentInput
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	var all map[string]any
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	for k := range a.named() {
		delete(all, k)
	}
	*a = AgentInput(p)
	a.Extra = all
	return nil
}

// AgentFastOutput is agent_fast_reply's payload: empty going in; an
// output coming back answers instead of the model.
type AgentFastOutput struct {
	Output            string `json:"output,omitempty" doc:"The reply, instead of the model's; empty to ask the model."`
	ReturnDirect      bool   `json:"return_direct,omitempty" doc:"Shown in why.agent_output."`
	IntermediateSteps []any  `json:"intermediate_steps,omitempty" doc:"Shown in why.intermediate_steps and why.agent_output."`
}

var (
	OnBeforeAgentStarts = Point[AgentInput]{
		Info: Info{
			Name: BeforeAgentStarts, Stage: StageChat,
			When:   "After recall, before agent_fast_reply and the prompt: the agent's input is ready.",
			Output: "The agent input whose strings fill the prompt's placeholders.",
			Effects: []Effect{
				{"episodic_memory", "Replaces the recalled episodic memories in the prompt (not `why.memory`)."},
				{"declarative_memory", "Replaces the recalled documents in the prompt (not `why.memory`)."},
				{"input", "Fills an {input} placeholder of a prefix or suffix; the question the model is asked is the message itself."},
				{"", "A key added is a placeholder a prefix or suffix may use: {my_key}."},
			},
			Reaches: []Target{TargetPrompt},
			Cat:     "Same as the Cat's before_agent_starts(agent_input: dict).",
		},
		Example: AgentInput{EpisodicMemory: "## Context of things the Human said in the past:\n  - My cat is called Dinah",
			Input: "What is my cat called?", ChatHistory: "\n - Human: My cat is called Dinah\n - AI: A fine name."},
	}

	OnAgentFastReply = Point[AgentFastOutput]{
		Info: Info{
			Name: AgentFastReply, Stage: StageChat,
			When:   "After before_agent_starts, before the model is asked.",
			Output: "An `output` that is not empty is the reply, instead of the model's.",
			Effects: []Effect{
				{"output", "Not empty: the reply; the model is not asked. The message is still remembered in episodic memory, " +
					"and before_cat_sends_message and the history see the reply."},
				{"return_direct", "Shown in `why.agent_output`."},
				{"intermediate_steps", "Shown in `why.intermediate_steps` and `why.agent_output`."},
			},
			Reaches: []Target{TargetEpisodic, TargetHistory, TargetWhy, TargetReply},
			Cat:     "Same as the Cat's agent_fast_reply(fast_reply: dict): an output answers instead of the agent, after memories are recalled.",
		},
		Example: AgentFastOutput{},
	}

	OnAgentPromptSuffix = Point[string]{
		Info: Info{
			Name: AgentPromptSuffix, Stage: StageChat,
			When:    "With agent_prompt_prefix, when the model's prompt is made.",
			Output:  "The end of the system prompt; its {placeholders} are filled from the agent input.",
			Effects: []Effect{{"", "Replaces the suffix (by default the Cat's, which places the recalled memories); shown in `why.model_interactions[].prompt`."}},
			Reaches: []Target{TargetPrompt},
			Cat:     "Same as the Cat's agent_prompt_suffix(suffix: str), with the same placeholders.",
		},
		Example: "\n\n# Context\n{episodic_memory}\n\n{declarative_memory}\n\n{tools_output}\n",
	}
)
