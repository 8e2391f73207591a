package wasmhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"
	"unsafe"
)

// Isolation says how a plugin's instances are shared. Globals of an
// instance survive between calls, so a shared instance can carry one
// user's data into another user's call.
type Isolation string

// Isolation modes, cheapest first.
const (
	// Shared: one pool for all users. Calls cost tens of microseconds;
	// the plugin must keep no user data in globals.
	Shared Isolation = "shared"
	// PerUser: instances keyed by user id, evicted when idle. A user's
	// first call pays an instantiation (milliseconds) and each live user
	// costs an instance's memory.
	PerUser Isolation = "per-user"
	// PerCall: a fresh instance for every call, closed after: nothing
	// survives, every call pays an instantiation.
	PerCall Isolation = "per-call"
)

// Valid reports whether the mode is one of the three.
func (i Isolation) Valid() bool { return i == Shared || i == PerUser || i == PerCall }

// Limits bound a plugin's calls.
type Limits struct {
	Timeout   time.Duration
	MaxInput  int
	MaxOutput int
	// PoolSize bounds idle instances kept per pool.
	PoolSize int
}

func (l *Limits) defaults() {
	l.Timeout = positiveOr(l.Timeout, DefaultTimeout)
	l.MaxInput = positiveOr(l.MaxInput, DefaultMaxInput)
	l.MaxOutput = positiveOr(l.MaxOutput, DefaultMaxOutput)
	l.PoolSize = positiveOr(l.PoolSize, 8)
}

// Plugin is a loaded module with its pools of instances.
//
// Notes: safe for concurrent use; each call has an instance of its own.
type Plugin struct {
	ID        string
	engine    *Engine
	module    *Module
	isolation Isolation
	limits    Limits

	mu     sync.Mutex
	pools  map[string]*pool // "" for shared; user id for per-user
	closed bool
	starts startState

	// disable is called once when instances failed to start too many
	// times in a row, with the last failure; the manager turns the plugin
	// off. Nil outside a manager.
	disable func(reason error)

	setMu      sync.Mutex
	settings   []byte // the settings of the last call, and their version
	setVersion uint32
}

// startState tracks instances that failed to start. After a failure the
// plugin waits (doubling with every failure in a row) before one call
// tries again; the calls meanwhile skip it at once, without paying an
// instantiation. A success clears it.
type startState struct {
	failures int
	retryAt  time.Time
	trying   bool // one call is trying; the others skip
	last     error
}

type pool struct {
	idle     []*instance
	lastUsed time.Time
}

// NewPlugin prepares a plugin; instances are made on first use.
func (e *Engine) NewPlugin(id string, m *Module, iso Isolation, limits Limits) (*Plugin, error) {
	if !iso.Valid() {
		return nil, fmt.Errorf("plugin %s: isolation %q is not shared, per-user or per-call", id, iso)
	}
	limits.defaults()
	return &Plugin{ID: id, engine: e, module: m, isolation: iso, limits: limits, pools: map[string]*pool{}}, nil
}

// Call runs one hook with input, an ABI v1 envelope (see Input), for
// user. It returns the new payload, or nil when the hook left it
// unchanged. For an ABI v2 module the envelope is taken apart and served
// as Invoke does.
func (p *Plugin) Call(ctx context.Context, hook, user string, input []byte) ([]byte, error) {
	if err := p.checkInput(len(input)); err != nil {
		return nil, err
	}
	if p.module.ABI == 1 {
		return p.run(ctx, hook, CallContext{UserID: user}, input, nil)
	}
	var env Input
	if err := json.Unmarshal(input, &env); err != nil {
		return nil, fmt.Errorf("the hook's input is not an ABI v1 envelope: %w", err)
	}
	return p.Invoke(ctx, hook, env.Ctx, env.Settings, env.Payload)
}

// Invoke runs one hook over payload for the call cc, with the plugin's
// settings (JSON). It returns the new payload, or nil when the hook left
// it unchanged. An ABI v1 module gets the envelope built from the parts;
// an ABI v2 module gets the payload alone and reads the rest when it asks.
func (p *Plugin) Invoke(ctx context.Context, hook string, cc CallContext, settings, payload json.RawMessage) (json.RawMessage, error) {
	if p.module.ABI == 1 {
		in, err := encodeEnvelope(hook, cc, settings, payload)
		if err != nil {
			return nil, fmt.Errorf("encode the hook's input: %w", err)
		}
		if err := p.checkInput(len(in)); err != nil {
			return nil, err
		}
		return p.run(ctx, hook, cc, in, nil)
	}
	if err := p.checkInput(len(payload)); err != nil {
		return nil, err
	}
	return p.run(ctx, hook, cc, payload, &v2call{cc: cc, settings: settings})
}

// checkInput refuses an input of n bytes beyond the plugin's limit.
func (p *Plugin) checkInput(n int) error {
	if n > p.limits.MaxInput {
		return fmt.Errorf("input %w: %d bytes, the limit is %d", ErrTooLarge, n, p.limits.MaxInput)
	}
	return nil
}

// v2call is what an ABI v2 guest may ask for during its call.
type v2call struct {
	cc       CallContext
	settings []byte
}

// settingsVersion numbers the settings a plugin is called with: it changes
// when they change, so a v2 guest decodes them again only then. The
// manager hands the same slice for as long as the settings stay, so the
// comparison is nearly always of two pointers.
func (p *Plugin) settingsVersion(settings []byte) uint32 {
	p.setMu.Lock()
	defer p.setMu.Unlock()
	same := len(settings) == len(p.settings) &&
		(len(settings) == 0 || unsafe.SliceData(settings) == unsafe.SliceData(p.settings) || bytes.Equal(settings, p.settings))
	if !same || p.setVersion == 0 {
		p.settings = settings
		p.setVersion++
	}
	return p.setVersion
}

func (p *Plugin) run(ctx context.Context, hook string, cc CallContext, input []byte, v2 *v2call) ([]byte, error) {
	user := cc.UserID
	key := ""
	if p.isolation == PerUser {
		key = user
	}
	var version uint32
	if v2 != nil {
		version = p.settingsVersion(v2.settings)
	}
	in, err := p.take(ctx, key)
	if err != nil {
		return nil, err
	}
	in.call.host = &hostCall{ctx: ctx} // for host capabilities, during this call only
	// cc names the call in the host's log lines (its request id) for
	// either ABI; only a v2 guest reads it (ctx_read).
	in.call.hook, in.call.user, in.call.cc = hook, user, cc
	if v2 != nil {
		in.call.settings = v2.settings
	}
	out, status, err := p.engine.call(in, hook, input, version, p.limits.Timeout, p.limits.MaxOutput)
	// Hold no caller's bytes, request or identity while pooled.
	in.call.host, in.call.hostResult = nil, nil
	in.call.hook, in.call.user, in.call.cc = "", "", CallContext{}
	in.call.input, in.call.settings = nil, nil
	p.give(ctx, key, in)
	if err != nil {
		return nil, err
	}
	if status == StatusUnchanged {
		return nil, nil
	}
	if !json.Valid(out) {
		return nil, fmt.Errorf("the hook's output is not JSON")
	}
	return out, nil
}

func (p *Plugin) take(ctx context.Context, key string) (*instance, error) {
	if p.isolation != PerCall {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, fmt.Errorf("plugin %s is unloaded", p.ID)
		}
		pl := p.pools[key]
		if pl != nil && len(pl.idle) > 0 {
			in := pl.idle[len(pl.idle)-1]
			pl.idle = pl.idle[:len(pl.idle)-1]
			pl.lastUsed = time.Now()
			p.mu.Unlock()
			return in, nil
		}
		p.mu.Unlock()
	}
	return p.start(ctx)
}

// start makes an instance, unless the plugin is waiting after failures,
// and keeps count of failures in a row.
func (p *Plugin) start(ctx context.Context) (*instance, error) {
	p.mu.Lock()
	st := &p.starts
	if st.failures > 0 {
		if st.trying || time.Now().Before(st.retryAt) {
			failures, last := st.failures, st.last
			p.mu.Unlock()
			return nil, fmt.Errorf("%w (%d failures in a row; the last: %v)", ErrBackingOff, failures, last)
		}
		st.trying = true
	}
	p.mu.Unlock()
	in, err := p.engine.instantiate(ctx, p.module, p.ID)
	p.mu.Lock()
	st.trying = false
	if err == nil {
		*st = startState{}
		p.mu.Unlock()
		return in, nil
	}
	st.failures++
	st.last = err
	wait := p.engine.cfg.InitBackoff << min(st.failures-1, 30)
	if wait <= 0 || wait > p.engine.cfg.InitBackoffMax {
		wait = p.engine.cfg.InitBackoffMax
	}
	st.retryAt = time.Now().Add(wait)
	failures, disable := st.failures, p.disable
	p.mu.Unlock()
	p.engine.logger.Warn("plugin instance failed to start", "plugin", p.ID, "failures", failures, "retry_in", wait, "err", err)
	p.engine.record(p.ID, slog.LevelWarn, "", "", fmt.Sprintf("an instance failed to start (%d in a row; next try in %v): %v", failures, wait, err))
	if failures >= p.engine.cfg.InitFailures && disable != nil {
		disable(fmt.Errorf("its instances failed to start %d times in a row; the last time: %w", failures, err))
	}
	return nil, err
}

// resetStarts forgets earlier failures to start.
func (p *Plugin) resetStarts() {
	p.mu.Lock()
	p.starts = startState{}
	p.mu.Unlock()
}

// adopt puts an instance made elsewhere (the check at install) into the
// shared pool, so the first call does not make another.
func (p *Plugin) adopt(ctx context.Context, in *instance) {
	if p.isolation != Shared {
		p.engine.closeInstance(ctx, in)
		return
	}
	p.give(ctx, "", in)
}

// give returns a healthy instance to its pool; a broken one, one beyond
// the pool's size, or any per-call instance is closed.
func (p *Plugin) give(ctx context.Context, key string, in *instance) {
	if p.isolation == PerCall || in.broken {
		p.engine.closeInstance(ctx, in)
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.engine.closeInstance(ctx, in)
		return
	}
	pl := p.pools[key]
	if pl == nil {
		pl = &pool{}
		p.pools[key] = pl
	}
	pl.lastUsed = time.Now()
	if len(pl.idle) < p.limits.PoolSize {
		pl.idle = append(pl.idle, in)
		in = nil
	}
	p.mu.Unlock()
	if in != nil {
		p.engine.closeInstance(ctx, in)
	}
}

// EvictIdle closes per-user pools unused since before cutoff.
func (p *Plugin) EvictIdle(ctx context.Context, cutoff time.Time) int {
	p.mu.Lock()
	var victims []*instance
	n := 0
	for k, pl := range p.pools {
		if k != "" && pl.lastUsed.Before(cutoff) {
			victims = append(victims, pl.idle...)
			delete(p.pools, k)
			n++
		}
	}
	p.mu.Unlock()
	for _, in := range victims {
		p.engine.closeInstance(ctx, in)
	}
	return n
}

// Close unloads the plugin: idle instances close now, busy ones when their
// call returns, so calls in flight finish.
func (p *Plugin) Close(ctx context.Context) {
	p.mu.Lock()
	p.closed = true
	var victims []*instance
	for _, pl := range p.pools {
		victims = append(victims, pl.idle...)
	}
	p.pools = map[string]*pool{}
	p.mu.Unlock()
	for _, in := range victims {
		p.engine.closeInstance(ctx, in)
	}
}
