//go:build wasip1

package pdk

import "unsafe"

// hostCallImport and hostResultImport are imported from grin_v2, or from
// grin_v1 with -tags grin_abi_v1 (capabilities_v1.go, capabilities_v2.go).

func hostCall(name string, req []byte) []byte {
	n := hostCallImport(unsafe.Pointer(unsafe.StringData(name)), uint32(len(name)),
		unsafe.Pointer(unsafe.SliceData(req)), uint32(len(req)))
	out := make([]byte, n)
	if n > 0 {
		hostResultImport(unsafe.Pointer(unsafe.SliceData(out)), n)
	}
	return out
}
