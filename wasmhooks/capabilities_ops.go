package wasmhooks

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/grin-ai/grin/platform/llm"
	"github.com/grin-ai/grin/platform/memory"
	"github.com/grin-ai/grin/platform/rabbithole"
	"github.com/grin-ai/grin/policies"
)

// maxTextRunes bounds a text a plugin stores or asks about, as a chat
// message is bounded.
const maxTextRunes = 32_000

// RecalledMemory is one memory a recall found.
type RecalledMemory struct {
	ID          string         `json:"id"`
	PageContent string         `json:"page_content"`
	Metadata    map[string]any `json:"metadata"`
	Score       float64        `json:"score"`
}

// recall searches the collections the user reaches for text: the user's
// own episodic memory, the declarative spaces the policy lets them read,
// procedural memory; exactly what their own /memory/recall would search.
func (c *capCall) recall(ctx context.Context, req []byte) (any, error) {
	id, err := c.needUser()
	if err != nil {
		return nil, err
	}
	var r struct {
		Text        string   `json:"text"`
		K           int      `json:"k"`
		Collections []string `json:"collections"`
	}
	if err := decode(req, &r); err != nil {
		return nil, err
	}
	if err := checkText(r.Text); err != nil {
		return nil, err
	}
	if r.K == 0 {
		r.K = 5
	}
	if r.K < 0 || r.K > DefaultRecallMaxK {
		return nil, capErr(CodeInvalid, "k must be between 1 and %d", DefaultRecallMaxK)
	}
	all := []string{memory.Episodic, memory.Declarative, memory.Procedural}
	if len(r.Collections) == 0 {
		r.Collections = all
	}
	for _, col := range r.Collections {
		if !slices.Contains(all, col) {
			return nil, capErr(CodeInvalid, "collection %q is not episodic, declarative or procedural", col)
		}
	}
	vec, embedder, err := c.embed(ctx, r.Text)
	if err != nil {
		return nil, err
	}
	out := map[string][]RecalledMemory{}
	for _, col := range r.Collections {
		// A recalled memory goes back without its vector: do not fetch it.
		matches, err := c.caps.Scope.Recall(ctx, id, col, memory.Query{Vector: vec, Embedder: embedder, K: r.K, OmitVectors: true})
		if err != nil {
			return nil, capErr(CodeFailed, "recall %s memories: %v", col, err)
		}
		docs := make([]RecalledMemory, 0, len(matches))
		for _, m := range matches {
			docs = append(docs, RecalledMemory{ID: m.ID, PageContent: m.Content, Metadata: m.Metadata, Score: m.Score})
		}
		out[col] = docs
	}
	return out, nil
}

// checkText refuses an empty or over-long text to recall or store.
func checkText(text string) error {
	if strings.TrimSpace(text) == "" || utf8.RuneCountInString(text) > maxTextRunes {
		return capErr(CodeInvalid, "text must be 1 to %d characters", maxTextRunes)
	}
	return nil
}

// embed embeds text with the embedder in use, and names it.
func (c *capCall) embed(ctx context.Context, text string) ([]float32, string, error) {
	emb := c.caps.Providers.Embedder()
	vecs, err := emb.Embed(ctx, []string{text})
	if err != nil {
		return nil, "", capErr(CodeFailed, "embed the text: %v", err)
	}
	return vecs[0], emb.Name(), nil
}

// store adds text to the user's episodic memory, when their policy lets
// them write there.
func (c *capCall) store(ctx context.Context, req []byte) (any, error) {
	id, err := c.needUser()
	if err != nil {
		return nil, err
	}
	var r struct {
		Text     string         `json:"text"`
		Metadata map[string]any `json:"metadata"`
	}
	if err := decode(req, &r); err != nil {
		return nil, err
	}
	if err := checkText(r.Text); err != nil {
		return nil, err
	}
	ok, err := c.caps.Scope.Allowed(id, memory.Episodic, id.ID, policies.Write)
	if err != nil {
		return nil, capErr(CodeFailed, "the policy could not decide: %v", err)
	}
	if !ok {
		return nil, capErr(CodeForbidden, "the user this hook runs for may not write to their episodic memory")
	}
	if r.Metadata == nil {
		r.Metadata = map[string]any{}
	}
	if _, ok := r.Metadata["when"].(float64); !ok {
		r.Metadata["when"] = memory.Now()
	}
	// The user's own, whatever the plugin wrote, and marked as the
	// plugin's doing.
	r.Metadata["source"] = id.ID
	r.Metadata["plugin"] = c.plugin
	vec, embedder, err := c.embed(ctx, r.Text)
	if err != nil {
		return nil, err
	}
	pid := uuid.NewString()
	if err := c.caps.Store.Upsert(ctx, []memory.Point{{
		ID: pid, Collection: memory.Episodic, Partition: id.ID,
		Content: r.Text, Metadata: r.Metadata, Vector: vec, Embedder: embedder,
	}}); err != nil {
		return nil, capErr(CodeFailed, "store the memory: %v", err)
	}
	return map[string]string{"id": pid}, nil
}

// kvRequest names a key in one of the plugin's stores: the user's
// ("user", the default) or the plugin's own ("plugin").
type kvRequest struct {
	Scope string  `json:"scope"`
	Key   string  `json:"key"`
	Value *string `json:"value"`
}

// kvStore decodes a kv request and names its store: (plugin, user id), or
// (plugin, "") for the plugin's own.
func (c *capCall) kvStore(req []byte) (kvRequest, string, error) {
	var r kvRequest
	if err := decode(req, &r); err != nil {
		return r, "", err
	}
	// No NUL: PostgreSQL's text cannot hold it, and a key must mean the
	// same on both engines.
	if r.Key == "" || len(r.Key) > DefaultKVMaxKeyBytes || !utf8.ValidString(r.Key) || strings.ContainsRune(r.Key, 0) {
		return r, "", capErr(CodeInvalid, "key must be 1 to %d bytes of UTF-8, without NUL", DefaultKVMaxKeyBytes)
	}
	switch r.Scope {
	case "", "user":
		id, err := c.needUser()
		if err != nil {
			return r, "", err
		}
		return r, id.ID, nil
	case "plugin":
		return r, "", nil
	}
	return r, "", capErr(CodeInvalid, `scope must be "user" or "plugin"`)
}

func (c *capCall) kvGet(ctx context.Context, req []byte) (any, error) {
	r, user, err := c.kvStore(req)
	if err != nil {
		return nil, err
	}
	v, found, err := keyValues{c.caps.db}.get(ctx, c.plugin, user, r.Key)
	if err != nil {
		return nil, capErr(CodeFailed, "%v", err)
	}
	if !found {
		return map[string]any{"found": false}, nil
	}
	return map[string]any{"found": true, "value": string(v)}, nil
}

func (c *capCall) kvSet(ctx context.Context, req []byte) (any, error) {
	r, user, err := c.kvStore(req)
	if err != nil {
		return nil, err
	}
	if r.Value == nil {
		return nil, capErr(CodeInvalid, "value is required (a string)")
	}
	quota := c.caps.Limits.KVQuotaBytes
	err = keyValues{c.caps.db}.set(ctx, c.plugin, user, r.Key, []byte(*r.Value), quota)
	if errors.Is(err, errKVQuota) {
		return nil, capErr(CodeQuota, "the store would hold more than %d bytes (keys and values); delete keys first", quota)
	}
	if err != nil {
		return nil, capErr(CodeFailed, "%v", err)
	}
	return map[string]any{}, nil
}

func (c *capCall) kvDelete(ctx context.Context, req []byte) (any, error) {
	r, user, err := c.kvStore(req)
	if err != nil {
		return nil, err
	}
	deleted, err := keyValues{c.caps.db}.delete(ctx, c.plugin, user, r.Key)
	if err != nil {
		return nil, capErr(CodeFailed, "%v", err)
	}
	return map[string]any{"deleted": deleted}, nil
}

// notificationFrame is the Cat's send_ws_message frame.
type notificationFrame struct {
	Type    string `json:"type"`
	Content string `json:"content"`
}

// notify sends a notification frame to every socket of the user the hook
// runs for, and no one else's.
func (c *capCall) notify(_ context.Context, req []byte) (any, error) {
	id, err := c.needUser()
	if err != nil {
		return nil, err
	}
	var r struct {
		Content string `json:"content"`
	}
	if err := decode(req, &r); err != nil {
		return nil, err
	}
	if r.Content == "" || len(r.Content) > maxNotifyBytes {
		return nil, capErr(CodeInvalid, "content must be 1 to %d bytes", maxNotifyBytes)
	}
	c.caps.Sessions.Send(id.ID, notificationFrame{Type: "notification", Content: r.Content})
	return map[string]any{}, nil
}

var errTokenBudget = errors.New("token budget spent")

// complete asks the configured model, within a time and token budget.
func (c *capCall) complete(ctx context.Context, req []byte) (any, error) {
	var r struct {
		Prompt    string `json:"prompt"`
		System    string `json:"system"`
		MaxTokens int    `json:"max_tokens"`
	}
	if err := decode(req, &r); err != nil {
		return nil, err
	}
	if strings.TrimSpace(r.Prompt) == "" || utf8.RuneCountInString(r.Prompt)+utf8.RuneCountInString(r.System) > maxTextRunes {
		return nil, capErr(CodeInvalid, "prompt must be 1 to %d characters, with the system message", maxTextRunes)
	}
	limits := c.caps.Limits
	budget := limits.LLMMaxTokens
	if r.MaxTokens < 0 {
		return nil, capErr(CodeInvalid, "max_tokens must be positive")
	}
	if r.MaxTokens > 0 {
		budget = min(budget, r.MaxTokens)
	}
	ctx, cancel := context.WithTimeout(ctx, limits.LLMTimeout)
	defer cancel()
	msgs := []llm.Message{}
	if r.System != "" {
		msgs = append(msgs, llm.Message{Role: llm.RoleSystem, Content: r.System})
	}
	msgs = append(msgs, llm.Message{Role: llm.RoleUser, Content: r.Prompt})
	var b strings.Builder
	tokens := 0
	reply, err := c.caps.Providers.Model().Generate(ctx, llm.Request{Messages: msgs, Input: r.Prompt}, func(tok string) error {
		if tokens >= budget {
			return errTokenBudget
		}
		tokens++
		b.WriteString(tok)
		return nil
	})
	truncated := errors.Is(err, errTokenBudget)
	switch {
	case truncated:
		reply = b.String()
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return nil, capErr(CodeQuota, "the model did not answer within %v", limits.LLMTimeout)
	case err != nil:
		return nil, capErr(CodeFailed, "the model failed: %v", err)
	}
	return map[string]any{"text": reply, "truncated": truncated}, nil
}

// fetch gets a URL whose host the manifest lists and the policy approves
// (capability:http.fetch:<host as listed>), through the rabbit hole's
// guarded fetcher: internal addresses are refused as they are there, and
// redirects are not followed, so an approved host cannot send the plugin
// elsewhere.
func (c *capCall) fetch(ctx context.Context, req []byte) (any, error) {
	var r struct {
		URL string `json:"url"`
	}
	if err := decode(req, &r); err != nil {
		return nil, err
	}
	u, err := url.Parse(r.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, capErr(CodeInvalid, "url must be an http or https URL")
	}
	host := strings.ToLower(u.Host)
	// A host listed without a port approves its scheme's default port
	// only; another port must be listed as host:port.
	hostname := strings.ToLower(u.Hostname())
	defaultPort := u.Port() == "" || (u.Scheme == "http" && u.Port() == "80") || (u.Scheme == "https" && u.Port() == "443")
	listed := ""
	for _, h := range c.spec.Hosts {
		if h == host || (defaultPort && h == hostname && !strings.Contains(strings.TrimPrefix(h, "["), ":")) {
			listed = h
			break
		}
	}
	if listed == "" {
		return nil, capErr(CodeUndeclared, "the manifest does not list the host %q for http.fetch (it lists %s)", host, strings.Join(c.spec.Hosts, ", "))
	}
	if err := c.caps.granted(c.plugin, CapabilityObject(CapHTTPFetch)+":"+listed); err != nil {
		return nil, err
	}
	limits := c.caps.Limits
	f := &rabbithole.Fetcher{AllowPrivate: c.caps.AllowPrivate, MaxBytes: limits.FetchMaxBytes, Timeout: limits.FetchTimeout, MaxRedirects: -1,
		UserAgent: "grin-plugin/" + c.plugin}
	page, err := f.Fetch(ctx, u.String())
	var status *rabbithole.StatusError
	switch {
	case errors.As(err, &status):
		return map[string]any{"status": status.StatusCode, "body": ""}, nil
	case errors.Is(err, rabbithole.ErrForbiddenAddress):
		return nil, capErr(CodeForbidden, "%v", err)
	case errors.Is(err, rabbithole.ErrTooLarge):
		return nil, capErr(CodeQuota, "the answer is larger than %d bytes", limits.FetchMaxBytes)
	case err != nil:
		return nil, capErr(CodeFailed, "%v", err)
	}
	return map[string]any{"status": 200, "content_type": page.ContentType, "body": string(page.Body)}, nil
}

// EraseUser deletes what plugins keep for a user (their key-value
// stores): called when the user is deleted.
func (m *Manager) EraseUser(ctx context.Context, userID string) error {
	return keyValues{m.db}.eraseUser(ctx, userID)
}
