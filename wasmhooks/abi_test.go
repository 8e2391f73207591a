package wasmhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestABIv1ModulesStillServed: a plugin written from ABI v1's
// documentation without the kit, and the kit's own v1 build, answer as
// they did, through the envelope call and through Invoke.
func TestABIv1ModulesStillServed(t *testing.T) {
	e := newEngine(t)
	raw := loadABI(t, e, "rawv1", 1, Shared, Limits{})
	if raw.module.ABI != 1 {
		t.Fatalf("rawv1 compiled as ABI v%d", raw.module.ABI)
	}
	want := `{"abi":1,"hook":"before_cat_reads_message","seen_by":"alice","text":"hi"}`
	out, err := raw.Call(context.Background(), "before_cat_reads_message", "alice", input(t, "alice", nil, map[string]string{"text": "hi"}))
	if err != nil || string(out) != want {
		t.Errorf("envelope call: %s %v, want %s", out, err, want)
	}
	out, err = raw.Invoke(context.Background(), "before_cat_reads_message", CallContext{UserID: "alice", PluginID: "rawv1"}, nil, json.RawMessage(`{"text":"hi"}`))
	if err != nil || string(out) != want {
		t.Errorf("Invoke: %s %v, want %s", out, err, want)
	}
	for _, abi := range []int{1, 2} {
		up := loadABI(t, e, "upper", abi, Shared, Limits{})
		out, err := up.Invoke(context.Background(), "before_cat_reads_message", CallContext{UserID: "alice"}, json.RawMessage(`{"suffix":"!"}`), json.RawMessage(`{"text":"curiouser"}`))
		var msg map[string]string
		json.Unmarshal(out, &msg)
		if err != nil || msg["text"] != "CURIOUSER!" || msg["seen_by"] != "alice" {
			t.Errorf("upper, ABI v%d: %s %v", abi, out, err)
		}
	}
}

// TestV2ContextAndSettings: a v2 hook reads every field of its call's
// context from the host, and the kit decodes the settings again only when
// they changed.
func TestV2ContextAndSettings(t *testing.T) {
	e := newEngine(t)
	p := load(t, e, "ctxprobe", Shared, Limits{PoolSize: 1})
	call := func(settings string) map[string]any {
		t.Helper()
		cc := CallContext{UserID: "u-42", Username: "alice", PluginID: "ctxprobe", RequestID: "req-7"}
		out, err := p.Invoke(context.Background(), "before_cat_reads_message", cc, json.RawMessage(settings), json.RawMessage(`{"text":"hi"}`))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		return m
	}
	first := call(`{"suffix":"!"}`)
	for k, want := range map[string]any{"hook": "before_cat_reads_message", "user": "u-42", "username": "alice",
		"plugin": "ctxprobe", "request": "req-7", "suffix": "!", "decodes": 1.0} {
		if first[k] != want {
			t.Errorf("%s = %v, want %v", k, first[k], want)
		}
	}
	if p, _ := first["payload"].(map[string]any); p["text"] != "hi" {
		t.Errorf("payload %v", first["payload"])
	}
	call(`{"suffix":"!"}`)
	if m := call(`{"suffix":"!"}`); m["decodes"] != 1.0 {
		t.Errorf("unchanged settings decoded %v times, want once", m["decodes"])
	}
	if m := call(`{"suffix":"?"}`); m["decodes"] != 2.0 || m["suffix"] != "?" {
		t.Errorf("changed settings: decodes %v, suffix %v", m["decodes"], m["suffix"])
	}
}

// TestNoDeadlinesMeansNone: with deadlines off nothing stops a call, not
// even a sleep far past the timeout; with them on, the same call is
// stopped.
func TestNoDeadlinesMeansNone(t *testing.T) {
	in := input(t, "alice", nil, map[string]string{"text": "x"})
	for _, off := range []bool{false, true} {
		e, err := NewEngine(context.Background(), EngineConfig{CacheDir: filepath.Join(os.TempDir(), "grin-test-wasm-cache"), NoDeadlines: off})
		if err != nil {
			t.Fatal(err)
		}
		p := load(t, e, "slow", Shared, Limits{Timeout: time.Millisecond}) // the guest sleeps 30 ms
		_, err = p.Call(context.Background(), "before_cat_reads_message", "alice", in)
		if off && err != nil {
			t.Errorf("deadlines off: %v", err)
		}
		if !off && !errors.Is(err, ErrDeadline) {
			t.Errorf("deadlines on: %v, want %v", err, ErrDeadline)
		}
		p.Close(context.Background())
		e.Close(context.Background())
	}
}

// slowHandler is a log handler that takes its time: the host is busy
// while the guest waits in a host function.
type slowHandler struct{ slog.Handler }

func (slowHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h slowHandler) Handle(ctx context.Context, r slog.Record) error {
	time.Sleep(40 * time.Millisecond)
	return nil
}

// TestBusyHostDoesNotFailHealthyGuest: a call's budget is counted in the
// guest's steps, not in wall-clock time, so a guest whose call takes far
// longer than its timeout because the host (or the machine) is slow is not
// failed. Here each of three log lines takes the host 40 ms; the timeout
// is 5 ms.
func TestBusyHostDoesNotFailHealthyGuest(t *testing.T) {
	e, err := NewEngine(context.Background(), EngineConfig{CacheDir: filepath.Join(os.TempDir(), "grin-test-wasm-cache"),
		Logger: slog.New(slowHandler{slog.DiscardHandler})})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	p := load(t, e, "flood", Shared, Limits{Timeout: 5 * time.Millisecond})
	out, err := p.Invoke(context.Background(), "before_cat_reads_message", CallContext{UserID: "alice"},
		json.RawMessage(`{"lines":3,"bytes":10}`), json.RawMessage(`{}`))
	if err != nil || !strings.Contains(string(out), "flooded") {
		t.Errorf("a healthy guest on a busy host: %s %v", out, err)
	}
	// But a call that is still running at the backstop (here 80 lines,
	// 3.2 s, against 20 × 5 ms or at least 2 s) is stopped: this is what
	// stops a guest stuck where no step is counted.
	if testing.Short() {
		return
	}
	_, err = p.Invoke(context.Background(), "before_cat_reads_message", CallContext{UserID: "alice"},
		json.RawMessage(`{"lines":80,"bytes":10}`), json.RawMessage(`{}`))
	if !errors.Is(err, ErrDeadline) || !strings.Contains(err.Error(), "still ran") {
		t.Errorf("a call past its backstop: %v, want %v (still ran)", err, ErrDeadline)
	}
}

// TestManyCallsKeepMemoryFlat: the kit yields now and then (not on every
// call), which is enough for a hook that allocates to run 200,000 times
// without its instance's memory running away, deadlines on. (Yielding on
// no call, a Go guest ran out of 64 MiB after about 47,000 such calls.)
func TestManyCallsKeepMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("260,000 calls")
	}
	e := newEngine(t)
	for _, tc := range []struct{ abi, calls int }{{2, 200_000}, {1, 60_000}} {
		t.Run(fmt.Sprintf("v%d", tc.abi), func(t *testing.T) {
			p := loadABI(t, e, "upper", tc.abi, Shared, Limits{PoolSize: 1})
			payload := json.RawMessage(`{"text":"` + strings.Repeat("rabbit ", 100) + `"}`)
			var warm uint32
			for i := range tc.calls {
				if _, err := p.Invoke(context.Background(), "before_cat_reads_message", CallContext{UserID: "alice"}, nil, payload); err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
				if i == 10_000 {
					warm = p.memorySize()
				}
			}
			// The Go heap may settle a page or two higher; a leak grows
			// by megabytes every few thousand calls.
			if end := p.memorySize(); end > 2*warm {
				t.Errorf("the instance's memory grew from %d KiB after 10,000 calls to %d KiB after %d", warm>>10, end>>10, tc.calls)
			} else {
				t.Logf("memory: %d KiB after 10,000 calls, %d KiB after %d", warm>>10, end>>10, tc.calls)
			}
		})
	}
}

// memorySize is the linear memory of the shared pool's idle instance, in
// bytes (0 when there is none): for tests.
func (p *Plugin) memorySize() uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pl := p.pools[""]; pl != nil && len(pl.idle) > 0 {
		return pl.idle[0].mod.Memory().Size()
	}
	return 0
}
