package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/grin-ai/grin/platform/api"
	"github.com/grin-ai/grin/platform/app"
	"github.com/grin-ai/grin/platform/config"
)

const version = api.Version

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, stderr)
	// The instance and its requests outlive the signal (ctx): turns in
	// flight finish during the shutdown, and background work stops only
	// after it.
	appCtx, stopApp := context.WithCancel(context.WithoutCancel(ctx))
	a, err := app.New(appCtx, cfg, logger)
	if err != nil {
		stopApp()
		return err
	}
	defer func() {
		stopApp()
		a.Close()
	}()
	if a.GeneratedAdminPassword != "" {
		// Shown once, on the terminal that started the first run; it is
		// not logged, and grin keeps only its hash.
		fmt.Fprintf(stderr, "\n  First start: the user \"admin\" was created with the password\n\n      %s\n\n  It is not shown again. Set GRIN_ADMIN_PASSWORD before the first start to choose it.\n\n", a.GeneratedAdminPassword)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           a.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return appCtx },
	}
	mode := "off (shadow users, loopback only)"
	switch {
	case cfg.APIKey != "":
		mode = "API key or token"
	case cfg.AuthRequired:
		mode = "token required"
	case cfg.Insecure:
		mode = "off, and listening beyond loopback (GRIN_INSECURE)"
	}
	logger.Info("grin listening", "addr", "http://"+ln.Addr().String(), "data", cfg.DataDir, "auth", mode, "version", version)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	return shutdown(a, srv, cfg.Ops, errc, logger)
}

// shutdown stops grin gracefully: /readyz answers 503 at once and
// everything is served for GRIN_SHUTDOWN_DELAY, so load balancers send
// new clients elsewhere; then new sockets and messages are refused, turns
// in flight are answered, sockets are told to reconnect (1012), the
// listener closes and HTTP requests in flight finish, all within
// GRIN_SHUTDOWN_TIMEOUT.
func shutdown(a *app.App, srv *http.Server, ops config.Ops, errc <-chan error, logger *slog.Logger) error {
	a.Handler.BeginDrain()
	if ops.ShutdownDelay > 0 {
		logger.Info("shutting down: not ready, still serving while load balancers notice", "delay", ops.ShutdownDelay)
		select {
		case <-time.After(ops.ShutdownDelay):
		case err := <-errc:
			return fmt.Errorf("serve: %w", err)
		}
	}
	logger.Info("shutting down: finishing the turns in flight", "timeout", ops.ShutdownTimeout)
	timeout := ops.ShutdownTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	drainErr := a.Handler.Drain(ctx)
	if drainErr != nil {
		logger.Warn("shutdown timeout: sockets closed with turns still running", "timeout", timeout)
	}
	if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Warn("shutdown timeout: closing the connections of requests still running", "err", err)
		srv.Close()
	}
	logger.Info("stopped")
	return nil
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
