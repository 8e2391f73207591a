package apptest

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/grin-ai/grin/integration/weaviatetest"
	"github.com/grin-ai/grin/platform/app"
	"github.com/grin-ai/grin/platform/config"
	"github.com/grin-ai/grin/platform/database"
)

// Backend is a memory backend test instances can run on, so one test
// shows the same behaviour on every backend.
type Backend struct {
	Name string
	use  func(t testing.TB, cfg *config.Config)
}

// Embedded keeps memories in the instance's SQLite file. grin refuses it
// on PostgreSQL, so in the PostgreSQL pass (GRIN_TEST_DATABASE=postgres) a
// test that asks for it is skipped: it runs in the SQLite pass.
var Embedded = Backend{Name: "embedded", use: func(t testing.TB, cfg *config.Config) {
	if Engine() == database.Postgres {
		t.Skip("embedded memory lives in the SQLite file; this test runs in the SQLite pass (GRIN_TEST_DATABASE unset)")
	}
	cfg.Memory.Backend = "embedded"
}}

// Weaviate keeps memories in the test process's shared weaviate-server
// (the package's TestMain calls weaviatetest.Main), in collections of
// their own named after the data directory, so a restarted instance finds
// its memories again. Without the server the test skips, unless
// GRIN_REQUIRE_WEAVIATE=1.
var Weaviate = Backend{Name: "weaviate", use: func(t testing.TB, cfg *config.Config) {
	srv := weaviatetest.Shared(t)
	sum := sha256.Sum256([]byte(cfg.DataDir))
	cfg.Memory = config.Memory{Backend: "weaviate", Weaviate: config.Weaviate{
		URL: srv.URL, GRPCPort: srv.GRPCPort, Prefix: "T" + hex.EncodeToString(sum[:8]),
	}}
}}

// Backends lists every backend the tests' database engine allows:
// Weaviate alone on PostgreSQL.
func Backends() []Backend {
	if Engine() == database.Postgres {
		return []Backend{Weaviate}
	}
	return []Backend{Embedded, Weaviate}
}

// EachBackend runs fn as one subtest per backend.
func EachBackend(t *testing.T, fn func(t *testing.T, b Backend)) {
	for _, b := range Backends() {
		t.Run(b.Name, func(t *testing.T) { fn(t, b) })
	}
}

// Use returns an edit that puts a configuration's memories on b.
func (b Backend) Use(t testing.TB) func(*config.Config) {
	return func(cfg *config.Config) { b.use(t, cfg) }
}

// Config is Config(dir) with memories on b.
func (b Backend) Config(t testing.TB, dir string) config.Config {
	cfg := Config(dir)
	b.use(t, &cfg)
	return cfg
}

// Start is Start with memories on b.
func (b Backend) Start(t testing.TB, opts ...app.Option) *Instance {
	t.Helper()
	return StartWith(t, b.Config(t, t.TempDir()), opts...)
}
