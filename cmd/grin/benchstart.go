package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grin-ai/grin/platform/loadtest"
)

// startReport is what `grin bench start -json` writes: milliseconds from
// starting a process to its first HTTP answer.
type startReport struct {
	// Fresh is grin's first start on an empty data directory.
	Fresh float64 `json:"fresh_ms"`
	// Existing are the later starts on the data directory the first
	// one made, one per run, sorted.
	Existing []float64 `json:"existing_ms"`
	// Bare are starts of a bare Go HTTP server from the same binary:
	// the floor of process start on this machine, measured in the same
	// run.
	Bare []float64 `json:"bare_ms"`
	// ExistingFaults and BareFaults are the page faults served without
	// I/O (minor faults) each process had taken by its first answer, in
	// the order of the starts, where the system tells (Linux): on a
	// virtual machine much of a start is faulting in the binary and the
	// memory its initialisation allocates.
	ExistingFaults []int64 `json:"existing_faults,omitempty"`
	BareFaults     []int64 `json:"bare_faults,omitempty"`
	// PageFault is what one page fault costs this machine, in
	// microseconds (loadtest.FaultCost).
	PageFault float64 `json:"page_fault_us,omitempty"`
}

// benchStart measures how long grin takes from process start to its first
// answer: once on a fresh data directory, then on the existing one, beside
// a bare Go HTTP server started from the same binary.
func benchStart(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("grin bench start", flag.ContinueOnError)
	fs.SetOutput(stderr)
	runs := fs.Int("runs", 5, "starts on the existing data directory (and of the bare server)")
	asJSON := fs.Bool("json", false, "write the results as one JSON document")
	other := fs.String("binary", "", "time this grin binary's starts instead of this one's (an older build, to compare); the bare server is always this binary")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *runs <= 0 || *runs > 1000 {
		return fmt.Errorf("-runs must be between 1 and 1000, got %d", *runs)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find grin's own binary: %w", err)
	}
	dir, err := os.MkdirTemp("", "grin-bench-start-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	grin := self
	if *other != "" {
		grin = *other
	}
	env := append(os.Environ(), "GRIN_DATA_DIR="+dir, "GRIN_ADMIN_PASSWORD=bench-admin-password", "GRIN_LOG_LEVEL=warn")
	var rep startReport
	if rep.Fresh, _, err = timeStart(ctx, grin, []string{"serve"}, env); err != nil {
		return fmt.Errorf("fresh start: %w", err)
	}
	for range *runs {
		ms, faults, err := timeStart(ctx, grin, []string{"serve"}, env)
		if err != nil {
			return fmt.Errorf("start on an existing data directory: %w", err)
		}
		rep.Existing = append(rep.Existing, ms)
		if faults >= 0 {
			rep.ExistingFaults = append(rep.ExistingFaults, faults)
		}
		if ms, faults, err = timeStart(ctx, self, []string{"bench", "bare-server"}, os.Environ()); err != nil {
			return fmt.Errorf("bare server: %w", err)
		}
		rep.Bare = append(rep.Bare, ms)
		if faults >= 0 {
			rep.BareFaults = append(rep.BareFaults, faults)
		}
	}
	slices.Sort(rep.Existing)
	slices.Sort(rep.Bare)
	rep.PageFault = faultCost()
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(stdout, "fresh data directory:    %.1f ms\n", rep.Fresh)
	fmt.Fprintf(stdout, "existing data directory: median %.1f ms (min %.1f, max %.1f, %d runs)\n",
		median(rep.Existing), rep.Existing[0], rep.Existing[len(rep.Existing)-1], len(rep.Existing))
	fmt.Fprintf(stdout, "bare Go HTTP server:     median %.1f ms (min %.1f, max %.1f)\n",
		median(rep.Bare), rep.Bare[0], rep.Bare[len(rep.Bare)-1])
	if len(rep.ExistingFaults) > 0 && len(rep.BareFaults) > 0 {
		fmt.Fprintf(stdout, "page faults to the first answer: grin median %d, bare server median %d\n",
			median(slices.Sorted(slices.Values(rep.ExistingFaults))), median(slices.Sorted(slices.Values(rep.BareFaults))))
	}
	if rep.PageFault > 0 {
		fmt.Fprintf(stdout, "a page fault on this machine: %.1f µs\n", rep.PageFault)
	}
	return nil
}

func median[T int64 | float64](sorted []T) T { return sorted[len(sorted)/2] }

// timeStart starts the binary with args on a free loopback port (GRIN_ADDR)
// and returns the milliseconds until it answers HTTP and the page faults
// it had taken by then (-1 where the system does not tell), then stops it.
func timeStart(ctx context.Context, bin string, args, env []string) (float64, int64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(env, "GRIN_ADDR="+addr)
	var logs limitedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	url := "http://" + addr + "/"
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}()
	for {
		// A refused connection comes back at once: this loop asks again
		// until the listener is there, so the figure is not rounded up
		// to a polling interval.
		if r, err := client.Get(url); err == nil {
			took := float64(time.Since(start)) / float64(time.Millisecond)
			r.Body.Close()
			return took, minorFaults(cmd.Process.Pid), nil
		}
		select {
		case <-exited:
			return 0, 0, fmt.Errorf("%s exited before answering: %s", bin, logs.String())
		case <-ctx.Done():
			return 0, 0, errors.New("no answer within a minute")
		default:
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// minorFaults is how many page faults without I/O process pid has taken,
// from /proc/pid/stat (minflt, the stat's tenth field and the eighth after
// the ')' that closes the command's name, which may hold spaces), or -1
// where there is no such file.
func minorFaults(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	fields := strings.Fields(string(b[i+1:]))
	// After the name: state, ppid, pgrp, session, tty_nr, tpgid, flags,
	// minflt.
	if len(fields) < 8 {
		return -1
	}
	n, err := strconv.ParseInt(fields[7], 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// bareServer is the anchor of grin bench start: a Go HTTP server that
// answers every request with 200 at GRIN_ADDR, and nothing else.
func bareServer(ctx context.Context, getenv func(string) string) error {
	ln, err := net.Listen("tcp", getenv("GRIN_ADDR"))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})}
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// limitedBuffer keeps the first 64 KiB written to it: a child's log, for
// the error when it fails.
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 64<<10 - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }

// faultCost is loadtest.FaultCost in microseconds, or 0 where it cannot be
// measured. It asks up to three times: a measurement is refused when the
// rest of the process faulted meanwhile (an in-process grin still
// closing), which a moment later it no longer does.
func faultCost() float64 {
	for range 3 {
		if d, ok := loadtest.FaultCost(4096); ok {
			return float64(d) / float64(time.Microsecond)
		}
	}
	return 0
}
