// Guest upper upper-cases the message text and notes who it ran for and
// with which settings: a 1 KiB JSON transform.
package main

import (
	"encoding/json"
	"strings"

	"github.com/grin-ai/grin/wasmhooks/pdk"
)

func init() {
	pdk.Hook("before_cat_reads_message", func(ctx pdk.Ctx, in json.RawMessage) (json.RawMessage, error) {
		var msg map[string]any
		if err := json.Unmarshal(in, &msg); err != nil {
			return nil, err
		}
		text, _ := msg["text"].(string)
		msg["text"] = strings.ToUpper(text)
		msg["seen_by"] = ctx.UserID()
		if suffix, ok := ctx.Settings()["suffix"].(string); ok {
			msg["text"] = msg["text"].(string) + suffix
		}
		pdk.Log(pdk.Info, "upper-cased a message")
		return json.Marshal(msg)
	})
}

func main() {}
