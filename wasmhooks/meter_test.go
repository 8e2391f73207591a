package wasmhooks

import (
	"context"
	"errors"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// spinModule is, by hand, (module (func $spin (loop (br 0))) (func $once
// nop) (export "spin" (func $spin)) (export "once" (func $once))): no
// globals, no memory, no imports, so meter must add the global section.
var spinModule = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
	0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type: () -> ()
	0x03, 0x03, 0x02, 0x00, 0x00, // two functions of type 0
	0x07, 0x0f, 0x02, 0x04, 's', 'p', 'i', 'n', 0x00, 0x00, 0x04, 'o', 'n', 'c', 'e', 0x00, 0x01,
	0x0a, 0x0d, 0x02,
	0x07, 0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b, // loop br 0 end end
	0x03, 0x00, 0x01, 0x0b, // nop end
}

// TestMeterStopsWhatItCounts: the metered module spends one step per
// function entry and per loop turn, traps when the fuel runs out, and
// stops at once when the fuel is set below zero.
func TestMeterStopsWhatItCounts(t *testing.T) {
	ctx := context.Background()
	metered, err := meter(spinModule)
	if err != nil {
		t.Fatal(err)
	}
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	mod, err := rt.Instantiate(ctx, metered)
	if err != nil {
		t.Fatalf("the metered module does not instantiate: %v", err)
	}
	fuel, ok := mod.ExportedGlobal(FuelExport).(api.MutableGlobal)
	if !ok {
		t.Fatal("no exported mutable fuel global")
	}
	once, spin := mod.ExportedFunction("once"), mod.ExportedFunction("spin")
	fuel.Set(1)
	if _, err := once.Call(ctx); err != nil || fuel.Get() != 0 {
		t.Errorf("one step with one unit: %v, fuel left %d", err, int64(fuel.Get()))
	}
	if _, err := once.Call(ctx); err == nil {
		t.Error("a step with no fuel left ran")
	}
	fuel.Set(1000)
	if _, err := spin.Call(ctx); err == nil || int64(fuel.Get()) >= 0 {
		t.Errorf("an endless loop with 1,000 steps: %v, fuel %d", err, int64(fuel.Get()))
	}
	fuel.Set(uint64(outOfFuel & (1<<64 - 1)))
	if _, err := spin.Call(ctx); err == nil {
		t.Error("a call with the fuel below zero ran")
	}
}

func TestMeterRefusesWhatItCannotRead(t *testing.T) {
	for name, wasm := range map[string][]byte{
		"not wasm":       []byte("not wasm at all"),
		"cut short":      spinModule[:len(spinModule)-3],
		"unknown opcode": append(append([]byte{}, spinModule[:len(spinModule)-4]...), 0x03, 0x00, 0xff, 0x0b),
	} {
		if _, err := meter(wasm); err == nil {
			t.Errorf("%s: metered", name)
		}
	}
	if _, err := newEngine(t).Compile(context.Background(), []byte("not wasm")); !errors.Is(err, ErrInvalid) {
		t.Errorf("garbage: %v, want %v", err, ErrInvalid)
	}
}
