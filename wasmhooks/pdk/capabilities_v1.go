//go:build wasip1 && grin_abi_v1

package pdk

import "unsafe"

//go:wasmimport grin_v1 host_call
func hostCallImport(name unsafe.Pointer, nameLen uint32, req unsafe.Pointer, reqLen uint32) uint32

//go:wasmimport grin_v1 host_result
func hostResultImport(ptr unsafe.Pointer, n uint32) uint32
