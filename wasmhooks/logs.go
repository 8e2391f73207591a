package wasmhooks

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/tetratelabs/wazero/api"
	"golang.org/x/time/rate"
)

// logLimiter bounds one plugin's log lines: a token bucket, and a count of
// the lines it dropped, reported when the plugin logs again or its call
// ends. Without it a plugin logging in a loop wrote hundreds of MiB a
// second into the server's log.
//
// Notes: safe for concurrent use; shared by all instances of a plugin.
type logLimiter struct {
	bucket  *rate.Limiter
	dropped atomic.Int64
}

// logLimiter returns the plugin's limiter. It is kept by id, so an upgrade
// or a forced isolation does not hand a flooding plugin a full bucket.
func (e *Engine) logLimiter(plugin string) *logLimiter {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	l := e.logs[plugin]
	if l == nil {
		l = &logLimiter{bucket: rate.NewLimiter(rate.Limit(e.cfg.LogRate), e.cfg.LogBurst)}
		e.logs[plugin] = l
	}
	return l
}

var logLevels = map[int32]slog.Level{0: slog.LevelDebug, 1: slog.LevelInfo, 2: slog.LevelWarn, 3: slog.LevelError}

// guestLog writes one of a guest's log lines, if its plugin's bucket
// allows, cut to the configured length with a marker saying so. A dropped
// line is only counted: its bytes are not even read.
func (e *Engine) guestLog(ctx context.Context, mod api.Module, s *callState, level int32, ptr, n uint32) {
	if s.logs != nil && !s.logs.bucket.Allow() {
		s.logs.dropped.Add(1)
		return
	}
	e.reportDropped(ctx, s)
	keep := min(n, uint32(e.cfg.LogLineBytes))
	b, ok := mod.Memory().Read(ptr, keep)
	if !ok {
		return
	}
	// A cut may split a character: drop the partial one.
	msg := strings.ToValidUTF8(string(b), "")
	if keep < n {
		msg += fmt.Sprintf(" … [truncated: %d of %d bytes]", keep, n)
	}
	lvl, ok := logLevels[level]
	if !ok {
		lvl = slog.LevelInfo
	}
	e.logger.Log(ctx, lvl, msg, "plugin", s.plugin)
}

// reportDropped logs, once, how many of the plugin's lines were dropped
// since the last report.
func (e *Engine) reportDropped(ctx context.Context, s *callState) {
	if s == nil || s.logs == nil {
		return
	}
	if d := s.logs.dropped.Swap(0); d > 0 {
		e.logger.Log(ctx, slog.LevelWarn, fmt.Sprintf("plugin %s: dropped %d log lines (rate limit)", s.plugin, d),
			"plugin", s.plugin, "dropped", d)
	}
}
