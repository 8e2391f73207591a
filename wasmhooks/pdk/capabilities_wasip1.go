//go:build wasip1

package pdk

import "unsafe"

//go:wasmimport grin_v1 host_call
func hostCallImport(name unsafe.Pointer, nameLen uint32, req unsafe.Pointer, reqLen uint32) uint32

//go:wasmimport grin_v1 host_result
func hostResultImport(ptr unsafe.Pointer, n uint32) uint32

func hostCall(name string, req []byte) []byte {
	n := hostCallImport(unsafe.Pointer(unsafe.StringData(name)), uint32(len(name)),
		unsafe.Pointer(unsafe.SliceData(req)), uint32(len(req)))
	out := make([]byte, n)
	if n > 0 {
		hostResultImport(unsafe.Pointer(unsafe.SliceData(out)), n)
	}
	return out
}
