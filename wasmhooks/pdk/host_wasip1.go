//go:build wasip1

package pdk

import "unsafe"

// The wrappers over the ABI's imports (host_v1.go or host_v2.go declares
// them, from grin_v1 or grin_v2).

func hostInputRead(buf []byte) { inputRead(unsafe.Pointer(unsafe.SliceData(buf)), uint32(len(buf))) }

func hostOutputWrite(b []byte) {
	outputWrite(unsafe.Pointer(unsafe.SliceData(b)), uint32(len(b)))
}

func hostErrorWrite(s string) {
	errorWrite(unsafe.Pointer(unsafe.StringData(s)), uint32(len(s)))
}

func hostLog(level int, s string) {
	logWrite(uint32(level), unsafe.Pointer(unsafe.StringData(s)), uint32(len(s)))
}

// hostString reads a value of unknown length from a host function that
// copies at most len bytes and returns the full length.
func hostString(read func(ptr unsafe.Pointer, n uint32) int32) []byte {
	var small [64]byte
	n := read(unsafe.Pointer(&small[0]), uint32(len(small)))
	if n <= 0 {
		return nil
	}
	if int(n) <= len(small) {
		return append([]byte(nil), small[:n]...)
	}
	buf := make([]byte, n)
	read(unsafe.Pointer(unsafe.SliceData(buf)), uint32(n))
	return buf
}

// answer writes the result of a call back to the host.
func answer(out []byte, status uint32, errMsg string) {
	switch status {
	case 0:
		hostOutputWrite(out)
	case 1:
		hostErrorWrite(errMsg)
	}
}
