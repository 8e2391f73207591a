// Guest sleeper sleeps for an hour in every call: time.Sleep in a Go
// guest is WASI's poll_oneoff, where no fuel is spent.
package main

import (
	"encoding/json"
	"time"

	"github.com/grin-ai/grin/wasmhooks/pdk"
)

func init() {
	pdk.Hook("before_cat_reads_message", func(_ pdk.Ctx, in json.RawMessage) (json.RawMessage, error) {
		time.Sleep(time.Hour)
		return in, nil
	})
}

func main() {}
