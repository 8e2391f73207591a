package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"runtime/pprof"
	"time"

	"github.com/grin-ai/grin/platform/app"
	"github.com/grin-ai/grin/platform/config"
	"github.com/grin-ai/grin/platform/loadtest"
)

// benchChat runs the chat load tool: against --url, or against a grin it
// starts in process (a fresh data directory, the offline model) so that
// the heap per session can be measured too; and against a raw WebSocket
// echo server for the ceiling.
func benchChat(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("grin bench chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	users := fs.Int("users", 100, "users, one socket each")
	messages := fs.Int("messages", 10, "messages per user")
	url := fs.String("url", "", "a running grin (http://host:port); empty: start one in process")
	token := fs.String("token", "", "?token= for each socket (GRIN_API_KEY_WS or a JWT) with --url")
	deadline := fs.Duration("deadline", 5*time.Minute, "stop the run after this long")
	echo := fs.Bool("echo", true, "also measure a raw WebSocket echo server, the ceiling")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run (client and in-process server) to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	opts := loadtest.Options{URL: *url, Users: *users, Messages: *messages, Token: *token, Deadline: *deadline}
	if *url == "" {
		dir, err := os.MkdirTemp("", "grin-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cfg, err := config.Load(nil, func(string) string { return "" }, io.Discard)
		if err != nil {
			return err
		}
		cfg.DataDir, cfg.AdminPassword = dir, "bench-admin-password"
		runCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		a, err := app.New(runCtx, cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			return err
		}
		defer a.Close()
		srv := httptest.NewServer(a.Handler)
		defer srv.Close()
		opts.URL = srv.URL
		before := loadtest.HeapInUse()
		var perSession float64
		res, err := loadtest.Run(ctx, opts, func() {
			// Every socket still open and every session live: what
			// holding N chatting users costs, client sockets included.
			if after, live := loadtest.HeapInUse(), a.Sessions.Live(); live > 0 && after > before {
				perSession = float64(after-before) / float64(live)
			}
		})
		if err != nil {
			return err
		}
		res.HeapPerSession = perSession
		res.Report(stdout, "grin")
	} else {
		res, err := loadtest.Run(ctx, opts, nil)
		if err != nil {
			return err
		}
		res.Report(stdout, "grin")
	}
	if *echo {
		srv := loadtest.EchoServer()
		defer srv.Close()
		res, err := loadtest.Run(ctx, loadtest.Options{URL: srv.URL, Users: *users, Messages: *messages, Deadline: *deadline, Echo: true}, nil)
		if err != nil {
			return fmt.Errorf("echo ceiling: %w", err)
		}
		res.Report(stdout, "ws-echo")
	}
	return nil
}
