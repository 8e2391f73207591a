package wasmhooks

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
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
	// StepsPerSecond turns a timeout into a call's fuel: a call may make
	// timeout × StepsPerSecond steps (function entries and loop
	// iterations, see meter). Measured on a 2-vCPU machine at load 10, a
	// step of a tight loop took 2–4 ns, one of a Go guest's encoding/json
	// 8–15 ns: 300 million a second stops a spinning guest in about its
	// timeout and gives a healthy one a few times its timeout of CPU. The
	// budget is counted, not timed, so load never fails a healthy guest.
	StepsPerSecond = 300_000_000
	// BackstopFactor times the timeout (and at least MinBackstop) is the
	// wall-clock time after which the watchdog stops a call that is still
	// running with fuel left: one stuck in a host function, or starved for
	// CPU far beyond any healthy slowdown.
	BackstopFactor = 20
	MinBackstop    = 2 * time.Second
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
// Deadlines cost a call almost nothing: every module is metered at
// install (meter), so a call is bounded by its fuel, a count of steps that
// load does not change; sleeping (WASI's poll_oneoff) is bounded by the
// timeout; and one watchdog goroutine stops, as a backstop, a call that
// runs far past its timeout in wall-clock time. None of this needs a
// context, a timer or a goroutine per call, nor wazero's
// close-on-context-done (see RATIONALE.md).
type Engine struct {
	rt     wazero.Runtime
	cache  wazero.CompilationCache // nil without a cache directory; the runtime does not close it
	logger *slog.Logger
	cfg    EngineConfig // with defaults filled in

	logMu sync.Mutex
	logs  map[string]*logLimiter // by plugin id, so upgrades keep the bucket

	mu   sync.Mutex
	live map[*instance]struct{} // every instance, for the watchdog
	stop context.CancelFunc

	caps atomic.Pointer[capabilities] // host capabilities (capabilities.go); nil: none
}

// EngineConfig configures an Engine.
type EngineConfig struct {
	// CacheDir keeps compiled code across restarts (none when empty).
	CacheDir string
	// MemoryMiB caps every instance's memory (default 64).
	MemoryMiB int
	// NoDeadlines turns off deadline enforcement: modules run as they
	// came, unmetered; no sleep limit, no watchdog. A looping guest then
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
	c.MemoryMiB = positiveOr(c.MemoryMiB, DefaultMemoryMiB)
	c.InitTimeout = positiveOr(c.InitTimeout, DefaultInitTimeout)
	c.InitBackoff = positiveOr(c.InitBackoff, DefaultInitBackoff)
	c.InitBackoffMax = positiveOr(c.InitBackoffMax, max(DefaultInitBackoffMax, c.InitBackoff))
	c.InitFailures = positiveOr(c.InitFailures, DefaultInitFailures)
	c.LogRate = positiveOr(c.LogRate, DefaultLogRate)
	c.LogBurst = positiveOr(c.LogBurst, DefaultLogBurst)
	c.LogLineBytes = positiveOr(c.LogLineBytes, DefaultLogLineBytes)
	switch {
	case c.LogEntries == 0:
		c.LogEntries = DefaultLogEntries
	case c.LogEntries < 0:
		c.LogEntries = 0
	}
}

// positiveOr returns v, or d when v is zero or negative: a limit left
// unset, or set to nonsense, takes its default (cmp.Or would keep a
// negative one).
func positiveOr[T ~int | ~int64 | ~float64](v, d T) T {
	if v <= 0 {
		return d
	}
	return v
}

// NewEngine returns an engine.
func NewEngine(ctx context.Context, c EngineConfig) (*Engine, error) {
	c.defaults()
	logger, memoryMiB := c.Logger, c.MemoryMiB
	cfg := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(false).               // metered instead: see Engine
		WithMemoryLimitPages(uint32(memoryMiB * 16)) // 64 KiB pages
	var cache wazero.CompilationCache
	if c.CacheDir != "" {
		var err error
		if cache, err = wazero.NewCompilationCacheWithDir(c.CacheDir); err != nil {
			return nil, fmt.Errorf("open the compilation cache in %s: %w", c.CacheDir, err)
		}
		cfg = cfg.WithCompilationCache(cache)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	e := &Engine{rt: rt, cache: cache, logger: logger, cfg: c, live: map[*instance]struct{}{}, logs: map[string]*logLimiter{}, stop: func() {}}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		e.Close(ctx)
		return nil, fmt.Errorf("provide WASI: %w", err)
	}
	for _, name := range []string{HostModule, HostModuleV2} {
		if err := e.hostModule(ctx, name); err != nil {
			e.Close(ctx)
			return nil, err
		}
	}
	if !c.NoDeadlines {
		wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		e.stop = cancel
		go e.watchdog(wctx)
	}
	return e, nil
}

// Close releases every module and instance, and the compiled code the
// compilation cache holds in memory (its files stay).
func (e *Engine) Close(ctx context.Context) error {
	e.stop()
	err := e.rt.Close(ctx)
	if e.cache != nil {
		err = errors.Join(err, e.cache.Close(ctx))
	}
	return err
}

// watchdogTick is how often the watchdog looks at running calls: the
// backstop is coarse by design.
const watchdogTick = 10 * time.Millisecond

// watchdog stops, by emptying their fuel, the calls that ran past their
// backstop in wall-clock time. A call costs it nothing but two atomic
// increments: the watchdog notices a call by its sequence number staying
// odd (running) across ticks, and times it from the first tick that saw it.
func (e *Engine) watchdog(ctx context.Context) {
	t := time.NewTicker(watchdogTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			e.mu.Lock()
			for in := range e.live {
				seq := in.seq.Load()
				if seq%2 == 0 { // idle
					continue
				}
				if seq != in.seenSeq {
					in.seenSeq, in.seenAt = seq, now
					continue
				}
				if in.stopped.Load() != stopNone {
					in.halt(stopBackstop, seq) // again: the guest may have raced the last write
					continue
				}
				if now.Sub(in.seenAt) > time.Duration(in.backstop.Load()) {
					in.halt(stopBackstop, seq)
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
	// hook and user name the call in progress, for the plugin's log
	// entries and v2's ctx_read; empty during initialisation.
	hook, user string
	// ABI v2: the call's context and the plugin's settings, read only
	// when the guest asks.
	cc       CallContext
	settings []byte
	// host is the hook call's request, for host capabilities; hostResult
	// the last host_call's answer (capabilities.go).
	host       *hostCall
	hostResult []byte
}

type stateKey struct{}

// hostModule defines grin_v1 or grin_v2. Functions are registered with
// WithGoModuleFunction: reflection-based ones cost ten times as much.
func (e *Engine) hostModule(ctx context.Context, name string) error {
	i32 := api.ValueTypeI32
	state := func(ctx context.Context) *callState {
		in, _ := ctx.Value(stateKey{}).(*instance)
		if in == nil {
			return nil
		}
		return in.call
	}
	// copyIn writes src, cut to the guest's n bytes, at ptr; it returns
	// the full length so the guest can grow its buffer and ask again.
	copyIn := func(mod api.Module, ptr, n uint32, src []byte, what string) uint32 {
		k := min(int(n), len(src))
		if !mod.Memory().Write(ptr, src[:k]) {
			panic(what + ": the buffer is outside the guest's memory")
		}
		return uint32(len(src))
	}
	b := e.rt.NewHostModuleBuilder(name)
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
		ptr, n := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
		s := state(ctx)
		if s == nil {
			stack[0] = 0
			return
		}
		copyIn(mod, ptr, n, s.input, "input_read")
		stack[0] = api.EncodeU32(uint32(min(int(n), len(s.input))))
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
			dst(s, b)
		}
	}
	b.NewFunctionBuilder().WithGoModuleFunction(copyOut(func(s *callState, b []byte) { s.output = append([]byte(nil), b...) }),
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
	if name == HostModuleV2 {
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
			field, ptr, n := api.DecodeU32(stack[0]), api.DecodeU32(stack[1]), api.DecodeU32(stack[2])
			s := state(ctx)
			var v string
			switch {
			case s == nil:
			case field == CtxUserID:
				v = s.cc.UserID
			case field == CtxUsername:
				v = s.cc.Username
			case field == CtxPluginID:
				v = s.cc.PluginID
			case field == CtxRequestID:
				v = s.cc.RequestID
			case field == CtxHook:
				v = s.hook
			default:
				stack[0] = api.EncodeI32(-1)
				return
			}
			stack[0] = api.EncodeU32(copyIn(mod, ptr, n, []byte(v), "ctx_read"))
		}), []api.ValueType{i32, i32, i32}, []api.ValueType{i32}).Export("ctx_read")
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
			ptr, n := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
			var settings []byte
			if s := state(ctx); s != nil {
				settings = s.settings
			}
			if len(settings) == 0 {
				settings = []byte("{}")
			}
			stack[0] = api.EncodeU32(copyIn(mod, ptr, n, settings, "settings_read"))
		}), []api.ValueType{i32, i32}, []api.ValueType{i32}).Export("settings_read")
	}
	if _, err := b.Instantiate(ctx); err != nil {
		return fmt.Errorf("provide %s: %w", name, err)
	}
	return nil
}

// hostSignatures are the imports grin_v1 offers, as "params->results";
// hostSignaturesV2 grin_v2's.
var (
	hostSignatures = map[string]string{
		"input_read":   "i32,i32->i32",
		"output_write": "i32,i32->",
		"error_write":  "i32,i32->",
		"log":          "i32,i32,i32->",
		"host_call":    "i32,i32,i32,i32->i32", // capabilities.go
		"host_result":  "i32,i32->i32",
	}
	hostSignaturesV2 = map[string]string{
		"input_read":    "i32,i32->i32",
		"output_write":  "i32,i32->",
		"error_write":   "i32,i32->",
		"log":           "i32,i32,i32->",
		"ctx_read":      "i32,i32,i32->i32",
		"settings_read": "i32,i32->i32",
		"host_call":     "i32,i32,i32,i32->i32", // capabilities.go
		"host_result":   "i32,i32->i32",
	}
)

// Module is a compiled, checked plugin module.
type Module struct {
	compiled wazero.CompiledModule
	// Hooks are the hook names the module exports.
	Hooks []string
	// ABI is the hook ABI the module speaks: 1 or 2.
	ABI     int
	hasInit bool
}

// Compile meters (see meter), compiles and checks a module: the ABI marker,
// every export hook's signature, and every import, which must be the
// ABI's host module's or WASI's. Problems are reported together, naming
// the offending imports.
func (e *Engine) Compile(ctx context.Context, wasm []byte) (*Module, error) {
	metered, err := meter(wasm)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if e.cfg.NoDeadlines {
		metered = wasm // checked by meter, run as it came: nothing to stop it
	}
	cm, err := e.rt.CompileModule(ctx, metered)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	var problems []string
	m := &Module{compiled: cm, ABI: 1}
	exports := cm.ExportedFunctions()
	_, v1 := exports[MarkerExport]
	_, v2 := exports[MarkerExportV2]
	host, sigs, hookSig := HostModule, hostSignatures, "i32->i32"
	switch {
	case v1 && v2:
		problems = append(problems, fmt.Sprintf("exports both %s() and %s(): it must speak one ABI", MarkerExport, MarkerExportV2))
	case v2:
		m.ABI, host, sigs, hookSig = 2, HostModuleV2, hostSignaturesV2, "i32,i32->i32"
	case !v1:
		problems = append(problems, missingMarker())
	}
	wasi := map[string]bool{}
	for _, f := range wasiFunctions {
		wasi[f] = true
	}
	for _, imp := range cm.ImportedFunctions() {
		mod, name, _ := imp.Import()
		switch mod {
		case host:
			want, ok := sigs[name]
			if !ok {
				problems = append(problems, fmt.Sprintf("imports %s.%s, which grin does not provide (it provides %s)", mod, name, strings.Join(slices.Sorted(maps.Keys(sigs)), ", ")))
			} else if got := signature(imp); got != want {
				problems = append(problems, fmt.Sprintf("imports %s.%s as (%s), but it is (%s)", mod, name, got, want))
			}
		case wasi_snapshot_preview1.ModuleName:
			if !wasi[name] {
				problems = append(problems, fmt.Sprintf("imports %s.%s, which grin does not provide", mod, name))
			}
		default:
			problems = append(problems, foreignImport(mod, name, host, m.ABI))
		}
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
		if got := signature(f); got != hookSig {
			problems = append(problems, fmt.Sprintf("exports %s as (%s), but ABI v%d hooks are (%s)", name, got, m.ABI, hookSig))
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

// Why a call was stopped.
const (
	stopNone     = iota
	stopBackstop // the watchdog: far past the timeout in wall-clock time
	stopSleep    // slept past the timeout
)

// outOfFuel is what halt writes into the fuel: any negative value traps
// at the guest's next step; this one stays negative however many steps
// race it.
const outOfFuel = math.MinInt64 / 2

// instance is one instantiated module, used by one call at a time.
type instance struct {
	mod    api.Module
	ctx    context.Context    // carries the instance for the host functions; cancelled by halt
	cancel context.CancelFunc // so a host function working for a stopped call gives up
	fuel   api.MutableGlobal
	call   *callState
	broken bool
	hooks  map[string]api.Function
	abi    int
	stack  []uint64 // reused for every call's parameters and results

	// Read by the watchdog and the sleep function while a call runs.
	seq      atomic.Uint64 // odd while a call runs
	backstop atomic.Int64  // this call's backstop, in nanoseconds
	sleepEnd atomic.Int64  // when this call's sleeping must end, unix nanoseconds; 0: no limit
	stopped  atomic.Int32  // stopNone, or why the call was stopped
	wake     chan struct{} // halt's signal to a sleeping guest
	haltMu   sync.Mutex    // a halt and the end of its call, one at a time
	// Owned by the watchdog.
	seenSeq uint64
	seenAt  time.Time
}

// setFuel and getFuel do nothing without deadlines: the module is not
// metered then.
func (in *instance) setFuel(v int64) {
	if in.fuel != nil {
		in.fuel.Set(uint64(v))
	}
}

func (in *instance) getFuel() int64 {
	if in.fuel == nil {
		return math.MaxInt64
	}
	return int64(in.fuel.Get())
}

// halt stops the call numbered seq at its next step, and wakes it if
// asleep; it does nothing once that call has ended. Called again for the
// same call, it writes the fuel again (the guest's own decrement may have
// raced the first write).
func (in *instance) halt(why int32, seq uint64) {
	in.haltMu.Lock()
	defer in.haltMu.Unlock()
	if in.seq.Load() != seq {
		return
	}
	in.stopped.CompareAndSwap(stopNone, why)
	in.setFuel(outOfFuel)
	in.cancel()
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

// sleep is the instance's WASI sleep (poll_oneoff, Go's time.Sleep): it
// sleeps at most until the call's timeout, then stops the call, and wakes
// early when the watchdog halts it.
func (in *instance) sleep(ns int64) {
	if ns <= 0 {
		return
	}
	d := time.Duration(ns)
	if end := in.sleepEnd.Load(); end != 0 {
		left := time.Duration(end - time.Now().UnixNano())
		if left < d {
			if left > 0 {
				t := time.NewTimer(left)
				select {
				case <-t.C:
				case <-in.wake:
				}
				t.Stop()
			}
			in.halt(stopSleep, in.seq.Load())
			return
		}
	}
	t := time.NewTimer(d)
	select {
	case <-t.C:
	case <-in.wake:
	}
	t.Stop()
}

// instantiate makes a fresh instance: no filesystem, no arguments, no
// environment, real randomness and clocks.
//
// Errors wrap ErrInit and say what happened in a sentence: the
// initialisation failed, or did not finish in time.
func (e *Engine) instantiate(ctx context.Context, m *Module, plugin string) (*instance, error) {
	in := &instance{hooks: map[string]api.Function{}, abi: m.ABI, stack: make([]uint64, 2), wake: make(chan struct{}, 1)}
	ictx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	in.ctx, in.cancel = context.WithValue(ictx, stateKey{}, in), cancel
	cfg := wazero.NewModuleConfig().
		WithName(""). // anonymous: many instances of one module may live at once
		WithRandSource(rand.Reader).
		WithSysWalltime().WithSysNanotime().
		WithNanosleep(in.sleep).
		WithStartFunctions() // _initialize is called below, under a budget
	in.call = &callState{plugin: plugin, maxOutput: DefaultMaxOutput, logs: e.logLimiter(plugin)}
	mod, err := e.rt.InstantiateModule(in.ctx, m.compiled, cfg)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%w: it could not be instantiated: %v", ErrInit, err)
	}
	in.mod = mod
	if !e.cfg.NoDeadlines {
		g, ok := mod.ExportedGlobal(FuelExport).(api.MutableGlobal)
		if !ok {
			cancel()
			mod.Close(ctx)
			return nil, fmt.Errorf("%w: it has no fuel counter (a module compiled without grin's meter)", ErrInit)
		}
		in.fuel = g
	}
	e.mu.Lock()
	e.live[in] = struct{}{}
	e.mu.Unlock()
	if m.hasInit {
		init := mod.ExportedFunction(InitExport)
		if _, err := e.guard(in, e.cfg.InitTimeout, func() error { return init.CallWithStack(in.ctx, nil) }); err != nil {
			e.closeInstance(ctx, in)
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
	e.closeInstance(ctx, in)
	return nil
}

// fuelFor is a timeout's budget of steps.
func fuelFor(timeout time.Duration) int64 {
	if timeout <= 0 || timeout > time.Duration(math.MaxInt64/StepsPerSecond) {
		return math.MaxInt64
	}
	return int64(timeout) * StepsPerSecond / int64(time.Second)
}

// guard runs fn with the timeout's fuel, sleep limit and backstop. It
// reports ErrDeadline when the call ran out of fuel or was stopped; the
// instance is broken after any error.
func (e *Engine) guard(in *instance, timeout time.Duration, fn func() error) (used int64, err error) {
	if e.cfg.NoDeadlines {
		err := fn()
		e.reportDropped(in.ctx, in.call)
		if err != nil {
			in.broken = true
		}
		return 0, err
	}
	budget := fuelFor(timeout)
	in.backstop.Store(int64(max(BackstopFactor*timeout, MinBackstop)))
	in.sleepEnd.Store(time.Now().Add(timeout).UnixNano())
	in.stopped.Store(stopNone)
	select {
	case <-in.wake: // a halt that came after its call ended
	default:
	}
	in.setFuel(budget)
	in.seq.Add(1)
	err = fn()
	in.seq.Add(1)
	in.haltMu.Lock() // a halt in progress finishes before the fuel is read
	left := in.getFuel()
	in.haltMu.Unlock()
	e.reportDropped(in.ctx, in.call)
	if err == nil && in.stopped.Load() == stopNone {
		return budget - left, nil
	}
	in.broken = true // an error, or a halt too late to fail the call: its context is cancelled
	if err == nil {
		return budget - left, nil
	}
	switch in.stopped.Load() {
	case stopSleep:
		return budget, fmt.Errorf("%w of %v: it slept past it", ErrDeadline, timeout)
	case stopBackstop:
		return budget, fmt.Errorf("%w of %v: it still ran %v later", ErrDeadline, timeout, max(BackstopFactor*timeout, MinBackstop))
	}
	if left < 0 {
		return budget, fmt.Errorf("%w of %v: it used its budget of %d steps", ErrDeadline, timeout, budget)
	}
	return budget - left, err
}

// call runs one hook on the instance with input (v1: the envelope; v2:
// the payload) and, for v2, the settings' version. The instance is broken,
// and must be discarded, after any error.
func (e *Engine) call(in *instance, hook string, input []byte, settingsVersion uint32, timeout time.Duration, maxOutput int) ([]byte, int, error) {
	fn := in.hooks[hook]
	if fn == nil {
		return nil, StatusUnchanged, nil
	}
	s := in.call
	s.input, s.output, s.errMsg, s.overflow, s.maxOutput = input, nil, "", false, maxOutput
	stack := in.stack
	stack[0] = api.EncodeU32(uint32(len(input)))
	stack[1] = api.EncodeU32(settingsVersion)
	_, err := e.guard(in, timeout, func() error { return fn.CallWithStack(in.ctx, stack) })
	if err != nil {
		if s.overflow {
			return nil, 0, fmt.Errorf("output %w: the limit is %d bytes", ErrTooLarge, maxOutput)
		}
		return nil, 0, err
	}
	switch status := int(api.DecodeI32(stack[0])); status {
	case StatusOutput:
		return s.output, status, nil
	case StatusError:
		in.broken = true
		return nil, status, fmt.Errorf("%w: %s", ErrHookError, s.errMsg)
	case StatusUnchanged:
		return nil, status, nil
	default:
		in.broken = true
		return nil, status, fmt.Errorf("the hook returned status %d; 0, 1 and 2 are defined", status)
	}
}

func (e *Engine) closeInstance(ctx context.Context, in *instance) {
	e.mu.Lock()
	delete(e.live, in)
	e.mu.Unlock()
	in.cancel()
	if in.mod != nil {
		in.mod.Close(ctx)
	}
}
