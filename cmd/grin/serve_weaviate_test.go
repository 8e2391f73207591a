package main

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/grin-ai/grin/integration/weaviatetest"
	"github.com/grin-ai/grin/platform/memory/weaviate"
)

// TestServeStopsWhenWeaviateIsAway: a grin pointed at a Weaviate that is
// not there exits at once, naming the address and the reason.
func TestServeStopsWhenWeaviateIsAway(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	code, _, stderr := runGrin(t, map[string]string{"GRIN_DATA_DIR": t.TempDir(), "GRIN_MEMORY": "weaviate", "GRIN_WEAVIATE_URL": url}, "serve")
	if code == 0 {
		t.Fatal("grin serve started without its Weaviate")
	}
	if !strings.Contains(stderr, url) || !strings.Contains(stderr, "not reachable") {
		t.Errorf("the message must name %s and say what is wrong: %s", url, stderr)
	}
	code, _, stderr = runGrin(t, map[string]string{"GRIN_DATA_DIR": t.TempDir(), "GRIN_MEMORY": "weaviate"}, "serve")
	if code == 0 || !strings.Contains(stderr, "GRIN_WEAVIATE_URL") {
		t.Errorf("weaviate without a URL: exit %d, %s", code, stderr)
	}
}

// TestServeOnWeaviate: grin serve with GRIN_MEMORY=weaviate answers and
// creates its collections.
func TestServeOnWeaviate(t *testing.T) {
	srv := weaviatetest.Start(t)
	s := startServe(t, map[string]string{
		"GRIN_DATA_DIR": t.TempDir(), "GRIN_MEMORY": "weaviate",
		"GRIN_WEAVIATE_URL": srv.URL, "GRIN_WEAVIATE_GRPC_PORT": strconv.Itoa(srv.GRPCPort), "GRIN_WEAVIATE_PREFIX": "Served",
	})
	r, err := http.Post(s.url+"/message", "application/json", strings.NewReader(`{"text":"my hat is green"}`))
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("POST /message: %v %v", r, err)
	}
	r.Body.Close()
	// Anonymous (no auth) users are "user"; their tenant holds the message.
	r, err = http.Get(srv.URL + "/v1/schema/ServedEpisodic/tenants")
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("the episodic collection: %v %v", r, err)
	}
	var tenants []struct{ Name string }
	json.NewDecoder(r.Body).Decode(&tenants)
	r.Body.Close()
	if len(tenants) != 1 || tenants[0].Name != weaviate.TenantName("user") {
		t.Errorf("tenants after one message: %+v", tenants)
	}
	if code := s.stop(); code != 0 {
		t.Errorf("exit %d: %s", code, s.stderr.String())
	}
	if !strings.Contains(s.stderr.String(), "memories live in Weaviate") {
		t.Errorf("the log does not say where memories live: %s", s.stderr.String())
	}
}

// TestBenchChatOnWeaviate: grin bench chat -memory weaviate runs the load
// on a grin whose memories live in a real Weaviate, and says so.
func TestBenchChatOnWeaviate(t *testing.T) {
	srv := weaviatetest.Start(t)
	env := map[string]string{"GRIN_WEAVIATE_GRPC_PORT": strconv.Itoa(srv.GRPCPort)}
	logFile := filepath.Join(t.TempDir(), "server.log")
	code, out, errOut := runGrin(t, env, "bench", "chat", "-users", "2", "-messages", "2", "-json", "-memory", "weaviate", "-weaviate-url", srv.URL, "-log", logFile)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	rep := readBenchReport(t, out)
	if rep.Grin.Replies != 4 || rep.Grin.Errors != 0 || rep.Memory != "weaviate" {
		serverLog, _ := os.ReadFile(logFile)
		t.Errorf("bench on Weaviate: %+v\n%s\nthe server's warnings and errors:\n%s", rep, errOut, serverLog)
	}
	// The run's memories went to Weaviate: a collection of its own holds them.
	r, err := http.Get(srv.URL + "/v1/schema")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var schema struct{ Classes []struct{ Class string } }
	json.NewDecoder(r.Body).Decode(&schema)
	found := false
	for _, c := range schema.Classes {
		found = found || strings.HasPrefix(c.Class, "Bench") && strings.HasSuffix(c.Class, "Episodic")
	}
	if !found {
		t.Errorf("no Bench…Episodic collection in Weaviate: %+v", schema.Classes)
	}
}
