package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"time"

	"github.com/grin-ai/grin/platform/app"
	"github.com/grin-ai/grin/platform/config"
	"github.com/grin-ai/grin/platform/loadtest"
)

// benchReport is what `grin bench chat -json` writes: the run of grin, the
// raw WebSocket echo beside it (the ceiling on this machine, measured in
// the same run), and grin's share of that ceiling.
type benchReport struct {
	Grin loadtest.Summary  `json:"grin"`
	Echo *loadtest.Summary `json:"echo,omitempty"`
	// Ratio is grin's throughput divided by the echo's (0 without echo).
	Ratio float64 `json:"ratio,omitempty"`
	// CPURatio is grin's CPU time per reply divided by the echo's, both
	// measured in this process (0 with -url or without echo): what a turn
	// costs beside a bare round trip, less swayed by other load on the
	// machine than throughput.
	CPURatio float64 `json:"cpu_ratio,omitempty"`
	// PageFault is what one page fault costs this machine, in
	// microseconds (loadtest.FaultCost), measured after the runs: the
	// price of each of grin's page_faults_per_reply.
	PageFault float64 `json:"page_fault_us,omitempty"`
	// Memory is the backend the in-process grin used ("" with -url).
	Memory string `json:"memory,omitempty"`
	// Replicas is how many in-process replicas shared one PostgreSQL
	// database (0: one grin on its SQLite file).
	Replicas int `json:"replicas,omitempty"`
	// Warmup is the unmeasured run of other users before grin's
	// (-warmup), when there was one.
	Warmup *loadtest.Summary `json:"warmup,omitempty"`
}

// benchChat runs the chat load tool: against --url, or against a grin it
// starts in process (a fresh data directory, the offline model) so that
// the heap per session can be measured too; and against a raw WebSocket
// echo server for the ceiling.
func benchChat(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("grin bench chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	users := fs.Int("users", 100, "users, one socket each")
	messages := fs.Int("messages", 10, "messages per user")
	url := fs.String("url", "", "a running grin (http://host:port); empty: start one in process")
	token := fs.String("token", "", "?token= for each socket (GRIN_API_KEY_WS or a JWT) with --url")
	deadline := fs.Duration("deadline", 5*time.Minute, "stop the run after this long")
	echo := fs.Bool("echo", true, "also measure a raw WebSocket echo server, the ceiling, and report grin's share of it")
	asJSON := fs.Bool("json", false, "write the results as one JSON document instead of lines of text")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run (client and in-process server) to this file")
	traceFile := fs.String("trace", "", "write a runtime trace of the run (go tool trace) to this file")
	memProfile := fs.String("memprofile", "", "write a profile of what the run allocated (client and in-process server; go tool pprof -sample_index=alloc_space) to this file")
	mem := fs.String("memory", "embedded", "memory backend of the in-process grin: embedded, or weaviate (at -weaviate-url)")
	weaviateURL := fs.String("weaviate-url", "", "Weaviate's HTTP address for -memory weaviate (default GRIN_WEAVIATE_URL); collections get a fresh prefix per run")
	logFile := fs.String("log", "", "write the in-process grin's warnings and errors (JSON lines) to this file; by default they are dropped")
	replicas := fs.Int("replicas", 0, "start this many in-process replicas on one PostgreSQL database (-database-url) with -memory weaviate, users spread over them; 0: one grin on a SQLite file")
	databaseURL := fs.String("database-url", "", "the PostgreSQL database of -replicas (default GRIN_DATABASE_URL); it should be empty: the run leaves its users and history there")
	warmup := fs.String("warmup", "", "USERSxMESSAGES: before the measured run, this many other users send this many messages each, unmeasured, so that grin is measured as a process that has run a while (its heap and SQLite's page cache grown), not a young one (profiles and traces include it; the echo has nothing to warm)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	warmUsers, warmMessages, err := parseWarmup(*warmup)
	if err != nil {
		return err
	}
	if *replicas < 0 || *replicas > 16 {
		return fmt.Errorf("-replicas %d: use 1 to 16 replicas, or 0 for one grin on SQLite", *replicas)
	}
	if *users <= 0 || *messages <= 0 {
		return fmt.Errorf("-users and -messages must be positive, got %d and %d", *users, *messages)
	}
	env := map[string]string{}
	switch *mem {
	case "embedded":
	case "weaviate":
		if *url != "" {
			return errors.New("-memory chooses the backend of the grin the bench starts; with -url, the running grin's own configuration decides")
		}
		u := *weaviateURL
		if u == "" {
			u = getenv("GRIN_WEAVIATE_URL")
		}
		if u == "" {
			return errors.New("-memory weaviate needs -weaviate-url or GRIN_WEAVIATE_URL (a weaviate-server on loopback; see DEVELOPERS.md)")
		}
		env["GRIN_MEMORY"], env["GRIN_WEAVIATE_URL"] = "weaviate", u
		if p := getenv("GRIN_WEAVIATE_GRPC_PORT"); p != "" {
			env["GRIN_WEAVIATE_GRPC_PORT"] = p
		}
		// Each run in collections of its own: a run never reads the
		// memories of the one before.
		env["GRIN_WEAVIATE_PREFIX"] = fmt.Sprintf("Bench%d", time.Now().UnixNano())
	default:
		return fmt.Errorf("-memory %q: use embedded or weaviate", *mem)
	}
	if *replicas > 0 {
		if *url != "" {
			return errors.New("-replicas starts the replicas itself; with -url, measure a running grin")
		}
		if *mem != "weaviate" {
			return errors.New("-replicas needs -memory weaviate: replicas share memories in Weaviate, not in one machine's SQLite file")
		}
		u := *databaseURL
		if u == "" {
			u = getenv("GRIN_DATABASE_URL")
		}
		if u == "" {
			return errors.New("-replicas needs -database-url or GRIN_DATABASE_URL (postgres://…): the database the replicas share")
		}
		env["GRIN_DATABASE_URL"] = u
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
	if *memProfile != "" {
		f, err := os.Create(*memProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		// Written when the run is over: every allocation since the start,
		// sampled as the runtime does by default.
		defer pprof.Lookup("allocs").WriteTo(f, 0)
	}
	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			return err
		}
		defer trace.Stop()
	}
	opts := loadtest.Options{URL: *url, Users: *users, Messages: *messages, Token: *token, Deadline: *deadline}
	var report benchReport
	if *url == "" {
		report.Memory = *mem
		dir, err := os.MkdirTemp("", "grin-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cfg, err := config.Load(nil, func(k string) string { return env[k] }, io.Discard)
		if err != nil {
			return err
		}
		cfg.AdminPassword = "bench-admin-password"
		runCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		logger := slog.New(slog.DiscardHandler)
		if *logFile != "" {
			f, err := os.Create(*logFile)
			if err != nil {
				return err
			}
			defer f.Close()
			logger = slog.New(slog.NewJSONHandler(f, &slog.HandlerOptions{Level: slog.LevelWarn}))
		}
		apps := make([]*app.App, max(*replicas, 1))
		for i := range apps {
			cfg.DataDir = filepath.Join(dir, strconv.Itoa(i))
			a, err := app.New(runCtx, cfg, logger.With("replica", i))
			if err != nil {
				return err
			}
			defer a.Close()
			srv := httptest.NewServer(a.Handler)
			defer srv.Close()
			if i == 0 {
				opts.URL = srv.URL
			} else {
				opts.More = append(opts.More, srv.URL)
			}
			apps[i] = a
		}
		report.Replicas = *replicas
		if report.Warmup, err = warm(ctx, opts, warmUsers, warmMessages); err != nil {
			return err
		}
		live := func() int {
			n := 0
			for _, a := range apps {
				n += a.Sessions.Live()
			}
			return n
		}
		opts.CPU = true
		before, liveBefore := loadtest.HeapInUse(), live()
		var perSession float64
		res, err := loadtest.Run(ctx, opts, func() {
			// Every socket still open and every session live: what
			// holding N chatting users costs, client sockets included.
			n := live() - liveBefore
			if after := loadtest.HeapInUse(); n > 0 && after > before {
				perSession = float64(after-before) / float64(n)
			}
		})
		if err != nil {
			return err
		}
		res.HeapPerSession = perSession
		report.Grin = res.Summary()
	} else {
		if report.Warmup, err = warm(ctx, opts, warmUsers, warmMessages); err != nil {
			return err
		}
		res, err := loadtest.Run(ctx, opts, nil)
		if err != nil {
			return err
		}
		report.Grin = res.Summary()
	}
	if *echo {
		srv := loadtest.EchoServer()
		defer srv.Close()
		res, err := loadtest.Run(ctx, loadtest.Options{URL: srv.URL, Users: *users, Messages: *messages, Deadline: *deadline, Echo: true, CPU: true}, nil)
		if err != nil {
			return fmt.Errorf("echo ceiling: %w", err)
		}
		s := res.Summary()
		report.Echo = &s
		if s.Throughput > 0 {
			report.Ratio = report.Grin.Throughput / s.Throughput
		}
		if s.CPUPerReply > 0 && report.Grin.CPUPerReply > 0 {
			report.CPURatio = report.Grin.CPUPerReply / s.CPUPerReply
		}
	}
	if report.Grin.CPUPerReply > 0 {
		report.PageFault = faultCost()
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(report)
	}
	if report.Warmup != nil {
		report.Warmup.Report(stdout, "warm-up")
	}
	report.Grin.Report(stdout, "grin")
	if report.Echo != nil {
		report.Echo.Report(stdout, "ws-echo")
		fmt.Fprintf(stdout, "grin ÷ echo: %.1f %% of the echo's throughput; grin p99 ÷ p50: %.2f\n",
			100*report.Ratio, report.Grin.TailRatio())
		if report.CPURatio > 0 {
			fmt.Fprintf(stdout, "grin's CPU per reply: %.1f× the echo's\n", report.CPURatio)
		}
	}
	if report.PageFault > 0 {
		fmt.Fprintf(stdout, "a page fault on this machine: %.1f µs; grin's %.1f a reply: about %.0f µs of its %.0f µs of CPU\n",
			report.PageFault, report.Grin.FaultsPerReply, report.PageFault*report.Grin.FaultsPerReply, report.Grin.CPUPerReply)
	}
	return nil
}

// parseWarmup reads -warmup's USERSxMESSAGES; "" is no warm-up.
func parseWarmup(s string) (users, messages int, err error) {
	if s == "" {
		return 0, 0, nil
	}
	u, m, ok := strings.Cut(strings.ToLower(s), "x")
	users, errU := strconv.Atoi(u)
	messages, errM := strconv.Atoi(m)
	if !ok || errU != nil || errM != nil || users <= 0 || messages <= 0 || users > 100_000 || messages > 10_000 {
		return 0, 0, fmt.Errorf("-warmup %q: give users and messages per user as USERSxMESSAGES, such as 1000x7 (at most 100000x10000)", s)
	}
	return users, messages, nil
}

// warm runs the warm-up, other users than the measured run's (users with
// another prefix) against the same grin, and returns its summary (nil
// without one). Its errors fail the bench: a grin that failed them would
// be measured in a state nobody chose.
func warm(ctx context.Context, opts loadtest.Options, users, messages int) (*loadtest.Summary, error) {
	if users == 0 {
		return nil, nil
	}
	opts.Users, opts.Messages, opts.Prefix, opts.CPU = users, messages, "warmup", false
	res, err := loadtest.Run(ctx, opts, nil)
	if err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	s := res.Summary()
	if s.Errors > 0 {
		return nil, fmt.Errorf("warm-up: %d of %d replies were errors, the first: %s", s.Errors, users*messages, s.FirstError)
	}
	return &s, nil
}
