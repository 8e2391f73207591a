// Command author is the seed's example as a grin plugin: every document
// chunk is stamped with the id of the user who uploaded it, and each user
// recalls only the declarative memories they uploaded.
//
// Build:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin.wasm .
//
// then zip plugin.wasm with manifest.json and upload it to /plugins/upload.
package main

import (
	"encoding/json"

	"github.com/grin-ai/grin/wasmhooks/pdk"
)

func init() {
	// before_rabbithole_insert_memory: doc.metadata["author"] = user id.
	pdk.Hook("before_rabbithole_insert_memory", func(ctx pdk.Ctx, in json.RawMessage) (json.RawMessage, error) {
		var doc struct {
			PageContent string         `json:"page_content"`
			Metadata    map[string]any `json:"metadata"`
		}
		if err := json.Unmarshal(in, &doc); err != nil {
			return nil, err
		}
		if doc.Metadata == nil {
			doc.Metadata = map[string]any{}
		}
		doc.Metadata["author"] = ctx.UserID()
		return json.Marshal(doc)
	})
	// before_cat_recalls_declarative_memories: recall only one's own.
	pdk.Hook("before_cat_recalls_declarative_memories", func(ctx pdk.Ctx, in json.RawMessage) (json.RawMessage, error) {
		var cfg map[string]any
		if err := json.Unmarshal(in, &cfg); err != nil {
			return nil, err
		}
		cfg["metadata"] = map[string]any{"author": ctx.UserID()}
		return json.Marshal(cfg)
	})
}

func main() {}
