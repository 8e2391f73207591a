package wasmhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"
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
	if l.Timeout <= 0 {
		l.Timeout = DefaultTimeout
	}
	if l.MaxInput <= 0 {
		l.MaxInput = DefaultMaxInput
	}
	if l.MaxOutput <= 0 {
		l.MaxOutput = DefaultMaxOutput
	}
	if l.PoolSize <= 0 {
		l.PoolSize = 8
	}
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

// Call runs one hook with input (the ABI's JSON) for user. It returns the
// new payload, or nil when the hook left it unchanged.
func (p *Plugin) Call(ctx context.Context, hook, user string, input []byte) ([]byte, error) {
	if len(input) > p.limits.MaxInput {
		return nil, fmt.Errorf("input %w: %d bytes, the limit is %d", ErrTooLarge, len(input), p.limits.MaxInput)
	}
	key := ""
	if p.isolation == PerUser {
		key = user
	}
	in, err := p.take(ctx, key)
	if err != nil {
		return nil, err
	}
	in.call.host = &hostCall{ctx: ctx} // for host capabilities, during this call only
	in.call.hook, in.call.user = hook, user
	out, status, err := p.engine.call(in, hook, input, p.limits.Timeout, p.limits.MaxOutput)
	in.call.host, in.call.hostResult = nil, nil
	in.call.hook, in.call.user = "", ""
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
		in.close(ctx)
		return
	}
	p.give(ctx, "", in)
}

// give returns a healthy instance to its pool; a broken one, one beyond
// the pool's size, or any per-call instance is closed.
func (p *Plugin) give(ctx context.Context, key string, in *instance) {
	if p.isolation == PerCall || in.broken {
		in.close(ctx)
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		in.close(ctx)
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
		in.close(ctx)
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
		in.close(ctx)
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
		in.close(ctx)
	}
}
