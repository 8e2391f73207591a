package api

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// countingConn counts the writes that reach the network.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestQueuedFramesGoInOneWrite: frames waiting together in a socket's
// queue reach the network in one write, whole and in order, and the
// socket still answers pings (written by the library's reading goroutine)
// and a frame sent alone afterwards.
func TestQueuedFramesGoInOneWrite(t *testing.T) {
	const n = 50
	counted := make(chan *countingConn, 1)
	sent := make(chan *socket, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &corkingWriter{ResponseWriter: w}
		conn, err := websocket.Accept(cw, r, nil)
		if err != nil {
			return
		}
		cc := &countingConn{Conn: cw.conn.Conn}
		cw.conn.Conn = cc
		sock := newSocket()
		sock.conn, sock.cork = conn, cw.conn
		for i := range n {
			sock.Send(fmt.Appendf(nil, `{"n":%d,"pad":%q}`, i, strings.Repeat("x", i*40)))
		}
		counted <- cc
		sent <- sock
		ctx := conn.CloseRead(r.Context())
		sock.writeLoop(ctx)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	cc, sock := <-counted, <-sent
	for i := range n {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if want := fmt.Sprintf(`{"n":%d,`, i); !strings.HasPrefix(string(b), want) {
			t.Fatalf("frame %d: %.40s, want it to start %s", i, b, want)
		}
	}
	if got := cc.writes.Load(); got != 1 {
		t.Errorf("%d frames queued together took %d writes, want 1", n, got)
	}
	// The client reads in the background so that the pong comes back.
	read := make(chan []byte, 1)
	go func() {
		_, b, _ := c.Read(ctx)
		read <- b
	}()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping after a corked burst: %v", err)
	}
	sock.Send([]byte(`{"n":"alone"}`))
	if b := <-read; string(b) != `{"n":"alone"}` {
		t.Errorf("a frame sent alone: %q", b)
	}
}

// TestAClientThatStopsReadingIsDropped: once the network's buffers are
// full, a write that cannot finish within the socket's write timeout ends
// the socket rather than holding its writer (and the user's frames) for
// ever, whether it blocks in a frame the library writes or in the corked
// frames sent together after them.
func TestAClientThatStopsReadingIsDropped(t *testing.T) {
	cases := []struct {
		name string
		// small: both ends' socket buffers a few KiB, so that two
		// frames corked together (under maxCorked) block in uncork's
		// flush; otherwise many large frames fill loopback's buffers
		// and block in the library's writes.
		small          bool
		frames, frameB int
	}{
		{"in the library's writes", false, 200, 200 << 10},
		{"in the flush of corked frames", true, 2, 100 << 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ended := make(chan time.Duration, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				cw := &corkingWriter{ResponseWriter: w}
				conn, err := websocket.Accept(cw, r, nil)
				if err != nil {
					return
				}
				if tc.small {
					cw.conn.Conn.(*net.TCPConn).SetWriteBuffer(4 << 10)
				}
				sock := newSocket()
				sock.conn, sock.cork = conn, cw.conn
				sock.writeTimeout = 300 * time.Millisecond
				// Queued before the writer starts: it takes them as one
				// batch, corked.
				frame := []byte(`"` + strings.Repeat("x", tc.frameB) + `"`)
				for range tc.frames {
					sock.Send(frame)
				}
				start := time.Now()
				sock.writeLoop(r.Context())
				ended <- time.Since(start)
			}))
			defer srv.Close()
			// Far less than the default write timeout (10 s): only the
			// socket's own can end the write in time.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			opts := &websocket.DialOptions{}
			if tc.small {
				dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
					c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
					if err != nil {
						return nil, err
					}
					return c, c.(*net.TCPConn).SetReadBuffer(4 << 10)
				}
				opts.HTTPClient = &http.Client{Transport: &http.Transport{DialContext: dial}}
			}
			c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), opts)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			// The client reads nothing.
			select {
			case took := <-ended:
				t.Logf("the writer gave up after %v", took)
			case <-ctx.Done():
				t.Fatal("the socket's writer was still blocked after 5 s on a client that reads nothing, with a write timeout of 300 ms")
			}
		})
	}
}
