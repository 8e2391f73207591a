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
	a, err := app.New(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer a.Close()
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
		BaseContext:       func(net.Listener) context.Context { return ctx },
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
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
