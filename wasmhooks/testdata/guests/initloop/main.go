// Guest initloop never finishes its initialisation: Go runs package init
// functions in the module's _initialize.
package main

import (
	"encoding/json"

	"github.com/grin-ai/grin/wasmhooks/pdk"
)

var sink int

func init() {
	for i := 0; ; i++ {
		sink += i
	}
}

func init() {
	pdk.Hook("before_cat_reads_message", func(_ pdk.Ctx, in json.RawMessage) (json.RawMessage, error) { return in, nil })
}

func main() {}
