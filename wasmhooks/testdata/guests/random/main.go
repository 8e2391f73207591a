// Guest random answers with 16 bytes from crypto/rand, to show the sandbox
// gives real randomness (wazero's default would repeat itself).
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"

	"github.com/grin-ai/grin/wasmhooks/pdk"
)

func init() {
	pdk.Hook("before_cat_reads_message", func(pdk.Ctx, json.RawMessage) (json.RawMessage, error) {
		b := make([]byte, 16)
		rand.Read(b)
		return json.Marshal(map[string]string{"text": hex.EncodeToString(b)})
	})
}

func main() {}
