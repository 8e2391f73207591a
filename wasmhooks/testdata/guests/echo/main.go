// Guest echo returns the payload unchanged through output_write.
package main

import (
	"encoding/json"

	"github.com/grin-ai/grin/wasmhooks/pdk"
)

func init() {
	pdk.Hook("before_cat_reads_message", func(_ pdk.Ctx, in json.RawMessage) (json.RawMessage, error) { return in, nil })
}

func main() {}
