package hooks

import (
	"encoding/json"
	"maps"
)

// The payloads hooks receive and return. They are the plugin contract:
// the reference (GET /plugins/hooks, docs/hooks.md) is generated from
// these types, so a field renamed here is renamed there.

// FastOutput is fast_reply's payload: empty going in; an output coming
// back answers the message at once.
type FastOutput struct {
	Output string `json:"output,omitempty" doc:"The reply to give at once; empty to let the pipeline go on."`
}

// Message is what a user says: the Cat's {"text": …} plus whatever else
// a client sent, kept for plugins.
type Message struct {
	_     struct{}       `additionalProperties:"true"`
	Text  string         `json:"text" doc:"The message's text."`
	Extra map[string]any `json:"-"`
}

// MarshalJSON writes the extra fields beside text, as the client sent
// them.
func (m Message) MarshalJSON() ([]byte, error) {
	out := make(map[string]any, len(m.Extra)+1)
	maps.Copy(out, m.Extra)
	out["text"] = m.Text
	return json.Marshal(out)
}

// UnmarshalJSON reads text and keeps every other field in Extra. A text
// that is not a string reads as empty.
func (m *Message) UnmarshalJSON(b []byte) error {
	var all map[string]any
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	m.Text, _ = all["text"].(string)
	delete(all, "text")
	m.Extra = all
	return nil
}

// Empty is the payload of hooks that run for what they do, not for what
// they return: {} going in, and their output is ignored.
type Empty struct{}

// RecallConfig is the Cat's recall configuration, as hooks see it.
type RecallConfig struct {
	Embedding []float32      `json:"embedding" doc:"The vector memories are compared with."`
	K         int            `json:"k" doc:"How many memories at most."`
	Threshold float64        `json:"threshold" doc:"Lowest similarity (cosine, 0 to 1) a memory needs."`
	Metadata  map[string]any `json:"metadata" doc:"A memory must have each of these keys with an equal value."`
}

// NewMemory is a memory about to be stored (the Cat's Document): a
// user's message on its way to episodic memory, or a document's chunk on
// its way to declarative memory.
type NewMemory struct {
	PageContent string         `json:"page_content" doc:"The text stored and embedded."`
	Metadata    map[string]any `json:"metadata" doc:"Stored with the text; recall configs filter on it."`
}

// Stored reports an ingestion that has been stored.
type Stored struct {
	Source string `json:"source" doc:"The file name or URL the document came from."`
	Chunks int    `json:"chunks" doc:"How many chunks were stored."`
}

// Document is a recalled memory as the Cat shows it in "why".
type Document struct {
	ID          string         `json:"id"`
	PageContent string         `json:"page_content"`
	Metadata    map[string]any `json:"metadata"`
	Score       float64        `json:"score"`
}

// MemoryWhy lists what was recalled, per collection.
type MemoryWhy struct {
	Episodic    []Document `json:"episodic"`
	Declarative []Document `json:"declarative"`
	Procedural  []Document `json:"procedural"`
}

// ModelInteraction records one call of a model, in the Cat 1.8's shape
// (LLMModelInteraction and EmbedderModelInteraction in one): the prompt as
// one string, the reply the LLM's text or the embedder's vector. Token
// counts are estimates (CountTokens): grin's providers do not all report
// usage, and the Cat counts with tiktoken, which needs its tables.
type ModelInteraction struct {
	ModelType    string  `json:"model_type" enum:"llm,embedder"`
	Source       string  `json:"source" doc:"\"agent\" for the reply's LLM call, \"recall\" for the embedding of the query."`
	Prompt       string  `json:"prompt" doc:"The prompt as the model got it; the messages of a chat prompt one per line, as System:, Human: or AI:."`
	Reply        any     `json:"reply" doc:"The LLM's text, or the embedder's vector."`
	InputTokens  int     `json:"input_tokens" doc:"Estimated."`
	OutputTokens int     `json:"output_tokens" doc:"Estimated; 0 for an embedder."`
	StartedAt    float64 `json:"started_at" doc:"Unix seconds."`
	EndedAt      float64 `json:"ended_at" doc:"Unix seconds."`
}

// AgentOutput is the Cat's agent output.
type AgentOutput struct {
	Output            string `json:"output"`
	ReturnDirect      bool   `json:"return_direct"`
	IntermediateSteps []any  `json:"intermediate_steps"`
}

// Why explains a reply, as the Cat does.
type Why struct {
	Input             string             `json:"input"`
	IntermediateSteps []any              `json:"intermediate_steps"`
	Memory            MemoryWhy          `json:"memory"`
	ModelInteractions []ModelInteraction `json:"model_interactions"`
	AgentOutput       AgentOutput        `json:"agent_output"`
}

// Reply is the Cat 1.8's CatMessage: the final chat frame and the answer
// of POST /message. content and message are the Cat's computed copies of
// text, kept because its clients still read them.
type Reply struct {
	Type    string  `json:"type" enum:"chat"`
	Who     string  `json:"who" enum:"AI"`
	UserID  string  `json:"user_id"`
	Text    string  `json:"text"`
	Content string  `json:"content" doc:"A copy of text (the Cat's deprecated name)."`
	Message string  `json:"message" doc:"A copy of text (the Cat's deprecated name)."`
	When    float64 `json:"when" doc:"Unix seconds."`
	Why     Why     `json:"why"`
}
