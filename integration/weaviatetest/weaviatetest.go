// Package weaviatetest starts real Weaviate servers for tests: the
// weaviate-server binary built with `go install` (cached), each instance on
// free loopback ports with its own data directory, stopped with the test.
//
// Without the binary, tests skip and say how to get it; with
// GRIN_REQUIRE_WEAVIATE=1 (CI) the binary is built when missing and a
// failure to start is a failure, never a skip.
package weaviatetest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Version is the Weaviate release grin is tested against.
const Version = "v1.35.2"

// Server is a running Weaviate.
type Server struct {
	URL      string // http://127.0.0.1:port
	GRPCPort int
	DataDir  string
	cmd      *exec.Cmd
	logs     *syncBuffer
}

// syncBuffer collects a process's output while tests read it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var buildOnce sync.Once

// Binary returns the weaviate-server binary: GRIN_WEAVIATE_BIN, or the
// one built into the cache directory.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("GRIN_WEAVIATE_BIN"); p != "" {
		return p
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	bin := filepath.Join(cache, "grin-weaviate", "bin", "weaviate-server")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	how := fmt.Sprintf("GOBIN=%s go install github.com/weaviate/weaviate/cmd/weaviate-server@%s (about 7 minutes on 2 cores)", filepath.Dir(bin), Version)
	if os.Getenv("GRIN_REQUIRE_WEAVIATE") != "1" {
		t.Skipf("no weaviate-server: build it with %s, or set GRIN_REQUIRE_WEAVIATE=1 to build it here", how)
	}
	var buildErr error
	buildOnce.Do(func() {
		cmd := exec.Command("go", "install", "github.com/weaviate/weaviate/cmd/weaviate-server@"+Version)
		cmd.Env = append(os.Environ(), "GOBIN="+filepath.Dir(bin))
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build weaviate-server: %v", buildErr)
	}
	return bin
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Start runs one single-node Weaviate and waits until it is ready. It
// stops with the test.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := launch(t, Binary(t), t.TempDir())
	if s != nil {
		t.Cleanup(s.Stop)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// shared is the server of Shared: one per test process, stopped by Main.
var shared struct {
	sync.Mutex
	main bool
	srv  *Server
	err  error
}

// Main runs a package's tests (call it from TestMain) and stops the
// server Shared started, if any.
func Main(m *testing.M) int {
	shared.Lock()
	shared.main = true
	shared.Unlock()
	code := m.Run()
	shared.Lock()
	defer shared.Unlock()
	if shared.srv != nil {
		shared.srv.Stop()
		os.RemoveAll(shared.srv.DataDir)
	}
	return code
}

// Shared returns a server shared by all the tests of the process, started
// on first use; tests keep apart by using their own collections. Without
// Main in the package's TestMain it is Start.
func Shared(t testing.TB) *Server {
	t.Helper()
	bin := Binary(t)
	shared.Lock()
	inMain := shared.main
	shared.Unlock()
	if !inMain {
		return Start(t)
	}
	shared.Lock()
	defer shared.Unlock()
	if shared.srv == nil && shared.err == nil {
		dir, err := os.MkdirTemp("", "grin-weaviate-")
		if err != nil {
			t.Fatal(err)
		}
		srv, err := launch(t, bin, dir)
		if err != nil && srv != nil {
			srv.Stop()
		}
		shared.srv, shared.err = srv, err
		if err != nil {
			shared.srv = nil
		}
	}
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.srv
}

func launch(t testing.TB, bin, dataDir string) (*Server, error) {
	s := &Server{DataDir: dataDir, logs: &syncBuffer{}}
	httpPort := freePort(t)
	s.GRPCPort = freePort(t)
	s.URL = "http://127.0.0.1:" + strconv.Itoa(httpPort)
	name := "node-" + strconv.Itoa(httpPort)
	s.cmd = exec.Command(bin, "--host", "127.0.0.1", "--port", strconv.Itoa(httpPort), "--scheme", "http")
	s.cmd.Env = append(os.Environ(),
		"CLUSTER_HOSTNAME="+name,
		"CLUSTER_ADVERTISE_ADDR=127.0.0.1",
		"RAFT_BOOTSTRAP_EXPECT=1",
		"RAFT_JOIN="+name,
		"PERSISTENCE_DATA_PATH="+s.DataDir,
		"AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED=true",
		"DEFAULT_VECTORIZER_MODULE=none",
		"ENABLE_MODULES=",
		"DISABLE_TELEMETRY=true",
		"GRPC_PORT="+strconv.Itoa(s.GRPCPort),
		"CLUSTER_GOSSIP_BIND_PORT="+strconv.Itoa(freePort(t)),
		"CLUSTER_DATA_BIND_PORT="+strconv.Itoa(freePort(t)),
		"RAFT_PORT="+strconv.Itoa(freePort(t)),
		"RAFT_INTERNAL_RPC_PORT="+strconv.Itoa(freePort(t)),
	)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start weaviate: %w", err)
	}
	if err := s.waitReady(2 * time.Minute); err != nil {
		return s, err
	}
	return s, nil
}

// waitReady polls /v1/.well-known/ready.
func (s *Server) waitReady(within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(s.URL + "/v1/.well-known/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("weaviate did not become ready at %s; its log:\n%s", s.URL, s.Logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Logs returns what the server printed.
func (s *Server) Logs() string { return s.logs.String() }

// Stop ends the server; Start's cleanup calls it.
func (s *Server) Stop() {
	if s.cmd.Process == nil || s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}
