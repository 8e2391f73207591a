package requestid

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestSane(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"abc-123", true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true},
		{"svc:trace_1.2", true},
		{"", false},
		{strings.Repeat("a", MaxLen), true},
		{strings.Repeat("a", MaxLen+1), false},
		{"two words", false},
		{"line\nbreak", false},
		{`quote"`, false},
		{"é", false},
	} {
		if got := Sane(tc.id); got != tc.want {
			t.Errorf("Sane(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
	if a, b := New(), New(); a == b || !Sane(a) || len(a) != 32 {
		t.Errorf("New: %q, %q", a, b)
	}
}

// TestHandlerStampsRecords: a record logged with a context carrying an id
// has request_id, through loggers derived with With and WithGroup too; one
// without has none.
func TestHandlerStampsRecords(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(Handler(slog.NewTextHandler(&buf, nil))).With("component", "chat")
	ctx := With(context.Background(), "req-42")
	log.InfoContext(ctx, "turn")
	log.Info("no context")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "request_id=req-42") || !strings.Contains(lines[0], "component=chat") ||
		strings.Contains(lines[1], "request_id") {
		t.Errorf("log:\n%s", buf.String())
	}
}
