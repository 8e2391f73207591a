//go:build wasip1 && !grin_abi_v1

package pdk

import "unsafe"

//go:wasmimport grin_v2 input_read
func inputRead(ptr unsafe.Pointer, n uint32) uint32

//go:wasmimport grin_v2 output_write
func outputWrite(ptr unsafe.Pointer, n uint32)

//go:wasmimport grin_v2 error_write
func errorWrite(ptr unsafe.Pointer, n uint32)

//go:wasmimport grin_v2 log
func logWrite(level uint32, ptr unsafe.Pointer, n uint32)

//go:wasmimport grin_v2 ctx_read
func ctxRead(field uint32, ptr unsafe.Pointer, n uint32) int32

//go:wasmimport grin_v2 settings_read
func settingsRead(ptr unsafe.Pointer, n uint32) int32

//go:wasmexport grin_hook_abi_v2
func abiMarker() {}

func hostCtxRead(field int) string {
	return string(hostString(func(ptr unsafe.Pointer, n uint32) int32 { return ctxRead(uint32(field), ptr, n) }))
}

func hostSettingsRead() []byte { return hostString(settingsRead) }

// runV2 is every ABI v2 export's body: read the payload into the reused
// buffer, run the hook, answer, and yield now and then.
func runV2(name string, n, settingsVersion uint32) uint32 {
	cur.have = [fields]bool{}
	cur.settingsVersion, cur.settingsRaw = settingsVersion, hostSettingsRead
	buf := input(n)
	if n > 0 {
		hostInputRead(buf)
	}
	out, status, errMsg := handle(name, buf)
	answer(out, status, errMsg)
	maybeYield(int(n) + len(out))
	return status
}
