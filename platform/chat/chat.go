// Package chat is the Cat's pipeline: a user's message goes through the
// hooks, recalls memories from the partitions the policy grants, is
// answered by the model in force (tokens streamed to the user's sockets),
// and is remembered: in the user's episodic memory and conversation.
package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/google/uuid"

	"github.com/grin-ai/grin/platform/auth"
	"github.com/grin-ai/grin/platform/database"
	"github.com/grin-ai/grin/platform/hooks"
	"github.com/grin-ai/grin/platform/llm"
	"github.com/grin-ai/grin/platform/memory"
	"github.com/grin-ai/grin/platform/requestid"
	"github.com/grin-ai/grin/platform/session"
)

// DefaultPrefix is the Cat's default prompt prefix.
const DefaultPrefix = `You are the Cheshire Cat AI, an intelligent AI that passes the Turing test.
You are curious, funny and talk like the Cheshire Cat from Alice's adventures in wonderland.
You answer Human shortly and with a focus on the following context.`

// DefaultSuffix is the Cat's default prompt suffix: the recalled memories
// and the tools' output, filled in from the agent input.
const DefaultSuffix = `

# Context
{episodic_memory}

{declarative_memory}

{tools_output}
`

// Recall settings of one collection, as the Cat's recall config.
type Recall struct {
	K         int     `json:"k"`
	Threshold float64 `json:"threshold"`
}

// Config tunes the pipeline.
type Config struct {
	Prefix       string
	Suffix       string
	HistoryTurns int // recent turns in the prompt
	Episodic     Recall
	Declarative  Recall
	Procedural   Recall
}

// DefaultConfig is the Cat's, but for the declarative threshold: document
// chunks are long, so a question shares a smaller part of their words than
// of a remembered sentence, and 0.7 missed plain matches with the offline
// embedder (see RATIONALE.md).
func DefaultConfig() Config {
	return Config{
		Prefix:       DefaultPrefix,
		Suffix:       DefaultSuffix,
		HistoryTurns: 5,
		Episodic:     Recall{K: 3, Threshold: 0.7},
		Declarative:  Recall{K: 3, Threshold: 0.5},
		Procedural:   Recall{K: 3, Threshold: 0.7},
	}
}

// Errors.
var (
	ErrEmptyMessage = errors.New("the message has no text")
	ErrTooLong      = errors.New("the message is too long")
	// ErrNUL: the message holds U+0000, which no database grin runs on
	// keeps in text (PostgreSQL refuses it), so it is refused on every
	// engine alike rather than failing on one.
	ErrNUL = errors.New("the message contains a NUL character (U+0000), which grin does not store; remove it and send the message again")
	// ErrNotRecorded: the turn could not be committed, so it was not
	// answered; nothing of it was kept and it can be sent again.
	ErrNotRecorded = errors.New("the conversation could not be saved, so this message was not answered; nothing of it was kept, send it again")
)

// IsRefusal says whether err refuses the message itself (empty, too
// long, unstorable): the client's to fix, not a failure of grin.
func IsRefusal(err error) bool {
	return errors.Is(err, ErrEmptyMessage) || errors.Is(err, ErrTooLong) || errors.Is(err, ErrNUL)
}

// MaxMessageRunes bounds one message.
const MaxMessageRunes = 32_000

// The payloads hooks see are declared with the hook points, in package
// hooks; these are their names here.
type (
	// Message is what a user says: the Cat's {"text": …} plus whatever
	// else a client sends, kept for plugins.
	Message = hooks.Message
	// Document is a recalled memory as the Cat shows it in "why".
	Document = hooks.Document
	// MemoryWhy lists what was recalled, per collection.
	MemoryWhy = hooks.MemoryWhy
	// ModelInteraction records one call of a model.
	ModelInteraction = hooks.ModelInteraction
	// AgentOutput is the Cat's agent output.
	AgentOutput = hooks.AgentOutput
	// Why explains a reply, as the Cat does.
	Why = hooks.Why
	// Reply is the Cat's chat frame.
	Reply = hooks.Reply
	// RecallConfig is the Cat's recall configuration, as hooks see it.
	RecallConfig = hooks.RecallConfig
)

// CountTokens estimates how many tokens a model reads in text: one per
// word and one per punctuation mark, which is close to what the Cat's
// tiktoken count gives English text.
func CountTokens(text string) int {
	n, inWord := 0, false
	for _, r := range text {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if !inWord {
				n++
			}
			inWord = true
		case unicode.IsSpace(r):
			inWord = false
		default:
			n++
			inWord = false
		}
	}
	return n
}

// TokenFrame is a streamed piece of a reply.
type TokenFrame struct {
	Type    string `json:"type" enum:"chat_token"`
	Content string `json:"content"`
}

// Cat answers messages.
//
// Notes: safe for concurrent use; one user's messages are answered one at
// a time, in order, different users' at once.
type Cat struct {
	cfg   Config
	store memory.Store
	// staged is store when it commits with grin's database (the
	// embedded store), nil for a store beside it (Weaviate).
	staged    memory.Staged
	scope     *memory.Scope
	providers *llm.Current
	hooks     hooks.Runner
	sessions  *session.Registry
	logger    *slog.Logger
}

// New returns the pipeline.
func New(cfg Config, store memory.Store, scope *memory.Scope, providers *llm.Current, runner hooks.Runner, sessions *session.Registry, logger *slog.Logger) *Cat {
	if runner == nil {
		runner = hooks.Nop{}
	}
	staged, _ := store.(memory.Staged)
	return &Cat{cfg: cfg, store: store, staged: staged, scope: scope, providers: providers, hooks: runner, sessions: sessions, logger: logger}
}

// Chat answers one message of id. Tokens and the reply go to every socket
// the user has open.
func (c *Cat) Chat(ctx context.Context, id auth.Identity, msg Message) (Reply, error) {
	if strings.TrimSpace(msg.Text) == "" {
		return Reply{}, ErrEmptyMessage
	}
	if n := len([]rune(msg.Text)); n > MaxMessageRunes {
		return Reply{}, fmt.Errorf("%w: %d characters, at most %d", ErrTooLong, n, MaxMessageRunes)
	}
	if strings.ContainsRune(msg.Text, 0) {
		return Reply{}, ErrNUL
	}
	// Host functions a plugin calls during this turn act as this user.
	ctx = auth.WithIdentity(ctx, id)
	s, release, err := c.sessions.Acquire(ctx, id.ID)
	if err != nil {
		return Reply{}, err
	}
	defer release()
	t := &turn{cat: c, id: id, s: s, caller: hooks.Caller{UserID: id.ID, Username: id.Name, RequestID: requestID(ctx)},
		model: c.providers.Model(), embedder: c.providers.Embedder()}
	reply, err := t.run(ctx, msg)
	if err != nil {
		return Reply{}, err
	}
	// Every open socket of the user sees the reply, whichever way the
	// message came.
	c.sessions.Send(id.ID, reply)
	return reply, nil
}

// turn is one message on its way through the pipeline.
type turn struct {
	cat      *Cat
	id       auth.Identity
	s        *session.Session
	caller   hooks.Caller
	model    llm.Model
	embedder llm.Embedder
	// pending is the turn's episodic point, written in finish with the
	// turn's history.
	pending []memory.Point
	// query and queryVector are the recall query and its embedding, which
	// the episodic memory reuses when it stores the same text: with a
	// remote embedder that is a call, and a cost, saved on every turn.
	query       string
	queryVector []float32
}

func (t *turn) run(ctx context.Context, msg Message) (Reply, error) {
	c := t.cat
	// fast_reply: a plugin may answer before anything else happens.
	fast, err := hooks.OnFastReply.Apply(ctx, c.hooks, c.logger, t.caller, hooks.FastOutput{})
	if err != nil {
		return Reply{}, err
	}
	if out := fast.Output; out != "" {
		return t.finish(ctx, msg, out, Why{Input: msg.Text, AgentOutput: AgentOutput{Output: out, ReturnDirect: true}})
	}
	read, err := hooks.OnBeforeCatReadsMessage.Apply(ctx, c.hooks, c.logger, t.caller, msg)
	if err != nil {
		return Reply{}, err
	}
	if strings.TrimSpace(read.Text) != "" {
		msg.Text = read.Text
	}

	why := Why{Input: msg.Text, IntermediateSteps: []any{}, ModelInteractions: []ModelInteraction{}}
	why.Memory, err = t.recall(ctx, msg.Text, &why)
	if err != nil {
		return Reply{}, err
	}

	// The agent, as the Cat's main agent runs it: its input through
	// before_agent_starts, then agent_fast_reply, which may answer instead
	// of the model, then the prompt's prefix and suffix through their hooks.
	input, err := hooks.OnBeforeAgentStarts.Apply(ctx, c.hooks, c.logger, t.caller, t.agentInput(msg.Text, why.Memory))
	if err != nil {
		return Reply{}, err
	}
	agentFast, err := hooks.OnAgentFastReply.Apply(ctx, c.hooks, c.logger, t.caller, hooks.AgentFastOutput{})
	if err != nil {
		return Reply{}, err
	}
	if agentFast.Output != "" {
		why.AgentOutput = AgentOutput{Output: agentFast.Output, ReturnDirect: agentFast.ReturnDirect, IntermediateSteps: orEmpty(agentFast.IntermediateSteps)}
		why.IntermediateSteps = why.AgentOutput.IntermediateSteps
		if err := t.remember(ctx, msg.Text); err != nil {
			return Reply{}, err
		}
		return t.finish(ctx, msg, agentFast.Output, why)
	}
	prefix, err := hooks.OnAgentPromptPrefix.Apply(ctx, c.hooks, c.logger, t.caller, c.cfg.Prefix)
	if err != nil {
		return Reply{}, err
	}
	suffix, err := hooks.OnAgentPromptSuffix.Apply(ctx, c.hooks, c.logger, t.caller, c.cfg.Suffix)
	if err != nil {
		return Reply{}, err
	}
	req := t.prompt(fillPrompt(prefix+suffix, input.Values()), msg.Text, why.Memory)
	mi := ModelInteraction{ModelType: "llm", Source: "agent", Prompt: promptText(req), StartedAt: memory.Now()}
	mi.InputTokens = CountTokens(mi.Prompt)
	reply, err := t.model.Generate(ctx, req, func(tok string) error {
		c.sessions.Send(t.id.ID, TokenFrame{Type: "chat_token", Content: tok})
		return nil
	})
	if err != nil {
		return Reply{}, fmt.Errorf("generate a reply: %w", err)
	}
	mi.Reply, mi.OutputTokens = reply, CountTokens(reply)
	mi.EndedAt = memory.Now()
	why.ModelInteractions = append(why.ModelInteractions, mi)
	why.AgentOutput = AgentOutput{Output: reply, IntermediateSteps: []any{}}

	if err := t.remember(ctx, msg.Text); err != nil {
		return Reply{}, err
	}
	return t.finish(ctx, msg, reply, why)
}

// finish records the turn, runs before_cat_sends_message and returns the
// reply.
func (t *turn) finish(ctx context.Context, msg Message, text string, why Why) (Reply, error) {
	c := t.cat
	// Lists are lists, never null, however the turn ended (fast_reply).
	why.IntermediateSteps = orEmpty(why.IntermediateSteps)
	why.ModelInteractions = orEmpty(why.ModelInteractions)
	why.AgentOutput.IntermediateSteps = orEmpty(why.AgentOutput.IntermediateSteps)
	why.Memory.Episodic, why.Memory.Declarative = orEmpty(why.Memory.Episodic), orEmpty(why.Memory.Declarative)
	why.Memory.Procedural = orEmpty(why.Memory.Procedural)
	now := memory.Now()
	reply := Reply{Type: "chat", Who: session.AI, UserID: t.id.ID, Text: text, Content: text, Message: text, When: now, Why: why}
	reply, err := hooks.OnBeforeCatSendsMessage.Apply(ctx, c.hooks, c.logger, t.caller, reply)
	if err != nil {
		return Reply{}, err
	}
	// Whatever a plugin did, the reply goes to the user who asked.
	reply.Type, reply.Who, reply.UserID = "chat", session.AI, t.id.ID
	// text, content and message stay one, as in the Cat, where content and
	// message are views of text: a plugin that changed content (the Cat's
	// field; it wins when text changed too) or message changed the text; an
	// empty one is one the plugin left out.
	switch {
	case reply.Content != "" && reply.Content != text:
		reply.Text = reply.Content
	case reply.Message != "" && reply.Message != text:
		reply.Text = reply.Message
	}
	// A model or plugin may answer with U+0000, which no database keeps in
	// text: it is shown and stored as U+FFFD, the same on every engine.
	reply.Text = strings.ReplaceAll(reply.Text, "\x00", "\uFFFD")
	reply.Content, reply.Message = reply.Text, reply.Text
	// The turn is answered only once it is committed: the history's two
	// turns and, on the embedded store, the episodic point, in one
	// transaction (which the database's single writer may share with other
	// users' turns).
	// A store beside the database (Weaviate) cannot share the transaction:
	// its point is written first and taken back if the history is refused,
	// so a turn that is not answered leaves no memory either.
	var with []database.Op
	if len(t.pending) > 0 {
		if c.staged != nil {
			op, err := c.staged.UpsertOp(t.pending)
			if err != nil {
				return Reply{}, err
			}
			with = append(with, op)
		} else if err := c.store.Upsert(ctx, t.pending); err != nil {
			return Reply{}, fmt.Errorf("%w: store the episodic memory: %w", ErrNotRecorded, err)
		}
	}
	if err := c.sessions.Record(ctx, t.s, []session.Turn{
		{Who: session.Human, Text: msg.Text, When: now},
		{Who: session.AI, Text: reply.Text, When: now, Why: whyJSON(storedWhy(reply.Why))},
	}, with...); err != nil {
		if len(t.pending) > 0 && c.staged == nil {
			t.takeBack(t.pending)
		}
		return Reply{}, fmt.Errorf("%w: %w", ErrNotRecorded, err)
	}
	return reply, nil
}

// takeBack deletes the episodic points of a turn whose history was
// refused, even when the turn's context is done (the socket went).
func (t *turn) takeBack(points []memory.Point) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, p := range points {
		if _, err := t.cat.store.Delete(ctx, p.Collection, p.Partition, []string{p.ID}); err != nil {
			t.cat.logger.Error("a refused turn's episodic memory could not be taken back", "user", t.id.ID, "point", p.ID, "err", err)
		}
	}
}

// recall embeds the query and recalls from each collection within the
// caller's reach, each recall config passing through its hook.
func (t *turn) recall(ctx context.Context, text string, w *Why) (MemoryWhy, error) {
	c := t.cat
	why := MemoryWhy{Episodic: []Document{}, Declarative: []Document{}, Procedural: []Document{}}
	query, err := hooks.OnCatRecallQuery.Apply(ctx, c.hooks, c.logger, t.caller, text)
	if err != nil {
		return why, err
	}
	started := memory.Now()
	vecs, err := t.embedder.Embed(ctx, []string{query})
	if err != nil {
		return why, fmt.Errorf("embed the message: %w", err)
	}
	t.query, t.queryVector = query, vecs[0]
	w.ModelInteractions = append(w.ModelInteractions, ModelInteraction{ModelType: "embedder", Source: "recall",
		Prompt: query, Reply: vecs[0], InputTokens: CountTokens(query), StartedAt: started, EndedAt: memory.Now()})
	if _, err := hooks.OnBeforeCatRecallsMemories.Apply(ctx, c.hooks, c.logger, t.caller, hooks.Empty{}); err != nil {
		return why, err
	}
	// Hooks go in the Cat's order; then the three searches.
	searches := []struct {
		collection string
		hook       hooks.Point[RecallConfig]
		cfg        Recall
		metadata   map[string]any
		out        *[]Document
		query      memory.Query
		matches    []memory.Match
		err        error
	}{
		{collection: memory.Episodic, hook: hooks.OnBeforeCatRecallsEpisodicMemories, cfg: c.cfg.Episodic, metadata: map[string]any{"source": t.id.ID}, out: &why.Episodic},
		{collection: memory.Declarative, hook: hooks.OnBeforeCatRecallsDeclarativeMemories, cfg: c.cfg.Declarative, metadata: map[string]any{}, out: &why.Declarative},
		{collection: memory.Procedural, hook: hooks.OnBeforeCatRecallsProceduralMemories, cfg: c.cfg.Procedural, metadata: map[string]any{}, out: &why.Procedural},
	}
	for i := range searches {
		r := &searches[i]
		rc := RecallConfig{Embedding: vecs[0], K: r.cfg.K, Threshold: r.cfg.Threshold, Metadata: r.metadata}
		rc, err := r.hook.Apply(ctx, c.hooks, c.logger, t.caller, rc)
		if err != nil {
			return why, err
		}
		r.query = memory.Query{Vector: rc.Embedding, Embedder: t.embedder.Name(), K: rc.K, Threshold: rc.Threshold, Metadata: rc.Metadata, OmitVectors: true}
	}
	// A store that commits with grin's database (memory.Staged) answers
	// from this process in microseconds: its three recalls run one after
	// another, since goroutines would add only their scheduling (5 ms a
	// turn at 100 users, waiting for a core). A remote store's run at once.
	var wg sync.WaitGroup
	for i := range searches {
		r := &searches[i]
		search := func() { r.matches, r.err = c.scope.Recall(ctx, t.id, r.collection, r.query) }
		if c.staged != nil {
			search()
		} else {
			wg.Go(search)
		}
	}
	wg.Wait()
	for _, r := range searches {
		if r.err != nil {
			return why, fmt.Errorf("recall %s memories: %w", r.collection, r.err)
		}
		for _, m := range r.matches {
			*r.out = append(*r.out, Document{ID: m.ID, PageContent: m.Content, Metadata: m.Metadata, Score: m.Score})
		}
	}
	if _, err := hooks.OnAfterCatRecallsMemories.Apply(ctx, c.hooks, c.logger, t.caller, hooks.Empty{}); err != nil {
		return why, err
	}
	return why, nil
}

// orEmpty is s, or an empty slice for nil, so it encodes as [] as the Cat's
// lists do.
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// promptText writes a chat prompt as the Cat records it: one message a
// line, each after its speaker (langchain's buffer string).
func promptText(req llm.Request) string {
	speaker := func(role string) string {
		switch role {
		case llm.RoleSystem:
			return "System"
		case llm.RoleUser:
			return "Human"
		case llm.RoleAssistant:
			return "AI"
		}
		return role
	}
	n := 0
	for _, m := range req.Messages {
		n += len("\n: ") + len(speaker(m.Role)) + len(m.Content)
	}
	var b strings.Builder
	b.Grow(n)
	for i, m := range req.Messages {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(speaker(m.Role))
		b.WriteString(": ")
		b.WriteString(m.Content)
	}
	return b.String()
}

// agentInput is the Cat's agent input: the recalled memories as the
// prompt shows them, the message, and recent history as text. Its strings
// fill the placeholders of the prompt ("{episodic_memory}"…), so a plugin
// may add keys of its own for a prefix or suffix of its own to use.
func (t *turn) agentInput(text string, mem MemoryWhy) hooks.AgentInput {
	// Builders sized first and written piece by piece: this runs on
	// every turn, and fmt's formatting and the builders' regrowth were a
	// tenth of a turn's allocations.
	var episodic, declarative strings.Builder
	if len(mem.Episodic) > 0 {
		const head = "## Context of things the Human said in the past:"
		n := len(head)
		for _, d := range mem.Episodic {
			n += len("\n  - ") + len(d.PageContent)
		}
		episodic.Grow(n)
		episodic.WriteString(head)
		for _, d := range mem.Episodic {
			episodic.WriteString("\n  - ")
			episodic.WriteString(strings.ReplaceAll(d.PageContent, "\n", ". "))
		}
	}
	if len(mem.Declarative) > 0 {
		declarative.WriteString("## Context of documents containing relevant information:")
		for _, d := range mem.Declarative {
			src, _ := d.Metadata["source"].(string)
			declarative.WriteString("\n  - ")
			declarative.WriteString(strings.ReplaceAll(d.PageContent, "\n", ". "))
			declarative.WriteString(" (extracted from ")
			declarative.WriteString(src)
			declarative.WriteString(")")
		}
	}
	var history strings.Builder
	recent := t.s.Recent
	if n := 2 * t.cat.cfg.HistoryTurns; len(recent) > n {
		recent = recent[len(recent)-n:]
	}
	n := 0
	for _, h := range recent {
		n += len("\n - : ") + len(h.Who) + len(h.Text)
	}
	history.Grow(n)
	for _, h := range recent {
		history.WriteString("\n - ")
		history.WriteString(h.Who)
		history.WriteString(": ")
		history.WriteString(h.Text)
	}
	return hooks.AgentInput{EpisodicMemory: episodic.String(), DeclarativeMemory: declarative.String(), Input: text, ChatHistory: history.String()}
}

// fillPrompt puts the agent input's strings in the template's
// placeholders, as the Cat's prompt template does: "{name}" takes the
// value of name, a placeholder with no value is dropped, and "{{" and
// "}}" stand for braces.
func fillPrompt(template string, input map[string]any) string {
	var b strings.Builder
	for i := 0; i < len(template); i++ {
		ch := template[i]
		if (ch == '{' || ch == '}') && i+1 < len(template) && template[i+1] == ch {
			b.WriteByte(ch)
			i++
			continue
		}
		if ch == '{' {
			if end := strings.IndexByte(template[i+1:], '}'); end >= 0 {
				name := template[i+1 : i+1+end]
				if isPlaceholder(name) {
					if v, ok := input[name].(string); ok {
						b.WriteString(v)
					}
					i += end + 1
					continue
				}
			}
		}
		b.WriteByte(ch)
	}
	return b.String()
}

func isPlaceholder(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// prompt assembles the model's request in the Cat's order: the system
// prompt (prefix and suffix, the recalled memories in it), recent
// history, the message.
func (t *turn) prompt(system, input string, mem MemoryWhy) llm.Request {
	var recalled []string
	for _, d := range mem.Episodic {
		recalled = append(recalled, d.PageContent)
	}
	for _, d := range mem.Declarative {
		recalled = append(recalled, d.PageContent)
	}
	msgs := []llm.Message{{Role: llm.RoleSystem, Content: system}}
	recent := t.s.Recent
	if n := 2 * t.cat.cfg.HistoryTurns; len(recent) > n {
		recent = recent[len(recent)-n:]
	}
	for _, h := range recent {
		role := llm.RoleUser
		if h.Who == session.AI {
			role = llm.RoleAssistant
		}
		msgs = append(msgs, llm.Message{Role: role, Content: h.Text})
	}
	msgs = append(msgs, llm.Message{Role: llm.RoleUser, Content: input})
	// Episodic first so the offline model quotes what the user said, then
	// documents, as the prompt lists them.
	return llm.Request{Messages: msgs, Recalled: recalled, Input: input}
}

// remember stores the user's message in their episodic memory.
func (t *turn) remember(ctx context.Context, text string) error {
	c := t.cat
	doc := hooks.NewMemory{PageContent: text, Metadata: map[string]any{"source": t.id.ID, "when": memory.Now()}}
	doc, err := hooks.OnBeforeCatStoresEpisodicMemory.Apply(ctx, c.hooks, c.logger, t.caller, doc)
	if err != nil {
		return err
	}
	if strings.TrimSpace(doc.PageContent) == "" {
		return nil // a plugin chose not to remember this message
	}
	if doc.Metadata == nil {
		doc.Metadata = map[string]any{}
	}
	// Episodic memory is the user's own, whatever a plugin wrote.
	doc.Metadata["source"] = t.id.ID
	vector := t.queryVector
	if vector == nil || doc.PageContent != t.query {
		vecs, err := t.embedder.Embed(ctx, []string{doc.PageContent})
		if err != nil {
			return fmt.Errorf("embed the message: %w", err)
		}
		vector = vecs[0]
	}
	points := []memory.Point{{
		ID: uuid.NewString(), Collection: memory.Episodic, Partition: t.id.ID,
		Content: doc.PageContent, Metadata: doc.Metadata, Vector: vector, Embedder: t.embedder.Name(),
	}}
	t.pending = points // written in finish, with the turn's history
	return nil
}

// storedWhy is the why a turn's history keeps: the one its chat frame
// carried, but for the embedder's vector, which becomes an empty list. The
// vector is the embedding of the interaction's prompt, kept beside it
// (512 to 3,072 numbers, 1 to 20 KB of JSON a turn, more than the rest of
// the turn); see RATIONALE.md.
func storedWhy(w Why) Why {
	mis := make([]ModelInteraction, len(w.ModelInteractions))
	for i, mi := range w.ModelInteractions {
		if mi.ModelType == "embedder" {
			mi.Reply = []float32{}
		}
		mis[i] = mi
	}
	w.ModelInteractions = mis
	return w
}

// whyJSON is the JSON of a why as the history stores it (nil if it holds
// a number JSON cannot, which json.Marshal refuses too).
func whyJSON(w Why) json.RawMessage {
	b, err := w.AppendJSON(nil)
	if err != nil {
		return nil
	}
	return b
}

// requestID is the id of the request the turn answers (its X-Request-Id,
// or a WebSocket message's), which hooks see as ctx request_id and every
// log line of the turn carries; a fresh one when the caller gave none.
func requestID(ctx context.Context) string {
	if id := requestid.From(ctx); id != "" {
		return id
	}
	return requestid.New()
}
