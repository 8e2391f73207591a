// Package weaviatetest starts real Weaviate servers for tests: the
// weaviate-server binary built with `go install` (cached), each instance on
// free loopback ports with its own data directory, stopped with the test.
// Each server, or each cluster, runs in a private network namespace that
// has only a loopback interface; its HTTP and gRPC ports are forwarded to
// the same ports of the host's 127.0.0.1 (netns.go).
//
// Without the binary, tests skip and say how to get it; with
// GRIN_REQUIRE_WEAVIATE=1 (CI) the binary is built when missing and a
// failure to start is a failure, never a skip.
package weaviatetest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grin-ai/grin/internal/logbuf"
)

// Version is the Weaviate release grin is tested against.
const Version = "v1.35.2"

// Server is a running Weaviate.
type Server struct {
	URL      string // http://127.0.0.1:port
	GRPCPort int
	DataDir  string
	cmd      *exec.Cmd
	bin      string
	args     []string
	env      []string
	peers    string // the other nodes' gossip addresses, in a cluster
	exited   chan struct{}
	logs     *logbuf.Buffer
	node     node
	ns       *netns
	inside   *http.Client // talks to the server inside its namespace
	forward  []*forwarder // its HTTP and gRPC ports, while it runs
}

// build builds the binary once per test process; every caller sees its
// error.
var build struct {
	sync.Once
	err error
}

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
	build.Do(func() {
		cmd := exec.Command("go", "install", "github.com/weaviate/weaviate/cmd/weaviate-server@"+Version)
		cmd.Env = append(os.Environ(), "GOBIN="+filepath.Dir(bin))
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatalf("build weaviate-server: %v", build.err)
	}
	return bin
}

// ports hands out distinct free loopback ports: each stays bound until
// release, so no two of one server or cluster can be the same.
type ports struct {
	t    testing.TB
	held []net.Listener
}

func (p *ports) bind(port int) bool {
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	p.held = append(p.held, ln)
	return true
}

// one returns a free port.
func (p *ports) one() int {
	p.t.Helper()
	if !p.bind(0) {
		p.t.Fatal("no free port")
	}
	return p.held[len(p.held)-1].Addr().(*net.TCPAddr).Port
}

// pair returns a free port whose successor is free too (Weaviate puts a
// second listener there).
func (p *ports) pair() int {
	p.t.Helper()
	for range 100 {
		port := p.one()
		if p.bind(port + 1) {
			return port
		}
	}
	p.t.Fatal("no two adjacent free ports")
	return 0
}

// release frees the ports for the servers about to start.
func (p *ports) release() {
	for _, ln := range p.held {
		ln.Close()
	}
	p.held = nil
}

// Start runs one single-node Weaviate and waits until it is ready. It
// stops with the test.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary(t)
	ns := isolated(t)
	t.Cleanup(ns.close) // after Stop
	s, err := launch(t, bin, t.TempDir(), ns)
	t.Cleanup(s.Stop)
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
func Main(m interface{ Run() int }) int {
	shared.Lock()
	shared.main = true
	shared.Unlock()
	code := m.Run()
	shared.Lock()
	defer shared.Unlock()
	if shared.srv != nil {
		shared.srv.Stop()
		shared.srv.ns.close()
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
		srv, err := launch(t, bin, dir, isolated(t))
		if err != nil {
			srv.Stop()
			srv.ns.close()
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

// node is one server's settings within a cluster of size n.
type node struct {
	name                            string
	http, grpc, gossip, raft        int
	join, raftJoin, bootstrapExpect string
}

func newNode(p *ports, name string) node {
	return node{name: name, http: p.one(), grpc: p.one(), gossip: p.pair(), raft: p.pair()}
}

// launch starts a single-node server in ns.
func launch(t testing.TB, bin, dataDir string, ns *netns) (*Server, error) {
	p := &ports{t: t}
	n := newNode(p, "")
	p.release()
	n.name = "node-" + strconv.Itoa(n.http)
	n.raftJoin, n.bootstrapExpect = n.name+":"+strconv.Itoa(n.raft), "1"
	s := prepare(bin, dataDir, n, ns)
	return s, s.start()
}

// prepare builds a server's command, to run in ns; start runs it (again,
// after Kill).
func prepare(bin, dataDir string, n node, ns *netns) *Server {
	s := &Server{DataDir: dataDir, GRPCPort: n.grpc, URL: "http://127.0.0.1:" + strconv.Itoa(n.http), logs: &logbuf.Buffer{}, bin: bin, node: n, ns: ns}
	s.inside = &http.Client{Transport: &http.Transport{DialContext: s.dialInside}}
	s.forward = []*forwarder{{ns: ns, port: n.http}, {ns: ns, port: n.grpc}}
	s.args = []string{"--host", "127.0.0.1", "--port", strconv.Itoa(n.http), "--scheme", "http"}
	s.env = append(os.Environ(),
		"CLUSTER_HOSTNAME="+n.name,
		"CLUSTER_ADVERTISE_ADDR=127.0.0.1",
		// Gossip, Raft and Raft's RPC bind here; gRPC and the cluster data
		// API take every interface whatever the settings, hence the
		// namespace.
		"CLUSTER_BIND_ADDR=127.0.0.1",
		"CLUSTER_IN_LOCALHOST=true",
		"RAFT_BOOTSTRAP_EXPECT="+n.bootstrapExpect,
		"RAFT_JOIN="+n.raftJoin,
		"PERSISTENCE_DATA_PATH="+dataDir,
		"AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED=true",
		"DEFAULT_VECTORIZER_MODULE=none",
		"ENABLE_MODULES=",
		"DISABLE_TELEMETRY=true",
		// Its profiling listener would take :6060, shared by every server.
		"GO_PROFILING_DISABLE=true",
		"GRPC_PORT="+strconv.Itoa(n.grpc),
		// Weaviate finds a peer's data port next to its gossip port, and
		// its internal RPC port next to its Raft port.
		"CLUSTER_GOSSIP_BIND_PORT="+strconv.Itoa(n.gossip),
		"CLUSTER_DATA_BIND_PORT="+strconv.Itoa(n.gossip+1),
		"RAFT_PORT="+strconv.Itoa(n.raft),
		"RAFT_INTERNAL_RPC_PORT="+strconv.Itoa(n.raft+1),
	)
	if n.join != "" {
		s.env = append(s.env, "CLUSTER_JOIN="+n.join)
	}
	return s
}

func (s *Server) start() error {
	if err := s.spawn(); err != nil {
		return err
	}
	return s.waitReady(3 * time.Minute)
}

// spawn starts the process in its namespace; exited closes when it ends.
func (s *Server) spawn() error {
	s.cmd = exec.Command(s.bin, s.args...)
	s.cmd.Env = s.env
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.ns.start(s.cmd); err != nil {
		return fmt.Errorf("start weaviate: %w", err)
	}
	exited := make(chan struct{})
	s.exited = exited
	go func() { s.cmd.Wait(); close(exited) }()
	return nil
}

// StartCluster runs n Weaviate nodes on loopback that form one cluster,
// and waits until every node is ready. They stop with the test.
func StartCluster(t testing.TB, n int) []*Server {
	t.Helper()
	bin := Binary(t)
	ns := isolated(t)
	t.Cleanup(ns.close) // after the nodes' Stop
	nodes := make([]node, n)
	var raftJoin []string
	p := &ports{t: t}
	for i := range nodes {
		nodes[i] = newNode(p, "weaviate-"+strconv.Itoa(i))
		raftJoin = append(raftJoin, nodes[i].name+":"+strconv.Itoa(nodes[i].raft))
	}
	servers := make([]*Server, n)
	for i := range nodes {
		nodes[i].raftJoin, nodes[i].bootstrapExpect = strings.Join(raftJoin, ","), strconv.Itoa(n)
		if i > 0 {
			nodes[i].join = "127.0.0.1:" + strconv.Itoa(nodes[0].gossip)
		}
		servers[i] = prepare(bin, t.TempDir(), nodes[i], ns)
		// Asynchronous replication brings a node that was down up to
		// date; by default it compares every 30 s and leaves writes of the
		// last 30 s alone. Tests wait for it, so it runs every 2 s here.
		servers[i].env = append(servers[i].env,
			"ASYNC_REPLICATION_FREQUENCY=2s",
			"ASYNC_REPLICATION_PROPAGATION_DELAY=2s",
			"ASYNC_REPLICATION_ALIVE_NODES_CHECKING_FREQUENCY=1s",
		)
		t.Cleanup(servers[i].Stop)
	}
	for i, s := range servers {
		var peers []string
		for j, n := range nodes {
			if j != i {
				peers = append(peers, "127.0.0.1:"+strconv.Itoa(n.gossip))
			}
		}
		s.peers = strings.Join(peers, ",")
	}
	p.release()
	// The first node must listen for gossip before the others join it;
	// none is ready until the cluster's Raft has a quorum.
	if err := servers[0].spawn(); err != nil {
		t.Fatal(err)
	}
	if err := servers[0].waitListening(nodes[0].gossip); err != nil {
		t.Fatal(err)
	}
	for _, s := range servers[1:] {
		if err := s.spawn(); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range servers {
		if err := s.waitReady(3 * time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	return servers
}

// Kill ends the server abruptly, as a crash would: connections through
// its forwarders drop, and new ones are refused.
func (s *Server) Kill() {
	if s.running() {
		s.cmd.Process.Kill()
		<-s.exited
	}
	s.closeForwarders()
}

func (s *Server) closeForwarders() {
	for _, f := range s.forward {
		f.close()
	}
	s.inside.CloseIdleConnections()
}

func (s *Server) running() bool {
	if s.exited == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// Restart starts a killed or stopped server again on its data directory
// and ports, and waits until it is ready.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if s.peers != "" {
		// Back in a running cluster, it joins its peers' gossip (the first
		// node started with nobody to join).
		s.env = append(slices.DeleteFunc(s.env, func(e string) bool { return strings.HasPrefix(e, "CLUSTER_JOIN=") }), "CLUSTER_JOIN="+s.peers)
	}
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
}

// dialInside connects to a loopback address inside the server's namespace.
func (s *Server) dialInside(_ context.Context, _, addr string) (net.Conn, error) {
	_, port, _ := net.SplitHostPort(addr)
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return s.ns.dial(p)
}

// waitReady polls /v1/.well-known/ready inside the namespace, then opens
// the forwarders: until it is ready, connections are refused.
func (s *Server) waitReady(within time.Duration) error {
	err := s.await(within, "become ready", func() bool {
		resp, err := s.inside.Get(s.URL + "/v1/.well-known/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if err != nil {
		return err
	}
	for _, f := range s.forward {
		if err := f.open(); err != nil {
			return err
		}
	}
	return nil
}

// waitListening waits until the server accepts connections on port,
// inside its namespace.
func (s *Server) waitListening(port int) error {
	return s.await(time.Minute, "listen on "+strconv.Itoa(port), func() bool {
		c, err := s.ns.dial(port)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// await polls done until it holds, the server exits, or within passes;
// its errors carry the server's log.
func (s *Server) await(within time.Duration, what string, done func() bool) error {
	deadline := time.Now().Add(within)
	for !done() {
		select {
		case <-s.exited:
			return fmt.Errorf("weaviate at %s exited; its log:\n%s", s.URL, s.Logs())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("weaviate at %s did not %s within %v; its log:\n%s", s.URL, what, within, s.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// Logs returns what the server printed.
func (s *Server) Logs() string { return s.logs.String() }

// Stop ends the server; Start's cleanup calls it.
func (s *Server) Stop() {
	if s.running() {
		s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.exited:
		case <-time.After(20 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
		}
	}
	s.closeForwarders()
}
