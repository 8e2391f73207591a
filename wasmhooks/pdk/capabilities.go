package pdk

import (
	"encoding/json"
	"errors"
)

// Host capabilities: what a hook may ask of grin, as a Cat plugin does
// with its cat object. Each must be declared in the plugin's manifest
//
//	"capabilities": {"memory.recall": {}, "kv": {}, "http.fetch": {"hosts": ["api.example.com"]}}
//
// and granted to the plugin by the administrator in the policy
// ("p, plugin:<id>, capability:memory.recall, use"). Calls act as the user
// the hook runs for, never beyond what that user may do. A refused or
// failed call returns a *HostError whose Code says why.

// HostError is a host call's refusal or failure.
type HostError struct {
	// Code is one of: unknown, undeclared, denied (not granted by the
	// policy), forbidden (the user may not), invalid, quota, unavailable,
	// failed.
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *HostError) Error() string { return "grin: " + e.Code + ": " + e.Message }

// Call makes the host call name with req encoded as JSON and decodes the
// answer into resp (which may be nil). The typed functions below wrap it.
func Call(name string, req, resp any) error {
	in, err := json.Marshal(req)
	if err != nil {
		return err
	}
	raw := hostCall(name, in)
	var ans struct {
		OK    json.RawMessage `json:"ok"`
		Error *HostError      `json:"error"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil {
		return errors.New("grin: the host's answer is not JSON")
	}
	if ans.Error != nil {
		return ans.Error
	}
	if resp == nil {
		return nil
	}
	return json.Unmarshal(ans.OK, resp)
}

// Memory is a recalled memory.
type Memory struct {
	ID          string         `json:"id"`
	PageContent string         `json:"page_content"`
	Metadata    map[string]any `json:"metadata"`
	Score       float64        `json:"score"`
}

// Memories are the memories recalled, per collection.
type Memories struct {
	Episodic    []Memory `json:"episodic"`
	Declarative []Memory `json:"declarative"`
	Procedural  []Memory `json:"procedural"`
}

// Recall searches the memories of the user the hook runs for (their own
// episodic memory, the declarative spaces they may read, procedural
// memory) for the k closest to text. Capability memory.recall.
func Recall(ctx Ctx, text string, k int) (Memories, error) {
	var m Memories
	err := Call("memory.recall", map[string]any{"text": text, "k": k}, &m)
	return m, err
}

// Remember stores text in the episodic memory of the user the hook runs
// for, and returns its id. Capability memory.store.
func Remember(ctx Ctx, text string, metadata map[string]any) (string, error) {
	var out struct {
		ID string `json:"id"`
	}
	err := Call("memory.store", map[string]any{"text": text, "metadata": metadata}, &out)
	return out.ID, err
}

// KVGet reads key from the plugin's store for the user the hook runs for.
// Capability kv.
func KVGet(ctx Ctx, key string) (value string, found bool, err error) {
	return kvGet("user", key)
}

// KVSet writes key in the plugin's store for the user the hook runs for,
// within the store's quota. Capability kv.
func KVSet(ctx Ctx, key, value string) error { return kvSet("user", key, value) }

// KVDelete deletes key from the plugin's store for the user the hook runs
// for. Capability kv.
func KVDelete(ctx Ctx, key string) error { return kvDelete("user", key) }

// PluginKVGet, PluginKVSet and PluginKVDelete use the plugin's own store,
// shared by all its calls whatever the user. Capability kv.
func PluginKVGet(ctx Ctx, key string) (value string, found bool, err error) {
	return kvGet("plugin", key)
}

// PluginKVSet: see PluginKVGet.
func PluginKVSet(ctx Ctx, key, value string) error { return kvSet("plugin", key, value) }

// PluginKVDelete: see PluginKVGet.
func PluginKVDelete(ctx Ctx, key string) error { return kvDelete("plugin", key) }

func kvGet(scope, key string) (string, bool, error) {
	var out struct {
		Found bool   `json:"found"`
		Value string `json:"value"`
	}
	err := Call("kv.get", map[string]any{"scope": scope, "key": key}, &out)
	return out.Value, out.Found, err
}

func kvSet(scope, key, value string) error {
	return Call("kv.set", map[string]any{"scope": scope, "key": key, "value": value}, nil)
}

func kvDelete(scope, key string) error {
	return Call("kv.delete", map[string]any{"scope": scope, "key": key}, nil)
}

// Notify sends a notification frame ({"type":"notification","content"})
// to the sockets of the user the hook runs for: the Cat's
// send_ws_message. Capability notify.
func Notify(ctx Ctx, content string) error {
	return Call("notify", map[string]any{"content": content}, nil)
}

// Completion is a model's answer; Truncated when the token budget cut it.
type Completion struct {
	Text      string `json:"text"`
	Truncated bool   `json:"truncated"`
}

// Complete asks the configured model, with an optional system message,
// for at most maxTokens tokens (0: the server's budget). The hook's
// timeout_ms must leave the model time to answer. Capability llm.complete.
func Complete(ctx Ctx, system, prompt string, maxTokens int) (Completion, error) {
	var c Completion
	err := Call("llm.complete", map[string]any{"system": system, "prompt": prompt, "max_tokens": maxTokens}, &c)
	return c, err
}

// Response is what Fetch got.
type Response struct {
	Status      int    `json:"status"`
	ContentType string `json:"content_type"`
	Body        string `json:"body"`
}

// Fetch gets url, whose host the manifest lists under http.fetch and the
// administrator approved. Redirects are not followed. Capability
// http.fetch.
func Fetch(ctx Ctx, url string) (Response, error) {
	var r Response
	err := Call("http.fetch", map[string]any{"url": url}, &r)
	return r, err
}
