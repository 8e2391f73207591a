// Guest reqid writes the request id its ctx carries into the message
// text and into a document's text, and logs it: what an operator follows
// from a client's report to a plugin's doing.
package main

import (
	"encoding/json"

	"github.com/grin-ai/grin/wasmhooks/pdk"
)

func init() {
	pdk.Hook("before_cat_reads_message", func(ctx pdk.Ctx, in json.RawMessage) (json.RawMessage, error) {
		var msg map[string]any
		if err := json.Unmarshal(in, &msg); err != nil {
			return nil, err
		}
		text, _ := msg["text"].(string)
		msg["text"] = text + " [request " + ctx.RequestID() + "]"
		pdk.Log(pdk.Info, "reqid saw its request")
		return json.Marshal(msg)
	})
}

func init() {
	pdk.Hook("before_rabbithole_splits_text", func(ctx pdk.Ctx, in json.RawMessage) (json.RawMessage, error) {
		var text string
		if err := json.Unmarshal(in, &text); err != nil {
			return nil, err
		}
		return json.Marshal(text + " [request " + ctx.RequestID() + "]")
	})
}

func main() {}
