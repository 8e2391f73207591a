package apptest

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/grin-ai/grin/integration/pgtest"
	"github.com/grin-ai/grin/integration/weaviatetest"
	"github.com/grin-ai/grin/platform/config"
	"github.com/grin-ai/grin/platform/database"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver of OpenDatabase
)

// Engine is the database engine test instances run on, from
// GRIN_TEST_DATABASE: unset or "sqlite" for the SQLite file in the data
// directory (grin's default), "postgres" for a database of their own on
// the test process's shared PostgreSQL (pgtest), with memories in Weaviate
// (grin refuses embedded memory on PostgreSQL). The same tests run in both
// passes; .ci/run runs the PostgreSQL pass of the API's and the commands'
// tests after the whole suite.
func Engine() database.Engine {
	switch v := os.Getenv("GRIN_TEST_DATABASE"); v {
	case "", "sqlite":
		return database.SQLite
	case "postgres":
		return database.Postgres
	default:
		panic(fmt.Sprintf("GRIN_TEST_DATABASE=%q: want sqlite or postgres", v))
	}
}

// OnEngine puts cfg on the tests' database engine: in the PostgreSQL pass
// a fresh database and, unless the test chose embedded memory (which then
// skips), Weaviate. It does nothing in the SQLite pass or when cfg already
// names a database.
func OnEngine(t testing.TB, cfg *config.Config) {
	t.Helper()
	if Engine() != database.Postgres || cfg.DatabaseURL != "" {
		return
	}
	if cfg.Memory.Backend == "embedded" {
		Embedded.use(t, cfg) // skips, saying why
	}
	cfg.DatabaseURL = config.Secret(databaseFor(t, cfg.DataDir))
	if cfg.Memory.Backend != "weaviate" {
		Weaviate.use(t, cfg)
	}
}

// databases maps a data directory to its PostgreSQL database: a test that
// restarts an instance on the same directory finds its data again, as it
// would in the SQLite file.
var databases struct {
	sync.Mutex
	byDir map[string]string
}

func databaseFor(t testing.TB, dir string) string {
	t.Helper()
	databases.Lock()
	defer databases.Unlock()
	if u, ok := databases.byDir[dir]; ok {
		return u
	}
	if databases.byDir == nil {
		databases.byDir = map[string]string{}
	}
	u := pgtest.Shared(t).Database(t)
	databases.byDir[dir] = u
	t.Cleanup(func() {
		databases.Lock()
		delete(databases.byDir, dir)
		databases.Unlock()
	})
	return u
}

// SQLiteOnly skips a test in the PostgreSQL pass: it is about the SQLite
// file itself (why says what), and runs in the SQLite pass.
func SQLiteOnly(t testing.TB, why string) {
	t.Helper()
	if Engine() != database.SQLite {
		t.Skip("about the SQLite file (" + why + "): runs in the SQLite pass")
	}
}

// Main runs a package's tests (call it from TestMain) with one
// weaviate-server and one PostgreSQL shared by all its tests, each started
// on first use and stopped at the end.
func Main(m *testing.M) int {
	return weaviatetest.Main(runner(func() int { return pgtest.Main(m) }))
}

type runner func() int

func (r runner) Run() int { return r() }

// OpenDatabase opens another handle to the database of the instance
// started on data directory dir, as a second process would: the SQLite
// file (waiting up to 10 s for its write lock), or the instance's
// PostgreSQL database. Statements written with $n placeholders run on
// both. It is closed when the test ends.
func OpenDatabase(t testing.TB, dir string) *sql.DB {
	t.Helper()
	var db *sql.DB
	var err error
	if Engine() == database.Postgres {
		db, err = sql.Open("pgx", databaseFor(t, dir))
	} else {
		db, err = sql.Open("sqlite", "file:"+filepath.Join(dir, database.FileName)+"?_pragma=busy_timeout(10000)")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// StartReplicas runs n instances as replicas of one grin: one PostgreSQL
// database (on the process's shared server) and one set of Weaviate
// collections, each instance with its own data directory and loopback
// listener, as several `grin serve` processes behind a load balancer. edit,
// when not nil, adjusts the configuration they all share. It needs
// PostgreSQL and Weaviate (skipping without them, failing under
// GRIN_REQUIRE_POSTGRES / GRIN_REQUIRE_WEAVIATE).
func StartReplicas(t testing.TB, n int, edit func(*config.Config)) []*Instance {
	t.Helper()
	shared := Weaviate.Config(t, t.TempDir())
	shared.DatabaseURL = config.Secret(pgtest.Shared(t).Database(t))
	if edit != nil {
		edit(&shared)
	}
	out := make([]*Instance, n)
	for i := range n {
		cfg := shared
		cfg.DataDir = t.TempDir()
		out[i] = StartWith(t, cfg)
	}
	return out
}
