package weaviatetest

import (
	"encoding/json"
	"net/http"
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
	if err := json.NewDecoder(resp.Body).Decode(&meta); err != nil {
		t.Fatal(err)
	}
	if "v"+meta.Version != Version {
		t.Errorf("weaviate version %q, want %s", meta.Version, Version)
	}
}
