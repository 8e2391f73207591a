package openapi_test

import (
	"io"
	"net/http"
	"os"
	"testing"

	"github.com/grin-ai/grin/platform/api"
	"github.com/grin-ai/grin/platform/app/apptest"
)

// TestCommittedDocumentsAreCurrent: the committed documents are what the
// server serves; a change to the API must come with regenerated documents
// (and clients).
func TestCommittedDocumentsAreCurrent(t *testing.T) {
	doc := api.Document()
	v31, err := doc.YAML()
	if err != nil {
		t.Fatal(err)
	}
	v30, err := doc.DowngradeYAML()
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string][]byte{"openapi.yaml": v31, "openapi-3.0.yaml": v30} {
		got, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("openapi/%s differs from the API's document; refresh it with: go generate ./openapi/...", file)
		}
	}
	// And the running server serves the same.
	in := apptest.Start(t)
	resp, err := http.Get(in.URL + "/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(served) != string(v31) {
		t.Error("the server serves another document than grin openapi prints")
	}
}
