// Guest slow takes 30 ms over each message, to keep calls in flight while
// the plugin is toggled, upgraded or deleted.
package main

import (
	"encoding/json"
	"time"

	"github.com/grin-ai/grin/wasmhooks/pdk"
)

func init() {
	pdk.Hook("before_cat_reads_message", func(_ pdk.Ctx, in json.RawMessage) (json.RawMessage, error) {
		time.Sleep(30 * time.Millisecond)
		return nil, nil
	})
}

func main() {}
