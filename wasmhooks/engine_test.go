package wasmhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	guestsMu  sync.Mutex
	guestsDir string
	guestsErr error
	built     = map[string]bool{}
)

// guest compiles testdata/guests/<name> with the build line hook authors
// use (an ABI v2 module), and returns the module's bytes.
func guest(t testing.TB, name string) []byte { return guestABI(t, name, 2) }

// guestABI compiles testdata/guests/<name> for ABI v1 (the kit's
// grin_abi_v1 tag) or v2, once per test run.
func guestABI(t testing.TB, name string, abi int) []byte {
	t.Helper()
	guestsMu.Lock()
	defer guestsMu.Unlock()
	if guestsDir == "" && guestsErr == nil {
		guestsDir, guestsErr = os.MkdirTemp("", "grin-guests-")
	}
	if guestsErr != nil {
		t.Fatal(guestsErr)
	}
	out := filepath.Join(guestsDir, fmt.Sprintf("%s-v%d.wasm", name, abi))
	if !built[out] {
		args := []string{"build", "-buildmode=c-shared", "-o", out}
		if abi == 1 {
			args = append(args, "-tags", "grin_abi_v1")
		}
		cmd := exec.Command("go", append(args, ".")...)
		cmd.Dir = filepath.Join("testdata/guests", name)
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build guest %s for ABI v%d: %v\n%s", name, abi, err, b)
		}
		built[out] = true
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMain(m *testing.M) {
	code := m.Run()
	if guestsDir != "" {
		os.RemoveAll(guestsDir)
	}
	os.Exit(code)
}

func newEngine(t testing.TB) *Engine {
	t.Helper()
	e, err := NewEngine(context.Background(), EngineConfig{CacheDir: filepath.Join(os.TempDir(), "grin-test-wasm-cache")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	return e
}

func load(t testing.TB, e *Engine, name string, iso Isolation, limits Limits) *Plugin {
	t.Helper()
	return loadABI(t, e, name, 2, iso, limits)
}

func loadABI(t testing.TB, e *Engine, name string, abi int, iso Isolation, limits Limits) *Plugin {
	t.Helper()
	m, err := e.Compile(context.Background(), guestABI(t, name, abi))
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.NewPlugin(name, m, iso, limits)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

func input(t testing.TB, user string, settings map[string]any, payload any) []byte {
	raw := func(v any) json.RawMessage {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b, err := json.Marshal(Input{ABI: ABIVersion, Hook: "before_cat_reads_message", Ctx: CallContext{UserID: user, PluginID: "p"}, Settings: raw(settings), Payload: raw(payload)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEchoAndTransform(t *testing.T) {
	e := newEngine(t)
	echo := load(t, e, "echo", Shared, Limits{})
	out, err := echo.Call(context.Background(), "before_cat_reads_message", "alice", input(t, "alice", nil, map[string]string{"text": "hi"}))
	if err != nil || string(out) != `{"text":"hi"}` {
		t.Fatalf("echo: %s %v", out, err)
	}
	up := load(t, e, "upper", Shared, Limits{})
	out, err = up.Call(context.Background(), "before_cat_reads_message", "alice", input(t, "alice", map[string]any{"suffix": "!"}, map[string]string{"text": "curiouser"}))
	var msg map[string]string
	json.Unmarshal(out, &msg)
	if err != nil || msg["text"] != "CURIOUSER!" || msg["seen_by"] != "alice" {
		t.Fatalf("upper: %s %v", out, err)
	}
	// A hook the plugin does not implement leaves the payload as it is.
	if out, err := up.Call(context.Background(), "fast_reply", "alice", input(t, "alice", nil, map[string]any{})); out != nil || err != nil {
		t.Errorf("unimplemented hook: %s %v", out, err)
	}
}

// TestHostileGuestsFailAlone: each hostile guest fails its own call with a
// clear error; a well-behaved plugin keeps answering, and the hostile one
// answers again with a fresh instance.
func TestHostileGuestsFailAlone(t *testing.T) {
	e := newEngine(t)
	echo := load(t, e, "echo", Shared, Limits{})
	for _, tc := range []struct {
		guest   string
		says    string
		is      error
		timeout time.Duration
	}{
		{"loop", "deadline", ErrDeadline, 200 * time.Millisecond},
		// Sleeping in WASI's poll_oneoff uses no fuel: the sleep limit stops it.
		{"sleeper", "slept past it", ErrDeadline, 50 * time.Millisecond},
		// A loop whose every turn calls the host is stopped all the same.
		{"hostloop", "deadline", ErrDeadline, 50 * time.Millisecond},
		{"bomb", "", nil, 0},
		{"trap", "", nil, 0},
		{"panic", "the Queen wants your head", ErrHookError, 0},
		// Time enough to build 8 MiB, so the output limit is what stops it.
		{"huge", "limit", ErrTooLarge, 10 * time.Second},
	} {
		for _, abi := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/v%d", tc.guest, abi), func(t *testing.T) {
				p := loadABI(t, e, tc.guest, abi, Shared, Limits{Timeout: tc.timeout})
				if p.module.ABI != abi {
					t.Fatalf("built for ABI v%d, compiled as v%d", abi, p.module.ABI)
				}
				for range 2 { // again, on a fresh instance
					_, err := p.Call(context.Background(), "before_cat_reads_message", "alice", input(t, "alice", nil, map[string]string{"text": "x"}))
					if err == nil {
						t.Fatal("a hostile guest's call succeeded")
					}
					if tc.is != nil && !errors.Is(err, tc.is) {
						t.Errorf("error %v, want %v", err, tc.is)
					}
					if !strings.Contains(err.Error(), tc.says) {
						t.Errorf("error %q does not say %q", err, tc.says)
					}
				}
				out, err := echo.Call(context.Background(), "before_cat_reads_message", "bob", input(t, "bob", nil, map[string]string{"text": "still here"}))
				if err != nil || !strings.Contains(string(out), "still here") {
					t.Errorf("the well-behaved plugin after %s: %s %v", tc.guest, out, err)
				}
			})
		}
	}
}

func TestUnknownImportRefusedAtInstall(t *testing.T) {
	e := newEngine(t)
	_, err := e.Compile(context.Background(), guest(t, "badimport"))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "env.open_socket") {
		t.Fatalf("compile: %v, want the unknown import named", err)
	}
	if _, err := e.Compile(context.Background(), []byte("not wasm")); !errors.Is(err, ErrInvalid) {
		t.Errorf("garbage: %v", err)
	}
}

func TestInputCap(t *testing.T) {
	e := newEngine(t)
	p := load(t, e, "echo", Shared, Limits{MaxInput: 1024})
	_, err := p.Call(context.Background(), "before_cat_reads_message", "a", input(t, "a", nil, strings.Repeat("x", 2048)))
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversize input: %v", err)
	}
}

// TestIsolationModes: a careless plugin keeps the previous caller in a
// global. Shared instances leak it across users; per-user and per-call
// instances do not.
func TestIsolationModes(t *testing.T) {
	e := newEngine(t)
	call := func(p *Plugin, user string) string {
		out, err := p.Call(context.Background(), "before_cat_reads_message", user, input(t, user, nil, map[string]string{}))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]string
		json.Unmarshal(out, &m)
		return m["text"]
	}
	shared := load(t, e, "global", Shared, Limits{PoolSize: 1})
	call(shared, "alice")
	if got := call(shared, "bob"); got != "previous caller: alice" {
		t.Errorf("shared: %q (expected the leak this mode allows)", got)
	}
	perUser := load(t, e, "global", PerUser, Limits{})
	call(perUser, "alice")
	if got := call(perUser, "bob"); got != "previous caller: " {
		t.Errorf("per-user: bob saw %q", got)
	}
	if got := call(perUser, "alice"); got != "previous caller: alice" {
		t.Errorf("per-user: alice's own instance should remember her: %q", got)
	}
	if n := perUser.EvictIdle(context.Background(), time.Now().Add(time.Second)); n != 2 {
		t.Errorf("evicted %d per-user pools, want 2", n)
	}
	perCall := load(t, e, "global", PerCall, Limits{})
	call(perCall, "alice")
	if got := call(perCall, "alice"); got != "previous caller: " {
		t.Errorf("per-call: %q", got)
	}
}

func TestConcurrentCalls(t *testing.T) {
	e := newEngine(t)
	p := load(t, e, "upper", Shared, Limits{})
	var wg sync.WaitGroup
	for u := range 8 {
		wg.Go(func() {
			user := fmt.Sprint("user", u)
			for range 50 {
				out, err := p.Call(context.Background(), "before_cat_reads_message", user, input(t, user, nil, map[string]string{"text": user}))
				var m map[string]string
				json.Unmarshal(out, &m)
				if err != nil || m["seen_by"] != user || m["text"] != strings.ToUpper(user) {
					t.Errorf("%s: %s %v", user, out, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestRealRandomness: fresh instances draw different random bytes.
func TestRealRandomness(t *testing.T) {
	e := newEngine(t)
	p := load(t, e, "random", PerCall, Limits{})
	seen := map[string]bool{}
	for range 3 {
		out, err := p.Call(context.Background(), "before_cat_reads_message", "alice", input(t, "alice", nil, map[string]string{}))
		if err != nil {
			t.Fatal(err)
		}
		if seen[string(out)] {
			t.Fatalf("two fresh instances drew the same bytes: %s", out)
		}
		seen[string(out)] = true
	}
}
