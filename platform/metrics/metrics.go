// Package metrics keeps one grin instance's figures for Prometheus: the
// instruments that grin's parts observe (requests, chat turns, memory
// operations, readiness checks), and collectors that read, at scrape
// time, the figures other parts already keep (plugins' calls, the policy's
// decisions, sessions and sockets), so nothing is counted twice.
//
// Labels name routes, operations, outcomes and plugins, never users,
// sessions, raw paths or anything secret: a scrape shows how grin is
// doing, not who is using it.
//
// Each instance has its own registry (no global state): two grins in one
// process, as in tests, never mix their figures. Serving the figures over
// HTTP is platform/api's job.
package metrics

import (
	"database/sql"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// namespace prefixes every grin metric.
const namespace = "grin"

// Metrics is one instance's registry and instruments.
//
// Notes: safe for concurrent use; a nil *Metrics observes nothing, so
// parts built without one (tools, tests) need no checks.
type Metrics struct {
	reg *prometheus.Registry

	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	turns    *prometheus.CounterVec
	turnTime prometheus.Histogram
	memory   *prometheus.HistogramVec
	checks   *prometheus.HistogramVec
	commits  *prometheus.HistogramVec
	writes   prometheus.Counter
	sqlTime  *prometheus.HistogramVec
}

// New returns an instance's metrics, with the Go runtime's and the
// process's figures registered.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "http_requests_total",
			Help: "HTTP requests answered, by method, route pattern (never the raw path) and status.",
		}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by method and route pattern; WebSocket connections are counted in grin_http_requests_total, not timed here.",
			Buckets: prometheus.ExponentialBucketsRange(0.0005, 60, 16),
		}, []string{"method", "route"}),
		turns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "chat_turns_total",
			Help: "Chat turns (a user's message and the cat's answer), by transport (websocket, http) and outcome (answered, failed, refused).",
		}, []string{"transport", "outcome"}),
		turnTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "chat_turn_duration_seconds",
			Help:    "Time from a user's message to the end of the cat's answer, hooks, recall, model and storage included.",
			Buckets: prometheus.ExponentialBucketsRange(0.001, 300, 18),
		}),
		memory: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "memory_operation_duration_seconds",
			Help:    "Time of vector memory operations, by backend (embedded: the SQLite file; weaviate), operation and outcome (ok, error).",
			Buckets: prometheus.ExponentialBucketsRange(0.0001, 30, 16),
		}, []string{"backend", "operation", "outcome"}),
		checks: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "dependency_check_duration_seconds",
			Help:    "Time of readiness checks (GET /readyz) of grin's dependencies (database, weaviate), by dependency and outcome (ok, down).",
			Buckets: prometheus.ExponentialBucketsRange(0.0001, 10, 14),
		}, []string{"dependency", "outcome"}),
	}
	m.commits = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "database_commit_duration_seconds",
		Help:    "Time of the chat path's write transactions (each holds many users' turns: group commit), from begin to commit or rollback, by outcome (ok, error).",
		Buckets: prometheus.ExponentialBucketsRange(0.0001, 10, 16),
	}, []string{"outcome"})
	m.writes = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "database_committed_writes_total",
		Help: "Callers' writes (a chat turn is one) committed by the chat path's write transactions; divided by the commits, the group size.",
	})
	m.sqlTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "database_statement_duration_seconds",
		Help:    "Time PostgreSQL took to answer each statement, by kind (select, insert, update, delete, begin, commit, …) and outcome (ok, error). SQLite runs in the process: its time is the CPU's.",
		Buckets: prometheus.ExponentialBucketsRange(0.0001, 10, 16),
	}, []string{"statement", "outcome"})
	reg.MustRegister(m.requests, m.latency, m.turns, m.turnTime, m.memory, m.checks, m.commits, m.writes, m.sqlTime,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Gatherer is what the metrics endpoint serves.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// Request records an HTTP answer. route is the pattern that served it
// ("/users/{user_id}"), or "unmatched"; hijacked (WebSocket) connections
// are counted but not timed, since they last as long as the socket.
func (m *Metrics) Request(method, route string, status int, d time.Duration, hijacked bool) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	if !hijacked {
		m.latency.WithLabelValues(method, route).Observe(d.Seconds())
	}
}

// Turn outcomes.
const (
	TurnAnswered = "answered"
	TurnFailed   = "failed"
	TurnRefused  = "refused"
)

// Turn records a chat turn over transport ("websocket" or "http") that
// ended with outcome after d.
func (m *Metrics) Turn(transport, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.turns.WithLabelValues(transport, outcome).Inc()
	if outcome != TurnRefused {
		m.turnTime.Observe(d.Seconds())
	}
}

// Check records a readiness check of dependency.
func (m *Metrics) Check(dependency string, ok bool, d time.Duration) {
	if m == nil {
		return
	}
	outcome := "ok"
	if !ok {
		outcome = "down"
	}
	m.checks.WithLabelValues(dependency, outcome).Observe(d.Seconds())
}

// observeMemory records one memory operation.
func (m *Metrics) observeMemory(backend, op string, err error, d time.Duration) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.memory.WithLabelValues(backend, op, outcome).Observe(d.Seconds())
}

// Commit records one of the chat path's write transactions
// (database.Committer.Observe).
func (m *Metrics) Commit(writes int, d time.Duration, err error) {
	if m == nil {
		return
	}
	m.commits.WithLabelValues(outcomeOf(err)).Observe(d.Seconds())
	if err == nil {
		m.writes.Add(float64(writes))
	}
}

// Statement records one statement PostgreSQL answered
// (database.ObserveStatements).
func (m *Metrics) Statement(kind string, d time.Duration, err error) {
	if m == nil {
		return
	}
	m.sqlTime.WithLabelValues(kind, outcomeOf(err)).Observe(d.Seconds())
}

func outcomeOf(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

// WatchDatabase exports database/sql's figures of db (connections open and
// in use, waits for a connection and the time spent waiting): with SQLite's
// single connection, the wait is where a busy database shows.
func (m *Metrics) WatchDatabase(db *sql.DB, name string) {
	if m == nil {
		return
	}
	m.reg.MustRegister(collectors.NewDBStatsCollector(db, name))
}
