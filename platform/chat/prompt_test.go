package chat

import (
	"testing"

	"github.com/grin-ai/grin/platform/llm"
	"github.com/grin-ai/grin/platform/session"
)

// The placeholders' texts are the Cat's: the recalled memories under
// their headings, one per line with newlines folded, documents with their
// source, and the last HistoryTurns turns as "- Who: text" lines.
func TestAgentInput(t *testing.T) {
	recent := []session.Turn{
		{Who: session.Human, Text: "too old"},
		{Who: session.AI, Text: "also too old"},
		{Who: session.Human, Text: "hello"},
		{Who: session.AI, Text: "hi there"},
		{Who: session.Human, Text: "and again"},
		{Who: session.AI, Text: "line one\nline two"},
	}
	tr := &turn{s: &session.Session{Recent: recent}, cat: &Cat{cfg: Config{HistoryTurns: 2}}}
	for _, tc := range []struct {
		name                  string
		mem                   MemoryWhy
		episodic, declarative string
	}{
		{"nothing recalled", MemoryWhy{}, "", ""},
		{"both kinds", MemoryWhy{
			Episodic:    []Document{{PageContent: "I like tea"}, {PageContent: "two\nlines"}},
			Declarative: []Document{{PageContent: "Dinah is a cat", Metadata: map[string]any{"source": "alice.txt"}}},
		},
			"## Context of things the Human said in the past:\n  - I like tea\n  - two. lines",
			"## Context of documents containing relevant information:\n  - Dinah is a cat (extracted from alice.txt)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tr.agentInput("what now?", tc.mem)
			if in.EpisodicMemory != tc.episodic {
				t.Errorf("episodic memory %q, want %q", in.EpisodicMemory, tc.episodic)
			}
			if in.DeclarativeMemory != tc.declarative {
				t.Errorf("declarative memory %q, want %q", in.DeclarativeMemory, tc.declarative)
			}
			if want := "\n - Human: hello\n - AI: hi there\n - Human: and again\n - AI: line one\nline two"; in.ChatHistory != want {
				t.Errorf("chat history %q, want %q", in.ChatHistory, want)
			}
			if in.Input != "what now?" {
				t.Errorf("input %q", in.Input)
			}
		})
	}
}

// A prompt is shown in the why one message a line, as System:, Human: or
// AI:, a role of another name as it is.
func TestPromptText(t *testing.T) {
	for _, tc := range []struct {
		name string
		msgs []llm.Message
		want string
	}{
		{"none", nil, ""},
		{"a conversation", []llm.Message{
			{Role: llm.RoleSystem, Content: "You are the Cat."},
			{Role: llm.RoleUser, Content: "hello"},
			{Role: llm.RoleAssistant, Content: "hi"},
			{Role: "tool", Content: "42"},
		}, "System: You are the Cat.\nHuman: hello\nAI: hi\ntool: 42"},
	} {
		if got := promptText(llm.Request{Messages: tc.msgs}); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
