package weaviatetest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestStartsARealWeaviate: the harness starts the pinned release, ready.
func TestStartsARealWeaviate(t *testing.T) {
	s := Start(t)
	resp, err := http.Get(s.URL + "/v1/meta")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var meta struct {
		Version string `json:"version"`
	}
	json.NewDecoder(resp.Body).Decode(&meta)
	if "v"+meta.Version != Version && !strings.HasPrefix(Version, "v"+meta.Version) {
		t.Errorf("weaviate version %q, want %s", meta.Version, Version)
	}
}
