package weaviatetest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// netns is a private network namespace whose only interface is loopback,
// and an OS thread that stays in it: the processes it starts and the
// sockets it opens live there. Weaviate listens on every interface for
// gRPC and its cluster data API, with no setting to change that; in a
// netns "every interface" is its loopback, out of reach of anything but
// the test process (through forwarders) and the servers inside.
type netns struct {
	do     chan func()
	closed chan struct{}
	once   sync.Once
}

// isolated returns a new namespace. Without the right to make one (root,
// or CAP_SYS_ADMIN), the test skips, or fails under GRIN_REQUIRE_WEAVIATE=1.
func isolated(t testing.TB) *netns {
	t.Helper()
	ns, err := newNetns()
	if err == nil {
		return ns
	}
	msg := fmt.Sprintf("weaviate-server runs in a private network namespace, which this process may not create (it needs root or CAP_SYS_ADMIN): %v", err)
	if os.Getenv("GRIN_REQUIRE_WEAVIATE") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return nil
}

// newNetns unshares a namespace on a thread of its own and brings lo up.
func newNetns() (*netns, error) {
	type result struct {
		ns  *netns
		err error
	}
	ready := make(chan result, 1)
	go func() {
		// Never unlocked: when this goroutine returns, its thread, the
		// only one in the namespace, ends with it.
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// The main thread would not end with the namespace (and
			// /proc/self/net shows its namespace): hold it while another
			// thread takes the job.
			defer runtime.UnlockOSThread()
			ns, err := newNetns()
			ready <- result{ns, err}
			return
		}
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ready <- result{err: fmt.Errorf("unshare network namespace: %w", err)}
			return
		}
		if err := loopbackUp(); err != nil {
			ready <- result{err: err}
			return
		}
		ns := &netns{do: make(chan func()), closed: make(chan struct{})}
		ready <- result{ns: ns}
		for {
			select {
			case f := <-ns.do:
				f()
			case <-ns.closed:
				return
			}
		}
	}()
	r := <-ready
	return r.ns, r.err
}

// loopbackUp brings up lo, which a new namespace has down.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("flags of lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	return nil
}

var errClosed = errors.New("network namespace closed")

// run calls f on the namespace's thread.
func (ns *netns) run(f func()) error {
	done := make(chan struct{})
	select {
	case ns.do <- func() { f(); close(done) }:
		<-done
		return nil
	case <-ns.closed:
		return errClosed
	}
}

// start starts cmd inside the namespace: a child inherits the namespace
// of the thread that forks it.
func (ns *netns) start(cmd *exec.Cmd) error {
	var err error
	if e := ns.run(func() { err = cmd.Start() }); e != nil {
		return e
	}
	return err
}

// dial connects to 127.0.0.1:port inside the namespace.
func (ns *netns) dial(port int) (net.Conn, error) {
	var c net.Conn
	var err error
	if e := ns.run(func() { c, err = net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 5*time.Second) }); e != nil {
		return nil, e
	}
	return c, err
}

// close ends the namespace's thread; the namespace goes once the
// processes in it have ended too.
func (ns *netns) close() { ns.once.Do(func() { close(ns.closed) }) }

// forwarder makes a port inside a namespace reachable on the same port
// of the host's 127.0.0.1, while it is open.
type forwarder struct {
	ns   *netns
	port int
	mu   sync.Mutex
	cur  *forwarding // nil while closed
}

// forwarding is one opening of a forwarder: its listener and the
// connections it accepted.
type forwarding struct {
	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{} // nil once closed
}

// open listens on the host's 127.0.0.1:port.
func (f *forwarder) open() error {
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(f.port))
	if err != nil {
		return fmt.Errorf("forward port %d: %w", f.port, err)
	}
	fw := &forwarding{ln: ln, conns: map[net.Conn]struct{}{}}
	f.mu.Lock()
	f.cur = fw
	f.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go fw.serve(f.ns, f.port, c)
		}
	}()
	return nil
}

// close stops listening and drops every connection, as the death of the
// server behind it would.
func (f *forwarder) close() {
	f.mu.Lock()
	fw := f.cur
	f.cur = nil
	f.mu.Unlock()
	if fw == nil {
		return
	}
	fw.ln.Close()
	fw.mu.Lock()
	defer fw.mu.Unlock()
	for c := range fw.conns {
		c.Close()
	}
	fw.conns = nil
}

// track records the connections as open, false once closed.
func (fw *forwarding) track(cs ...net.Conn) bool {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.conns == nil {
		return false
	}
	for _, c := range cs {
		fw.conns[c] = struct{}{}
	}
	return true
}

func (fw *forwarding) untrack(cs ...net.Conn) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	for _, c := range cs {
		delete(fw.conns, c)
	}
}

// serve copies between out, accepted on the host, and a connection to
// the same port inside the namespace, both ways.
func (fw *forwarding) serve(ns *netns, port int, out net.Conn) {
	in, err := ns.dial(port)
	if err != nil {
		// Nothing listens inside: the client sees its connection reset.
		out.(*net.TCPConn).SetLinger(0)
		out.Close()
		return
	}
	defer in.Close()
	defer out.Close()
	if !fw.track(out, in) {
		return
	}
	defer fw.untrack(out, in)
	pipe := func(dst, src net.Conn) {
		if _, err := io.Copy(dst, src); err != nil {
			dst.Close()
			src.Close()
			return
		}
		dst.(*net.TCPConn).CloseWrite() // pass the end of one direction on
	}
	var wg sync.WaitGroup
	wg.Go(func() { pipe(in, out) })
	wg.Go(func() { pipe(out, in) })
	wg.Wait()
}
