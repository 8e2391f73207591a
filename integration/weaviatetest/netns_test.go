package weaviatetest

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"testing"
)

// inside serves HTTP on a free port of ns's loopback.
func inside(t testing.TB, ns *netns) int {
	t.Helper()
	var ln net.Listener
	var err error
	ns.run(func() { ln, err = net.Listen("tcp", "127.0.0.1:0") })
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "inside") })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// TestNamespaceHasOnlyLoopback: a process started in the namespace sees lo
// alone, and a port inside is reached from the host only while forwarded.
func TestNamespaceHasOnlyLoopback(t *testing.T) {
	ns := isolated(t)
	defer ns.close()
	cmd := exec.Command("sleep", "60")
	if err := ns.start(cmd); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	netDir := "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/net"
	if got := interfaces(t, netDir); !slices.Equal(got, []string{"lo"}) {
		t.Errorf("interfaces in the namespace: %v", got)
	}
	mine, _ := os.Readlink("/proc/self/ns/net")
	its, _ := os.Readlink("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/net")
	if mine == its {
		t.Errorf("the process shares the test's network namespace %s", mine)
	}

	port := inside(t, ns)
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	get := func() (string, error) {
		resp, err := http.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	if _, err := get(); err == nil {
		t.Error("the namespace's port answers on the host before it is forwarded")
	}
	f := &forwarder{ns: ns, port: port}
	if err := f.open(); err != nil {
		t.Fatal(err)
	}
	if body, err := get(); err != nil || body != "inside" {
		t.Errorf("through the forwarder: %q, %v", body, err)
	}
	f.close()
	http.DefaultClient.CloseIdleConnections()
	if _, err := get(); err == nil {
		t.Error("a closed forwarder still answers")
	}
	if err := f.open(); err != nil {
		t.Fatal(err)
	}
	defer f.close()
	if body, err := get(); err != nil || body != "inside" {
		t.Errorf("through the reopened forwarder: %q, %v", body, err)
	}
}

// BenchmarkForwarder: a request through the forwarder, against one made
// inside the namespace directly (each on a kept-alive connection).
func BenchmarkForwarder(b *testing.B) {
	ns := isolated(b)
	defer ns.close()
	port := inside(b, ns)
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	f := &forwarder{ns: ns, port: port}
	if err := f.open(); err != nil {
		b.Fatal(err)
	}
	defer f.close()
	direct := &http.Client{Transport: &http.Transport{DialContext: (&Server{ns: ns}).dialInside}}
	for _, c := range []struct {
		name   string
		client *http.Client
	}{{"forwarded", &http.Client{Transport: &http.Transport{}}}, {"direct", direct}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				resp, err := c.client.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}
