// Guest flood writes log lines in a tight loop: settings "lines" of them,
// each "bytes" long, then answers "flooded".
package main

import (
	"encoding/json"
	"strings"

	"github.com/grin-ai/grin/wasmhooks/pdk"
)

func init() {
	pdk.Hook("before_cat_reads_message", func(ctx pdk.Ctx, in json.RawMessage) (json.RawMessage, error) {
		lines, _ := ctx.Settings()["lines"].(float64)
		size, _ := ctx.Settings()["bytes"].(float64)
		line := strings.Repeat("x", max(int(size), 1))
		for range int(lines) {
			pdk.Log(pdk.Info, line)
		}
		return json.Marshal(map[string]string{"text": "flooded"})
	})
}

func main() {}
