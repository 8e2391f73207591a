package pluginkit

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/grin-ai/grin/platform/hooks"
	"github.com/grin-ai/grin/wasmhooks"
)

// Sandbox is the server's WebAssembly engine, with the server's limits,
// outside the server: a module checked or run here meets the same checks,
// deadline, memory cap and log limits it will meet after upload.
//
// Notes: safe for concurrent use; Close it when done.
type Sandbox struct {
	engine *wasmhooks.Engine
	logs   *logCapture
}

// NewSandbox starts an engine. cfg carries the limits (zero values are
// the server's defaults); its Logger and CacheDir are ignored: the
// plugin's log lines are captured for each run.
func NewSandbox(ctx context.Context, cfg wasmhooks.EngineConfig) (*Sandbox, error) {
	logs := &logCapture{}
	cfg.Logger, cfg.CacheDir = slog.New(logs), ""
	e, err := wasmhooks.NewEngine(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("start the WebAssembly engine: %w", err)
	}
	return &Sandbox{engine: e, logs: logs}, nil
}

// Close stops the engine and every plugin loaded in it.
func (s *Sandbox) Close(ctx context.Context) error { return s.engine.Close(ctx) }

// Loaded is a checked plugin, compiled and ready to run.
type Loaded struct {
	Manifest wasmhooks.Manifest
	// Archive is the zip POST /plugins/upload takes.
	Archive []byte
	// Hooks are the hooks the module exports.
	Hooks  []string
	box    *Sandbox
	module *wasmhooks.Module
	plugin *wasmhooks.Plugin
}

// Load zips the manifest and module and checks the archive exactly as the
// server does at upload: it reads the archive, compiles and checks the
// module, validates the manifest against it, and starts one instance.
func (s *Sandbox) Load(ctx context.Context, manifest, wasm []byte) (*Loaded, error) {
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	for _, f := range []struct {
		name string
		b    []byte
	}{{"manifest.json", manifest}, {"plugin.wasm", wasm}} {
		w, err := z.Create(f.name)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(f.b); err != nil {
			return nil, err
		}
	}
	if err := z.Close(); err != nil {
		return nil, err
	}
	return s.LoadArchive(ctx, buf.Bytes())
}

// LoadArchive checks an archive (zip or tar) as the server does at upload.
func (s *Sandbox) LoadArchive(ctx context.Context, archive []byte) (*Loaded, error) {
	man, wasm, err := wasmhooks.ReadArchive(archive)
	if err != nil {
		return nil, err
	}
	m, err := s.engine.Compile(ctx, wasm)
	if err != nil {
		return nil, err
	}
	if err := man.Validate(m.Hooks, wasmhooks.KnownHooks); err != nil {
		m.Close(ctx)
		return nil, err
	}
	if err := s.engine.CheckStart(ctx, m, man.ID); err != nil {
		m.Close(ctx)
		return nil, err
	}
	p, err := s.engine.NewPlugin(man.ID, m, man.Isolation, wasmhooks.Limits{Timeout: time.Duration(man.TimeoutMS) * time.Millisecond})
	if err != nil {
		m.Close(ctx)
		return nil, err
	}
	s.logs.take() // the start's lines belong to no run
	return &Loaded{Manifest: man, Archive: archive, Hooks: m.Hooks, box: s, module: m, plugin: p}, nil
}

// Close unloads the plugin.
func (l *Loaded) Close(ctx context.Context) {
	l.plugin.Close(ctx)
	l.module.Close(ctx)
}

// Call is one hook call.
type Call struct {
	Hook string
	// User is the user the hook runs for ("user" when empty, the
	// server's shadow user).
	User string
	// Settings are the plugin's settings (empty when nil); they are
	// checked against the manifest's schema as PUT /plugins/settings does.
	Settings map[string]any
	Payload  json.RawMessage
}

// Result is what a call did.
type Result struct {
	// Output is the payload after the hook: the new one, or the input
	// when the hook left it unchanged or failed (as the pipeline goes on).
	Output  json.RawMessage
	Changed bool
	// Err is the hook's failure (its error, a trap, the deadline); the
	// server logs it and skips the hook.
	Err  error
	Logs []LogLine
	Took time.Duration
}

// ErrCall marks a call that could not be made as asked (bad settings, a
// hook the plugin does not implement).
var ErrCall = errors.New("cannot run the hook")

// Run calls one hook in the sandbox, as the server's pipeline would.
func (l *Loaded) Run(ctx context.Context, c Call) (Result, error) {
	if !slices.ContainsFunc(l.Manifest.Hooks, func(h wasmhooks.HookSpec) bool { return h.Name == c.Hook }) {
		names := make([]string, len(l.Manifest.Hooks))
		for i, h := range l.Manifest.Hooks {
			names[i] = h.Name
		}
		return Result{}, fmt.Errorf("%w: the manifest does not list %q (it lists %v), so the server would never call it", ErrCall, c.Hook, names)
	}
	if c.User == "" {
		c.User = "user"
	}
	if c.Settings == nil {
		c.Settings = map[string]any{}
	}
	if err := l.Manifest.ValidateSettings(c.Settings); err != nil {
		return Result{}, fmt.Errorf("%w: the settings do not fit the manifest's settings_schema (the server would refuse them): %v", ErrCall, err)
	}
	if len(c.Payload) == 0 {
		c.Payload = json.RawMessage("{}")
	}
	if !json.Valid(c.Payload) {
		return Result{}, fmt.Errorf("%w: the payload is not JSON", ErrCall)
	}
	settings, err := json.Marshal(c.Settings)
	if err != nil {
		return Result{}, err
	}
	// As the server's Manager.Run calls it: a v2 module gets the payload
	// alone and reads the context and settings on request, a v1 module
	// the envelope (wasmhooks.EncodeInput).
	cc := wasmhooks.NewCallContext(hooks.Caller{UserID: c.User, RequestID: "local"}, l.Manifest.ID)
	l.box.logs.take()
	start := time.Now()
	out, err := l.plugin.Invoke(ctx, c.Hook, cc, settings, c.Payload)
	r := Result{Took: time.Since(start), Output: c.Payload, Err: err, Logs: l.box.logs.take()}
	if err == nil && out != nil {
		r.Output, r.Changed = out, true
	}
	return r, nil
}

// LogLine is one line the plugin (or the engine, about the plugin) logged.
type LogLine struct {
	Level slog.Level
	Msg   string
}

// logCapture is a slog.Handler that keeps the engine's lines for the run
// that caused them.
type logCapture struct {
	mu    sync.Mutex
	lines []LogLine
}

func (h *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (h *logCapture) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.lines = append(h.lines, LogLine{Level: r.Level, Msg: r.Message})
	h.mu.Unlock()
	return nil
}
func (h *logCapture) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logCapture) WithGroup(string) slog.Handler      { return h }

func (h *logCapture) take() []LogLine {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.lines
	h.lines = nil
	return l
}
