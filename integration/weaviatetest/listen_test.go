package weaviatetest

import (
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestServersListenOnLoopbackOnly: nothing a weaviate-server listens on
// (gRPC, HTTP, gossip over TCP and UDP, cluster data, Raft) can be reached
// but through loopback. A socket bound to a non-loopback address, or to
// every interface, is allowed only in a network namespace whose one
// interface is lo. The test's forwarders to a server's HTTP and gRPC ports
// listen on loopback.
func TestServersListenOnLoopbackOnly(t *testing.T) {
	t.Run("single", func(t *testing.T) {
		checkLoopbackOnly(t, Start(t))
	})
	t.Run("cluster", func(t *testing.T) {
		checkLoopbackOnly(t, StartCluster(t, 2)...)
	})
}

func checkLoopbackOnly(t *testing.T, servers ...*Server) {
	t.Helper()
	host, test := listening(t, "/proc/self/net"), socketInodes(t, os.Getpid())
	for _, s := range servers {
		pid := s.cmd.Process.Pid
		mine := socketInodes(t, pid)
		netDir := filepath.Join("/proc", strconv.Itoa(pid), "net")
		ifaces := interfaces(t, netDir)
		var ports []int
		var seen []string
		for _, l := range listening(t, netDir) {
			if !mine[l.inode] {
				continue
			}
			ports = append(ports, l.port)
			seen = append(seen, l.proto+" "+net.JoinHostPort(l.ip.String(), strconv.Itoa(l.port)))
			if !l.ip.IsLoopback() && !slices.Equal(ifaces, []string{"lo"}) {
				t.Errorf("weaviate-server %d listens on %s %s:%d, reachable through %v", pid, l.proto, l.ip, l.port, ifaces)
			}
		}
		t.Logf("weaviate-server %d, interfaces %v: %s", pid, ifaces, strings.Join(seen, ", "))
		// The check saw the sockets it is about.
		n := s.node
		reserved := []int{n.http, n.grpc, n.gossip, n.gossip + 1, n.raft, n.raft + 1}
		for _, want := range reserved {
			if !slices.Contains(ports, want) {
				t.Errorf("weaviate-server %d: nothing listening on port %d among %v", pid, want, ports)
			}
		}
		// What the test forwards to it listens on the host's loopback.
		forwarded := 0
		for _, l := range host {
			if !test[l.inode] || (l.port != n.http && l.port != n.grpc) {
				continue
			}
			forwarded++
			if !l.ip.IsLoopback() {
				t.Errorf("the test listens on %s %s:%d for weaviate-server %d", l.proto, l.ip, l.port, pid)
			}
		}
		if forwarded != 2 {
			t.Errorf("%d of weaviate-server %d's ports forwarded, want HTTP and gRPC", forwarded, pid)
		}
	}
}

// socket is a listening TCP socket or a bound UDP one.
type socket struct {
	proto string
	ip    net.IP
	port  int
	inode string
}

// listening reads dir's tcp, tcp6, udp and udp6 tables: the sockets of
// that network namespace.
func listening(t *testing.T, dir string) []socket {
	t.Helper()
	var out []socket
	for _, proto := range []string{"tcp", "tcp6", "udp", "udp6"} {
		b, err := os.ReadFile(filepath.Join(dir, proto))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 {
				continue
			}
			// TCP_LISTEN is 0A; UDP sockets that are bound show 07.
			if state := f[3]; (proto[:3] == "tcp" && state != "0A") || (proto[:3] == "udp" && state != "07") {
				continue
			}
			addr, portHex, _ := strings.Cut(f[1], ":")
			port, _ := strconv.ParseUint(portHex, 16, 16)
			out = append(out, socket{proto: proto, ip: procIP(t, addr), port: int(port), inode: f[9]})
		}
	}
	return out
}

// procIP decodes /proc/net's address: 32-bit words in host (little
// endian) order.
func procIP(t *testing.T, s string) net.IP {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("address %q: %v", s, err)
	}
	for i := 0; i+4 <= len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	return net.IP(b)
}

// socketInodes returns the inodes of the process's sockets.
func socketInodes(t *testing.T, pid int) map[string]bool {
	t.Helper()
	dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	fds, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(dir, fd.Name()))
		if inode, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
			out[strings.TrimSuffix(inode, "]")] = true
		}
	}
	return out
}

// interfaces lists the network interfaces of the namespace dir shows.
func interfaces(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "dev"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n")[2:] {
		if name, _, ok := strings.Cut(line, ":"); ok {
			out = append(out, strings.TrimSpace(name))
		}
	}
	return out
}
