//go:build wasip1 && grin_abi_v1

package pdk

import "unsafe"

//go:wasmimport grin_v1 input_read
func inputRead(ptr unsafe.Pointer, n uint32) uint32

//go:wasmimport grin_v1 output_write
func outputWrite(ptr unsafe.Pointer, n uint32)

//go:wasmimport grin_v1 error_write
func errorWrite(ptr unsafe.Pointer, n uint32)

//go:wasmimport grin_v1 log
func logWrite(level uint32, ptr unsafe.Pointer, n uint32)

//go:wasmexport grin_hook_abi_v1
func abiMarker() {}

// hostCtxRead is never reached: the envelope fills every field.
func hostCtxRead(int) string { return "" }

// runV1 is every ABI v1 export's body: read the envelope, run the hook,
// answer, and yield now and then.
func runV1(name string, n uint32) uint32 {
	buf := input(n)
	if n > 0 {
		hostInputRead(buf)
	}
	out, status, errMsg := runEnvelope(name, buf)
	answer(out, status, errMsg)
	maybeYield(int(n) + len(out))
	return status
}
