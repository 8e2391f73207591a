// Guest huge answers with 8 MiB.
package main

import (
	"encoding/json"
	"strings"

	"github.com/grin-ai/grin/wasmhooks/pdk"
)

func init() {
	pdk.Hook("before_cat_reads_message", func(_ pdk.Ctx, in json.RawMessage) (json.RawMessage, error) {
		return json.Marshal(map[string]string{"text": strings.Repeat("x", 8<<20)})
	})
}

func main() {}
