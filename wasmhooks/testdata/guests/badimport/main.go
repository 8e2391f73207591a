// Guest badimport asks for a host function grin does not provide.
package main

import (
	"encoding/json"

	"github.com/grin-ai/grin/wasmhooks/pdk"
)

//go:wasmimport env open_socket
func openSocket(port uint32) uint32

func init() {
	pdk.Hook("before_cat_reads_message", func(_ pdk.Ctx, in json.RawMessage) (json.RawMessage, error) {
		openSocket(80)
		return in, nil
	})
}

func main() {}
