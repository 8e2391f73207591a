// Guest rawv1 is a plugin written from ABI v1's documentation alone, with
// no kit: raw imports and exports, its own envelope decoding. It answers
// before_cat_reads_message with the payload's text and who sent it.
package main

import (
	"encoding/json"
	"unsafe"
)

//go:wasmimport grin_v1 input_read
func inputRead(ptr unsafe.Pointer, n uint32) uint32

//go:wasmimport grin_v1 output_write
func outputWrite(ptr unsafe.Pointer, n uint32)

//go:wasmimport grin_v1 error_write
func errorWrite(ptr unsafe.Pointer, n uint32)

//go:wasmexport grin_hook_abi_v1
func marker() {}

//go:wasmexport hook_before_cat_reads_message
func beforeCatReadsMessage(n uint32) uint32 {
	buf := make([]byte, n)
	inputRead(unsafe.Pointer(unsafe.SliceData(buf)), n)
	var in struct {
		ABI  int    `json:"abi"`
		Hook string `json:"hook"`
		Ctx  struct {
			UserID string `json:"user_id"`
		} `json:"ctx"`
		Payload struct {
			Text string `json:"text"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(buf, &in); err != nil {
		msg := err.Error()
		errorWrite(unsafe.Pointer(unsafe.StringData(msg)), uint32(len(msg)))
		return 1
	}
	out, _ := json.Marshal(map[string]any{"text": in.Payload.Text, "seen_by": in.Ctx.UserID, "abi": in.ABI, "hook": in.Hook})
	outputWrite(unsafe.Pointer(unsafe.SliceData(out)), uint32(len(out)))
	return 0
}

func main() {}
