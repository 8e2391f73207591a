// Package api is grin's HTTP face: the huma operations of the
// Cheshire Cat-compatible API, the one middleware that authenticates and
// authorizes every operation, and the documentation pages. It is the only
// package that knows about HTTP; it calls domain services and maps their
// sentinel errors to statuses.
package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/singleflight"

	"github.com/grin-ai/grin/platform/admin"
	"github.com/grin-ai/grin/platform/audit"
	"github.com/grin-ai/grin/platform/auth"
	"github.com/grin-ai/grin/platform/chat"
	"github.com/grin-ai/grin/platform/llm"
	"github.com/grin-ai/grin/platform/memory"
	"github.com/grin-ai/grin/platform/metrics"
	"github.com/grin-ai/grin/platform/rabbithole"
	"github.com/grin-ai/grin/platform/redact"
	"github.com/grin-ai/grin/platform/session"
	"github.com/grin-ai/grin/platform/settings"
	"github.com/grin-ai/grin/platform/users"
	"github.com/grin-ai/grin/policies"
	"github.com/grin-ai/grin/wasmhooks"
)

func init() {
	// Arrays in grin's answers are never null (handlers return empty
	// slices), and a nullable array becomes *[]T in generated Go clients.
	// huma keeps this switch as a package variable; it is set once, here.
	huma.DefaultArrayNullable = false
}

// Version is reported by GET / and in the OpenAPI document.
const Version = "0.1.0"

// Deps are the domain services the API serves.
type Deps struct {
	Users        *users.Store
	Policy       *policies.Enforcer
	Auth         *auth.Authenticator
	Login        *auth.Login
	AuthHandlers *settings.Registry[auth.Handler]
	Models       *settings.Registry[llm.Model]
	Embedders    *settings.Registry[llm.Embedder]
	// Documents are the Cat's free settings (/settings).
	Documents *settings.Documents
	Cat       *chat.Cat
	Sessions  *session.Registry
	Memory    memory.Store
	Scope     *memory.Scope
	Providers *llm.Current
	Ingester  *rabbithole.Ingester
	Plugins   *wasmhooks.Manager
	// BaseContext outlives requests: background work (ingestion) runs in it.
	BaseContext context.Context
	// AllowedOrigins are the browser origins (host patterns) that may open
	// a WebSocket besides the server's own.
	AllowedOrigins []string
	// Insecure is GRIN_INSECURE: the operator serves beyond loopback with
	// authentication off and accepts the risk.
	Insecure bool
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// a login's client (GRIN_TRUSTED_PROXIES).
	TrustedProxies []netip.Prefix
	// Audit is the audit log every change is recorded in.
	Audit  *audit.Store
	Logger *slog.Logger
	// Metrics are the instance's figures (nil: none kept), and
	// MetricsAccess who may read them (GRIN_METRICS).
	Metrics       *metrics.Metrics
	MetricsAccess string
	// ReadyChecks are the dependencies GET /readyz asks about, each
	// within ReadyTimeout.
	ReadyChecks  []ReadyCheck
	ReadyTimeout time.Duration
}

// Server is grin's HTTP handler.
//
// Notes: safe for concurrent use once built.
type Server struct {
	deps    Deps
	api     huma.API
	mux     *http.ServeMux
	handler http.Handler

	metricsHandler http.Handler
	readyGroup     singleflight.Group
	readyMu        sync.Mutex
	readyDown      map[string]bool // dependency -> down at its last check
	// draining is set once shutdown begins: /readyz answers 503.
	draining atomic.Bool
	// stopping ends when grin stops taking new turns and sockets (Drain);
	// hardStop when the wait for turns in flight is over. Contexts, not
	// channels, so that each socket watches them with context.AfterFunc
	// rather than two goroutines of its own.
	stopping, hardStop      context.Context
	beginStopping, stopHard context.CancelFunc
	// sockets are the open WebSockets, for the shutdown.
	socketsMu sync.Mutex
	sockets   map[*socket]struct{}
	socketsWG sync.WaitGroup
}

// New builds the server and registers every operation.
func New(d Deps) *Server {
	var uploadMax int64
	if d.Ingester != nil {
		uploadMax = d.Ingester.MaxBytes()
	}
	return Prepare(uploadMax).With(d)
}

// Prepared is a server whose operations are registered and which has no
// services yet. Registering is most of the cost of building a server
// (huma derives the schema of every operation's input and output by
// reflection; docs/benchmarks.md), and it needs nothing from the
// services. So a start prepares the server beside opening its database,
// and gives it its services at the end (With).
type Prepared struct {
	s         *Server
	uploadMax int64
}

// Prepare registers every operation. uploadMaxBytes is the largest
// document POST /rabbithole takes: the ingester's limit, which With
// checks (the request's body may be a MiB larger, for the form around the
// document). 0 is for a server without an ingester, such as the one the
// OpenAPI document is made from: its bodies may reach 64 MiB.
func Prepare(uploadMaxBytes int64) *Prepared {
	mux := http.NewServeMux()
	s := &Server{mux: mux, readyDown: map[string]bool{}, sockets: map[*socket]struct{}{}}
	s.stopping, s.beginStopping = context.WithCancel(context.Background())
	s.hardStop, s.stopHard = context.WithCancel(context.Background())
	s.api = humago.New(exactRoot{mux}, Config())
	s.api.UseMiddleware(s.authorize, s.limitBody)

	s.registerStatus()
	s.registerAuth()
	s.registerUsers()
	s.registerPolicies()
	s.registerPolicyViews()
	s.registerPolicyRules()
	s.registerPolicyVersions()
	s.registerAuthHandlers()
	s.registerChat()
	s.registerWebSocket()
	s.registerMemory()
	s.registerProviders()
	s.registerDocuments()
	s.registerRabbithole(uploadMaxBytes)
	s.registerPlugins()
	s.registerAudit()
	s.registerDocs()
	s.registerOps()
	panel := admin.Handler()
	mux.Handle("GET /admin", panel)
	mux.Handle("GET /admin/{file}", panel)
	return &Prepared{s: s, uploadMax: uploadMaxBytes}
}

// With gives the prepared server its services and returns it, ready to
// serve. It must be called exactly once (a second call panics): the
// operations registered by Prepare read their services from the server
// when they are called, never before. It panics too if the ingester's
// limit is not the one the server was prepared with, which would let
// uploads through the HTTP layer that the ingester then refuses, or the
// reverse.
func (p *Prepared) With(d Deps) *Server {
	s := p.s
	if s == nil {
		panic("api: Prepared.With called twice")
	}
	if d.Ingester != nil && d.Ingester.MaxBytes() != p.uploadMax {
		panic(fmt.Sprintf("api: the server was prepared for uploads of %d bytes, its ingester takes %d", p.uploadMax, d.Ingester.MaxBytes()))
	}
	p.s = nil
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	s.deps = d
	s.metricsHandler = http.NotFoundHandler()
	if d.Metrics != nil {
		s.metricsHandler = promhttp.HandlerFor(d.Metrics.Gatherer(), promhttp.HandlerOpts{
			ErrorLog: slogPrinter{s}, ErrorHandling: promhttp.ContinueOnError,
		})
	}
	s.handler = s.observe(s.recoverPanics(s.guardOpenMode(trimTrailingSlash(routed(s.mux)))))
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Document returns the OpenAPI document of the API without a running
// server: the operations are registered with no services behind them.
func Document() *huma.OpenAPI { return New(Deps{}).OpenAPI() }

// OpenAPI returns the API's document.
func (s *Server) OpenAPI() *huma.OpenAPI { return s.api.OpenAPI() }

// Config is the huma configuration: the document's metadata and security
// schemes. It is a function so that the document can be produced without a
// running server (grin openapi).
func Config() huma.Config {
	c := huma.DefaultConfig("grin", Version)
	// No $schema links in bodies: Cat clients do not expect them.
	c.CreateHooks = nil
	c.Transformers = []huma.Transformer{redactErrorValues}
	// grin serves its own offline documentation page.
	c.DocsPath = ""
	c.Info.Description = "grin: a multi-user conversational memory platform that speaks the Cheshire Cat core API. " +
		"Authenticate with a JWT from POST /auth/token, or with the API key plus the user_id header."
	c.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		schemeBearer: {
			Type: "http", Scheme: "bearer", BearerFormat: "JWT or API key",
			Description: "A token from POST /auth/token, or the server's API key (GRIN_API_KEY).",
		},
		schemeAccessToken: {
			Type: "apiKey", In: "header", Name: "access_token",
			Description: "The legacy header of Cheshire Cat clients: a token or the API key.",
		},
		schemeUserID: {
			Type: "apiKey", In: "header", Name: "user_id",
			Description: "With the API key, or while authentication is off: the user to act as (default \"user\"). Ignored with a JWT.",
		},
	}
	return c
}

// redactErrorValues keeps secrets out of validation errors: huma echoes the
// offending value, which for a login or a user update may be a password,
// and for an unreadable body is the whole body.
func redactErrorValues(_ huma.Context, _ string, v any) (any, error) {
	em, ok := v.(*huma.ErrorModel)
	if !ok {
		return v, nil
	}
	for _, d := range em.Errors {
		switch d.Value.(type) {
		case map[string]any, []any, string:
			// Objects (an unexpected property reports its parent, password
			// and all) and strings (which may be the secret) are dropped;
			// the message says what is wrong without them.
			loc := strings.ToLower(d.Location)
			if _, isString := d.Value.(string); !isString || loc == "body" || sensitive(loc) {
				d.Value = nil
			}
		}
	}
	return em, nil
}

// sensitive reports whether an error location names a secret.
func sensitive(loc string) bool { return redact.SecretName(loc) }

// exactRoot registers huma's operations on the mux with a path that ends
// in a slash ("/", the status) as that path only ("/{$}"): in net/http's
// patterns a trailing slash matches everything below, and GET / answered
// every unknown path with the status.
type exactRoot struct{ *http.ServeMux }

func (m exactRoot) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	if strings.HasSuffix(pattern, "/") {
		pattern += "{$}"
	}
	m.ServeMux.HandleFunc(pattern, h)
}

// routed serves what the mux routes, and answers in problem details, as
// every operation does, what it does not: 404 for a path no route serves,
// 405 with Allow for a method the path does not take. The mux itself
// answers those in text/plain.
func routed(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		recordRoute(r, pattern)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// No route: the mux's own answer says whether the path exists
		// with other methods (405 and Allow), or not at all (404, or a
		// redirect to a cleaned path that no route serves either).
		var d decision
		h.ServeHTTP(&d, r)
		if d.code == http.StatusMethodNotAllowed {
			allow := d.header.Get("Allow")
			w.Header().Set("Allow", allow)
			writeProblem(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s does not take %s; it takes %s", r.URL.Path, r.Method, allow))
			return
		}
		writeProblem(w, http.StatusNotFound, fmt.Sprintf("grin serves nothing at %s; its API is described at /docs and /openapi.json", r.URL.Path))
	})
}

// decision records the status and headers a handler answers with, and
// drops its body.
type decision struct {
	header http.Header
	code   int
}

func (d *decision) Header() http.Header {
	if d.header == nil {
		d.header = http.Header{}
	}
	return d.header
}

func (d *decision) WriteHeader(code int) {
	if d.code == 0 {
		d.code = code
	}
}

func (d *decision) Write(b []byte) (int, error) {
	d.WriteHeader(http.StatusOK)
	return len(b), nil
}

// trimTrailingSlash serves "/users/" as "/users": the Cat accepts both for
// every path, and registering each twice would double the document.
func trimTrailingSlash(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; len(p) > 1 && strings.HasSuffix(p, "/") {
			r2 := r.Clone(r.Context())
			r2.URL.Path = strings.TrimRight(p, "/")
			if r2.URL.Path == "" {
				r2.URL.Path = "/"
			}
			r2.URL.RawPath = ""
			next.ServeHTTP(w, r2)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// recoverPanics turns a panic into a logged 500 instead of a dropped
// connection. A panic is a bug; this keeps one bug from taking the
// connection, and the rest of the server, with it.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.deps.Logger.ErrorContext(r.Context(), "panic serving request", "method", r.Method, "path", r.URL.Path, "panic", v)
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(http.StatusInternalServerError)
				w.Write([]byte(`{"title":"Internal Server Error","status":500,"detail":"grin failed while serving this request; the error is in its log"}`))
			}
		}()
		next.ServeHTTP(w, r)
	})
}
