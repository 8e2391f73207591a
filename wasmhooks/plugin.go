package wasmhooks

import (
	"context"
	"encoding/json"
	"fmt"
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
	out, status, err := p.engine.call(in, hook, input, p.limits.Timeout, p.limits.MaxOutput)
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
	return p.engine.instantiate(ctx, p.module, p.ID)
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
