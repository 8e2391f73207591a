package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/grin-ai/grin/platform/auth"
	"github.com/grin-ai/grin/platform/chat"
	"github.com/grin-ai/grin/platform/llm"
	"github.com/grin-ai/grin/platform/memory"
	"github.com/grin-ai/grin/platform/metrics"
	"github.com/grin-ai/grin/platform/session"
	"github.com/grin-ai/grin/policies"
)

// MessageInput is the body of POST /message: the Cat's {"text": …}; other
// fields are kept and shown to plugins.
type MessageInput struct {
	Body map[string]any `doc:"{\"text\": \"…\"}, plus any fields a plugin reads."`
}

// Resolve checks the message's text, so a bad message gets a 422 that
// says why.
func (m *MessageInput) Resolve(huma.Context) []error {
	text, ok := m.Body["text"].(string)
	if !ok {
		return []error{&huma.ErrorDetail{Location: "body.text", Message: "a message needs \"text\", a string"}}
	}
	if len([]rune(text)) > chat.MaxMessageRunes {
		return []error{&huma.ErrorDetail{Location: "body.text", Message: fmt.Sprintf("the text is longer than the limit of %d characters", chat.MaxMessageRunes)}}
	}
	return nil
}

// ReplyOutput is the Cat's chat answer.
type ReplyOutput struct{ Body chat.Reply }

func (s *Server) registerChat() {
	register(s, huma.Operation{
		OperationID: "sendMessage", Method: http.MethodPost, Path: "/message",
		Summary: "Send a message", Description: "Answers a message as the WebSocket does; tokens also stream to the caller's open sockets.",
		Tags: []string{"Chat"}, Errors: []int{http.StatusConflict, http.StatusServiceUnavailable},
	}, catNeed(policies.Conversation, policies.Write), func(ctx context.Context, in *MessageInput) (*ReplyOutput, error) {
		if err := s.refuseWhenStopping(); err != nil {
			s.deps.Metrics.Turn("http", metrics.TurnRefused, 0)
			return nil, err
		}
		reply, err := s.turn(ctx, "http", identity(ctx), messageOf(in.Body))
		if err != nil {
			return nil, s.chatError(ctx, err)
		}
		return &ReplyOutput{Body: reply}, nil
	})
}

// turn runs one chat turn and counts it: answered, failed, or refused
// (the message or the user could not be served).
func (s *Server) turn(ctx context.Context, transport string, id auth.Identity, m chat.Message) (chat.Reply, error) {
	start := time.Now()
	reply, err := s.deps.Cat.Chat(ctx, id, m)
	outcome := metrics.TurnAnswered
	switch {
	case chat.IsRefusal(err), errors.Is(err, session.ErrForgotten):
		outcome = metrics.TurnRefused
	case err != nil:
		outcome = metrics.TurnFailed
	}
	s.deps.Metrics.Turn(transport, outcome, time.Since(start))
	return reply, err
}

// messageOf splits a client's message into text and extra fields.
func messageOf(body map[string]any) chat.Message {
	m := chat.Message{Extra: map[string]any{}}
	for k, v := range body {
		if k == "text" {
			m.Text, _ = v.(string)
			continue
		}
		m.Extra[k] = v
	}
	return m
}

func (s *Server) chatError(ctx context.Context, err error) error {
	switch {
	case chat.IsRefusal(err):
		return huma.Error422UnprocessableEntity(err.Error())
	case errors.Is(err, session.ErrForgotten):
		return huma.Error403Forbidden("Invalid Credentials: " + err.Error())
	case errors.Is(err, context.Canceled):
		return huma.NewError(499, "the request was cancelled")
	case errors.Is(err, memory.ErrDimensions):
		return memoryConflict(err)
	case errors.Is(err, chat.ErrNotRecorded):
		// The database's words stay in the log: they may name files.
		s.internal(ctx, "chat", err)
		return huma.Error503ServiceUnavailable(chat.ErrNotRecorded.Error())
	}
	if errors.Is(err, llm.ErrProvider) {
		// The provider's own words (never its key) help the caller.
		return huma.Error502BadGateway("the language model failed: " + err.Error())
	}
	return s.internal(ctx, "chat", err)
}

// memoryConflict answers a write the memory cannot take: vectors of the
// embedder in force do not fit the ones stored (Weaviate keeps one size
// per collection). The error explains what to do; it holds no secret.
func memoryConflict(err error) error {
	return huma.Error409Conflict(err.Error())
}

// errorFrame is the Cat's WebSocket error.
type errorFrame struct {
	Type        string `json:"type"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

func newErrorFrame(name, description string) []byte {
	b, _ := json.Marshal(errorFrame{Type: "error", Name: name, Description: description})
	return b
}
