// Guest raw is the benchmark's floor: the least a Go guest can do on
// plain wazero. Its host module "bench" has input_read and output_write;
// it reuses its input buffer and yields every 64 calls, as grin's kit.
package main

import (
	"runtime"
	"unsafe"

	"github.com/grin-ai/grin/bench/hooks/guests/work"
)

//go:wasmimport bench input_read
func inputRead(ptr unsafe.Pointer, n uint32) uint32

//go:wasmimport bench output_write
func outputWrite(ptr unsafe.Pointer, n uint32)

var (
	buf   []byte
	calls int
)

func input(n uint32) []byte {
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	b := buf[:n]
	inputRead(unsafe.Pointer(unsafe.SliceData(b)), n)
	return b
}

func output(b []byte) { outputWrite(unsafe.Pointer(unsafe.SliceData(b)), uint32(len(b))) }

func yield() {
	if calls++; calls%64 == 0 {
		runtime.Gosched()
	}
}

//go:wasmexport noop
func noop(n uint32) uint32 { return 2 }

//go:wasmexport echo
func echo(n uint32) uint32 {
	output(input(n))
	yield()
	return 0
}

//go:wasmexport transform
func transform(n uint32) uint32 {
	out, err := work.Transform(input(n))
	yield()
	if err != nil {
		return 1
	}
	output(out)
	return 0
}

func main() {}
