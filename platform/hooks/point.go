package hooks

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
)

// Stage is the part of grin a hook point belongs to.
type Stage string

// Stages.
const (
	StageChat      Stage = "chat"
	StageIngestion Stage = "ingestion"
)

// Target is something a hook's output can change, as a user sees it.
type Target string

// Targets, in the order a message meets them.
const (
	// TargetRecall: which memories are recalled (why.memory, and the
	// context in the prompt).
	TargetRecall Target = "recall"
	// TargetPrompt: what the model is asked (why.model_interactions).
	TargetPrompt Target = "prompt"
	// TargetEpisodic: what is stored in the user's episodic memory.
	TargetEpisodic Target = "episodic_memory"
	// TargetDeclarative: what an upload stores in declarative memory.
	TargetDeclarative Target = "declarative_memory"
	// TargetHistory: the conversation history (GET
	// /memory/conversation_history, and the prompt of later turns).
	TargetHistory Target = "history"
	// TargetWhy: the reply's why, beyond recalled memories and the
	// prompt (why.input, why.agent_output).
	TargetWhy Target = "why"
	// TargetReply: the reply's text and content.
	TargetReply Target = "reply"
)

// Targets lists every target, in the order a message meets them.
func Targets() []Target {
	return []Target{TargetRecall, TargetPrompt, TargetEpisodic, TargetDeclarative, TargetHistory, TargetWhy, TargetReply}
}

// Effect says what changing one field of a payload does.
type Effect struct {
	// Field is a JSON path in the payload ("text", "metadata.source"), or
	// "" for the payload as a whole.
	Field  string `json:"field" doc:"The payload's field, as a JSON path; empty for the payload as a whole."`
	Effect string `json:"effect" doc:"What changing it does."`
}

// Info describes a hook point for its authors.
type Info struct {
	Name  string `json:"name" doc:"The hook's name, as the manifest and the module's export (hook_<name>) spell it."`
	Stage Stage  `json:"stage" enum:"chat,ingestion" doc:"chat: a user's message; ingestion: an uploaded document."`
	// When says at which moment it runs and what has happened by then.
	When string `json:"when" doc:"When it runs, and what has happened by then."`
	// Output says what the pipeline does with what the hook returns.
	Output  string   `json:"output" doc:"What the pipeline does with the hook's output."`
	Effects []Effect `json:"effects" doc:"What changing each field does."`
	// Reaches lists what the output can change; empty when it is ignored.
	Reaches []Target `json:"reaches" doc:"What the output can change; empty when it is ignored."`
	// Cat says what the Cheshire Cat does at this point and where grin
	// differs.
	Cat string `json:"cat" doc:"What the Cheshire Cat does here, and where grin differs."`
}

// Hook is a declared hook point of any payload type, as the catalogue
// lists it.
type Hook interface {
	Describe() Info
	// PayloadType is the Go type of the payload.
	PayloadType() reflect.Type
	// ExamplePayload is a payload as the pipeline passes it.
	ExamplePayload() any
}

// Point is a hook point whose payload is a T: the pipeline can only pass
// it a T, and gets a T back.
//
// Notes: a Point is a value declared once in the catalogue; it holds no
// state and is safe for concurrent use.
type Point[T any] struct {
	Info
	Example T
}

// Describe implements Hook.
func (p Point[T]) Describe() Info { return p.Info }

// PayloadType implements Hook.
func (p Point[T]) PayloadType() reflect.Type { return reflect.TypeFor[T]() }

// ExamplePayload implements Hook.
func (p Point[T]) ExamplePayload() any { return p.Example }

// Apply runs the hook over v. When no plugin implements the hook, v comes
// back as it is without being encoded. Output that does not decode into T
// is logged and ignored, as a failing hook is.
func (p Point[T]) Apply(ctx context.Context, r Runner, logger *slog.Logger, caller Caller, v T) (T, error) {
	if r == nil || !r.Has(p.Name) {
		return v, nil
	}
	in, err := json.Marshal(v)
	if err != nil {
		return v, fmt.Errorf("hook %s: encode: %w", p.Name, err)
	}
	out, err := r.Run(ctx, p.Name, caller, in)
	if err != nil {
		return v, fmt.Errorf("hook %s: %w", p.Name, err)
	}
	var next T
	if err := json.Unmarshal(out, &next); err != nil {
		logger.WarnContext(ctx, "hook output ignored: it does not have the shape of its input", "hook", p.Name, "err", err)
		return v, nil
	}
	return next, nil
}
