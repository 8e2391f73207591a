// Guest hostloop never returns, and spends its time in host functions:
// every turn of its loop logs a line (dropped by the rate limit).
package main

import (
	"encoding/json"

	"github.com/grin-ai/grin/wasmhooks/pdk"
)

func init() {
	pdk.Hook("before_cat_reads_message", func(_ pdk.Ctx, in json.RawMessage) (json.RawMessage, error) {
		for {
			pdk.Log(pdk.Debug, "round and round")
		}
	})
}

func main() {}
