package api

import (
	"context"
	"net/http"

	"github.com/coder/websocket"
	"github.com/danielgtaylor/huma/v2"
)

// restartReason closes sockets at shutdown, with code 1012 (service
// restart): clients reconnect, to another replica or to this one once it
// is back.
const restartReason = "grin is restarting: reconnect"

// errStopping answers a new turn or socket once the shutdown has begun.
const errStopping = "grin is shutting down and takes no new messages; send it again in a moment (or to another replica)"

// BeginDrain is the first step of a shutdown: GET /readyz answers 503
// from now on, so load balancers stop sending clients here, while
// everything is still served.
func (s *Server) BeginDrain() { s.draining.Store(true) }

// Drain stops taking new work and finishes what is in flight: new sockets
// and new chat messages are refused (503, or an error frame on an open
// socket), each socket's turns already received are answered, and then the
// socket is closed with 1012 so its client reconnects. When ctx ends
// first, the remaining sockets are closed at once and their turns
// cancelled; Drain returns ctx's error then. HTTP requests in flight are
// the http.Server's to wait for (Shutdown).
func (s *Server) Drain(ctx context.Context) error {
	s.BeginDrain()
	// Under socketsMu, so that a socket is either tracked before the wait
	// below begins or refused.
	s.socketsMu.Lock()
	s.beginStopping()
	s.socketsMu.Unlock()
	done := make(chan struct{})
	go func() {
		s.socketsWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.socketsMu.Lock()
	for sock := range s.sockets {
		sock.closeWith(websocket.StatusServiceRestart, restartReason)
	}
	s.socketsMu.Unlock()
	s.stopHard()
	<-done
	return ctx.Err()
}

// isStopping reports whether Drain has begun.
func (s *Server) isStopping() bool { return s.stopping.Err() != nil }

// refuseWhenStopping answers 503, with Retry-After, a new turn once the
// shutdown has begun.
func (s *Server) refuseWhenStopping() error {
	if !s.isStopping() {
		return nil
	}
	return huma.ErrorWithHeaders(huma.Error503ServiceUnavailable(errStopping), http.Header{"Retry-After": {"1"}})
}

// track registers an open socket for the shutdown; the returned function
// forgets it.
func (s *Server) track(sock *socket) (untrack func(), ok bool) {
	s.socketsMu.Lock()
	defer s.socketsMu.Unlock()
	if s.isStopping() {
		return nil, false
	}
	s.sockets[sock] = struct{}{}
	s.socketsWG.Add(1)
	return func() {
		s.socketsMu.Lock()
		delete(s.sockets, sock)
		s.socketsMu.Unlock()
		s.socketsWG.Done()
	}, true
}
