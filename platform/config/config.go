// Package config reads grin's configuration from the environment and the
// command line into one typed tree, and validates all of it at once so an
// operator sees every problem in one go, each naming the variable to fix.
//
// Every setting has a GRIN_ environment variable and a flag that mirrors
// it; the Cheshire Cat's CCAT_ names are read as aliases so a Cat
// deployment's environment works unchanged. Flags win over GRIN_, GRIN_
// over CCAT_.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/grin-ai/grin/platform/memory/weaviate"
)

// Secret is a string that never prints: not in logs, not in %v, not in JSON.
type Secret string

func (Secret) String() string { return "[redacted]" }

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// MarshalText keeps secrets out of JSON and other encodings.
func (Secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// Reveal returns the secret's value, for the one place that uses it.
func (s Secret) Reveal() string { return string(s) }

// Config is the whole configuration of grin serve.
type Config struct {
	Addr          string
	DataDir       string
	APIKey        Secret
	APIKeyWS      Secret
	JWTSecret     Secret
	JWTExpire     time.Duration
	AdminPassword Secret
	UserPassword  Secret
	AuthRequired  bool
	Insecure      bool
	LogLevel      slog.Level
	LogFormat     string
	AuthHandler   string
	OIDC          OIDC
	// SessionIdle is how long an unused session stays in memory.
	SessionIdle time.Duration
	// AllowedOrigins are browser origins (host patterns such as
	// "app.example.com" or "*.example.com") allowed to open WebSockets
	// besides grin's own.
	AllowedOrigins []string
	// MaxSocketsPerUser caps the WebSockets one user may have open at
	// once (0: no limit).
	MaxSocketsPerUser int
	// TurnLease is how long a replica holds a user's turn without
	// renewing it: the longest a replica that dies in a turn delays that
	// user's next message (used only with several replicas).
	TurnLease time.Duration
	// LLM and Embedder select providers at start; empty keeps what was
	// saved through /llm/settings and /embedder/settings.
	LLM      Provider
	Embedder Provider
	// PluginMemoryMiB caps each plugin instance's memory.
	PluginMemoryMiB int
	// PluginLogRate (lines per second) and PluginLogBurst bound each
	// plugin's log lines; PluginLogLineBytes caps one line.
	PluginLogRate      float64
	PluginLogBurst     int
	PluginLogLineBytes int
	// PluginLogEntries is how many recent log lines and failures are kept
	// per plugin for GET /plugins/logs/{id}; negative keeps none, 0 means
	// the default (GRIN_PLUGIN_LOG_ENTRIES=0 is stored as -1).
	PluginLogEntries int
	// PluginInitTimeout bounds a plugin module's initialisation.
	PluginInitTimeout time.Duration
	// PluginInitBackoff is the first wait after a plugin's instance failed
	// to start (doubling up to 5 minutes); PluginInitFailures failures in
	// a row disable the plugin.
	PluginInitBackoff  time.Duration
	PluginInitFailures int
	// PluginCaps bound the host capabilities plugins are granted.
	PluginCaps PluginCaps
	// UploadMaxBytes caps one uploaded document.
	UploadMaxBytes int64
	// Memory selects where memories live.
	Memory Memory
	// DatabaseURL, when set, names the PostgreSQL database that holds
	// what the SQLite file in DataDir holds otherwise. A secret: it
	// usually carries a password.
	DatabaseURL Secret
	// DatabaseConns bounds this process's connections to PostgreSQL.
	DatabaseConns int
	// RabbitholeAllowPrivate lets /rabbithole/web fetch from loopback and
	// private addresses.
	RabbitholeAllowPrivate bool
	// Login bounds the password checks of POST /auth/token.
	Login Login
	// Ingest bounds what uploads may make the server store and embed;
	// zero fields take the rabbit hole's defaults.
	Ingest Ingest
	// AuditRetention is how long audit log entries are kept (0: for
	// ever).
	AuditRetention time.Duration
	// Ops configures what operators and load balancers see: metrics,
	// readiness and shutdown.
	Ops Ops
}

// Who may read GET /metrics (GRIN_METRICS).
const (
	MetricsOff      = "off"      // not served (404)
	MetricsAuth     = "auth"     // callers the policy lets read the object "metrics"
	MetricsLoopback = "loopback" // anyone connecting from loopback, others as with auth
	MetricsPublic   = "public"   // anyone who can reach grin
)

// Ops configures the operational endpoints and the shutdown.
type Ops struct {
	// Metrics says who may read GET /metrics: MetricsOff, MetricsAuth,
	// MetricsLoopback or MetricsPublic.
	Metrics string
	// ReadyTimeout bounds each dependency check of GET /readyz.
	ReadyTimeout time.Duration
	// ShutdownDelay is how long grin keeps serving, not ready, after
	// SIGTERM, so that load balancers stop sending it new clients.
	ShutdownDelay time.Duration
	// ShutdownTimeout bounds the wait for turns in flight at shutdown.
	ShutdownTimeout time.Duration
}

// PluginCaps bound plugins' host capabilities.
type PluginCaps struct {
	// KVQuotaBytes bounds each plugin key-value store.
	KVQuotaBytes int
	// LLMTimeout and LLMMaxTokens bound one llm.complete call.
	LLMTimeout   time.Duration
	LLMMaxTokens int
	// FetchTimeout and FetchMaxBytes bound one http.fetch call.
	FetchTimeout  time.Duration
	FetchMaxBytes int64
}

// Login bounds logins, whose password checks (bcrypt) cost CPU on purpose.
type Login struct {
	// Concurrent is how many password checks run at once; 0: half the
	// CPUs, at least one.
	Concurrent int
	// PerAddress is how many logins one client address may have in
	// progress; PerMinute and Burst, how many it may start.
	PerAddress int
	PerMinute  float64
	Burst      int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client; from anyone else the header is ignored.
	TrustedProxies []netip.Prefix
}

// Ingest bounds uploads to the rabbit hole.
type Ingest struct {
	MinChunkSize int // GRIN_UPLOAD_MIN_CHUNK_SIZE
	MaxPoints    int // GRIN_UPLOAD_MAX_POINTS
	UserQuota    int // GRIN_QUOTA_USER_POINTS
	SpaceQuota   int // GRIN_QUOTA_SPACE_POINTS
	PerUser      int // GRIN_INGEST_MAX_PER_USER
	Total        int // GRIN_INGEST_MAX_TOTAL
}

// Memory selects the memory backend.
type Memory struct {
	Backend  string // "embedded" (SQLite in the data directory) or "weaviate"
	Weaviate Weaviate
}

// Weaviate configures the Weaviate backend (GRIN_MEMORY=weaviate).
type Weaviate struct {
	// URL is one node's HTTP address, or several nodes', comma-separated.
	URL string
	// GRPCPort is every node's gRPC port; GRPCPorts, when the setting
	// lists several, each node's in the order of URL.
	GRPCPort    int
	GRPCPorts   []int
	APIKey      Secret
	Prefix      string
	Replication int
	// ColdAfter is how long a user stays idle before their tenant is set
	// cold (0: never).
	ColdAfter time.Duration
}

// OIDC configures the OpenID Connect handler (GRIN_AUTH_HANDLER=oidc).
type OIDC struct {
	Issuer        string
	Audience      string
	JWKSURL       string
	UserIDClaim   string
	UsernameClaim string
	RolesClaim    string
	RoleMap       map[string]string
	DefaultRoles  []string
}

// Provider configures a model or embedder from the environment.
type Provider struct {
	Kind    string // default, openai, openai-compatible, ollama (models only)
	BaseURL string
	APIKey  Secret
	Model   string
}

// setting is one configurable value: its variable, its flag, and how to
// put it into a Config.
type setting struct {
	name  string // without prefix: ADDR reads GRIN_ADDR and CCAT_ADDR
	flag  string
	def   string
	usage string
	set   func(c *Config, v string) error
}

var settings = []setting{
	{"ADDR", "addr", "127.0.0.1:1865", "address to listen on (host:port)", func(c *Config, v string) error { c.Addr = v; return nil }},
	{"DATA_DIR", "data-dir", "./grin-data", "directory for the database, policy and secrets", func(c *Config, v string) error { c.DataDir = v; return nil }},
	{"DATABASE_URL", "database-url", "", "PostgreSQL instead of the SQLite file in the data directory: postgres://user:password@host:5432/database (memories then live in Weaviate)", func(c *Config, v string) error { c.DatabaseURL = Secret(v); return nil }},
	{"DATABASE_CONNS", "database-conns", "16", "most connections this process opens to PostgreSQL; every replica's count adds up against the server's max_connections", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return fmt.Errorf("must be a whole number of connections from 1 to 1000, got %q", v)
		}
		c.DatabaseConns = n
		return nil
	}},
	{"API_KEY", "api-key", "", "key granting full permissions on HTTP, acting as the user_id header's user", func(c *Config, v string) error { c.APIKey = Secret(v); return nil }},
	{"API_KEY_WS", "api-key-ws", "", "key granting base permissions on WebSocket", func(c *Config, v string) error { c.APIKeyWS = Secret(v); return nil }},
	{"JWT_SECRET", "jwt-secret", "", "HS256 secret for tokens (at least 32 bytes); generated and kept in the database when unset", func(c *Config, v string) error { c.JWTSecret = Secret(v); return nil }},
	{"JWT_EXPIRE_MINUTES", "jwt-expire-minutes", "1440", "token lifetime in minutes (fractions allowed)", func(c *Config, v string) error {
		m, err := strconv.ParseFloat(v, 64)
		if err != nil || m <= 0 {
			return fmt.Errorf("must be a positive number of minutes, got %q", v)
		}
		c.JWTExpire = time.Duration(m * float64(time.Minute))
		return nil
	}},
	{"ADMIN_PASSWORD", "admin-password", "", "password of the default admin user, set on first start (random and printed once when unset)", func(c *Config, v string) error { c.AdminPassword = Secret(v); return nil }},
	{"USER_PASSWORD", "user-password", "", "password of the default user, set on first start (no password login when unset)", func(c *Config, v string) error { c.UserPassword = Secret(v); return nil }},
	{"AUTH", "auth", "", `"required": refuse requests without a valid token even when no API key is set`, func(c *Config, v string) error {
		switch v {
		case "", "off":
		case "required":
			c.AuthRequired = true
		default:
			return fmt.Errorf(`must be "required" or empty, got %q`, v)
		}
		return nil
	}},
	{"INSECURE", "insecure", "", "1: allow listening beyond loopback with authentication off", func(c *Config, v string) (err error) {
		c.Insecure, err = parseBool(v)
		return err
	}},
	{"LOG_LEVEL", "log-level", "info", "debug, info, warn or error", func(c *Config, v string) error {
		return c.LogLevel.UnmarshalText([]byte(v))
	}},
	{"LOG_FORMAT", "log-format", "text", "text or json", func(c *Config, v string) error {
		if v != "text" && v != "json" {
			return fmt.Errorf(`must be "text" or "json", got %q`, v)
		}
		c.LogFormat = v
		return nil
	}},
	{"AUTH_HANDLER", "auth-handler", "", `custom auth handler to select at start: "oidc" or "core"; unset keeps the one saved through /auth_handler/settings`, func(c *Config, v string) error {
		switch v {
		case "", "core", "oidc":
			c.AuthHandler = v
			return nil
		}
		return fmt.Errorf(`must be "oidc", "core" or empty, got %q`, v)
	}},
	{"LOGIN_CONCURRENCY", "login-concurrency", "auto", "how many login password checks run at once, for all clients together (auto: half the CPUs, at least 1)", func(c *Config, v string) error {
		if v == "auto" || v == "" {
			c.Login.Concurrent = 0
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1024 {
			return fmt.Errorf(`must be "auto" or a whole number from 1 to 1024, got %q`, v)
		}
		c.Login.Concurrent = n
		return nil
	}},
	{"LOGIN_PER_ADDRESS", "login-per-address", "2", "how many logins one client address may have in progress at once", positive(func(c *Config, n int) { c.Login.PerAddress = n }, 1024)},
	{"LOGIN_RATE", "login-rate", "30", "how many logins a minute one client address may start, after a burst of GRIN_LOGIN_BURST", func(c *Config, v string) error {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || n <= 0 || n > 1e6 {
			return fmt.Errorf("must be a positive number of logins a minute, got %q", v)
		}
		c.Login.PerMinute = n
		return nil
	}},
	{"LOGIN_BURST", "login-burst", "10", "how many logins one client address may start at once before GRIN_LOGIN_RATE applies", positive(func(c *Config, n int) { c.Login.Burst = n }, 1e6)},
	{"TRUSTED_PROXIES", "trusted-proxies", "", "reverse proxies (addresses or CIDR prefixes, comma-separated) whose X-Forwarded-For names the client for login limits; the header is ignored from anyone else", func(c *Config, v string) error {
		c.Login.TrustedProxies = nil
		for _, f := range splitList(v) {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				a, err2 := netip.ParseAddr(f)
				if err2 != nil {
					return fmt.Errorf("%q is neither an address nor a CIDR prefix such as 10.0.0.0/8", f)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			c.Login.TrustedProxies = append(c.Login.TrustedProxies, p.Masked())
		}
		return nil
	}},
	{"SESSION_IDLE", "session-idle", "30m", "how long an unused session stays in memory (it is reloaded from the database afterwards)", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("must be a positive duration such as 30m, got %q", v)
		}
		c.SessionIdle = d
		return nil
	}},
	{"ALLOWED_ORIGINS", "allowed-origins", "", "browser origins allowed to open WebSockets besides grin's own, comma-separated host patterns", func(c *Config, v string) error {
		c.AllowedOrigins = splitList(v)
		return nil
	}},
	{"MAX_SOCKETS_PER_USER", "max-sockets-per-user", "16", "WebSockets one user may have open at once; more are closed with code 1013 (0: no limit)", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 100000 {
			return fmt.Errorf("must be a whole number from 0 (no limit) to 100000, got %q", v)
		}
		c.MaxSocketsPerUser = n
		return nil
	}},
	{"TURN_LEASE", "turn-lease", "30s", "with several replicas, how long one holds a user's turn without renewing it: a replica that dies in a turn delays that user by at most this", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > time.Hour {
			return fmt.Errorf("must be a duration from 1s to 1h such as 30s, got %q", v)
		}
		c.TurnLease = d
		return nil
	}},
	{"UPLOAD_MAX_MB", "upload-max-mb", "32", "largest document /rabbithole accepts, in MiB", func(c *Config, v string) error {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || n <= 0 || n > 4096 {
			return fmt.Errorf("must be a number of MiB between 0 and 4096, got %q", v)
		}
		c.UploadMaxBytes = int64(n * (1 << 20))
		return nil
	}},
	{"RABBITHOLE_ALLOW_PRIVATE", "rabbithole-allow-private", "", "1: let /rabbithole/web fetch from loopback and private addresses (an intranet)", func(c *Config, v string) (err error) {
		c.RabbitholeAllowPrivate, err = parseBool(v)
		return err
	}},
	{"UPLOAD_MIN_CHUNK_SIZE", "upload-min-chunk-size", "64", "smallest chunk_size the rabbit hole accepts, in tokens", positive(func(c *Config, n int) { c.Ingest.MinChunkSize = n }, 8192)},
	{"UPLOAD_MAX_POINTS", "upload-max-points", "10000", "most chunks (memory points) one upload may store", positive(func(c *Config, n int) { c.Ingest.MaxPoints = n }, 0)},
	{"QUOTA_USER_POINTS", "quota-user-points", "100000", "most document chunks one user's uploads may keep stored, over every space", positive(func(c *Config, n int) { c.Ingest.UserQuota = n }, 0)},
	{"QUOTA_SPACE_POINTS", "quota-space-points", "100000", "most points one declarative space may hold for uploads to add to it", positive(func(c *Config, n int) { c.Ingest.SpaceQuota = n }, 0)},
	{"INGEST_MAX_PER_USER", "ingest-max-per-user", "2", "documents one user may have read at once; more get 429", positive(func(c *Config, n int) { c.Ingest.PerUser = n }, 0)},
	{"INGEST_MAX_TOTAL", "ingest-max-total", "8", "documents the server reads at once; more get 429", positive(func(c *Config, n int) { c.Ingest.Total = n }, 0)},
	{"LLM", "llm", "", `language model to select at start: "default" (offline), "openai", "openai-compatible" or "ollama"; unset keeps the one saved through /llm/settings`, func(c *Config, v string) error {
		switch v {
		case "", "default", "openai", "openai-compatible", "ollama":
			c.LLM.Kind = v
			return nil
		}
		return fmt.Errorf(`must be "default", "openai", "openai-compatible" or "ollama", got %q`, v)
	}},
	{"LLM_BASE_URL", "llm-base-url", "", "the model server's OpenAI-compatible base URL (…/v1)", func(c *Config, v string) error { c.LLM.BaseURL = v; return nil }},
	{"LLM_API_KEY", "llm-api-key", "", "the model server's API key", func(c *Config, v string) error { c.LLM.APIKey = Secret(v); return nil }},
	{"LLM_MODEL", "llm-model", "", "the model's name", func(c *Config, v string) error { c.LLM.Model = v; return nil }},
	{"EMBEDDER", "embedder", "", `embedder to select at start: "default" (offline hashing), "openai" or "openai-compatible"; unset keeps the one saved through /embedder/settings`, func(c *Config, v string) error {
		switch v {
		case "", "default", "openai", "openai-compatible":
			c.Embedder.Kind = v
			return nil
		}
		return fmt.Errorf(`must be "default", "openai" or "openai-compatible", got %q`, v)
	}},
	{"EMBEDDER_BASE_URL", "embedder-base-url", "", "the embedder's OpenAI-compatible base URL (…/v1)", func(c *Config, v string) error { c.Embedder.BaseURL = v; return nil }},
	{"EMBEDDER_API_KEY", "embedder-api-key", "", "the embedder's API key", func(c *Config, v string) error { c.Embedder.APIKey = Secret(v); return nil }},
	{"EMBEDDER_MODEL", "embedder-model", "", "the embedding model's name", func(c *Config, v string) error { c.Embedder.Model = v; return nil }},
	{"PLUGIN_MEMORY_MB", "plugin-memory-mb", "64", "memory cap of each plugin instance, in MiB", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 4096 {
			return fmt.Errorf("must be a whole number of MiB from 1 to 4096, got %q", v)
		}
		c.PluginMemoryMiB = n
		return nil
	}},
	{"PLUGIN_LOG_RATE", "plugin-log-rate", "20", "log lines per second each plugin may write; the excess is dropped and counted", func(c *Config, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 || f > 1e6 {
			return fmt.Errorf("must be a positive number of lines per second, got %q", v)
		}
		c.PluginLogRate = f
		return nil
	}},
	{"PLUGIN_LOG_BURST", "plugin-log-burst", "100", "log lines a plugin may write at once before its rate applies", positive(func(c *Config, n int) { c.PluginLogBurst = n }, 1_000_000)},
	{"PLUGIN_LOG_LINE_BYTES", "plugin-log-line-bytes", "4096", "longest plugin log line, in bytes; longer ones are cut and marked", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 64 || n > 1<<20 {
			return fmt.Errorf("must be a whole number of bytes from 64 to 1048576, got %q", v)
		}
		c.PluginLogLineBytes = n
		return nil
	}},
	{"PLUGIN_LOG_ENTRIES", "plugin-log-entries", "200", "recent log lines and hook failures kept per plugin for GET /plugins/logs/{id} (0: none)", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 100_000 {
			return fmt.Errorf("must be a whole number from 0 to 100000, got %q", v)
		}
		c.PluginLogEntries = n
		if n == 0 {
			c.PluginLogEntries = -1
		}
		return nil
	}},
	{"PLUGIN_INIT_TIMEOUT", "plugin-init-timeout", "2s", "deadline of a plugin module's initialisation, at upload and for every instance", upTo(func(c *Config, d time.Duration) { c.PluginInitTimeout = d }, "2s", "10m")},
	{"PLUGIN_INIT_BACKOFF", "plugin-init-backoff", "1s", "wait before starting a plugin's instance again after one failed to start; doubles with each failure in a row, up to 5m", upTo(func(c *Config, d time.Duration) { c.PluginInitBackoff = d }, "1s", "1h")},
	{"PLUGIN_INIT_FAILURES", "plugin-init-failures", "5", "instance start failures in a row after which a plugin is disabled", positive(func(c *Config, n int) { c.PluginInitFailures = n }, 1000)},
	{"PLUGIN_KV_QUOTA_KB", "plugin-kv-quota-kb", "1024", "size of each plugin key-value store (per plugin and user, and per plugin), keys and values, in KiB", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1<<20 {
			return fmt.Errorf("must be a whole number of KiB from 1 to 1048576, got %q", v)
		}
		c.PluginCaps.KVQuotaBytes = n << 10
		return nil
	}},
	{"PLUGIN_LLM_TIMEOUT", "plugin-llm-timeout", "30s", "longest llm.complete call a plugin may make", upTo(func(c *Config, d time.Duration) { c.PluginCaps.LLMTimeout = d }, "30s", "10m")},
	{"PLUGIN_LLM_MAX_TOKENS", "plugin-llm-max-tokens", "1024", "most tokens one llm.complete call of a plugin may receive; the reply is cut there", positive(func(c *Config, n int) { c.PluginCaps.LLMMaxTokens = n }, 1_000_000)},
	{"PLUGIN_FETCH_TIMEOUT", "plugin-fetch-timeout", "10s", "longest http.fetch call a plugin may make", upTo(func(c *Config, d time.Duration) { c.PluginCaps.FetchTimeout = d }, "10s", "10m")},
	{"PLUGIN_FETCH_MAX_KB", "plugin-fetch-max-kb", "1024", "largest answer an http.fetch call of a plugin may receive, in KiB", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1<<20 {
			return fmt.Errorf("must be a whole number of KiB from 1 to 1048576, got %q", v)
		}
		c.PluginCaps.FetchMaxBytes = int64(n) << 10
		return nil
	}},
	{"MEMORY", "memory", "embedded", `where memories live: "embedded" (the data directory's SQLite file) or "weaviate"`, func(c *Config, v string) error {
		switch v {
		case "embedded", "weaviate":
			c.Memory.Backend = v
			return nil
		}
		return fmt.Errorf(`must be "embedded" or "weaviate", got %q`, v)
	}},
	{"WEAVIATE_URL", "weaviate-url", "", "Weaviate's HTTP address, e.g. http://127.0.0.1:8080, or a cluster's nodes, comma-separated (GRIN_MEMORY=weaviate)", func(c *Config, v string) error { c.Memory.Weaviate.URL = v; return nil }},
	{"WEAVIATE_GRPC_PORT", "weaviate-grpc-port", "50051", "Weaviate's gRPC port on each URL's host, or one port per URL, comma-separated", func(c *Config, v string) error {
		var ports []int
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 || n > 65535 {
				return fmt.Errorf("must be a port number, or one per URL comma-separated, got %q", v)
			}
			ports = append(ports, n)
		}
		c.Memory.Weaviate.GRPCPort = ports[0]
		if len(ports) > 1 {
			c.Memory.Weaviate.GRPCPorts = ports
		}
		return nil
	}},
	{"WEAVIATE_API_KEY", "weaviate-api-key", "", "Weaviate's API key, when it requires one", func(c *Config, v string) error { c.Memory.Weaviate.APIKey = Secret(v); return nil }},
	{"WEAVIATE_PREFIX", "weaviate-prefix", "Grin", "prefix of grin's Weaviate collections (GrinEpisodic, ...): a capital letter, then letters and digits", func(c *Config, v string) error {
		if !weaviate.ValidPrefix(v) {
			return fmt.Errorf("must be a capital letter followed by letters and digits, got %q", v)
		}
		c.Memory.Weaviate.Prefix = v
		return nil
	}},
	{"WEAVIATE_REPLICATION", "weaviate-replication", "0", "replication factor of the collections grin creates (0: Weaviate's default)", func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 100 {
			return fmt.Errorf("must be a whole number from 0 to 100, got %q", v)
		}
		c.Memory.Weaviate.Replication = n
		return nil
	}},
	{"WEAVIATE_COLD_AFTER", "weaviate-cold-after", "15m", "how long a user stays idle before their Weaviate tenant is set cold, unloaded until their next request (0: never)", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("must be a duration such as 15m, or 0, got %q", v)
		}
		c.Memory.Weaviate.ColdAfter = d
		return nil
	}},
	{"AUDIT_RETENTION", "audit-retention", "365d", "how long the audit log keeps an entry: days such as 365d, or a duration such as 720h, at least 1d (0: for ever)", func(c *Config, v string) error {
		d, err := parseDays(v)
		if err != nil || (d != 0 && d < 24*time.Hour) || d > 100*365*24*time.Hour {
			return fmt.Errorf("must be a number of days such as 365d, or a duration such as 720h, from 1d to 36500d, or 0 to keep every entry, got %q", v)
		}
		c.AuditRetention = d
		return nil
	}},
	{"METRICS", "metrics", "auth", `who may read GET /metrics: "auth" (callers the policy lets read "metrics": administrators, the API key), "loopback" (also anyone connecting from this machine), "public" (anyone) or "off"`, func(c *Config, v string) error {
		switch v {
		case MetricsOff, MetricsAuth, MetricsLoopback, MetricsPublic:
			c.Ops.Metrics = v
			return nil
		}
		return fmt.Errorf(`must be "auth", "loopback", "public" or "off", got %q`, v)
	}},
	{"READY_TIMEOUT", "ready-timeout", "2s", "longest check of each dependency (database, Weaviate) by GET /readyz; a slower one counts as down", upTo(func(c *Config, d time.Duration) { c.Ops.ReadyTimeout = d }, "2s", "1m")},
	{"SHUTDOWN_DELAY", "shutdown-delay", "0s", "after SIGTERM, how long grin keeps serving while /readyz answers 503, so a load balancer stops sending it clients; then it drains", func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > 10*time.Minute {
			return fmt.Errorf("must be a duration such as 10s, from 0 up to 10m, got %q", v)
		}
		c.Ops.ShutdownDelay = d
		return nil
	}},
	{"SHUTDOWN_TIMEOUT", "shutdown-timeout", "30s", "at shutdown, longest wait for chat turns and requests in flight to finish before sockets and connections are closed anyway", upTo(func(c *Config, d time.Duration) { c.Ops.ShutdownTimeout = d }, "30s", "1h")},
	{"OIDC_ISSUER", "oidc-issuer", "", "OIDC: the tokens' issuer", func(c *Config, v string) error { c.OIDC.Issuer = v; return nil }},
	{"OIDC_AUDIENCE", "oidc-audience", "", "OIDC: the audience tokens must carry", func(c *Config, v string) error { c.OIDC.Audience = v; return nil }},
	{"OIDC_JWKS_URL", "oidc-jwks-url", "", "OIDC: the provider's JWKS URL", func(c *Config, v string) error { c.OIDC.JWKSURL = v; return nil }},
	{"OIDC_USER_ID_CLAIM", "oidc-user-id-claim", "sub", "OIDC: claim that identifies the user", func(c *Config, v string) error { c.OIDC.UserIDClaim = v; return nil }},
	{"OIDC_USERNAME_CLAIM", "oidc-username-claim", "preferred_username", "OIDC: claim shown as the user's name", func(c *Config, v string) error { c.OIDC.UsernameClaim = v; return nil }},
	{"OIDC_ROLES_CLAIM", "oidc-roles-claim", "", "OIDC: claim with roles or groups (dotted path allowed)", func(c *Config, v string) error { c.OIDC.RolesClaim = v; return nil }},
	{"OIDC_ROLE_MAP", "oidc-role-map", "", "OIDC: claim values to policy subjects, as value=subject,value=subject", func(c *Config, v string) error {
		m, err := parseMap(v)
		c.OIDC.RoleMap = m
		return err
	}},
	{"OIDC_DEFAULT_ROLES", "oidc-default-roles", "role:base", "OIDC: policy subjects every provider user gets, comma-separated", func(c *Config, v string) error {
		c.OIDC.DefaultRoles = splitList(v)
		return nil
	}},
}

// Load reads the configuration from getenv and args (the arguments after
// the subcommand). It returns every problem at once. flag.ErrHelp is
// returned after usage was written to out for -h.
func Load(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	return LoadFlags("grin serve", args, getenv, out, nil)
}

// LoadFlags is Load for another command that reads grin's settings: name
// is the command as usage and errors show it, and extra, when not nil,
// registers the command's own flags beside the settings' (it may also
// replace fs.Usage).
func LoadFlags(name string, args []string, getenv func(string) string, out io.Writer, extra func(fs *flag.FlagSet)) (Config, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	values := make(map[string]string, len(settings))
	source := make(map[string]string, len(settings))
	for _, s := range settings {
		values[s.name], source[s.name] = s.def, "default"
		if v := getenv("CCAT_" + s.name); v != "" {
			values[s.name], source[s.name] = v, "CCAT_"+s.name
		}
		if v := getenv("GRIN_" + s.name); v != "" {
			values[s.name], source[s.name] = v, "GRIN_"+s.name
		}
		fs.Func(s.flag, fmt.Sprintf("%s (GRIN_%s, default %q)", s.usage, s.name, s.def), func(v string) error {
			values[s.name], source[s.name] = v, "--"+s.flag
			return nil
		})
	}
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: %s [flags]\n\nEvery flag has an environment variable; CCAT_ names are read as aliases of GRIN_ ones.\n\n", name)
		fs.PrintDefaults()
	}
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("%s takes no arguments, got %q", name, fs.Args())
	}
	var c Config
	var errs []error
	for _, s := range settings {
		if err := s.set(&c, values[s.name]); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", source[s.name], err))
		}
	}
	if len(errs) == 0 {
		errs = append(errs, c.Validate())
	}
	return c, errors.Join(errs...)
}

// AuthOff reports whether requests without credentials are served as
// shadow users.
func (c Config) AuthOff() bool { return c.APIKey == "" && !c.AuthRequired }

// Validate checks the settings against each other.
func (c Config) Validate() error {
	var errs []error
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		errs = append(errs, fmt.Errorf("GRIN_ADDR: %q is not host:port: %v", c.Addr, err))
	} else if c.AuthOff() && !c.Insecure && !isLoopback(host) {
		errs = append(errs, fmt.Errorf("GRIN_ADDR=%s listens beyond this machine while authentication is off, "+
			"so anyone who can reach it could act as any user: set GRIN_API_KEY (and log users in with /auth/token), "+
			"or GRIN_AUTH=required, or bind to 127.0.0.1; GRIN_INSECURE=1 starts anyway", c.Addr))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("GRIN_DATA_DIR: must not be empty"))
	}
	if u := c.DatabaseURL.Reveal(); u != "" {
		scheme, _, _ := strings.Cut(u, "://")
		if !strings.EqualFold(scheme, "postgres") && !strings.EqualFold(scheme, "postgresql") {
			errs = append(errs, errors.New("GRIN_DATABASE_URL: must be a PostgreSQL URL, postgres://user:password@host:5432/database; leave it unset for the SQLite file in GRIN_DATA_DIR"))
		}
	}
	if c.JWTSecret != "" && len(c.JWTSecret) < 32 {
		errs = append(errs, fmt.Errorf("GRIN_JWT_SECRET: is %d bytes; use at least 32, or leave it unset and grin generates one", len(c.JWTSecret)))
	}
	if c.APIKey != "" && len(c.APIKey) < 16 {
		errs = append(errs, fmt.Errorf("GRIN_API_KEY: is %d characters; use at least 16", len(c.APIKey)))
	}
	if c.APIKeyWS != "" && len(c.APIKeyWS) < 16 {
		errs = append(errs, fmt.Errorf("GRIN_API_KEY_WS: is %d characters; use at least 16", len(c.APIKeyWS)))
	}
	if w := c.Memory.Weaviate; c.Memory.Backend == "weaviate" {
		if w.URL == "" {
			errs = append(errs, errors.New("GRIN_MEMORY=weaviate needs GRIN_WEAVIATE_URL, Weaviate's HTTP address such as http://127.0.0.1:8080"))
		} else if n := len(strings.Split(w.URL, ",")); len(w.GRPCPorts) > 1 && len(w.GRPCPorts) != n {
			errs = append(errs, fmt.Errorf("GRIN_WEAVIATE_GRPC_PORT lists %d ports for the %d URLs of GRIN_WEAVIATE_URL: give one port for all, or one per URL", len(w.GRPCPorts), n))
		}
	}
	if c.AuthHandler == "oidc" {
		if c.OIDC.Issuer == "" || c.OIDC.Audience == "" || c.OIDC.JWKSURL == "" {
			errs = append(errs, errors.New("GRIN_AUTH_HANDLER=oidc needs GRIN_OIDC_ISSUER, GRIN_OIDC_AUDIENCE and GRIN_OIDC_JWKS_URL"))
		}
	}
	return errors.Join(errs...)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// positive parses a whole number from 1 to most (no upper bound when most
// is 0) and hands it to set.
func positive(set func(c *Config, n int), most int) func(c *Config, v string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || (most > 0 && n > most) {
			if most > 0 {
				return fmt.Errorf("must be a whole number from 1 to %d, got %q", most, v)
			}
			return fmt.Errorf("must be a whole number from 1 up, got %q", v)
		}
		set(c, n)
		return nil
	}
}

// upTo parses a positive duration no longer than most and hands it to
// set; example (the setting's default) shows the form in the error.
func upTo(set func(c *Config, d time.Duration), example, most string) func(c *Config, v string) error {
	limit, err := time.ParseDuration(most)
	if err != nil {
		panic(err) // the settings table is wrong
	}
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > limit {
			return fmt.Errorf("must be a duration such as %s, up to %s, got %q", example, most, v)
		}
		set(c, d)
		return nil
	}
}

// parseDays reads "365d" (whole days), or any time.ParseDuration form.
func parseDays(v string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(v, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 {
			return 0, fmt.Errorf("%q is not a whole number of days", v)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(v)
}

func parseBool(v string) (bool, error) {
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("must be 1, 0, true or false, got %q", v)
	}
	return b, nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func parseMap(v string) (map[string]string, error) {
	m := map[string]string{}
	var bad []string
	for _, kv := range splitList(v) {
		k, val, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" || strings.TrimSpace(val) == "" {
			bad = append(bad, kv)
			continue
		}
		m[strings.TrimSpace(k)] = strings.TrimSpace(val)
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return nil, fmt.Errorf("entries must be value=subject, got %q", bad)
	}
	return m, nil
}
