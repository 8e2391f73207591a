package wasmhooks

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// FuelExport is the mutable i64 global that meter adds to every module:
// the steps a call has left. The host sets it before each call and reads
// it after; the watchdog sets it below zero to stop a call.
const FuelExport = "grin_fuel"

// meter rewrites a module so it can be stopped without wazero's
// close-on-context-done, which exits to Go at every loop iteration and
// starts a goroutine per call (see RATIONALE.md). It adds one exported
// mutable i64 global, the fuel, and at the start of every function body and
// of every loop it inserts
//
//	global.get $fuel; i64.const 1; i64.sub; global.set $fuel
//	global.get $fuel; i64.const 0; i64.lt_s; if; unreachable; end
//
// Every step costs one unit; a call that runs out traps, and the host,
// seeing the fuel below zero, reports a deadline. The budget is counted in
// steps, not time, so a busy machine never fails a healthy guest; and
// setting the fuel below zero from another goroutine stops a guest at its
// next step (the wall-clock backstop and the sleep limit do that).
//
// Nothing else moves: the new global comes after every existing one, so no
// index changes; only code bodies grow. DWARF sections, whose offsets would
// no longer hold, are dropped. An instruction meter cannot parse makes the
// module invalid: an unmetered module could not be stopped.
func meter(wasm []byte) ([]byte, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" || binary.LittleEndian.Uint32(wasm[4:8]) != 1 {
		return nil, errors.New("not a WebAssembly 1.0 binary")
	}
	type section struct {
		id   byte
		body []byte
	}
	var sections []section
	for r := (reader{b: wasm, i: 8}); r.i < len(r.b); {
		id := r.byte()
		n := r.u32()
		if r.err != nil || r.i+int(n) > len(r.b) {
			return nil, errors.New("a section runs past the end of the module")
		}
		body := r.b[r.i : r.i+int(n)]
		r.i += int(n)
		if id == 0 {
			nr := reader{b: body}
			name := nr.name()
			if strings.HasPrefix(name, ".debug_") {
				continue
			}
		}
		sections = append(sections, section{id, body})
	}
	// Count imported globals and existing ones: the fuel's index follows.
	var globals uint32
	for _, s := range sections {
		switch s.id {
		case 2: // import
			r := reader{b: s.body}
			for n := r.u32(); n > 0 && r.err == nil; n-- {
				r.name()
				r.name()
				switch kind := r.byte(); kind {
				case 0x00: // func
					r.u32()
				case 0x01: // table: reftype, limits
					r.byte()
					r.limits()
				case 0x02: // memory
					r.limits()
				case 0x03: // global: valtype, mut
					r.byte()
					r.byte()
					globals++
				case 0x04: // tag
					r.byte()
					r.u32()
				default:
					return nil, fmt.Errorf("import of unknown kind %#x", kind)
				}
			}
			if r.err != nil {
				return nil, fmt.Errorf("reading the imports: %w", r.err)
			}
		case 6: // global
			r := reader{b: s.body}
			globals += r.u32()
		}
	}
	fuel := globals
	check := fuelCheck(fuel)

	// order is the position of a section id in the module, for inserting
	// a missing global or export section where it belongs.
	order := map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}
	has := map[byte]bool{}
	for _, s := range sections {
		has[s.id] = true
	}
	for _, id := range []byte{6, 7} {
		if has[id] {
			continue
		}
		at := len(sections)
		for i, s := range sections {
			if s.id != 0 && order[s.id] > order[id] {
				at = i
				break
			}
		}
		sections = append(sections[:at], append([]section{{id, []byte{0}}}, sections[at:]...)...)
	}

	out := append([]byte(nil), wasm[:8]...)
	for _, s := range sections {
		body := s.body
		var err error
		switch s.id {
		case 6: // append (global i64 mut (i64.const 0))
			body, err = appendToVector(body, []byte{0x7e, 0x01, 0x42, 0x00, 0x0b})
		case 7: // append (export "grin_fuel" (global fuel))
			e := appendName(nil, FuelExport)
			e = append(e, 0x03)
			e = binary.AppendUvarint(e, uint64(fuel))
			body, err = appendToVector(body, e)
		case 10:
			body, err = meterCode(body, check)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s.id)
		out = binary.AppendUvarint(out, uint64(len(body)))
		out = append(out, body...)
	}
	return out, nil
}

// fuelCheck is the instruction sequence inserted at each step.
func fuelCheck(fuel uint32) []byte {
	var c []byte
	c = binary.AppendUvarint(append(c, 0x23), uint64(fuel)) // global.get
	c = append(c, 0x42, 0x01, 0x7d)                         // i64.const 1; i64.sub
	c = binary.AppendUvarint(append(c, 0x24), uint64(fuel)) // global.set
	c = binary.AppendUvarint(append(c, 0x23), uint64(fuel)) // global.get
	c = append(c, 0x42, 0x00, 0x53)                         // i64.const 0; i64.lt_s
	c = append(c, 0x04, 0x40, 0x00, 0x0b)                   // if; unreachable; end
	return c
}

func appendToVector(body, item []byte) ([]byte, error) {
	r := reader{b: body}
	n := r.u32()
	if r.err != nil {
		return nil, r.err
	}
	out := binary.AppendUvarint(nil, uint64(n)+1)
	out = append(out, body[r.i:]...)
	return append(out, item...), nil
}

func appendName(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// meterCode rewrites the code section: each body gets the check after its
// locals and after every loop's block type.
func meterCode(body, check []byte) ([]byte, error) {
	r := reader{b: body}
	n := r.u32()
	out := binary.AppendUvarint(nil, uint64(n))
	var fn []byte
	for i := uint32(0); i < n; i++ {
		size := r.u32()
		if r.err != nil || r.i+int(size) > len(r.b) {
			return nil, fmt.Errorf("function %d runs past the code section", i)
		}
		code := r.b[r.i : r.i+int(size)]
		r.i += int(size)
		var err error
		fn, err = meterFunc(fn[:0], code, check)
		if err != nil {
			return nil, fmt.Errorf("function %d: %w", i, err)
		}
		out = binary.AppendUvarint(out, uint64(len(fn)))
		out = append(out, fn...)
	}
	if r.err != nil {
		return nil, r.err
	}
	return out, nil
}

func meterFunc(out, code, check []byte) ([]byte, error) {
	r := reader{b: code}
	for n := r.u32(); n > 0 && r.err == nil; n-- { // locals: (count, type)*
		r.u32()
		r.byte()
	}
	if r.err != nil {
		return nil, r.err
	}
	out = append(out, code[:r.i]...)
	out = append(out, check...)
	start := r.i
	for r.i < len(r.b) && r.err == nil {
		op := r.byte()
		switch {
		case op == 0x03: // loop
			r.blockType()
			out = append(out, code[start:r.i]...)
			out = append(out, check...)
			start = r.i
		default:
			if err := r.skipImmediates(op); err != nil {
				return nil, err
			}
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return append(out, code[start:]...), nil
}

// reader reads the binary format; the first error sticks.
type reader struct {
	b   []byte
	i   int
	err error
}

var errShort = errors.New("unexpected end of the module")

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.i >= len(r.b) {
		r.err = errShort
		return 0
	}
	c := r.b[r.i]
	r.i++
	return c
}

// leb skips one LEB128 number of at most max bytes and returns its
// unsigned value (meaningful for u32s).
func (r *reader) leb(max int) uint64 {
	var v uint64
	for k := 0; k < max; k++ {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= uint64(c&0x7f) << (7 * k)
		if c&0x80 == 0 {
			return v
		}
	}
	r.err = errors.New("a number is longer than its type allows")
	return 0
}

func (r *reader) u32() uint32 { return uint32(r.leb(5)) }

func (r *reader) skip(n int) {
	if r.err == nil && r.i+n > len(r.b) {
		r.err = errShort
		return
	}
	r.i += n
}

func (r *reader) name() string {
	n := int(r.u32())
	if r.err != nil || r.i+n > len(r.b) {
		r.err = errShort
		return ""
	}
	s := string(r.b[r.i : r.i+n])
	r.i += n
	return s
}

func (r *reader) limits() {
	flags := r.byte()
	r.leb(10)
	if flags&1 != 0 {
		r.leb(10)
	}
}

// blockType skips 0x40, a value type, or a type index (s33).
func (r *reader) blockType() {
	if r.err != nil || r.i >= len(r.b) {
		r.err = errShort
		return
	}
	switch r.b[r.i] {
	case 0x40, 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
		r.i++
	default:
		r.leb(5)
	}
}

func (r *reader) memarg() {
	align := r.u32()
	if align&0x40 != 0 { // multi-memory: a memory index follows
		r.u32()
	}
	r.leb(10)
}

// skipImmediates skips what follows op, for every instruction wazero
// compiles (core 2.0, threads, tail calls, exceptions).
func (r *reader) skipImmediates(op byte) error {
	switch {
	case op == 0x02 || op == 0x04 || op == 0x06: // block, if, try
		r.blockType()
	case op == 0x07 || op == 0x08 || op == 0x09 || op == 0x18: // catch, throw, rethrow, delegate
		r.u32()
	case op == 0x0c || op == 0x0d: // br, br_if
		r.u32()
	case op == 0x0e: // br_table
		for n := r.u32(); n > 0 && r.err == nil; n-- {
			r.u32()
		}
		r.u32()
	case op == 0x10 || op == 0x12 || op == 0x14 || op == 0x15: // call, return_call, call_ref, return_call_ref
		r.u32()
	case op == 0x11 || op == 0x13: // call_indirect, return_call_indirect
		r.u32()
		r.u32()
	case op == 0x1c: // select t*
		for n := r.u32(); n > 0 && r.err == nil; n-- {
			r.byte()
		}
	case op == 0x1f: // try_table: block type, catch clauses
		r.blockType()
		for n := r.u32(); n > 0 && r.err == nil; n-- {
			switch r.byte() {
			case 0x00, 0x01:
				r.u32()
				r.u32()
			case 0x02, 0x03:
				r.u32()
			default:
				return fmt.Errorf("unknown catch clause in try_table")
			}
		}
	case op >= 0x20 && op <= 0x26: // locals, globals, table.get/set
		r.u32()
	case op >= 0x28 && op <= 0x3e: // loads and stores
		r.memarg()
	case op == 0x3f || op == 0x40: // memory.size, memory.grow
		r.u32()
	case op == 0x41:
		r.leb(5)
	case op == 0x42:
		r.leb(10)
	case op == 0x43:
		r.skip(4)
	case op == 0x44:
		r.skip(8)
	case op == 0xd0: // ref.null heaptype
		r.leb(5)
	case op == 0xd2: // ref.func
		r.u32()
	case op == 0xfc:
		switch sub := r.u32(); {
		case sub <= 7: // saturating truncations
		case sub == 8: // memory.init data mem
			r.u32()
			r.u32()
		case sub == 9, sub == 11, sub == 13, sub == 15, sub == 16, sub == 17:
			r.u32()
		case sub == 10, sub == 12, sub == 14:
			r.u32()
			r.u32()
		default:
			return fmt.Errorf("unknown instruction 0xfc %d", sub)
		}
	case op == 0xfd: // SIMD
		switch sub := r.u32(); {
		case sub <= 11 || sub == 92 || sub == 93:
			r.memarg()
		case sub == 12 || sub == 13:
			r.skip(16)
		case sub >= 21 && sub <= 34:
			r.skip(1)
		case sub >= 84 && sub <= 91:
			r.memarg()
			r.skip(1)
		}
	case op == 0xfe: // threads
		if sub := r.u32(); sub == 0x03 {
			r.skip(1)
		} else {
			r.memarg()
		}
	case op <= 0x01, op == 0x05, op == 0x0a, op == 0x0b, op == 0x0f, op == 0x19, op == 0x1a, op == 0x1b,
		op >= 0x45 && op <= 0xc4, op == 0xd1:
		// no immediates
	default:
		return fmt.Errorf("unknown instruction %#x", op)
	}
	return r.err
}
