package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/grin-ai/grin/platform/auth"
	"github.com/grin-ai/grin/platform/chat"
	"github.com/grin-ai/grin/platform/metrics"
	"github.com/grin-ai/grin/platform/requestid"
	"github.com/grin-ai/grin/platform/session"
	"github.com/grin-ai/grin/policies"
)

// WebSocket limits.
const (
	maxFrameBytes = 64 << 10 // a larger frame closes the socket with 1009
	sendQueue     = 256      // frames queued for a slow client before it is dropped
	inbox         = 16       // messages waiting to be answered per socket
	writeTimeout  = 10 * time.Second
)

// registerWebSocket serves /ws and /ws/{user_id}. huma has no WebSocket
// support, so the handler authenticates and authorizes itself, with the
// same authenticator and policy as every operation.
func (s *Server) registerWebSocket() {
	s.mux.HandleFunc("GET /ws", s.serveWS)
	s.mux.HandleFunc("GET /ws/{user_id}", s.serveWS)
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if s.isStopping() {
		w.Header().Set("Retry-After", "1")
		writeProblem(w, http.StatusServiceUnavailable, errStopping)
		return
	}
	id, err := s.deps.Auth.Authenticate(r.Context(), auth.Credentials{
		Protocol: auth.WebSocket, Token: r.URL.Query().Get("token"), UserID: r.PathValue("user_id"),
		Resource: chatNeed.resource, Permission: chatNeed.permission,
	})
	if err != nil {
		status, msg := http.StatusForbidden, "Invalid Credentials"
		if !auth.IsInvalidCredentials(err) {
			status, msg = http.StatusServiceUnavailable, "grin could not check your credentials just now; try again"
		}
		writeProblem(w, status, msg)
		return
	}
	if status, msg := s.mayActAs(r.Context(), id); status != 0 {
		writeProblem(w, status, msg)
		return
	}
	if !s.mayChat(id) {
		writeProblem(w, http.StatusForbidden, "Permission denied: this needs "+chatNeed.String()+", which is not granted to "+id.Name)
		return
	}
	// Subscribe before the handshake completes, so that a frame sent the
	// moment the client sees the socket open is queued for it, not lost.
	sock := newSocket()
	sock.byToken, sock.epoch = id.Method == auth.MethodJWT, id.TokenEpoch
	unsubscribe, subErr := s.deps.Sessions.Subscribe(id.ID, sock)
	if subErr == nil && sock.byToken {
		// A revocation between the check above and the subscription
		// closed the sockets it saw, not this one: look again now that
		// a later revocation is sure to see it.
		if _, err := s.deps.Auth.Authenticate(r.Context(), auth.Credentials{
			Protocol: auth.WebSocket, Token: r.URL.Query().Get("token"), UserID: r.PathValue("user_id"),
			Resource: chatNeed.resource, Permission: chatNeed.permission,
		}); err != nil {
			unsubscribe()
			writeProblem(w, http.StatusForbidden, "Invalid Credentials")
			return
		}
	}
	cw := &corkingWriter{ResponseWriter: w}
	conn, err := websocket.Accept(cw, r, &websocket.AcceptOptions{OriginPatterns: s.deps.AllowedOrigins})
	if subErr != nil {
		// Refused after the handshake, with a close reason: a browser's
		// WebSocket never shows the status of a refused handshake.
		s.deps.Logger.InfoContext(r.Context(), "socket refused", "user", id.ID, "err", subErr)
		if err == nil {
			conn.Close(websocket.StatusTryAgainLater, fmt.Sprintf(
				"you already have %d sockets open, the most one user may have; close one and try again", s.deps.Sessions.MaxSockets()))
		}
		return
	}
	defer unsubscribe()
	if err != nil {
		return // Accept has answered the client
	}
	conn.SetReadLimit(maxFrameBytes)
	sock.conn, sock.cork = conn, cw.conn
	untrack, ok := s.track(sock)
	if !ok {
		conn.Close(websocket.StatusServiceRestart, restartReason)
		return
	}
	defer untrack()
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	go sock.writeLoop(ctx)

	// One worker answers this socket's messages in order while the read
	// loop keeps reading, so pings and closes are handled during a long
	// reply.
	work := make(chan message, inbox)
	// Turns run in a context of their own: the shutdown's deadline
	// cancels them (hardStop) while the socket closes with 1012.
	turnCtx, cancelTurns := context.WithCancel(ctx)
	defer cancelTurns()
	var wg sync.WaitGroup
	wg.Go(func() {
		for m := range work {
			mctx := requestid.With(turnCtx, m.id)
			start := time.Now()
			outcome := s.answerFrame(mctx, id, sock, m.data)
			s.deps.Logger.LogAttrs(mctx, slog.LevelInfo, "socket message", slog.String("user", id.ID),
				slog.String("outcome", outcome), slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000))
		}
	})
	// At shutdown the socket takes no more messages, answers those it
	// has received, then tells its client to reconnect (1012); when the
	// wait is over (hardStop), turns still running are cancelled.
	var gate sync.Mutex // orders "stopped" against queueing a message
	stopped := false
	closeWork := sync.OnceFunc(func() { close(work) })
	defer context.AfterFunc(s.stopping, func() {
		gate.Lock()
		stopped = true
		closeWork()
		gate.Unlock()
		wg.Wait()
		sock.closeWith(websocket.StatusServiceRestart, restartReason)
	})()
	defer context.AfterFunc(s.hardStop, cancelTurns)()
	defer wg.Wait()
	defer func() {
		gate.Lock()
		closeWork()
		gate.Unlock()
	}()
	// Each message is a request of its own for the logs and the hooks:
	// the socket's id (its handshake's X-Request-Id) and the message's
	// number, "<socket id>.<n>".
	socketID, messages := requestid.From(r.Context()), 0
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			cancel()
			return
		}
		if typ != websocket.MessageText {
			sock.Send(newErrorFrame("InvalidMessage", "send text frames holding JSON such as {\"text\": \"hello\"}"))
			continue
		}
		gate.Lock()
		switch {
		case stopped:
			s.deps.Metrics.Turn("websocket", metrics.TurnRefused, 0)
			sock.Send(newErrorFrame("ServiceRestart", errStopping))
		default:
			messages++
			select {
			case work <- message{id: socketID + "." + strconv.Itoa(messages), data: data}:
			default:
				sock.Send(newErrorFrame("TooManyMessages", "wait for the answers to your earlier messages before sending more"))
			}
		}
		gate.Unlock()
	}
}

// mayActAs keeps the WebSocket key to shadow users: the key acts as
// whatever id the path names, as in the Cat, but when that id is an
// internal user's the key would reach that user's memories and history,
// so it needs the policy's leave (policies.ActAsObject), which the default
// policy does not give. It returns the status and sentence of a refusal,
// or 0 to go on.
func (s *Server) mayActAs(ctx context.Context, id auth.Identity) (int, string) {
	if id.Method != auth.MethodWSKey {
		return 0, ""
	}
	internal, err := s.deps.Users.Exists(ctx, id.ID)
	if err != nil {
		s.deps.Logger.ErrorContext(ctx, "look up the socket's user", "err", err)
		return http.StatusServiceUnavailable, "grin could not check your credentials just now; try again"
	}
	if !internal {
		return 0, ""
	}
	ok, err := s.decide(id, policies.ActAsObject(id.ID), policies.ActAsAction)
	if err != nil {
		s.deps.Logger.ErrorContext(ctx, "policy decision failed", "err", err)
		return http.StatusInternalServerError, "the policy could not decide this request; see the server log"
	}
	if !ok {
		return http.StatusForbidden, "Permission denied: the WebSocket key (GRIN_API_KEY_WS) cannot act as " + id.ID +
			", an internal user; connect with that user's token (?token=<JWT from /auth/token>), or let the key act as internal users in the policy (p, credential:ws_key, " +
			policies.ActAsObject("*") + ", " + policies.ActAsAction + ")"
	}
	return 0, ""
}

// chatNeed is what a socket needs, at the handshake and for every message.
var chatNeed = catNeed(policies.Conversation, policies.Write)

// mayChat asks the policy whether id may chat; a policy that cannot decide
// denies.
func (s *Server) mayChat(id auth.Identity) bool {
	ok, err := s.decide(id, chatNeed.object, chatNeed.action)
	return err == nil && ok
}

// message is a frame a socket received, with its request id.
type message struct {
	id   string
	data []byte
}

// answerFrame handles one client frame; every failure becomes an error
// frame and the socket stays open. It returns what became of the frame,
// for the log: answered, invalid, denied, failed or cancelled.
func (s *Server) answerFrame(ctx context.Context, id auth.Identity, sock *socket, data []byte) string {
	var body map[string]any
	if err := json.Unmarshal(data, &body); err != nil {
		sock.Send(newErrorFrame("InvalidMessage", "the frame is not a JSON object: "+err.Error()))
		return "invalid"
	}
	text, ok := body["text"].(string)
	if !ok || strings.TrimSpace(text) == "" {
		sock.Send(newErrorFrame("InvalidMessage", "a message needs \"text\", a non-empty string"))
		return "invalid"
	}
	// Permissions may have changed since the socket opened.
	if !s.mayChat(id) {
		sock.Send(newErrorFrame("PermissionDenied", "this needs "+chatNeed.String()+", which is no longer granted to you"))
		return "denied"
	}
	// The reply reaches every socket of the user, this one included.
	if _, err := s.turn(ctx, "websocket", id, messageOf(body)); err != nil {
		if ctx.Err() != nil {
			return "cancelled"
		}
		if chat.IsRefusal(err) {
			sock.Send(newErrorFrame("InvalidMessage", err.Error()))
			return "invalid"
		}
		// The frame says what the HTTP answer would: the caller's
		// mistake or the provider's words, or for grin's own failures
		// only that it failed (chatError logs those).
		sock.Send(newErrorFrame("ChatFailed", s.chatError(ctx, err).Error()))
		return "failed"
	}
	return "answered"
}

// CloseRevokedSockets closes, with 1008 and session.RevokedReason, the
// user's sockets opened with a token older than epoch, on every replica:
// the user changed their password or logged out everywhere. Sockets
// opened with keys, or with a token issued since, stay open.
func (s *Server) CloseRevokedSockets(userID string, epoch int64) {
	s.deps.Sessions.Revoke(userID, epoch)
}

// socket is one client connection with its own send queue.
type socket struct {
	conn  *websocket.Conn
	cork  *corkedConn // beneath conn, set with it
	queue chan []byte
	// writeTimeout bounds each batch of writes to the network
	// (writeTimeout by default): a client that stops reading is dropped
	// after it.
	writeTimeout time.Duration

	// byToken and epoch: opened with a grin token of this token epoch.
	byToken bool
	epoch   int64

	once   sync.Once
	closed chan struct{}
	reason string
	code   websocket.StatusCode
}

// newSocket makes a socket whose conn is set once the handshake is done;
// until then Send only queues.
func newSocket() *socket {
	return &socket{queue: make(chan []byte, sendQueue), writeTimeout: writeTimeout, closed: make(chan struct{})}
}

// Send queues a frame; a client too slow to take its frames is dropped
// rather than allowed to hold up the user's other sockets.
func (s *socket) Send(frame []byte) {
	select {
	case <-s.closed:
	case s.queue <- frame:
	default:
		s.closeWith(websocket.StatusPolicyViolation, "the client reads too slowly")
	}
}

// Close ends the socket with reason, as when the user is deleted.
func (s *socket) Close(reason string) { s.closeWith(websocket.StatusPolicyViolation, reason) }

var _ session.Revocable = (*socket)(nil)

// OpenedBefore says whether the socket was opened with a grin token of an
// epoch before epoch: revoking that epoch closes it.
func (s *socket) OpenedBefore(epoch int64) bool { return s.byToken && s.epoch < epoch }

func (s *socket) closeWith(code websocket.StatusCode, reason string) {
	s.once.Do(func() {
		s.code, s.reason = code, reason
		close(s.closed)
	})
}

func (s *socket) writeLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			// A close decided together with the cancel (the shutdown's
			// 1012) keeps its code and reason.
			code, reason := websocket.StatusNormalClosure, ""
			select {
			case <-s.closed:
				code, reason = s.code, s.reason
			default:
			}
			s.conn.Close(code, reason)
			return
		case <-s.closed:
			// Frames queued before the close are flushed first.
		flush:
			for {
				select {
				case f := <-s.queue:
					if s.writeQueued(ctx, f) != nil {
						break flush
					}
				default:
					break flush
				}
			}
			s.conn.Close(s.code, s.reason)
			return
		case f := <-s.queue:
			if err := s.writeQueued(ctx, f); err != nil {
				s.conn.CloseNow()
				return
			}
		}
	}
}

// writeQueued writes f and, in the same write to the network, the frames
// queued behind it now. The frames written together share one
// writeTimeout, the deadline of the connection beneath the library: it
// bounds the library's writes and the flush at uncork alike, which comes
// after the library's last write and outside any context it watches. ctx
// only ends the writes early, when the socket ends.
func (s *socket) writeQueued(ctx context.Context, f []byte) error {
	s.cork.SetWriteDeadline(time.Now().Add(s.writeTimeout))
	defer s.cork.SetWriteDeadline(time.Time{})
	more := len(s.queue)
	if more == 0 {
		return s.write(ctx, f)
	}
	s.cork.cork()
	err := s.write(ctx, f)
	for ; err == nil && more > 0; more-- {
		err = s.write(ctx, <-s.queue)
	}
	if uerr := s.cork.uncork(); err == nil {
		err = uerr
	}
	return err
}

// write writes one frame, within the connection's deadline.
func (s *socket) write(ctx context.Context, frame []byte) error {
	return s.conn.Write(ctx, websocket.MessageText, frame)
}

// writeProblem answers a refused handshake with problem details.
func writeProblem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"title": http.StatusText(status), "status": status, "detail": detail})
}
