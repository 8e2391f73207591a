package api_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"

	"github.com/grin-ai/grin/platform/app"
	"github.com/grin-ai/grin/platform/app/apptest"
	"github.com/grin-ai/grin/platform/hooks"
)

// recorder is a hooks.Runner written in Go: it records every hook the
// pipeline runs, in order, and applies the seed's example plugin (each user
// recalls only the declarative memories they uploaded) when on.
type recorder struct {
	mu     sync.Mutex
	calls  []string
	author bool
}

func (r *recorder) Has(string) bool { return true }

func (r *recorder) Run(_ context.Context, hook string, c hooks.Caller, payload json.RawMessage) (json.RawMessage, error) {
	r.mu.Lock()
	r.calls = append(r.calls, hook)
	author := r.author
	r.mu.Unlock()
	if !author {
		return payload, nil
	}
	switch hook {
	case hooks.BeforeRabbitholeInsertMemory:
		var doc map[string]any
		json.Unmarshal(payload, &doc)
		doc["metadata"].(map[string]any)["author"] = c.UserID
		return json.Marshal(doc)
	case hooks.BeforeCatRecallsDeclarativeMemories:
		var cfg map[string]any
		json.Unmarshal(payload, &cfg)
		cfg["metadata"] = map[string]any{"author": c.UserID}
		return json.Marshal(cfg)
	}
	return payload, nil
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.calls
	r.calls = nil
	return out
}

func TestPipelineRunsHooksInOrder(t *testing.T) {
	rec := &recorder{}
	in := apptest.Start(t, app.WithHooks(rec))
	in.Do("POST", "/message", map[string]any{"text": "hello"}, "user_id", "alice")
	want := []string{
		hooks.FastReply, hooks.BeforeCatReadsMessage, hooks.CatRecallQuery, hooks.BeforeCatRecallsMemories,
		hooks.BeforeCatRecallsEpisodicMemories, hooks.BeforeCatRecallsDeclarativeMemories, hooks.BeforeCatRecallsProceduralMemories,
		hooks.AfterCatRecallsMemories, hooks.BeforeAgentStarts, hooks.AgentFastReply, hooks.AgentPromptPrefix, hooks.AgentPromptSuffix,
		hooks.BeforeCatStoresEpisodicMemory, hooks.BeforeCatSendsMessage,
	}
	if got := rec.take(); !slices.Equal(got, want) {
		t.Errorf("chat hooks:\n got %v\nwant %v", got, want)
	}
	upload(t, in, "?wait=true", "a.txt", "text/plain", []byte("one chunk"), nil)
	want = []string{hooks.BeforeRabbitholeSplitsText, hooks.AfterRabbitholeSplittedText, hooks.BeforeRabbitholeInsertMemory,
		hooks.BeforeRabbitholeStoresDocuments, hooks.AfterRabbitholeStoredDocuments}
	if got := rec.take(); !slices.Equal(got, want) {
		t.Errorf("ingestion hooks:\n got %v\nwant %v", got, want)
	}
}

// TestSeedExampleThroughHooks: with the seed's two hooks, each user
// recalls only the documents they uploaded; without them, everything
// shared. (The WebAssembly plugin issue ships the same hooks as a plugin.)
func TestSeedExampleThroughHooks(t *testing.T) {
	rec := &recorder{author: true}
	in := apptest.Start(t, app.WithHooks(rec))
	upload(t, in, "?wait=true", "alice.txt", "text/plain", []byte("The tarts were stolen by the Knave of Hearts."), nil, "user_id", "alice")
	upload(t, in, "?wait=true", "bob.txt", "text/plain", []byte("The tarts were baked by the Queen of Hearts."), nil, "user_id", "bob")
	for _, u := range []string{"alice", "bob"} {
		var f frame
		in.Do("POST", "/message", map[string]any{"text": "Who made the tarts of Hearts?"}, "user_id", u).JSON(t, &f)
		if len(f.Why.Memory.Declarative) != 1 || f.Why.Memory.Declarative[0].Metadata["author"] != u {
			t.Errorf("%s recalls %+v, want only their own upload", u, f.Why.Memory.Declarative)
		}
	}
	rec.mu.Lock()
	rec.author = false
	rec.mu.Unlock()
	var f frame
	in.Do("POST", "/message", map[string]any{"text": "Who made the tarts of Hearts?"}, "user_id", "alice").JSON(t, &f)
	if len(f.Why.Memory.Declarative) != 2 {
		t.Errorf("without the hooks alice recalls %d documents, want both", len(f.Why.Memory.Declarative))
	}
}
