// Package app assembles a grin instance from a configuration: it opens the
// data directory, builds each domain service with its backends, and hands
// back the HTTP handler. It is the one place that knows every concrete
// piece, so cmd/grin and the tests start exactly the same server.
package app

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/grin-ai/grin/platform/api"
	"github.com/grin-ai/grin/platform/audit"
	"github.com/grin-ai/grin/platform/auth"
	"github.com/grin-ai/grin/platform/auth/oidc"
	"github.com/grin-ai/grin/platform/chat"
	"github.com/grin-ai/grin/platform/cluster"
	"github.com/grin-ai/grin/platform/config"
	"github.com/grin-ai/grin/platform/database"
	"github.com/grin-ai/grin/platform/hooks"
	"github.com/grin-ai/grin/platform/llm"
	"github.com/grin-ai/grin/platform/memory"
	"github.com/grin-ai/grin/platform/memory/embedded"
	"github.com/grin-ai/grin/platform/memory/weaviate"
	"github.com/grin-ai/grin/platform/metrics"
	"github.com/grin-ai/grin/platform/rabbithole"
	"github.com/grin-ai/grin/platform/requestid"
	"github.com/grin-ai/grin/platform/session"
	"github.com/grin-ai/grin/platform/settings"
	"github.com/grin-ai/grin/platform/users"
	"github.com/grin-ai/grin/policies"
	"github.com/grin-ai/grin/wasmhooks"
)

// App is a running grin instance without its listener.
//
// Notes: Close releases the database; background work (the policy watcher,
// key refresh) stops when the context given to New is done.
type App struct {
	Config    config.Config
	Handler   *api.Server
	Users     *users.Store
	Policy    *policies.Enforcer
	Auth      *auth.Authenticator
	Login     *auth.Login
	Memory    memory.Store
	Sessions  *session.Registry
	Providers *llm.Current
	Ingester  *rabbithole.Ingester
	Plugins   *wasmhooks.Manager
	Audit     *audit.Store
	// Metrics are this instance's figures, served at GET /metrics.
	Metrics *metrics.Metrics
	// GeneratedAdminPassword is set on the first start when no admin
	// password was configured; the caller shows it once.
	GeneratedAdminPassword string

	db     *sql.DB
	reads  *sql.DB
	ckpt   *database.Checkpoints // nil on PostgreSQL
	engine *wasmhooks.Engine
	bus    *cluster.Postgres // nil on SQLite
}

// Option adjusts an App before it starts; for embedders and tests.
type Option func(*options)

type options struct {
	bcryptCost int
	handlers   []auth.Handler
	hooks      hooks.Runner
}

// WithHooks installs the hook runner (the plugin host).
func WithHooks(r hooks.Runner) Option { return func(o *options) { o.hooks = r } }

// WithBcryptCost lowers the password hashing cost (tests only).
func WithBcryptCost(c int) Option { return func(o *options) { o.bcryptCost = c } }

// WithAuthHandlers registers an embedder's custom auth handlers, tried in
// order before every other way to authenticate.
func WithAuthHandlers(h ...auth.Handler) Option {
	return func(o *options) { o.handlers = append(o.handlers, h...) }
}

// New builds a grin instance. Background work runs until ctx is done.
func New(ctx context.Context, cfg config.Config, logger *slog.Logger, opts ...Option) (_ *App, err error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	// Every log line made in a request's context names the request.
	logger = slog.New(requestid.Handler(logger.Handler()))
	if cfg.DatabaseURL != "" {
		if cfg.Memory.Backend != "weaviate" {
			return nil, errEmbeddedOnPostgres
		}
	}
	// The data directory holds this instance's own files even when the
	// database is elsewhere: compiled plugins, the policy files it mirrors.
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", cfg.DataDir, err)
	}
	// Two parts of a start need nothing from the database: registering
	// the API's operations (huma derives every schema by reflection) and
	// the WebAssembly engine. They are built beside the rest, on another
	// core, and taken when they are needed.
	uploadMax := cfg.UploadMaxBytes // the API's body limit and the ingester's
	takeAPI := beside(func() (*api.Prepared, error) { return api.Prepare(uploadMax), nil })
	takeEngine := beside(func() (*wasmhooks.Engine, error) {
		return wasmhooks.NewEngine(ctx, engineConfig(cfg, logger.With("component", "plugins")))
	})
	defer func() {
		if err != nil {
			if engine, _ := takeEngine(); engine != nil {
				engine.Close(ctx)
			}
		}
	}()
	// One registry per instance: the database's figures from the start.
	figures := metrics.New()
	db, reads, ckpt, err := openDatabase(ctx, cfg, figures, logger.With("component", "database"))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			closeDatabase(db, reads, ckpt)
		}
	}()
	// Replicas on one PostgreSQL tell each other what changed through it;
	// one process on SQLite has nobody to tell.
	var bus cluster.Bus = cluster.Local{}
	var pgBus *cluster.Postgres
	if u := cfg.DatabaseURL.Reveal(); u != "" {
		if pgBus, err = cluster.NewPostgres(ctx, cluster.PostgresConfig{URL: u, DB: db, Logger: logger.With("component", "cluster")}); err != nil {
			return nil, fmt.Errorf("GRIN_DATABASE_URL: listen for the other replicas: %w", err)
		}
		defer func() {
			if err != nil {
				pgBus.Close()
			}
		}()
		bus = pgBus
		logger.Info("replicas on this database act as one grin", "replica", bus.ID())
	}
	auditLog := audit.New(db)
	go auditLog.Retain(ctx, cfg.AuditRetention, logger.With("component", "audit"))
	// The chat path's writes go through one committer, which commits many
	// users' turns together; its reads go to read-only connections beside
	// the writer.
	commit := database.NewCommitter(db)
	commit.Observe(figures.Commit)
	policy, err := policies.Open(ctx, cfg.DataDir, db, logger.With("component", "policy"),
		policies.WithUsers(users.NewDirectory(db)), policies.WithBus(bus),
		policies.WithFileEdits(recordPolicyFileEdit(auditLog, logger.With("component", "audit"))))
	if err != nil {
		return nil, err
	}
	if err := policy.Watch(ctx); err != nil {
		return nil, err
	}
	userOpts := []users.Option{users.WithLogger(logger.With("component", "users"))}
	if o.bcryptCost != 0 {
		userOpts = append(userOpts, users.WithBcryptCost(o.bcryptCost))
	}
	userOpts = append(userOpts, users.WithBus(bus))
	store, err := users.New(db, policy, userOpts...)
	if err != nil {
		return nil, err
	}
	store.Follow(ctx)
	generated, err := store.Bootstrap(ctx, cfg.AdminPassword.Reveal(), cfg.UserPassword.Reveal())
	if err != nil {
		return nil, err
	}
	secret := []byte(cfg.JWTSecret.Reveal())
	if len(secret) == 0 {
		if secret, err = auth.LoadOrCreateSecret(ctx, db, cfg.DataDir); err != nil {
			return nil, err
		}
	}
	tokens, err := auth.NewTokens(secret, cfg.JWTExpire)
	if err != nil {
		return nil, err
	}
	authn := auth.NewAuthenticator(auth.Keys{
		API: cfg.APIKey.Reveal(), WS: cfg.APIKeyWS.Reveal(), Required: cfg.AuthRequired,
	}, tokens, store, o.handlers...)
	handlerSettings := settings.New(db, "auth_handler", authn.SetSelected,
		auth.CoreOnlyFactory(), oidc.Factory(ctx, logger.With("component", "oidc")))
	handlerSettings.Share(ctx, bus, logger.With("component", "auth"))
	if err := selectAuthHandler(ctx, cfg, handlerSettings); err != nil {
		return nil, err
	}
	login := auth.NewLogin(db, store, tokens, auth.LoginLimits{
		Concurrent: cfg.Login.Concurrent, PerClient: cfg.Login.PerAddress,
		ClientPerMinute: cfg.Login.PerMinute, ClientBurst: cfg.Login.Burst,
	})

	mem, wv, err := openMemory(ctx, cfg, commit, reads, logger)
	if err != nil {
		return nil, err
	}
	// The database's connection figures, and every memory operation timed
	// under its backend's name.
	figures.WatchDatabase(db, "grin")
	backend := "embedded"
	if wv != nil {
		backend = "weaviate"
	}
	mem = figures.InstrumentMemory(mem, backend)
	scope := memory.NewScope(mem, policy)
	providers := llm.NewCurrent(llm.Offline{}, llm.NewHashing(0))
	models := settings.New(db, "llm", providers.SetModel, llm.ModelFactories(logger.With("component", "llm"))...)
	embedders := settings.New(db, "embedder", providers.SetEmbedder, llm.EmbedderFactories(logger.With("component", "embedder"))...)
	models.Share(ctx, bus, logger.With("component", "llm"))
	embedders.Share(ctx, bus, logger.With("component", "embedder"))
	// Providers named by the environment are selected (and saved); a
	// misconfigured one stops the start, as any bad setting does.
	if err := selectProvider(ctx, models, cfg.LLM, map[string]string{
		"default": llm.ConfigLLMDefault, "openai": llm.ConfigLLMOpenAI,
		"openai-compatible": llm.ConfigLLMOpenAICompatible, "ollama": llm.ConfigLLMOllama,
	}); err != nil {
		return nil, fmt.Errorf("GRIN_LLM: %w", err)
	}
	if err := selectProvider(ctx, embedders, cfg.Embedder, map[string]string{
		"default": llm.ConfigEmbedderDefault, "openai": llm.ConfigEmbedderOpenAI,
		"openai-compatible": llm.ConfigEmbedderOpenAICompatible,
	}); err != nil {
		return nil, fmt.Errorf("GRIN_EMBEDDER: %w", err)
	}
	// A saved provider that is down at start must not keep grin down: the
	// offline defaults stay in force and the settings can be fixed through
	// the API.
	if err := models.Restore(ctx); err != nil {
		logger.Error("the saved language model is unavailable; answering with the offline model until it is fixed in /llm/settings", "err", err)
	}
	if err := embedders.Restore(ctx); err != nil {
		logger.Error("the saved embedder is unavailable; using the offline embedder until it is fixed in /embedder/settings", "err", err)
	}
	if wv != nil {
		// Weaviate keeps one vector size per collection: an embedder
		// whose vectors do not fit stops the start, explained, and is
		// refused when chosen through the API.
		check := func(ctx context.Context, e llm.Embedder) error {
			return wv.CheckEmbedder(ctx, e.Name(), e.Dimensions())
		}
		current := providers.Embedder()
		if err := check(ctx, current); err != nil {
			return nil, fmt.Errorf("the embedder in force does not fit the memories stored in Weaviate: %w", err)
		}
		if infos, err := wv.Vectors(ctx); err == nil {
			for _, info := range infos {
				if info.Embedder != current.Name() {
					logger.Warn("memories in Weaviate were made by another embedder of the same size; recall compares only vectors of the embedder in force",
						"collection", info.Collection, "stored_by", info.Embedder, "embedder", current.Name())
				}
			}
		}
		embedders.Check(check)
		go wv.CoolIdle(ctx, cfg.Memory.Weaviate.ColdAfter, bus)
	}
	engine, err := takeEngine()
	if err != nil {
		return nil, err
	}
	plugins, err := wasmhooks.NewManager(ctx, engine, db, filepath.Join(cfg.DataDir, "plugins"), logger.With("component", "plugins"),
		wasmhooks.WithBus(bus))
	if err != nil {
		return nil, err
	}
	go plugins.EvictIdleLoop(ctx, wasmhooks.PerUserIdle)
	var runner hooks.Runner = plugins
	if o.hooks != nil {
		runner = o.hooks
	}
	history, err := session.NewHistory(ctx, commit, reads)
	if err != nil {
		return nil, err
	}
	sessions := session.NewRegistry(history, cfg.SessionIdle, cfg.MaxSocketsPerUser, logger.With("component", "session"),
		session.Replicated(bus, db, cfg.TurnLease))
	go sessions.Run(ctx)
	cat := chat.New(chat.DefaultConfig(), mem, scope, providers, runner, sessions, logger.With("component", "chat"))
	// Plugins' host capabilities, each as the policy grants it to the
	// plugin and, for a user's data, as the user may.
	plugins.EnableCapabilities(wasmhooks.HostServices{
		Policy: policy, Scope: scope, Store: mem, Providers: providers, Sessions: sessions,
		AllowPrivate: cfg.RabbitholeAllowPrivate,
		Limits: wasmhooks.CapabilityLimits{
			KVQuotaBytes: cfg.PluginCaps.KVQuotaBytes, LLMTimeout: cfg.PluginCaps.LLMTimeout, LLMMaxTokens: cfg.PluginCaps.LLMMaxTokens,
			FetchTimeout: cfg.PluginCaps.FetchTimeout, FetchMaxBytes: cfg.PluginCaps.FetchMaxBytes,
		},
	})

	// A deleted user takes their memories, conversation and sockets along.
	// Sessions first: Forget waits for a turn in progress and refuses
	// later ones, so nothing is written after the memories are erased.
	store.OnDelete(func(ctx context.Context, id string) error {
		err := sessions.Forget(ctx, id, "this user was deleted")
		_, err2 := mem.DeleteWhere(ctx, memory.Episodic, []string{id}, nil)
		return errors.Join(err, err2)
	})

	ingester := rabbithole.NewIngester(mem, scope, policy, providers, runner, sessions,
		&rabbithole.Fetcher{AllowPrivate: cfg.RabbitholeAllowPrivate}, rabbithole.Limits{
			MaxBytes: uploadMax, MinChunkSize: cfg.Ingest.MinChunkSize, MaxPoints: cfg.Ingest.MaxPoints,
			UserQuota: cfg.Ingest.UserQuota, SpaceQuota: cfg.Ingest.SpaceQuota,
			UserConcurrent: cfg.Ingest.PerUser, TotalConcurrent: cfg.Ingest.Total,
		}, logger.With("component", "rabbithole"))
	// A deleted user's ingestions stop, and what they stored goes, before
	// the deletion answers: nothing of theirs lands afterwards.
	store.OnDelete(ingester.CancelUser)
	// What plugins keep for a user (their key-value stores) goes too.
	store.OnDelete(plugins.EraseUser)

	figures.Watch(metrics.Sources{
		Plugins: plugins.AllStats,
		Policy:  policy.Figures,
		Sessions: func() (int, int) {
			return sessions.Live(), sessions.Sockets()
		},
	})
	// What a load balancer's readiness probe asks: the database answers,
	// and Weaviate when memories live there.
	checks := []api.ReadyCheck{{Name: "database", Check: func(ctx context.Context) error {
		var one int
		return db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
	}}}
	if wv != nil {
		checks = append(checks, api.ReadyCheck{Name: "weaviate", Check: wv.Ready})
	}
	prepared, _ := takeAPI()
	srv := prepared.With(api.Deps{
		Users: store, Policy: policy, Auth: authn, Login: login,
		AuthHandlers: handlerSettings, Models: models, Embedders: embedders,
		Documents: settings.NewDocuments(db),
		Cat:       cat, Sessions: sessions, Memory: mem, Scope: scope, Providers: providers,
		Ingester: ingester, BaseContext: ctx, Plugins: plugins,
		AllowedOrigins: cfg.AllowedOrigins, Insecure: cfg.Insecure,
		TrustedProxies: cfg.Login.TrustedProxies,
		Audit:          auditLog,
		Logger:         logger.With("component", "api"),
		Metrics:        figures, MetricsAccess: cfg.Ops.Metrics,
		ReadyChecks: checks, ReadyTimeout: cfg.Ops.ReadyTimeout,
	})
	// Revoked tokens (a new password, log out everywhere) end the sockets
	// opened with them at once.
	store.OnRevoke(func(_ context.Context, id string, epoch int64) { srv.CloseRevokedSockets(id, epoch) })
	return &App{
		Config: cfg, Handler: srv, Users: store, Policy: policy, Auth: authn, Login: login,
		Memory: mem, Sessions: sessions, Providers: providers, Ingester: ingester, Plugins: plugins,
		Audit:   auditLog,
		Metrics: figures,
		engine:  engine, bus: pgBus,
		GeneratedAdminPassword: generated, db: db, reads: reads, ckpt: ckpt,
	}, nil
}

// beside runs f on a goroutine of its own, for a step of the start that
// can run beside the others; the function it returns waits for f and
// gives every caller the same result.
func beside[T any](f func() (T, error)) func() (T, error) {
	var (
		v    T
		err  error
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		v, err = f()
	}()
	return func() (T, error) {
		<-done
		return v, err
	}
}

// engineConfig is the WebAssembly engine's configuration from grin's.
func engineConfig(cfg config.Config, logger *slog.Logger) wasmhooks.EngineConfig {
	return wasmhooks.EngineConfig{
		CacheDir: filepath.Join(cfg.DataDir, "wasm-cache"), MemoryMiB: cfg.PluginMemoryMiB,
		Logger:      logger,
		InitTimeout: cfg.PluginInitTimeout, InitBackoff: cfg.PluginInitBackoff, InitFailures: cfg.PluginInitFailures,
		LogRate: cfg.PluginLogRate, LogBurst: cfg.PluginLogBurst, LogLineBytes: cfg.PluginLogLineBytes,
		LogEntries: cfg.PluginLogEntries,
	}
}

// recordPolicyFileEdit records in the audit log each edit of the policy
// files the watcher reads, put in force or refused. Who edited them grin
// cannot tell; the entry says the files did.
func recordPolicyFileEdit(log *audit.Store, logger *slog.Logger) func(context.Context, policies.FileEdit) {
	return func(ctx context.Context, ed policies.FileEdit) {
		e := audit.Entry{
			Actor:  audit.Actor{Kind: audit.ActorFile, Name: policies.ModelFile + ", " + policies.PolicyFile},
			Action: audit.PolicyFile, Target: policies.PolicyObject,
			Before: audit.JSON(ed.Before), After: audit.JSON(ed.After), Outcome: audit.Success,
		}
		if ed.Refused {
			e.Outcome = audit.Refused
			why := make([]string, len(ed.Problems))
			for i, p := range ed.Problems {
				why[i] = p.String()
			}
			e.Detail = "the edit was refused and the previous policy stays in force: " + strings.Join(why, "; ")
		}
		if _, err := log.Append(ctx, e); err != nil {
			logger.Error("an edit of the policy files is missing from the audit log", "err", err, "refused", ed.Refused)
		}
	}
}

// openMemory opens the configured memory backend; wv is set when it is
// Weaviate.
func openMemory(ctx context.Context, cfg config.Config, commit *database.Committer, reads *sql.DB, logger *slog.Logger) (_ memory.Store, wv *weaviate.Store, _ error) {
	if cfg.Memory.Backend != "weaviate" {
		mem, err := embedded.New(ctx, commit, reads, 0)
		return mem, nil, err
	}
	wv, err := weaviate.Open(ctx, WeaviateConfig(cfg.Memory.Weaviate, logger.With("component", "weaviate")))
	if err != nil {
		return nil, nil, fmt.Errorf("GRIN_MEMORY=weaviate: %w", err)
	}
	logger.Info("memories live in Weaviate", "url", cfg.Memory.Weaviate.URL, "collections", wv.Class(memory.Episodic)+", "+wv.Class(memory.Declarative)+", "+wv.Class(memory.Procedural))
	return wv, wv, nil
}

// WeaviateConfig is the Weaviate store's configuration from grin's
// settings: the one translation, for the server and for grin memory
// migrate.
func WeaviateConfig(w config.Weaviate, logger *slog.Logger) weaviate.Config {
	return weaviate.Config{
		URL: w.URL, GRPCPort: w.GRPCPort, GRPCPorts: w.GRPCPorts, APIKey: w.APIKey.Reveal(), Prefix: w.Prefix,
		Replication: w.Replication, Logger: logger,
	}
}

// selectAuthHandler applies GRIN_AUTH_HANDLER, or restores the handler
// saved through the API when it is unset.
func selectAuthHandler(ctx context.Context, cfg config.Config, s *settings.Registry[auth.Handler]) error {
	switch cfg.AuthHandler {
	case "oidc":
		o := cfg.OIDC
		raw, err := json.Marshal(oidc.Config{
			Issuer: o.Issuer, Audience: o.Audience, JWKSURL: o.JWKSURL,
			UserIDClaim: o.UserIDClaim, UsernameClaim: o.UsernameClaim,
			RolesClaim: o.RolesClaim, RoleMap: o.RoleMap, DefaultRoles: o.DefaultRoles,
		})
		if err != nil {
			return err
		}
		if _, err := s.Put(ctx, oidc.Name, raw); err != nil {
			return fmt.Errorf("GRIN_AUTH_HANDLER=oidc: %w", err)
		}
	case "core":
		if _, err := s.Put(ctx, auth.CoreOnly, json.RawMessage(`{}`)); err != nil {
			return err
		}
	default:
		if err := s.Restore(ctx); err != nil {
			return fmt.Errorf("restore the saved auth handler (set GRIN_AUTH_HANDLER=core to start without it): %w", err)
		}
	}
	return nil
}

// selectProvider puts the provider the environment names in force.
func selectProvider[T any](ctx context.Context, r *settings.Registry[T], p config.Provider, names map[string]string) error {
	if p.Kind == "" {
		return nil
	}
	doc := map[string]any{}
	if p.BaseURL != "" {
		doc["base_url"] = p.BaseURL
	}
	if p.APIKey != "" {
		doc["api_key"] = p.APIKey.Reveal()
	}
	if p.Model != "" {
		doc["model"] = p.Model
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	_, err = r.Put(ctx, names[p.Kind], raw)
	return err
}

// Database is the instance's database handle, for tools and tests that
// must reach it as the server does (a readiness test holds its one
// connection); the services own what is in it.
func (a *App) Database() *sql.DB { return a.db }

// Close waits for background ingestions (which stop when New's context is
// done), then releases the plugins' runtime and the database.
func (a *App) Close() error {
	a.Ingester.Wait()
	// The sessions leave the bus (releasing their leases, saying goodbye)
	// before it closes, and it before the database.
	a.Sessions.Close()
	var errBus error
	if a.bus != nil {
		errBus = a.bus.Close()
	}
	return errors.Join(a.engine.Close(context.Background()), errBus, closeDatabase(a.db, a.reads, a.ckpt))
}

// errEmbeddedOnPostgres refuses the embedded memory store beside
// PostgreSQL: its vectors live in a SQLite file on one machine, which
// replicas sharing the database could not share.
var errEmbeddedOnPostgres = errors.New("GRIN_DATABASE_URL: memories cannot stay in the embedded store, a SQLite file on this machine that other replicas could not reach; " +
	"set GRIN_MEMORY=weaviate (and GRIN_WEAVIATE_URL) to keep them in Weaviate, or leave GRIN_DATABASE_URL unset to keep everything in the data directory")

// openDatabase opens the configured database: PostgreSQL when
// GRIN_DATABASE_URL is set, else the SQLite file in the data directory.
// reads is the handle for the chat path's reads: SQLite's read-only
// connections beside its one writer; on PostgreSQL the same pool. On
// SQLite the write-ahead log is checkpointed beside the writer (ckpt).
func openDatabase(ctx context.Context, cfg config.Config, figures *metrics.Metrics, logger *slog.Logger) (db, reads *sql.DB, ckpt *database.Checkpoints, err error) {
	if u := cfg.DatabaseURL.Reveal(); u != "" {
		db, err := database.OpenPostgres(ctx, u, database.MaxConns(cfg.DatabaseConns), database.ObserveStatements(figures.Statement))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("GRIN_DATABASE_URL: %w", err)
		}
		return db, db, nil, nil
	}
	if db, err = database.Open(ctx, cfg.DataDir); err != nil {
		return nil, nil, nil, err
	}
	if reads, err = database.OpenReads(ctx, cfg.DataDir); err != nil {
		db.Close()
		return nil, nil, nil, err
	}
	if ckpt, err = database.StartCheckpoints(ctx, cfg.DataDir, db, logger); err != nil {
		closeDatabase(db, reads, nil)
		return nil, nil, nil, err
	}
	return db, reads, ckpt, nil
}

func closeDatabase(db, reads *sql.DB, ckpt *database.Checkpoints) error {
	var errCkpt error
	if ckpt != nil {
		errCkpt = ckpt.Close()
	}
	if reads == db {
		return errors.Join(errCkpt, db.Close())
	}
	return errors.Join(errCkpt, reads.Close(), db.Close())
}
