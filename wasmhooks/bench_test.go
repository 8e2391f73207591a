package wasmhooks

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkCall measures one pooled hook call: a no-op (the echo guest)
// and a 1 KiB JSON transform (upper), with deadlines on and off.
func BenchmarkCall(b *testing.B) {
	for _, deadlines := range []bool{true, false} {
		e, err := NewEngine(context.Background(), EngineConfig{CacheDir: filepath.Join(os.TempDir(), "grin-test-wasm-cache"), NoDeadlines: !deadlines})
		if err != nil {
			b.Fatal(err)
		}
		name := "deadline-on"
		if !deadlines {
			name = "deadline-off"
		}
		for _, g := range []string{"echo", "upper"} {
			p := load(b, e, g, Shared, Limits{})
			in := input(b, "alice", nil, map[string]string{"text": strings.Repeat("white rabbit ", 78)}) // ~1 KiB
			b.Run(g+"/"+name, func(b *testing.B) {
				b.SetBytes(int64(len(in)))
				for b.Loop() {
					if _, err := p.Call(context.Background(), "before_cat_reads_message", "alice", in); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		e.Close(context.Background())
	}
}

// BenchmarkInstall measures installing a plugin from its bytes: compile
// (from the on-disk cache after the first time) and the first instance.
func BenchmarkInstall(b *testing.B) {
	e, err := NewEngine(context.Background(), EngineConfig{CacheDir: filepath.Join(os.TempDir(), "grin-test-wasm-cache")})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(context.Background())
	wasm := guest(b, "upper")
	for b.Loop() {
		m, err := e.Compile(context.Background(), wasm)
		if err != nil {
			b.Fatal(err)
		}
		p, err := e.NewPlugin("upper", m, Shared, Limits{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Call(context.Background(), "fast_reply", "a", []byte(`{}`)); err != nil {
			b.Fatal(err)
		}
		p.Close(context.Background())
		m.Close(context.Background())
	}
}
