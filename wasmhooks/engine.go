package wasmhooks

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Limits of an instance, unless a plugin's manifest or the administrator
// says otherwise.
const (
	DefaultTimeout   = 100 * time.Millisecond
	DefaultMemoryMiB = 64
	DefaultMaxInput  = 1 << 20
	DefaultMaxOutput = 1 << 20
	// DefaultInitTimeout bounds a module's initialisation (_initialize:
	// Go's package init functions), at upload and for every instance.
	DefaultInitTimeout = 2 * time.Second
	// DefaultInitBackoff is the first wait after an instance could not be
	// made; it doubles with every failure in a row, up to
	// DefaultInitBackoffMax.
	DefaultInitBackoff    = time.Second
	DefaultInitBackoffMax = 5 * time.Minute
	// DefaultInitFailures instance failures in a row disable a plugin.
	DefaultInitFailures = 5
	// DefaultLogRate and DefaultLogBurst bound each plugin's log lines
	// (a token bucket); DefaultLogLineBytes caps one line.
	DefaultLogRate      = 20
	DefaultLogBurst     = 100
	DefaultLogLineBytes = 4096
)

// Errors of a call.
var (
	ErrDeadline  = errors.New("the hook ran past its deadline")
	ErrTooLarge  = errors.New("too large")
	ErrHookError = errors.New("the hook reported an error")
	ErrInvalid   = errors.New("invalid module")
	// ErrInit marks an instance that could not be made: the module's
	// initialisation failed (a trap, an exit) or ran past its deadline.
	ErrInit = errors.New("the module could not be started")
	// ErrBackingOff is a call skipped because the plugin's last instance
	// failed to start and its wait before the next try is not over.
	ErrBackingOff = errors.New("the plugin is waiting before trying to start again")
)

// Engine compiles modules and runs their instances.
//
// Notes: safe for concurrent use. One wazero runtime serves every plugin;
// modules are compiled once (and cached on disk), instances are cheap to
// call and costly to make (milliseconds), so plugins pool them.
//
// Deadlines are kept by one watchdog goroutine instead of a timer and a
// context per call: each instance has one cancellable context for its
// whole life, and the watchdog cancels it when a call overruns; wazero then
// closes the instance, which stops even a guest that never calls out.
type Engine struct {
	rt     wazero.Runtime
	logger *slog.Logger
	cfg    EngineConfig // with defaults filled in

	logMu sync.Mutex
	logs  map[string]*logLimiter // by plugin id, so upgrades keep the bucket

	mu       sync.Mutex
	inflight map[*instance]time.Time // deadline of each running call
	stop     context.CancelFunc

	caps atomic.Pointer[capabilities] // host capabilities (capabilities.go); nil: none
}

// EngineConfig configures an Engine.
type EngineConfig struct {
	// CacheDir keeps compiled code across restarts (none when empty).
	CacheDir string
	// MemoryMiB caps every instance's memory (default 64).
	MemoryMiB int
	// NoDeadlines turns off deadline enforcement: a looping guest then
	// stalls its caller for ever. Only for measuring what deadlines cost.
	NoDeadlines bool
	Logger      *slog.Logger
	// InitTimeout bounds a module's initialisation (default 2s).
	InitTimeout time.Duration
	// InitBackoff is the first wait after an instance failed to start
	// (default 1s), doubling up to InitBackoffMax (default 5 min);
	// InitFailures failures in a row disable the plugin (default 5).
	InitBackoff    time.Duration
	InitBackoffMax time.Duration
	InitFailures   int
	// LogRate (lines per second) and LogBurst bound each plugin's log
	// lines, LogLineBytes one line's length (defaults 20, 100, 4096).
	LogRate      float64
	LogBurst     int
	LogLineBytes int
	// LogEntries is how many recent log lines and failures are kept per
	// plugin for GET /plugins/logs/{id} (default 200; negative: none).
	LogEntries int
}

func (c *EngineConfig) defaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MemoryMiB <= 0 {
		c.MemoryMiB = DefaultMemoryMiB
	}
	if c.InitTimeout <= 0 {
		c.InitTimeout = DefaultInitTimeout
	}
	if c.InitBackoff <= 0 {
		c.InitBackoff = DefaultInitBackoff
	}
	if c.InitBackoffMax <= 0 {
		c.InitBackoffMax = max(DefaultInitBackoffMax, c.InitBackoff)
	}
	if c.InitFailures <= 0 {
		c.InitFailures = DefaultInitFailures
	}
	if c.LogRate <= 0 {
		c.LogRate = DefaultLogRate
	}
	if c.LogBurst <= 0 {
		c.LogBurst = DefaultLogBurst
	}
	if c.LogLineBytes <= 0 {
		c.LogLineBytes = DefaultLogLineBytes
	}
	switch {
	case c.LogEntries == 0:
		c.LogEntries = DefaultLogEntries
	case c.LogEntries < 0:
		c.LogEntries = 0
	}
}

// NewEngine returns an engine.
func NewEngine(ctx context.Context, c EngineConfig) (*Engine, error) {
	c.defaults()
	logger, memoryMiB := c.Logger, c.MemoryMiB
	cfg := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(!c.NoDeadlines).
		WithMemoryLimitPages(uint32(memoryMiB * 16)) // 64 KiB pages
	if c.CacheDir != "" {
		cache, err := wazero.NewCompilationCacheWithDir(c.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("open the compilation cache in %s: %w", c.CacheDir, err)
		}
		cfg = cfg.WithCompilationCache(cache)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		rt.Close(ctx)
		return nil, fmt.Errorf("provide WASI: %w", err)
	}
	e := &Engine{rt: rt, logger: logger, cfg: c, inflight: map[*instance]time.Time{}, logs: map[string]*logLimiter{}}
	if err := e.hostModule(ctx); err != nil {
		rt.Close(ctx)
		return nil, err
	}
	wctx, cancel := context.WithCancel(ctx)
	e.stop = cancel
	go e.watchdog(wctx)
	return e, nil
}

// Close releases every module and instance.
func (e *Engine) Close(ctx context.Context) error {
	e.stop()
	return e.rt.Close(ctx)
}

// watchdog cancels the instances whose call ran past its deadline.
func (e *Engine) watchdog(ctx context.Context) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			e.mu.Lock()
			for in, deadline := range e.inflight {
				if now.After(deadline) {
					in.overran = true
					in.cancel()
					delete(e.inflight, in)
				}
			}
			e.mu.Unlock()
		}
	}
}

// callState is what the host functions of one call read and write.
type callState struct {
	input     []byte
	output    []byte
	errMsg    string
	maxOutput int
	overflow  bool
	plugin    string
	logs      *logLimiter
	// host is the hook call's request, for host capabilities; hostResult
	// the last host_call's answer (capabilities.go).
	host       *hostCall
	hostResult []byte
	// hook and user name the call in progress, for the plugin's log
	// entries; empty during initialisation.
	hook, user string
}

type stateKey struct{}

// hostModule defines grin_v1. Functions are registered with
// WithGoModuleFunction: reflection-based ones cost ten times as much.
func (e *Engine) hostModule(ctx context.Context) error {
	i32 := api.ValueTypeI32
	state := func(ctx context.Context) *callState {
		in, _ := ctx.Value(stateKey{}).(*instance)
		if in == nil {
			return nil
		}
		return in.call
	}
	b := e.rt.NewHostModuleBuilder(HostModule)
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
		ptr, n := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
		s := state(ctx)
		if s == nil {
			stack[0] = 0
			return
		}
		k := min(int(n), len(s.input))
		if !mod.Memory().Write(ptr, s.input[:k]) {
			panic("input_read: the buffer is outside the guest's memory")
		}
		stack[0] = api.EncodeU32(uint32(k))
	}), []api.ValueType{i32, i32}, []api.ValueType{i32}).Export("input_read")
	copyOut := func(dst func(s *callState, b []byte)) api.GoModuleFunc {
		return func(ctx context.Context, mod api.Module, stack []uint64) {
			ptr, n := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
			s := state(ctx)
			if s == nil {
				return
			}
			if int(n) > s.maxOutput {
				s.overflow = true
				panic(fmt.Sprintf("the hook wrote %d bytes, more than the limit of %d", n, s.maxOutput))
			}
			b, ok := mod.Memory().Read(ptr, n)
			if !ok {
				panic("the buffer is outside the guest's memory")
			}
			dst(s, append([]byte(nil), b...))
		}
	}
	b.NewFunctionBuilder().WithGoModuleFunction(copyOut(func(s *callState, b []byte) { s.output = b }),
		[]api.ValueType{i32, i32}, nil).Export("output_write")
	b.NewFunctionBuilder().WithGoModuleFunction(copyOut(func(s *callState, b []byte) { s.errMsg = string(b) }),
		[]api.ValueType{i32, i32}, nil).Export("error_write")
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
		level, ptr, n := int32(api.DecodeI32(stack[0])), api.DecodeU32(stack[1]), api.DecodeU32(stack[2])
		s := state(ctx)
		if s == nil {
			return
		}
		e.guestLog(ctx, mod, s, level, ptr, n)
	}), []api.ValueType{i32, i32, i32}, nil).Export("log")
	e.capabilityFunctions(b, state)
	if _, err := b.Instantiate(ctx); err != nil {
		return fmt.Errorf("provide %s: %w", HostModule, err)
	}
	return nil
}

// hostSignatures are the imports grin_v1 offers, as "params->results".
var hostSignatures = map[string]string{
	"input_read":   "i32,i32->i32",
	"output_write": "i32,i32->",
	"error_write":  "i32,i32->",
	"log":          "i32,i32,i32->",
	"host_call":    "i32,i32,i32,i32->i32", // capabilities.go
	"host_result":  "i32,i32->i32",
}

// Module is a compiled, checked plugin module.
type Module struct {
	compiled wazero.CompiledModule
	// Hooks are the hook names the module exports.
	Hooks   []string
	hasInit bool
}

// Compile compiles and checks a module: the ABI marker, every export
// hook's signature, and every import, which must be grin_v1's or WASI's.
// Problems are reported together, naming the offending imports.
func (e *Engine) Compile(ctx context.Context, wasm []byte) (*Module, error) {
	cm, err := e.rt.CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var problems []string
	wasi := map[string]bool{}
	for _, f := range wasiFunctions {
		wasi[f] = true
	}
	for _, imp := range cm.ImportedFunctions() {
		mod, name, _ := imp.Import()
		switch mod {
		case HostModule:
			want, ok := hostSignatures[name]
			if !ok {
				problems = append(problems, fmt.Sprintf("imports %s.%s, which grin does not provide (it provides %s)", mod, name, strings.Join(slices.Sorted(maps.Keys(hostSignatures)), ", ")))
			} else if got := signature(imp); got != want {
				problems = append(problems, fmt.Sprintf("imports %s.%s as (%s), but it is (%s)", mod, name, got, want))
			}
		case wasi_snapshot_preview1.ModuleName:
			if !wasi[name] {
				problems = append(problems, fmt.Sprintf("imports %s.%s, which grin does not provide", mod, name))
			}
		default:
			problems = append(problems, foreignImport(mod, name))
		}
	}
	m := &Module{compiled: cm}
	exports := cm.ExportedFunctions()
	if _, ok := exports[MarkerExport]; !ok {
		problems = append(problems, missingMarker())
	}
	if _, ok := cm.ExportedMemories()["memory"]; !ok {
		problems = append(problems, "does not export its memory")
	}
	if f, ok := exports[InitExport]; ok {
		if signature(f) != "->" {
			problems = append(problems, InitExport+" must take and return nothing")
		}
		m.hasInit = true
	}
	for name, f := range exports {
		hook, ok := strings.CutPrefix(name, HookPrefix)
		if !ok {
			continue
		}
		if got := signature(f); got != "i32->i32" {
			problems = append(problems, fmt.Sprintf("exports %s as (%s), but hooks are (i32->i32)", name, got))
			continue
		}
		m.Hooks = append(m.Hooks, hook)
	}
	sort.Strings(m.Hooks)
	if len(problems) > 0 {
		cm.Close(ctx)
		return nil, fmt.Errorf("%w: the module %s", ErrInvalid, strings.Join(problems, "; "))
	}
	return m, nil
}

// Close releases the compiled code.
func (m *Module) Close(ctx context.Context) error { return m.compiled.Close(ctx) }

// wasiFunctions are the WASI functions wazero provides; the sandbox comes
// from the configuration (no mounts, no sockets), not from refusing them.
var wasiFunctions = []string{
	"args_get", "args_sizes_get", "environ_get", "environ_sizes_get", "clock_res_get", "clock_time_get",
	"fd_advise", "fd_allocate", "fd_close", "fd_datasync", "fd_fdstat_get", "fd_fdstat_set_flags",
	"fd_fdstat_set_rights", "fd_filestat_get", "fd_filestat_set_size", "fd_filestat_set_times", "fd_pread",
	"fd_prestat_get", "fd_prestat_dir_name", "fd_pwrite", "fd_read", "fd_readdir", "fd_renumber", "fd_seek",
	"fd_sync", "fd_tell", "fd_write", "path_create_directory", "path_filestat_get", "path_filestat_set_times",
	"path_link", "path_open", "path_readlink", "path_remove_directory", "path_rename", "path_symlink",
	"path_unlink_file", "poll_oneoff", "proc_exit", "proc_raise", "sched_yield", "random_get",
	"sock_accept", "sock_recv", "sock_send", "sock_shutdown",
}

func signature(f api.FunctionDefinition) string {
	name := func(ts []api.ValueType) string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = api.ValueTypeName(t)
		}
		return strings.Join(s, ",")
	}
	return name(f.ParamTypes()) + "->" + name(f.ResultTypes())
}

// instance is one instantiated module, used by one call at a time.
type instance struct {
	mod     api.Module
	ctx     context.Context // carries the instance; cancelled on overrun
	cancel  context.CancelFunc
	call    *callState
	overran bool
	broken  bool
	hooks   map[string]api.Function
}

// instantiate makes a fresh instance: no filesystem, no arguments, no
// environment, real randomness and clocks.
//
// Errors wrap ErrInit and say what happened in a sentence: the
// initialisation failed, or did not finish in time.
func (e *Engine) instantiate(ctx context.Context, m *Module, plugin string) (*instance, error) {
	in := &instance{hooks: map[string]api.Function{}}
	ictx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	in.ctx, in.cancel = context.WithValue(ictx, stateKey{}, in), cancel
	cfg := wazero.NewModuleConfig().
		WithName(""). // anonymous: many instances of one module may live at once
		WithRandSource(rand.Reader).
		WithSysWalltime().WithSysNanotime().WithSysNanosleep().
		WithStartFunctions() // _initialize is called below, under a deadline
	in.call = &callState{plugin: plugin, maxOutput: DefaultMaxOutput, logs: e.logLimiter(plugin)}
	mod, err := e.rt.InstantiateModule(in.ctx, m.compiled, cfg)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%w: it could not be instantiated: %v", ErrInit, err)
	}
	in.mod = mod
	if m.hasInit {
		if _, err := e.guard(in, e.cfg.InitTimeout, func() ([]uint64, error) {
			return mod.ExportedFunction(InitExport).Call(in.ctx)
		}); err != nil {
			in.close(ctx)
			if errors.Is(err, ErrDeadline) {
				return nil, fmt.Errorf("%w: its initialisation did not finish within %v", ErrInit, e.cfg.InitTimeout)
			}
			first, _, _ := strings.Cut(err.Error(), "\n") // not wazero's stack trace
			return nil, fmt.Errorf("%w: its initialisation failed: %s", ErrInit, first)
		}
	}
	for _, h := range m.Hooks {
		in.hooks[h] = mod.ExportedFunction(HookPrefix + h)
	}
	return in, nil
}

// CheckStart makes one instance of m and closes it: what the server does
// at upload, so a module whose initialisation loops or fails is caught
// before it ships. Errors wrap ErrInit.
func (e *Engine) CheckStart(ctx context.Context, m *Module, plugin string) error {
	in, err := e.instantiate(ctx, m, plugin)
	if err != nil {
		return err
	}
	in.close(ctx)
	return nil
}

// guard runs fn under the watchdog's deadline.
func (e *Engine) guard(in *instance, timeout time.Duration, fn func() ([]uint64, error)) ([]uint64, error) {
	e.mu.Lock()
	e.inflight[in] = time.Now().Add(timeout)
	e.mu.Unlock()
	res, err := fn()
	e.mu.Lock()
	delete(e.inflight, in)
	e.mu.Unlock()
	e.reportDropped(in.ctx, in.call)
	if in.overran {
		in.broken = true
		return nil, fmt.Errorf("%w of %v", ErrDeadline, timeout)
	}
	if err != nil {
		in.broken = true
	}
	return res, err
}

// call runs one hook on the instance. The instance is broken, and must be
// discarded, after any error.
func (e *Engine) call(in *instance, hook string, input []byte, timeout time.Duration, maxOutput int) ([]byte, int, error) {
	fn := in.hooks[hook]
	if fn == nil {
		return nil, StatusUnchanged, nil
	}
	in.call.input, in.call.output, in.call.errMsg, in.call.overflow, in.call.maxOutput = input, nil, "", false, maxOutput
	res, err := e.guard(in, timeout, func() ([]uint64, error) {
		return fn.Call(in.ctx, api.EncodeU32(uint32(len(input))))
	})
	if err != nil {
		if in.call.overflow {
			return nil, 0, fmt.Errorf("output %w: the limit is %d bytes", ErrTooLarge, maxOutput)
		}
		return nil, 0, err
	}
	switch status := int(api.DecodeI32(res[0])); status {
	case StatusOutput:
		return in.call.output, status, nil
	case StatusError:
		in.broken = true
		return nil, status, fmt.Errorf("%w: %s", ErrHookError, in.call.errMsg)
	case StatusUnchanged:
		return nil, status, nil
	default:
		in.broken = true
		return nil, status, fmt.Errorf("the hook returned status %d; 0, 1 and 2 are defined", status)
	}
}

func (in *instance) close(ctx context.Context) {
	in.cancel()
	if in.mod != nil {
		in.mod.Close(ctx)
	}
}
