// Guest hungryinit needs 40 MiB as it starts: it installs under the
// default memory cap (64 MiB), and every instance fails to start once an
// operator lowers the cap below what it needs.
package main

import (
	"encoding/json"

	"github.com/grin-ai/grin/wasmhooks/pdk"
)

var table []byte

func init() {
	table = make([]byte, 40<<20)
	table[len(table)-1] = 1
	pdk.Hook("before_cat_reads_message", func(_ pdk.Ctx, in json.RawMessage) (json.RawMessage, error) {
		return json.Marshal(map[string]string{"text": "started"})
	})
}

func main() {}
