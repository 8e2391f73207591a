// Guest loop never returns.
package main

import (
	"encoding/json"

	"github.com/grin-ai/grin/wasmhooks/pdk"
)

var sink int

func init() {
	pdk.Hook("before_cat_reads_message", func(_ pdk.Ctx, in json.RawMessage) (json.RawMessage, error) {
		for i := 0; ; i++ {
			sink += i
		}
	})
}

func main() {}
