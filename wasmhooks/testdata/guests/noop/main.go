// Guest noop leaves every payload unchanged: the cost of calling a hook.
package main

import (
	"encoding/json"

	"github.com/grin-ai/grin/wasmhooks/pdk"
)

func init() {
	pdk.Hook("before_cat_reads_message", func(pdk.Ctx, json.RawMessage) (json.RawMessage, error) { return nil, nil })
}

func main() {}
