package llm

import "sync/atomic"

// Current holds the model and embedder in force. Settings swap them while
// messages are answered; a turn that started keeps the ones it read.
//
// Notes: safe for concurrent use.
type Current struct {
	model    atomic.Pointer[Model]
	embedder atomic.Pointer[Embedder]
}

// NewCurrent starts with the given model and embedder.
func NewCurrent(m Model, e Embedder) *Current {
	c := &Current{}
	c.SetModel(m)
	c.SetEmbedder(e)
	return c
}

// Model returns the model in force.
func (c *Current) Model() Model { return *c.model.Load() }

// Embedder returns the embedder in force.
func (c *Current) Embedder() Embedder { return *c.embedder.Load() }

// SetModel puts m in force.
func (c *Current) SetModel(m Model) { c.model.Store(&m) }

// SetEmbedder puts e in force.
func (c *Current) SetEmbedder(e Embedder) { c.embedder.Store(&e) }
