package api

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/grin-ai/grin/platform/metrics"
	"github.com/grin-ai/grin/platform/requestid"
)

// BenchmarkObserve measures what every request pays for being observed:
// its id, its route, the metrics (counter and histogram) and its log line
// (text, at info level, written to nowhere), around a handler that only
// answers 200.
//
//	bare:     the handler alone
//	observed: the same handler through observe
func BenchmarkObserve(b *testing.B) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	inner := routed(mux)
	logger := slog.New(requestid.Handler(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})))
	s := &Server{deps: Deps{Metrics: metrics.New(), Logger: logger}}
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{{"bare", inner}, {"observed", s.observe(inner)}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("GET", "/users/3f1c2a", nil)
				w := httptest.NewRecorder()
				tc.h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
	}
}
