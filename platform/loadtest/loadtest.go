// Package loadtest drives a grin server the way many users would: N
// WebSocket clients, one per user, each sending M messages and waiting
// for each reply. It reports throughput and latency, and, for a server it
// starts in process, the heap each live session costs. The same clients
// against a bare WebSocket echo server give the ceiling of this machine.
//
// Every run is bounded: by its message count and by a deadline.
package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Options describe a run.
type Options struct {
	// URL is the server's base URL (http://host:port).
	URL string
	// More are the base URLs of further replicas of the same grin: user i
	// connects to the (i mod n)th of URL and More, as a load balancer
	// would spread them.
	More []string
	// Users is how many users, each with its own socket.
	Users int
	// Prefix names the users: Prefix-00000, Prefix-00001…; "load" when
	// empty. Runs with different prefixes chat as different users.
	Prefix string
	// Messages is how many messages each user sends.
	Messages int
	// Token is sent as ?token= when set (a WS key or JWT).
	Token string
	// Deadline bounds the whole run.
	Deadline time.Duration
	// Echo expects raw echoes instead of the Cat's chat frames.
	Echo bool
	// CPU measures this process's CPU time while the messages are sent:
	// the cost of a reply when the server runs in this process too.
	CPU bool
}

// Result is what a run measured.
type Result struct {
	Users, Messages int
	Errors          int
	// FirstError is what the first error frame said, so that a run with
	// errors says why.
	FirstError string
	Elapsed    time.Duration
	Latencies  []time.Duration // sorted
	// First holds the latencies of each user's first message, sorted:
	// the ones that find no session, history or cached decision yet.
	First []time.Duration
	// CPU is the process's CPU time (user and system) while the messages
	// were sent; zero unless Options.CPU.
	CPU time.Duration
	// Faults and Switches are the process's minor page faults (first
	// touches of memory) and context switches meanwhile; zero unless
	// Options.CPU.
	Faults, Switches int64
	// HeapPerSession is the heap in use per connected user, measured by
	// the caller for an in-process server; zero otherwise.
	HeapPerSession float64
}

// Throughput is replies per second.
func (r Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(len(r.Latencies)) / r.Elapsed.Seconds()
}

// Percentile returns the p-th percentile latency (0 < p ≤ 100).
func (r Result) Percentile(p float64) time.Duration { return percentile(r.Latencies, p) }

// percentile returns the p-th percentile of sorted (0 < p ≤ 100).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Summary is a run's figures, for people (Report) and machines (JSON).
type Summary struct {
	Users      int     `json:"users"`
	Messages   int     `json:"messages_per_user"`
	Replies    int     `json:"replies"`
	Errors     int     `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	Elapsed    float64 `json:"elapsed_seconds"`
	Throughput float64 `json:"replies_per_second"`
	P50        float64 `json:"p50_ms"`
	P90        float64 `json:"p90_ms"`
	P99        float64 `json:"p99_ms"`
	Max        float64 `json:"max_ms"`
	// FirstP50 and FirstP99 are over each user's first message only.
	FirstP50 float64 `json:"first_message_p50_ms"`
	FirstP99 float64 `json:"first_message_p99_ms"`
	// CPUPerReply is the process's CPU time per reply in microseconds,
	// clients included; zero when not measured.
	CPUPerReply float64 `json:"cpu_per_reply_us,omitempty"`
	// HeapPerSession is in bytes; zero when not measured.
	HeapPerSession float64 `json:"heap_per_session_bytes,omitempty"`
	// FaultsPerReply and SwitchesPerReply are the process's minor page
	// faults and context switches per reply, clients included, measured
	// with CPUPerReply; zero when not measured or when none happened.
	FaultsPerReply   float64 `json:"page_faults_per_reply,omitempty"`
	SwitchesPerReply float64 `json:"context_switches_per_reply,omitempty"`
}

// usage is what the process has used, as getrusage tells it.
type usage struct {
	cpu              time.Duration
	faults, switches int64
}

// Summary returns the run's figures.
func (r Result) Summary() Summary {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	return Summary{Users: r.Users, Messages: r.Messages, Replies: len(r.Latencies), Errors: r.Errors, FirstError: r.FirstError,
		Elapsed: r.Elapsed.Seconds(), Throughput: r.Throughput(),
		P50: ms(r.Percentile(50)), P90: ms(r.Percentile(90)), P99: ms(r.Percentile(99)), Max: ms(r.Percentile(100)),
		FirstP50: ms(percentile(r.First, 50)), FirstP99: ms(percentile(r.First, 99)),
		CPUPerReply: r.perReply(float64(r.CPU) / float64(time.Microsecond)), HeapPerSession: r.HeapPerSession,
		FaultsPerReply: r.perReply(float64(r.Faults)), SwitchesPerReply: r.perReply(float64(r.Switches))}
}

// perReply divides a total of the run by its replies.
func (r Result) perReply(total float64) float64 {
	if total <= 0 || len(r.Latencies) == 0 {
		return 0
	}
	return total / float64(len(r.Latencies))
}

// TailRatio is p99 ÷ p50: 1 when every reply took as long, large when a
// few waited far longer than most (0 without replies).
func (s Summary) TailRatio() float64 {
	if s.P50 <= 0 {
		return 0
	}
	return s.P99 / s.P50
}

// Report writes the result as a table row a person can read.
func (r Result) Report(w io.Writer, label string) { r.Summary().Report(w, label) }

// Report writes the figures as a table row a person can read.
func (s Summary) Report(w io.Writer, label string) {
	d := func(ms float64) time.Duration {
		return time.Duration(ms * float64(time.Millisecond)).Round(10 * time.Microsecond)
	}
	fmt.Fprintf(w, "%-10s users=%d messages/user=%d replies=%d errors=%d elapsed=%.2fs throughput=%.0f/s p50=%s p99=%s first-message-p99=%s",
		label, s.Users, s.Messages, s.Replies, s.Errors, s.Elapsed, s.Throughput, d(s.P50), d(s.P99), d(s.FirstP99))
	if s.CPUPerReply > 0 {
		// Measured together: none of either is a figure too.
		fmt.Fprintf(w, " cpu/reply=%.0fµs faults/reply=%.1f switches/reply=%.1f", s.CPUPerReply, s.FaultsPerReply, s.SwitchesPerReply)
	}
	if s.HeapPerSession > 0 {
		fmt.Fprintf(w, " heap/session=%.1fKiB", s.HeapPerSession/1024)
	}
	if s.FirstError != "" {
		fmt.Fprintf(w, " first-error=%q", s.FirstError)
	}
	fmt.Fprintln(w)
}

// Run opens the sockets, then sends the messages, and waits for every
// reply or the deadline. finished, when not nil, is called after the last
// reply while every socket is still open, so an in-process caller can
// measure what the live users cost.
func Run(ctx context.Context, o Options, finished func()) (Result, error) {
	if o.Users <= 0 || o.Messages <= 0 {
		return Result{}, fmt.Errorf("users and messages must be positive, got %d and %d", o.Users, o.Messages)
	}
	if o.Deadline <= 0 {
		o.Deadline = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, o.Deadline)
	defer cancel()
	bases := []string{}
	for _, u := range append([]string{o.URL}, o.More...) {
		bases = append(bases, "ws"+strings.TrimPrefix(strings.TrimSuffix(u, "/"), "http"))
	}
	prefix := o.Prefix
	if prefix == "" {
		prefix = "load"
	}
	conns := make([]*websocket.Conn, o.Users)
	for i := range conns {
		base := bases[i%len(bases)]
		u := fmt.Sprintf("%s/ws/%s-%05d", base, url.PathEscape(prefix), i)
		if o.Echo {
			u = base + "/echo"
		}
		if o.Token != "" {
			u += "?token=" + o.Token
		}
		c, _, err := websocket.Dial(ctx, u, nil)
		if err != nil {
			for _, c := range conns[:i] {
				c.CloseNow()
			}
			return Result{}, fmt.Errorf("open socket %d of %d: %w", i+1, o.Users, err)
		}
		c.SetReadLimit(1 << 20)
		conns[i] = c
	}
	defer func() {
		for _, c := range conns {
			c.Close(websocket.StatusNormalClosure, "")
		}
	}()
	res := Result{Users: o.Users, Messages: o.Messages}
	var mu sync.Mutex
	var wg sync.WaitGroup
	used0, usedOK := processUsage()
	start := time.Now()
	for i, c := range conns {
		wg.Go(func() {
			lat, errs, first := drive(ctx, c, i, o)
			mu.Lock()
			res.Latencies = append(res.Latencies, lat...)
			if len(lat) > 0 {
				res.First = append(res.First, lat[0])
			}
			res.Errors += errs
			if res.FirstError == "" {
				res.FirstError = first
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	if used1, ok := processUsage(); ok && usedOK && o.CPU {
		res.CPU = used1.cpu - used0.cpu
		res.Faults, res.Switches = used1.faults-used0.faults, used1.switches-used0.switches
	}
	if finished != nil {
		finished()
	}
	slices.Sort(res.Latencies)
	slices.Sort(res.First)
	return res, nil
}

// drive sends one user's messages, each after the previous reply. It
// returns the latencies, the number of errors and the first error's words.
func drive(ctx context.Context, c *websocket.Conn, user int, o Options) (_ []time.Duration, errs int, first string) {
	// A context of the user's own: the socket library registers every
	// read and write with it, and a context all users shared would have
	// them wait on its lock.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var lat []time.Duration
	note := func(why string) {
		if first == "" {
			first = why
		}
	}
	// One buffer for every frame the user reads, echo or grin alike: the
	// clients share the cores with the server they measure.
	var frame bytes.Buffer
	read := func() ([]byte, error) {
		_, r, err := c.Reader(ctx)
		if err != nil {
			return nil, err
		}
		frame.Reset()
		_, err = frame.ReadFrom(r)
		return frame.Bytes(), err
	}
	for m := range o.Messages {
		msg, _ := json.Marshal(map[string]string{"text": fmt.Sprintf("user %d says message %d about the white rabbit", user, m)})
		t0 := time.Now()
		if err := c.Write(ctx, websocket.MessageText, msg); err != nil {
			note(fmt.Sprintf("user %d: send: %v", user, err))
			return lat, errs + o.Messages - m, first
		}
		for {
			b, err := read()
			if err != nil {
				note(fmt.Sprintf("user %d: read: %v", user, err))
				return lat, errs + o.Messages - m, first
			}
			if o.Echo {
				break
			}
			typ := frameType(b)
			if typ == "chat" {
				break
			}
			if typ == "error" {
				var f struct{ Name, Description string }
				json.Unmarshal(b, &f)
				errs++
				note(fmt.Sprintf("user %d: %s: %s", user, f.Name, f.Description))
				break
			}
		}
		lat = append(lat, time.Since(t0))
	}
	return lat, errs, first
}

// frameType returns a frame's "type". The load's clients share the cores
// with the server they measure, so they read no more of a frame than
// they need: grin's frames begin {"type":"…" with a plain word, and the
// rest (a reply's why, kilobytes of it) is not decoded; any other frame
// is decoded whole.
func frameType(b []byte) string {
	if rest, ok := bytes.CutPrefix(b, []byte(`{"type":"`)); ok {
		if end := bytes.IndexByte(rest, '"'); end >= 0 && bytes.IndexByte(rest[:end], '\\') < 0 {
			return string(rest[:end])
		}
	}
	var f struct{ Type string }
	json.Unmarshal(b, &f)
	return f.Type
}

// HeapInUse returns the process's heap in use after a collection.
func HeapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// EchoServer serves /echo: every text frame comes straight back. It is the
// ceiling a chat server on this machine cannot beat.
func EchoServer() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, b, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, b); err != nil {
				return
			}
		}
	}))
}
