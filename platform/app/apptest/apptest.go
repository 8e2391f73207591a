// Package apptest starts real grin instances for tests: a real SQLite file
// in a temporary directory, the real HTTP stack on a loopback port, and a
// small client that speaks JSON to it.
package apptest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/grin-ai/grin/internal/logbuf"
	"github.com/grin-ai/grin/platform/app"
	"github.com/grin-ai/grin/platform/config"
)

// AdminPassword is the default admin's password in test instances.
const AdminPassword = "admin-password"

// UserPassword is the default user's password in test instances.
const UserPassword = "user-password"

// Instance is a running grin.
type Instance struct {
	*app.App
	URL  string
	Dir  string
	Logs *LogBuffer
	t    testing.TB
	stop func()
	once sync.Once
}

// Config returns a configuration for a test instance in dir; edit it and
// pass it to StartWith.
func Config(dir string) config.Config {
	return config.Config{
		Addr:           "127.0.0.1:0",
		DataDir:        dir,
		JWTExpire:      time.Hour,
		AdminPassword:  AdminPassword,
		UserPassword:   UserPassword,
		LogLevel:       slog.LevelDebug,
		SessionIdle:    time.Hour,
		UploadMaxBytes: 8 << 20,
		LogFormat:      "text",
		// Every test client is 127.0.0.1: per-address login limits as
		// loose as a test needs, so that only the tests of those limits
		// (which set their own) meet them.
		Login: config.Login{PerAddress: 1000, PerMinute: 1e6, Burst: 100_000},
	}
}

// Start runs an instance with authentication off (shadow users).
func Start(t testing.TB, opts ...app.Option) *Instance {
	t.Helper()
	return StartWith(t, Config(t.TempDir()), opts...)
}

// StartWith runs an instance with cfg. It stops with the test.
func StartWith(t testing.TB, cfg config.Config, opts ...app.Option) *Instance {
	t.Helper()
	OnEngine(t, &cfg)
	logs := &LogBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	opts = append([]app.Option{app.WithBcryptCost(bcrypt.MinCost)}, opts...)
	a, err := app.New(ctx, cfg, logger, opts...)
	if err != nil {
		cancel()
		t.Fatalf("start grin: %v", err)
	}
	srv := httptest.NewServer(a.Handler)
	in := &Instance{App: a, URL: srv.URL, Dir: cfg.DataDir, Logs: logs, t: t}
	in.stop = func() {
		in.once.Do(func() {
			srv.CloseClientConnections()
			srv.Close()
			cancel()
			a.Close()
		})
	}
	t.Cleanup(in.stop)
	// A failing test shows what the server said went wrong, which a 500's
	// "see the server log" points to.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		var bad []string
		for line := range strings.Lines(logs.String()) {
			if strings.Contains(line, "level=ERROR") {
				bad = append(bad, strings.TrimSpace(line))
			}
		}
		if n := len(bad); n > 20 {
			bad = bad[n-20:]
		}
		if len(bad) > 0 {
			t.Logf("the server logged (errors, last %d):\n%s", len(bad), strings.Join(bad, "\n"))
		}
	})
	return in
}

// Close stops the instance, as a shutdown would; the test's cleanup does
// it otherwise.
func (in *Instance) Close() { in.stop() }

// Response is an HTTP answer, read whole.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test when it cannot.
func (r Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Map decodes the body as a JSON object.
func (r Response) Map(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	r.JSON(t, &m)
	return m
}

// Detail is the problem-details message of an error answer.
func (r Response) Detail() string {
	var p struct {
		Detail string `json:"detail"`
	}
	json.Unmarshal(r.Body, &p)
	return p.Detail
}

// Do sends a request. body is marshalled to JSON unless it is a string or
// []byte, which are sent as they are. headers alternate name and value.
func (in *Instance) Do(method, path string, body any, headers ...string) Response {
	in.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			in.t.Fatalf("encode body: %v", err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, in.URL+path, rd)
	if err != nil {
		in.t.Fatalf("new request: %v", err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		in.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		in.t.Fatalf("%s %s: read: %v", method, path, err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// Login returns a token for username and password, failing the test when
// the login fails.
func (in *Instance) Login(username, password string) string {
	in.t.Helper()
	r := in.Do("POST", "/auth/token", map[string]string{"username": username, "password": password})
	if r.Status != http.StatusOK {
		in.t.Fatalf("login %s: %d %s", username, r.Status, r.Body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	r.JSON(in.t, &tok)
	return tok.AccessToken
}

// Bearer is the header pair for a token.
func Bearer(token string) []string { return []string{"Authorization", "Bearer " + token} }

// LogBuffer collects an instance's log output.
type LogBuffer = logbuf.Buffer
