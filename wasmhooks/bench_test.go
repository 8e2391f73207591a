package wasmhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkCall measures one pooled hook call as the manager makes it
// (Invoke): a no-op (unchanged, tiny payload), an echo of 1 KiB and a
// 1 KiB JSON transform (upper), on ABI v2 and v1 guests, with deadlines on
// and off. The anchors (raw wazero, Extism) are in bench/hooks.
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
		for _, abi := range []int{2, 1} {
			for _, g := range []string{"noop", "echo", "upper"} {
				p := loadABI(b, e, g, abi, Shared, Limits{})
				payload := json.RawMessage(`{"text":"` + strings.Repeat("white rabbit ", 78) + `"}`) // ~1 KiB
				if g == "noop" {
					payload = json.RawMessage(`{}`)
				}
				cc := CallContext{UserID: "alice", PluginID: g}
				if _, err := p.Invoke(context.Background(), "before_cat_reads_message", cc, nil, payload); err != nil {
					b.Fatal(err) // and the instance is made before timing
				}
				b.Run(fmt.Sprintf("%s/v%d/%s", g, abi, name), func(b *testing.B) {
					b.SetBytes(int64(len(payload)))
					for b.Loop() {
						if _, err := p.Invoke(context.Background(), "before_cat_reads_message", cc, nil, payload); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
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

// BenchmarkIsolation measures one call in each isolation mode: pooled
// (shared), a user's first call (per-user, a fresh instance), and per-call.
func BenchmarkIsolation(b *testing.B) {
	e, err := NewEngine(context.Background(), EngineConfig{CacheDir: filepath.Join(os.TempDir(), "grin-test-wasm-cache")})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(context.Background())
	in := input(b, "alice", nil, map[string]string{"text": "hello"})
	for _, iso := range []Isolation{Shared, PerUser, PerCall} {
		p := load(b, e, "echo", iso, Limits{})
		b.Run(string(iso), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				user := "alice"
				if iso == PerUser {
					user = fmt.Sprint("user", i) // every call a new user's first
				}
				if _, err := p.Call(context.Background(), "before_cat_reads_message", user, in); err != nil {
					b.Fatal(err)
				}
			}
		})
		p.Close(context.Background())
	}
}
