package api

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"sync"
)

// corkedConn is a socket's connection that can gather what is written
// while corked and send it in one write when uncorked. A reply's frames
// (its tokens, then the reply) often wait together in the socket's queue;
// the WebSocket library writes, and flushes, each frame on its own: one
// system call and one TCP segment a frame. Corked, the frames already
// queued go out in one, and the client reads them in one. Nothing waits
// to be gathered: only frames already queued are.
//
// Notes: safe for concurrent use (the library writes pongs and the close
// handshake from its reading goroutine).
type corkedConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	buf    []byte
}

// maxCorked bounds what is gathered before it is written anyway.
const maxCorked = 256 << 10

func (c *corkedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return c.Conn.Write(p)
	}
	c.buf = append(c.buf, p...)
	if len(c.buf) >= maxCorked {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (c *corkedConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork writes what was gathered.
func (c *corkedConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	return c.flushLocked()
}

func (c *corkedConn) flushLocked() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	if cap(c.buf) > maxCorked {
		c.buf = nil // a burst's buffer is not kept for the socket's life
	} else {
		c.buf = c.buf[:0]
	}
	return err
}

// corkingWriter hands the WebSocket library a corkedConn when it takes
// over the connection (http.Hijacker).
type corkingWriter struct {
	http.ResponseWriter
	conn *corkedConn
}

func (w *corkingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// The handshake's answer may still be in the server's buffer: it goes
	// first, then every write goes through the corked connection.
	if err := brw.Writer.Flush(); err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("answer the handshake: %w", err)
	}
	w.conn = &corkedConn{Conn: c}
	return w.conn, bufio.NewReadWriter(brw.Reader, bufio.NewWriterSize(w.conn, 4096)), nil
}

// Unwrap lets http.ResponseController reach the writer beneath.
func (w *corkingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
