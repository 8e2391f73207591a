// Guest bomb allocates without end.
package main

import (
	"encoding/json"

	"github.com/grin-ai/grin/wasmhooks/pdk"
)

var hoard [][]byte

func init() {
	pdk.Hook("before_cat_reads_message", func(_ pdk.Ctx, in json.RawMessage) (json.RawMessage, error) {
		for {
			hoard = append(hoard, make([]byte, 1<<20))
		}
	})
}

func main() {}
