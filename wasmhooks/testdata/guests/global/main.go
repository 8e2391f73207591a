// Guest global remembers the previous caller in a package variable, as a
// careless plugin would: it shows what leaks between users of a shared
// instance.
package main

import (
	"encoding/json"

	"github.com/grin-ai/grin/wasmhooks/pdk"
)

var previous string

func init() {
	pdk.Hook("before_cat_reads_message", func(ctx pdk.Ctx, in json.RawMessage) (json.RawMessage, error) {
		out, _ := json.Marshal(map[string]string{"text": "previous caller: " + previous})
		previous = ctx.UserID()
		return out, nil
	})
}

func main() {}
