package api_test

import (
	"os"
	"testing"

	"github.com/grin-ai/grin/platform/app/apptest"
)

// TestMain shares one weaviate-server and one PostgreSQL among the tests
// (apptest.EachBackend, and the PostgreSQL pass: GRIN_TEST_DATABASE).
func TestMain(m *testing.M) { os.Exit(apptest.Main(m)) }
