package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/grin-ai/grin/platform/auth"
	"github.com/grin-ai/grin/platform/config"
	"github.com/grin-ai/grin/platform/requestid"
	"github.com/grin-ai/grin/policies"
)

// ReadyCheck is one dependency GET /readyz asks about: the database, and
// Weaviate when memories live there.
type ReadyCheck struct {
	Name  string
	Check func(ctx context.Context) error
}

// metricsNeed is what GET /metrics needs under GRIN_METRICS=auth: the
// policy object "metrics", which administrators (role:admin) and the API
// key hold through their rules, and which can be granted to a scraper's
// user alone (p, <user id>, metrics, read).
var metricsNeed = objectNeed("metrics", policies.Read)

// registerOps serves the operators' endpoints. They are outside the
// OpenAPI document and its clients: load balancers and scrapers call them,
// and their answers are not the Cat's.
func (s *Server) registerOps() {
	s.mux.HandleFunc("GET /healthz", s.serveHealthz)
	s.mux.HandleFunc("GET /readyz", s.serveReadyz)
	s.mux.HandleFunc("GET /metrics", s.serveMetrics)
}

// slogPrinter hands promhttp's errors to the server's logger.
type slogPrinter struct{ s *Server }

func (p slogPrinter) Println(v ...any) {
	p.s.deps.Logger.Error("serve metrics", "err", strings.TrimSpace(fmt.Sprintln(v...)))
}

// serveHealthz says the process is alive and serving HTTP: nothing more,
// so that a restart is never ordered because a dependency is down.
func (s *Server) serveHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
}

// Readiness states, as GET /readyz says them.
const (
	stateReady    = "ready"
	stateNotReady = "not ready"
	stateDraining = "shutting down"
)

// readiness is GET /readyz's answer.
type readiness struct {
	Status string `json:"status"`
	// Checks maps each dependency to "ok" or "down"; why it is down goes
	// to the log, never to this unauthenticated answer.
	Checks map[string]string `json:"checks"`
}

// serveReadyz answers 200 when grin can serve (its database and, when
// configured, Weaviate answer) and 503 otherwise, or once it is shutting
// down, so that a load balancer sends clients elsewhere. Concurrent
// probes share one round of checks.
func (s *Server) serveReadyz(w http.ResponseWriter, r *http.Request) {
	v, _, _ := s.readyGroup.Do("readyz", func() (any, error) { return s.checkReady(r.Context()), nil })
	rd := v.(readiness)
	if s.draining.Load() {
		rd.Status = stateDraining
	}
	status := http.StatusOK
	if rd.Status != stateReady {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, rd)
}

// checkReady runs every check, each within the ready timeout, side by side.
func (s *Server) checkReady(ctx context.Context) readiness {
	ctx = context.WithoutCancel(ctx) // one caller leaving must not fail the others' round
	timeout := s.deps.ReadyTimeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	rd := readiness{Status: stateReady, Checks: map[string]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range s.deps.ReadyChecks {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			start := time.Now()
			err := c.Check(cctx)
			s.deps.Metrics.Check(c.Name, err == nil, time.Since(start))
			s.noteReadiness(c.Name, err)
			mu.Lock()
			defer mu.Unlock()
			rd.Checks[c.Name] = "ok"
			if err != nil {
				rd.Checks[c.Name], rd.Status = "down", stateNotReady
			}
		})
	}
	wg.Wait()
	return rd
}

// noteReadiness logs a dependency going down (with why) and coming back,
// once per change rather than at every probe.
func (s *Server) noteReadiness(name string, err error) {
	s.readyMu.Lock()
	was, seen := s.readyDown[name]
	s.readyDown[name] = err != nil
	s.readyMu.Unlock()
	switch {
	case err != nil && (!seen || !was):
		s.deps.Logger.Error("not ready: a dependency does not answer", "dependency", name, "err", err)
	case err == nil && seen && was:
		s.deps.Logger.Info("ready again: the dependency answers", "dependency", name)
	}
}

// serveMetrics serves the Prometheus figures to whoever GRIN_METRICS lets.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	switch s.deps.MetricsAccess {
	case config.MetricsOff:
		writeProblem(w, http.StatusNotFound, "metrics are off on this server (GRIN_METRICS=off)")
		return
	case config.MetricsPublic:
	case config.MetricsLoopback:
		if localPeer(r) {
			break
		}
		fallthrough
	default: // config.MetricsAuth, and unset
		if !s.authorizeMetrics(w, r) {
			return
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	s.metricsHandler.ServeHTTP(w, r)
}

// authorizeMetrics asks for credentials the policy lets read "metrics";
// it answers the refusal itself and returns false.
func (s *Server) authorizeMetrics(w http.ResponseWriter, r *http.Request) bool {
	tok := ""
	if h := r.Header.Get("Authorization"); h != "" {
		if scheme, t, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
			tok = strings.TrimSpace(t)
		}
	} else {
		tok = strings.TrimSpace(r.Header.Get("access_token"))
	}
	id, err := s.deps.Auth.Authenticate(r.Context(), auth.Credentials{Protocol: auth.HTTP, Token: tok, UserID: r.Header.Get("user_id")})
	if err != nil {
		if !auth.IsInvalidCredentials(err) {
			s.deps.Logger.ErrorContext(r.Context(), "authentication failed", "err", err)
			writeProblem(w, http.StatusServiceUnavailable, "grin could not check your credentials just now; try again")
			return false
		}
		writeProblem(w, http.StatusForbidden, "Invalid Credentials: the metrics need a token or the API key whose holder may read \"metrics\" (GRIN_METRICS=auth)")
		return false
	}
	ok, err := s.decide(id, metricsNeed.object, metricsNeed.action)
	if err != nil {
		s.deps.Logger.ErrorContext(r.Context(), "policy decision failed", "err", err)
		writeProblem(w, http.StatusInternalServerError, "the policy could not decide this request; see the server log")
		return false
	}
	if !ok {
		writeProblem(w, http.StatusForbidden, "Permission denied: the metrics need "+metricsNeed.String()+", which is not granted to "+id.Name)
		return false
	}
	return true
}

// localPeer reports whether the request comes from this machine and not
// through a proxy: a reverse proxy on the same machine connects from
// loopback on behalf of anyone, and says so in its forwarding headers.
func localPeer(r *http.Request) bool {
	if r.Header.Get("X-Forwarded-For") != "" || r.Header.Get("Forwarded") != "" || r.Header.Get("X-Real-Ip") != "" {
		return false
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

// routeKey carries a request's route record on its context.
type routeKey struct{}

// routeRecord is filled by routed with the pattern that serves the
// request, for the metrics and the request log.
type routeRecord struct{ pattern string }

// recordRoute notes pattern ("GET /users/{user_id}") as the request's route.
func recordRoute(r *http.Request, pattern string) {
	if rec, ok := r.Context().Value(routeKey{}).(*routeRecord); ok {
		_, path, found := strings.Cut(pattern, " ")
		if !found {
			path = pattern
		}
		rec.pattern = strings.TrimSuffix(path, "{$}")
	}
}

// observe names, times, counts and logs every request. The id is the
// client's X-Request-Id when it is sane (requestid.Sane), else a new one;
// it is returned in the same header, rides on the context (so every log
// line of the request, and the hooks' ctx, carry it), and ends the
// request's log line with the route, status and duration. The path is
// logged without its query, where a socket's token travels.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(requestid.Header)
		if !requestid.Sane(id) {
			id = requestid.New()
		}
		w.Header().Set(requestid.Header, id)
		rec := &routeRecord{}
		rw := &recorder{ResponseWriter: w}
		ctx := context.WithValue(requestid.With(r.Context(), id), routeKey{}, rec)
		r = r.WithContext(ctx)
		defer func() {
			route := rec.pattern
			if route == "" {
				route = "unmatched"
			}
			d := time.Since(start)
			status := rw.code()
			s.deps.Metrics.Request(r.Method, route, status, d, rw.hijacked)
			level := slog.LevelInfo
			switch {
			case route == "/healthz" || route == "/readyz" || route == "/metrics":
				level = slog.LevelDebug // probes and scrapes, every few seconds
			case status >= 500:
				level = slog.LevelWarn
			}
			s.deps.Logger.LogAttrs(ctx, level, "request", slog.String("method", r.Method), slog.String("route", route),
				slog.String("path", r.URL.Path), slog.Int("status", status), slog.Float64("duration_ms", float64(d.Microseconds())/1000),
				slog.String("client", r.RemoteAddr))
		}()
		next.ServeHTTP(rw, r)
	})
}

// recorder notes the status an answer was given, and whether the
// connection was taken over (a WebSocket).
type recorder struct {
	http.ResponseWriter
	status   int
	hijacked bool
}

func (rw *recorder) WriteHeader(code int) {
	if rw.status == 0 {
		rw.status = code
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *recorder) Write(b []byte) (int, error) {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	return rw.ResponseWriter.Write(b)
}

// Hijack hands the connection over (WebSocket handshakes).
func (rw *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, b, err := http.NewResponseController(rw.ResponseWriter).Hijack()
	if err == nil {
		rw.hijacked = true
	}
	return c, b, err
}

// Flush passes flushes on (streamed answers).
func (rw *recorder) Flush() { http.NewResponseController(rw.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController reach the connection's writer.
func (rw *recorder) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

func (rw *recorder) code() int {
	switch {
	case rw.hijacked:
		return http.StatusSwitchingProtocols
	case rw.status == 0:
		return http.StatusOK
	}
	return rw.status
}

// writeJSON answers v as JSON, never cached.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
