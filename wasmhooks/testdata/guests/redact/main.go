// Guest redact is the first author's plugin: it hides e-mail addresses in
// a user's message, at before_cat_reads_message or at
// before_cat_stores_episodic_memory (whichever the manifest lists), and
// greets the user by name from its settings in before_cat_sends_message,
// changing the reply's text, its content or both (settings.field).
package main

import (
	"encoding/json"
	"strings"

	"github.com/grin-ai/grin/wasmhooks/pdk"
)

// redact replaces every word holding an @ with [email].
func redact(s string) string {
	words := strings.Fields(s)
	for i, w := range words {
		if strings.Contains(w, "@") {
			words[i] = "[email]"
		}
	}
	return strings.Join(words, " ")
}

// rewrite applies fn to the string field of the payload.
func rewrite(in json.RawMessage, field string, fn func(string) string) (json.RawMessage, error) {
	var m map[string]any
	if err := json.Unmarshal(in, &m); err != nil {
		return nil, err
	}
	s, _ := m[field].(string)
	m[field] = fn(s)
	return json.Marshal(m)
}

func init() {
	pdk.Hook("before_cat_reads_message", func(ctx pdk.Ctx, in json.RawMessage) (json.RawMessage, error) {
		return rewrite(in, "text", redact)
	})
	pdk.Hook("before_cat_stores_episodic_memory", func(ctx pdk.Ctx, in json.RawMessage) (json.RawMessage, error) {
		return rewrite(in, "page_content", redact)
	})
	pdk.Hook("before_cat_sends_message", func(ctx pdk.Ctx, in json.RawMessage) (json.RawMessage, error) {
		greeting, _ := ctx.Settings()["greeting"].(string)
		field, _ := ctx.Settings()["field"].(string)
		greet := func(s string) string { return greeting + ", " + ctx.Username() + "! " + s }
		out := in
		var err error
		if field == "text" || field == "both" {
			if out, err = rewrite(out, "text", greet); err != nil {
				return nil, err
			}
		}
		if field == "content" || field == "both" {
			if out, err = rewrite(out, "content", func(s string) string { return strings.ToUpper(greet(s)) }); err != nil {
				return nil, err
			}
		}
		pdk.Log(pdk.Info, "greeted "+ctx.Username())
		return out, nil
	})
}

func main() {}
