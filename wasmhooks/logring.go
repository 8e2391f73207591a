package wasmhooks

import (
	"log/slog"
	"strings"
	"sync"
	"time"
)

// DefaultLogEntries is how many recent log lines and failures grin keeps
// per plugin for GET /plugins/logs/{id}.
const DefaultLogEntries = 200

// LogEntry is one of a plugin's recent log lines or failures.
type LogEntry struct {
	Time    time.Time `json:"time"`
	Level   string    `json:"level" enum:"debug,info,warn,error"`
	Message string    `json:"message"`
	// UserID is the user the hook ran for; empty during a module's
	// initialisation and for events of the plugin as a whole.
	UserID string `json:"user_id,omitempty" doc:"The user the hook ran for; absent for the plugin's initialisation and for events of the plugin as a whole."`
	Hook   string `json:"hook,omitempty" doc:"The hook that logged or failed; absent outside a hook."`
}

// logRing keeps a plugin's last entries: a fixed-size ring, so a plugin
// that logs or fails without end holds a bounded amount of memory.
//
// Notes: safe for concurrent use.
type logRing struct {
	mu      sync.Mutex
	entries []LogEntry // capacity is the ring's size
	next    int        // where the next entry goes once full
}

func newLogRing(size int) *logRing { return &logRing{entries: make([]LogEntry, 0, size)} }

func (r *logRing) add(e LogEntry) {
	if r == nil || cap(r.entries) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.entries) < cap(r.entries) {
		r.entries = append(r.entries, e)
		return
	}
	r.entries[r.next] = e
	r.next = (r.next + 1) % len(r.entries)
}

// list returns the entries, oldest first.
func (r *logRing) list() []LogEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]LogEntry, 0, len(r.entries))
	out = append(out, r.entries[r.next:]...)
	return append(out, r.entries[:r.next]...)
}

func (r *logRing) clear() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries, r.next = r.entries[:0], 0
}

// levelName is a slog level as an entry shows it.
func levelName(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warn"
	}
	return "error"
}

// record keeps an entry in the plugin's ring, its message cut to the
// configured line length.
func (e *Engine) record(plugin string, level slog.Level, user, hook, msg string) {
	if n := e.cfg.LogLineBytes; len(msg) > n {
		msg = strings.ToValidUTF8(msg[:n], "") + " … [truncated]"
	}
	e.logLimiter(plugin).recent.add(LogEntry{Time: time.Now().UTC(), Level: levelName(level), Message: msg, UserID: user, Hook: hook})
}

// Logs returns a plugin's recent log lines and failures, oldest first.
func (e *Engine) Logs(plugin string) []LogEntry { return e.logLimiter(plugin).recent.list() }

// clearLogs forgets a plugin's recent entries (its rate limit stays).
func (e *Engine) clearLogs(plugin string) { e.logLimiter(plugin).recent.clear() }
