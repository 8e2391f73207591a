// Guest trap reaches unreachable code: a WebAssembly trap, not a Go panic.
package main

import (
	"encoding/json"
	"unsafe"

	"github.com/grin-ai/grin/wasmhooks/pdk"
)

func init() {
	pdk.Hook("before_cat_reads_message", func(_ pdk.Ctx, in json.RawMessage) (json.RawMessage, error) {
		p := (*int)(unsafe.Pointer(uintptr(0xffffffff)))
		*p = 1 // out of bounds of linear memory
		return in, nil
	})
}

func main() {}
