// Package hooks measures a hook call through grin's engine beside its
// anchors, in one run: plain wazero (the floor) and Extism's Go SDK, with
// the same Go guests doing the same work, a deadline enforced in each.
// It is a module of its own so that grin does not depend on Extism; run
// it from this directory:
//
//	for i in 1 2 3; do go test -run '^$' -bench . -benchmem; done
//
// (three passes rather than -count 3, so the runtimes interleave and a
// burst of load falls on all of them). "failed" counts healthy calls a
// deadline failed; the caller goes on with a fresh instance.
// See docs/benchmarks.md for the figures and what they mean.
package hooks

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	extism "github.com/extism/go-sdk"
	"github.com/grin-ai/grin/wasmhooks"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// timeout is the deadline every runtime enforces on every call: grin's
// default.
const timeout = wasmhooks.DefaultTimeout

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// guest builds guests/<name> (tags, if any) as hook authors do, once.
func guest(b *testing.B, name, tags string) []byte {
	b.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "grin-bench-guests-")
		if buildErr != nil {
			return
		}
		for _, g := range []struct{ name, tags string }{{"grin", ""}, {"grin", "grin_abi_v1"}, {"raw", ""}, {"extism", ""}} {
			args := []string{"build", "-buildmode=c-shared", "-o", filepath.Join(buildDir, g.name+g.tags+".wasm")}
			if g.tags != "" {
				args = append(args, "-tags", g.tags)
			}
			cmd := exec.Command("go", append(args, "./guests/"+g.name)...)
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("build %s %s: %v\n%s", g.name, g.tags, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		b.Fatal(buildErr)
	}
	wasm, err := os.ReadFile(filepath.Join(buildDir, name+tags+".wasm"))
	if err != nil {
		b.Fatal(err)
	}
	return wasm
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// The three calls: what each runtime's guest exports for them, and grin's
// hook names.
var calls = []struct {
	name, export, hook string
	payload            []byte
}{
	{"noop", "noop", "agent_fast_reply", []byte(`{}`)},
	{"echo-1KiB", "echo", "before_cat_reads_message", payload1K()},
	{"json-1KiB", "transform", "before_cat_sends_message", payload1K()},
}

func payload1K() []byte {
	b, _ := json.Marshal(map[string]string{"text": strings.Repeat("white rabbit ", 77)})
	return b // 1,020 bytes
}

// caller runs one call; each runtime below makes one. After an error it
// is ready again (on a fresh instance where the runtime needs one).
type caller func(payload []byte) error

func BenchmarkHookCall(b *testing.B) {
	ctx := context.Background()
	runtimes := []struct {
		name string
		make func(b *testing.B, export, hook string) caller
	}{
		{"grin-v2", grinCaller(ctx, "", false)},
		{"grin-v2-nodeadline", grinCaller(ctx, "", true)},
		{"grin-v1", grinCaller(ctx, "grin_abi_v1", false)},
		{"wazero", wazeroCaller(ctx, true)},
		{"wazero-nodeadline", wazeroCaller(ctx, false)},
		{"extism", extismCaller(ctx)},
	}
	for _, c := range calls {
		for _, rt := range runtimes {
			call := rt.make(b, c.export, c.hook)
			if err := call(c.payload); err != nil { // the instance is made, the guest warm
				b.Fatal(err)
			}
			b.Run(c.name+"/"+rt.name, func(b *testing.B) {
				b.ReportAllocs()
				failed := 0
				for b.Loop() {
					if err := call(c.payload); err != nil {
						// A healthy call failed: a wall-clock deadline
						// under load. Counted, not fatal.
						if failed++; failed == 1 {
							b.Logf("first failure: %v", err)
						}
					}
				}
				b.ReportMetric(float64(failed), "failed")
			})
		}
	}
}

// grinCaller calls through grin's engine as the server does: a pooled
// shared instance, Invoke with the call's context and settings.
func grinCaller(ctx context.Context, tags string, noDeadlines bool) func(b *testing.B, export, hook string) caller {
	return func(b *testing.B, export, hook string) caller {
		e, err := wasmhooks.NewEngine(ctx, wasmhooks.EngineConfig{NoDeadlines: noDeadlines, CacheDir: filepath.Join(os.TempDir(), "grin-bench-cache")})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { e.Close(ctx) })
		m, err := e.Compile(ctx, guest(b, "grin", tags))
		if err != nil {
			b.Fatal(err)
		}
		p, err := e.NewPlugin("bench", m, wasmhooks.Shared, wasmhooks.Limits{Timeout: timeout, PoolSize: 1})
		if err != nil {
			b.Fatal(err)
		}
		cc := wasmhooks.CallContext{UserID: "alice", PluginID: "bench", RequestID: "r1"}
		settings := json.RawMessage(`{}`)
		return func(payload []byte) error {
			_, err := p.Invoke(ctx, hook, cc, settings, payload)
			return err
		}
	}
}

// wazeroCaller is the floor: plain wazero, two host functions, and (with
// deadlines) close-on-context-done with a context.WithTimeout per call,
// the only way plain wazero stops a looping guest.
func wazeroCaller(ctx context.Context, deadlines bool) func(b *testing.B, export, hook string) caller {
	return func(b *testing.B, export, hook string) caller {
		rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(deadlines).
			WithCompilationCache(cache(b)))
		b.Cleanup(func() { rt.Close(ctx) })
		wasi_snapshot_preview1.MustInstantiate(ctx, rt)
		var in []byte
		i32 := api.ValueTypeI32
		_, err := rt.NewHostModuleBuilder("bench").
			NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, s []uint64) {
			k := min(int(api.DecodeU32(s[1])), len(in))
			m.Memory().Write(api.DecodeU32(s[0]), in[:k])
			s[0] = uint64(k)
		}), []api.ValueType{i32, i32}, []api.ValueType{i32}).Export("input_read").
			NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, s []uint64) {
			buf, _ := m.Memory().Read(api.DecodeU32(s[0]), api.DecodeU32(s[1]))
			sink = append([]byte(nil), buf...) // a copy, as a host keeps it
		}), []api.ValueType{i32, i32}, nil).Export("output_write").
			Instantiate(ctx)
		if err != nil {
			b.Fatal(err)
		}
		compiled, err := rt.CompileModule(ctx, guest(b, "raw", ""))
		if err != nil {
			b.Fatal(err)
		}
		instance := func() api.Function {
			mod, err := rt.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize"))
			if err != nil {
				b.Fatal(err)
			}
			return mod.ExportedFunction(export)
		}
		fn := instance()
		stack := make([]uint64, 1)
		return func(payload []byte) error {
			in = payload
			stack[0] = uint64(len(payload))
			if !deadlines {
				return fn.CallWithStack(ctx, stack)
			}
			cctx, cancel := context.WithTimeout(ctx, timeout)
			err := fn.CallWithStack(cctx, stack)
			cancel()
			if err != nil {
				fn = instance() // a deadline closes the module
			}
			return err
		}
	}
}

// extismCaller calls through Extism's Go SDK with the manifest's timeout
// (which turns on close-on-context-done and a context per call).
func extismCaller(ctx context.Context) func(b *testing.B, export, hook string) caller {
	return func(b *testing.B, export, hook string) caller {
		manifest := extism.Manifest{
			Wasm:    []extism.Wasm{extism.WasmData{Data: guest(b, "extism", "")}},
			Timeout: uint64(timeout / time.Millisecond),
		}
		cp, err := extism.NewCompiledPlugin(ctx, manifest, extism.PluginConfig{EnableWasi: true,
			RuntimeConfig: wazero.NewRuntimeConfig().WithCompilationCache(cache(b))}, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { cp.Close(ctx) })
		instance := func() *extism.Plugin {
			p, err := cp.Instance(ctx, extism.PluginInstanceConfig{ModuleConfig: wazero.NewModuleConfig()})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { p.Close(ctx) })
			return p
		}
		p := instance()
		return func(payload []byte) error {
			rc, _, err := p.CallWithContext(ctx, export, payload)
			if err == nil && rc != 0 {
				err = fmt.Errorf("%s returned %d", export, rc)
			}
			if err != nil {
				p = instance() // a deadline closes the module
			}
			return err
		}
	}
}

// sink keeps the floor's last output.
var sink []byte

var (
	cacheOnce sync.Once
	wcache    wazero.CompilationCache
)

func cache(b *testing.B) wazero.CompilationCache {
	cacheOnce.Do(func() {
		c, err := wazero.NewCompilationCacheWithDir(filepath.Join(os.TempDir(), "grin-bench-cache"))
		if err != nil {
			wcache = wazero.NewCompilationCache()
			return
		}
		wcache = c
	})
	return wcache
}

// BenchmarkDeadlineCost measures what enforcing the deadline costs the
// JSON hook, on grin and on plain wazero: the runtime with and without its
// deadline, alternating in blocks of 20 calls so that a burst of load
// falls on both. It reports each side's time per call and their ratio.
func BenchmarkDeadlineCost(b *testing.B) {
	ctx := context.Background()
	c := calls[2] // json-1KiB
	for _, pair := range []struct {
		name    string
		on, off func(b *testing.B, export, hook string) caller
	}{
		{"grin-v2", grinCaller(ctx, "", false), grinCaller(ctx, "", true)},
		{"wazero", wazeroCaller(ctx, true), wazeroCaller(ctx, false)},
	} {
		on, off := pair.on(b, c.export, c.hook), pair.off(b, c.export, c.hook)
		for _, call := range []caller{on, off} {
			if err := call(c.payload); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(c.name+"/"+pair.name, func(b *testing.B) {
			var tOn, tOff time.Duration
			n := 0
			for b.Loop() {
				for _, side := range []struct {
					call caller
					t    *time.Duration
				}{{on, &tOn}, {off, &tOff}} {
					start := time.Now()
					for range 20 {
						if err := side.call(c.payload); err != nil {
							b.Fatal(err)
						}
					}
					*side.t += time.Since(start)
				}
				n += 20
			}
			b.ReportMetric(float64(tOn)/float64(n), "ns-on/call")
			b.ReportMetric(float64(tOff)/float64(n), "ns-off/call")
			b.ReportMetric(float64(tOn)/float64(tOff), "on/off")
		})
	}
}
