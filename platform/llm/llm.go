// Package llm defines what grin asks of language models and embedders, and
// provides the offline defaults that let grin answer and recall with no
// network: a lexical hashing embedder and a model that quotes what it
// remembers.
//
// Providers that speak the OpenAI wire protocol (OpenAI, Ollama, vLLM,
// llama.cpp server) live beside them in this package.
package llm

import (
	"context"
	"errors"
)

// Roles of chat messages.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Message is one chat message of a prompt.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Request is what the cat asks a model.
type Request struct {
	// Messages is the whole prompt, in order: the system message (prefix,
	// recalled memories, instructions), recent history, the user's input.
	Messages []Message
	// Recalled are the texts of the memories recalled for this turn, most
	// relevant first, for models that answer from them directly.
	Recalled []string
	// Input is the user's message, as typed.
	Input string
}

// Model generates a reply.
//
// Notes: implementations are safe for concurrent use.
type Model interface {
	// Generate returns the reply, calling onToken with each piece as it
	// streams (onToken may be nil). An error from onToken stops the
	// generation and is returned.
	Generate(ctx context.Context, req Request, onToken func(string) error) (string, error)
}

// Embedder turns texts into vectors.
//
// Notes: implementations are safe for concurrent use and deterministic for
// a given configuration.
type Embedder interface {
	// Embed returns one vector per text, in order.
	Embed(ctx context.Context, texts []string) ([][]float32, error)
	// Name identifies the embedder and its configuration, so stored
	// vectors are never compared with vectors of another embedder.
	Name() string
	// Dimensions is the length of every vector.
	Dimensions() int
}

// ErrProvider wraps failures of a remote model or embedder, with what the
// provider said.
var ErrProvider = errors.New("model provider failed")
