// Package hooks names the moments of the Cat's pipeline where plugins may
// change what flows through, and defines the Runner the pipeline calls
// there. The WebAssembly host implements Runner; with no plugins, Nop
// passes every value through unchanged.
//
// Each hook point is declared once, in catalogue.go, with the Go type of
// its payload and what changing it does: the pipeline calls hooks only
// through these declarations (Point.Apply), and the reference authors
// read (GET /plugins/hooks, docs/hooks.md) is generated from them, so
// the two cannot drift apart.
package hooks

import (
	"context"
	"encoding/json"
)

// Hook names, as the Cheshire Cat calls them.
const (
	FastReply                           = "fast_reply"
	BeforeCatReadsMessage               = "before_cat_reads_message"
	CatRecallQuery                      = "cat_recall_query"
	BeforeCatRecallsMemories            = "before_cat_recalls_memories"
	BeforeCatRecallsEpisodicMemories    = "before_cat_recalls_episodic_memories"
	BeforeCatRecallsDeclarativeMemories = "before_cat_recalls_declarative_memories"
	BeforeCatRecallsProceduralMemories  = "before_cat_recalls_procedural_memories"
	AfterCatRecallsMemories             = "after_cat_recalls_memories"
	BeforeAgentStarts                   = "before_agent_starts"
	AgentFastReply                      = "agent_fast_reply"
	AgentPromptPrefix                   = "agent_prompt_prefix"
	AgentPromptSuffix                   = "agent_prompt_suffix"
	BeforeCatStoresEpisodicMemory       = "before_cat_stores_episodic_memory"
	BeforeCatSendsMessage               = "before_cat_sends_message"

	BeforeRabbitholeSplitsText      = "before_rabbithole_splits_text"
	AfterRabbitholeSplittedText     = "after_rabbithole_splitted_text"
	BeforeRabbitholeStoresDocuments = "before_rabbithole_stores_documents"
	BeforeRabbitholeInsertMemory    = "before_rabbithole_insert_memory"
	AfterRabbitholeStoredDocuments  = "after_rabbithole_stored_documents"
)

// Caller is who a hook runs for; plugins see it as their ctx.
type Caller struct {
	UserID string `json:"user_id"`
	// Username is the user's name for people (an internal user's
	// username; for others, their id).
	Username  string `json:"username"`
	RequestID string `json:"request_id"`
}

// Runner runs the enabled plugins' hooks.
//
// Notes: implementations are safe for concurrent use.
type Runner interface {
	// Has reports whether any enabled plugin implements hook, so the
	// pipeline can skip encoding values nobody will see.
	Has(hook string) bool
	// Run passes payload through every enabled plugin's hook of that
	// name, by descending priority, each getting the previous output. A
	// failing hook is logged with its plugin and skipped; Run fails only
	// when the pipeline itself cannot go on.
	Run(ctx context.Context, hook string, caller Caller, payload json.RawMessage) (json.RawMessage, error)
}

// Nop is the Runner of a grin without plugins.
type Nop struct{}

// Has implements Runner.
func (Nop) Has(string) bool { return false }

// Run implements Runner.
func (Nop) Run(_ context.Context, _ string, _ Caller, p json.RawMessage) (json.RawMessage, error) {
	return p, nil
}

var _ Runner = Nop{}
