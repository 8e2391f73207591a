package api_test

import (
	"os"
	"testing"

	"github.com/grin-ai/grin/integration/weaviatetest"
)

// TestMain shares one weaviate-server among the tests that run on every
// memory backend (apptest.EachBackend).
func TestMain(m *testing.M) { os.Exit(weaviatetest.Main(m)) }
