package wasmhooks

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/grin-ai/grin/platform/requestid"
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
	// recent keeps the last lines and failures for the API; lines the
	// bucket drops never reach it.
	recent *logRing
}

// logLimiter returns the plugin's limiter. It is kept by id, so an upgrade
// or a forced isolation does not hand a flooding plugin a full bucket.
func (e *Engine) logLimiter(plugin string) *logLimiter {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	l := e.logs[plugin]
	if l == nil {
		l = &logLimiter{bucket: rate.NewLimiter(rate.Limit(e.cfg.LogRate), e.cfg.LogBurst), recent: newLogRing(e.cfg.LogEntries)}
		e.logs[plugin] = l
	}
	return l
}

var logLevels = map[int32]slog.Level{0: slog.LevelDebug, 1: slog.LevelInfo, 2: slog.LevelWarn, 3: slog.LevelError}

// guestLog writes one of a guest's log lines, if its plugin's bucket
// allows, cut to the configured length with a marker saying so. A dropped
// line is only counted: its bytes are not even read.
func (e *Engine) guestLog(ctx context.Context, mod api.Module, s *callState, level int32, ptr, n uint32) {
	// The guest runs in its instance's context, which holds the request
	// that started the instance: name the call's own request instead, so
	// the line joins the rest of that request's log.
	if s.cc.RequestID != "" {
		ctx = requestid.With(ctx, s.cc.RequestID)
	}
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
	s.logs.recent.add(LogEntry{Time: time.Now().UTC(), Level: levelName(lvl), Message: msg, UserID: s.user, Hook: s.hook})
}

// reportDropped logs, once, how many of the plugin's lines were dropped
// since the last report.
func (e *Engine) reportDropped(ctx context.Context, s *callState) {
	if s == nil || s.logs == nil {
		return
	}
	if d := s.logs.dropped.Swap(0); d > 0 {
		msg := fmt.Sprintf("plugin %s: dropped %d log lines (rate limit)", s.plugin, d)
		e.logger.Log(ctx, slog.LevelWarn, msg, "plugin", s.plugin, "dropped", d)
		s.logs.recent.add(LogEntry{Time: time.Now().UTC(), Level: "warn", Message: msg, UserID: s.user, Hook: s.hook})
	}
}
