// Guest panic panics; the kit turns that into an error.
package main

import (
	"encoding/json"

	"github.com/grin-ai/grin/wasmhooks/pdk"
)

func init() {
	pdk.Hook("before_cat_reads_message", func(_ pdk.Ctx, in json.RawMessage) (json.RawMessage, error) {
		panic("the Queen wants your head")
	})
}

func main() {}
