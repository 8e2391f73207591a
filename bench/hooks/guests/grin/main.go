// Guest grin is the benchmark's guest for grin, written with the kit:
// agent_fast_reply does nothing, before_cat_reads_message echoes the
// payload, before_cat_sends_message transforms it (work.Transform). Built
// without tags it is an ABI v2 module; with -tags grin_abi_v1, v1.
package main

import (
	"encoding/json"

	"github.com/grin-ai/grin/bench/hooks/guests/work"
	"github.com/grin-ai/grin/wasmhooks/pdk"
)

func init() {
	pdk.Hook("agent_fast_reply", func(pdk.Ctx, json.RawMessage) (json.RawMessage, error) { return nil, nil })
	pdk.Hook("before_cat_reads_message", func(_ pdk.Ctx, in json.RawMessage) (json.RawMessage, error) { return in, nil })
	pdk.Hook("before_cat_sends_message", func(_ pdk.Ctx, in json.RawMessage) (json.RawMessage, error) {
		return work.Transform(in)
	})
}

func main() {}
