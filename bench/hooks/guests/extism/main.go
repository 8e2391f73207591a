// Guest extism is the benchmark's guest for Extism, written against
// Extism's kernel imports as its Go PDK (github.com/extism/go-pdk, not on
// the module proxy) does: input read 8 bytes per host call, output
// allocated in Extism's memory and stored 8 bytes per call.
package main

import (
	"encoding/binary"
	"runtime"

	"github.com/grin-ai/grin/bench/hooks/guests/work"
)

//go:wasmimport extism:host/env input_length
func inputLength() uint64

//go:wasmimport extism:host/env input_load_u8
func inputLoadU8(uint64) uint32

//go:wasmimport extism:host/env input_load_u64
func inputLoadU64(uint64) uint64

//go:wasmimport extism:host/env alloc
func alloc(uint64) uint64

//go:wasmimport extism:host/env store_u8
func storeU8(uint64, uint32)

//go:wasmimport extism:host/env store_u64
func storeU64(uint64, uint64)

//go:wasmimport extism:host/env output_set
func outputSet(uint64, uint64)

var calls int

// input is go-pdk's Input.
func input() []byte {
	n := int(inputLength())
	buf := make([]byte, n)
	chunks := n >> 3
	for i := 0; i < chunks; i++ {
		binary.LittleEndian.PutUint64(buf[i<<3:], inputLoadU64(uint64(i<<3)))
	}
	for i := chunks << 3; i < n; i++ {
		buf[i] = byte(inputLoadU8(uint64(i)))
	}
	return buf
}

// output is go-pdk's Output.
func output(b []byte) {
	off := alloc(uint64(len(b)))
	chunks := len(b) >> 3
	for i := 0; i < chunks; i++ {
		storeU64(off+uint64(i<<3), binary.LittleEndian.Uint64(b[i<<3:]))
	}
	for i := chunks << 3; i < len(b); i++ {
		storeU8(off+uint64(i), uint32(b[i]))
	}
	outputSet(off, uint64(len(b)))
}

func yield() {
	if calls++; calls%64 == 0 {
		runtime.Gosched()
	}
}

//go:wasmexport noop
func noop() int32 { return 0 }

//go:wasmexport echo
func echo() int32 {
	output(input())
	yield()
	return 0
}

//go:wasmexport transform
func transform() int32 {
	out, err := work.Transform(input())
	yield()
	if err != nil {
		return 1
	}
	output(out)
	return 0
}

func main() {}
