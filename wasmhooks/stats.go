package wasmhooks

import (
	"errors"
	"sync/atomic"
	"time"
)

// Stats are a plugin's figures since it was installed or grin started:
// what an administrator asks before blaming, or keeping, a plugin.
type Stats struct {
	Calls        int64   `json:"calls" doc:"Hook calls made, failed ones included."`
	Errors       int64   `json:"errors" doc:"Calls that failed (the hook's error, a trap, output too large, a deadline); the pipeline went on without them."`
	DeadlineHits int64   `json:"deadline_hits" doc:"Calls stopped by their deadline; counted in errors too."`
	Skipped      int64   `json:"skipped" doc:"Calls not made because the plugin's instances could not start (waiting before trying again)."`
	TimeSpentMS  float64 `json:"time_spent_ms" doc:"Time spent in the plugin's calls, in milliseconds."`
	Instances    int     `json:"instances" doc:"Instances alive now: idle in the pool or running a call."`
}

// counters are one plugin's Stats as they grow; every field is updated
// atomically on the hook path, so reading them costs a call nothing.
type counters struct {
	calls, errors, deadlines, skipped, nanos, running atomic.Int64
}

// done records a call that ended with err after d.
func (c *counters) done(d time.Duration, err error) {
	c.calls.Add(1)
	c.nanos.Add(int64(d))
	if err != nil {
		c.errors.Add(1)
		if errors.Is(err, ErrDeadline) {
			c.deadlines.Add(1)
		}
	}
}

// stats reads the counters; idle is the plugin's idle instances.
func (c *counters) stats(idle int) Stats {
	return Stats{
		Calls: c.calls.Load(), Errors: c.errors.Load(), DeadlineHits: c.deadlines.Load(), Skipped: c.skipped.Load(),
		TimeSpentMS: float64(c.nanos.Load()) / float64(time.Millisecond),
		Instances:   idle + int(c.running.Load()),
	}
}

// Idle is how many instances wait in the plugin's pools.
func (p *Plugin) Idle() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, pl := range p.pools {
		n += len(pl.idle)
	}
	return n
}
