package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/grin-ai/grin/internal/logbuf"
	"github.com/grin-ai/grin/platform/app/apptest"
)

func runGrin(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut strings.Builder
	code := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestServeRefusesOpenNonLoopback(t *testing.T) {
	code, _, stderr := runGrin(t, map[string]string{"GRIN_ADDR": "0.0.0.0:0", "GRIN_DATA_DIR": t.TempDir()}, "serve")
	if code == 0 {
		t.Fatal("grin serve started on all interfaces with auth off")
	}
	if !strings.Contains(stderr, "GRIN_API_KEY") || !strings.Contains(stderr, "GRIN_INSECURE=1") {
		t.Errorf("the message must say how to enable auth: %s", stderr)
	}
}

// served is grin serve running in the test, on a free loopback port.
type served struct {
	url    string
	stderr *logbuf.Buffer
	cancel context.CancelFunc
	done   chan int
}

// startServe runs grin serve with env (and GRIN_ADDR) until stop, and
// waits until it answers GET /.
func startServe(t *testing.T, env map[string]string) *served {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	env["GRIN_ADDR"] = addr
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{url: "http://" + addr, stderr: &logbuf.Buffer{}, cancel: cancel, done: make(chan int, 1)}
	go func() {
		s.done <- run(ctx, []string{"serve"}, func(k string) string { return env[k] }, &strings.Builder{}, s.stderr)
		close(s.done)
	}()
	t.Cleanup(func() { s.stop() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := http.Get(s.url + "/")
		if err == nil {
			r.Body.Close()
			if r.StatusCode != 200 {
				t.Fatalf("GET /: %d", r.StatusCode)
			}
			return s
		}
		select {
		case code := <-s.done:
			t.Fatalf("grin serve exited %d: %s", code, s.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("grin serve did not answer: %v\n%s", err, s.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop interrupts grin serve, as a signal would, and returns its exit
// status.
func (s *served) stop() int {
	s.cancel()
	return <-s.done // after the first stop: 0
}

func TestServeStartsAndStops(t *testing.T) {
	s := startServe(t, map[string]string{"GRIN_DATA_DIR": t.TempDir()})
	if code := s.stop(); code != 0 {
		t.Errorf("exit %d after a clean stop: %s", code, s.stderr.String())
	}
	if !strings.Contains(s.stderr.String(), "password") {
		t.Errorf("first start must show the generated admin password once: %s", s.stderr.String())
	}
}

func TestPolicyCheck(t *testing.T) {
	in := apptest.Start(t)
	var u struct{ ID string }
	in.Do("POST", "/users", map[string]any{"username": "carol", "password": "secret1", "permissions": map[string][]string{"USERS": {"READ"}}}).JSON(t, &u)
	// A plugin's capability grant, as an administrator writes it.
	var docs struct {
		Model  string `json:"model"`
		Policy string `json:"policy"`
	}
	in.Do("GET", "/policies", nil).JSON(t, &docs)
	docs.Policy += "\np, plugin:notes, capability:kv, use\ng, user:nobody, role:admin\n"
	if r := in.Do("PUT", "/policies", docs); r.Status != 200 {
		t.Fatalf("grant: %d %s", r.Status, r.Body)
	}
	env := map[string]string{"GRIN_DATA_DIR": in.Dir}
	for _, tc := range []struct {
		args []string
		code int
		says []string
	}{
		{[]string{"carol", "users", "read"}, 0, []string{"allowed", "perm:{object}:{action}", "perm:users:read", u.ID}},
		{[]string{"carol", "users", "delete"}, 1, []string{"denied"}},
		{[]string{"admin", "policies", "edit"}, 0, []string{"allowed", "role:admin"}},
		{[]string{"credential:ws_key", "conversation", "write"}, 0, []string{"role:base"}},
		{[]string{"credential:ws_key", "users", "list"}, 1, []string{"denied"}},
		{[]string{"plugin:notes", "capability:kv", "use"}, 0, []string{"allowed", "p, plugin:notes, capability:kv, use"}},
		{[]string{"plugin:notes", "capability:memory.recall", "use"}, 1, []string{"denied"}},
		{[]string{"user:carol", "users", "read"}, 0, []string{"allowed", u.ID + " (user carol)"}},
		{[]string{u.ID, "users", "read"}, 0, []string{"allowed", "(user carol)"}},
		{[]string{"nobody", "users", "read"}, 2, nil},
		{[]string{"carol", "users"}, 2, nil},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := runGrin(t, env, append([]string{"policy", "check"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d: %s %s", code, tc.code, out, errOut)
			}
			for _, s := range tc.says {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q:\n%s", s, out)
				}
			}
		})
	}
	// A rule naming nobody is a warning; a subject naming nobody an error.
	_, _, errOut := runGrin(t, env, "policy", "check", "nobody", "users", "read")
	if !strings.Contains(errOut, "warning: policy.csv line") || !strings.Contains(errOut, "user:nobody names no user") || !strings.Contains(errOut, `no user is called "nobody"`) {
		t.Errorf("stderr does not warn about user:nobody, or explain the unknown subject: %s", errOut)
	}
	code, _, errOut := runGrin(t, map[string]string{"GRIN_DATA_DIR": t.TempDir() + "/none"}, "policy", "check", "a", "b", "read")
	if code != 2 || !strings.Contains(errOut, "no grin data") {
		t.Errorf("missing data dir: %d %s", code, errOut)
	}
}

// TestPolicyExplain: grin policy explain names a user's roles, what they
// may do with the rule for each, what a deny rule refuses, and the rules
// naming them.
func TestPolicyExplain(t *testing.T) {
	in := apptest.Start(t)
	in.Do("POST", "/users", map[string]any{"username": "carol", "password": "secret1"})
	var docs struct {
		Model  string `json:"model"`
		Policy string `json:"policy"`
	}
	in.Do("GET", "/policies", nil).JSON(t, &docs)
	docs.Policy += "\np, role:legal, declarative:contracts, read\ng, user:carol, role:legal\np, user:carol, conversation:*, delete, deny\n"
	if r := in.Do("PUT", "/policies", docs); r.Status != 200 {
		t.Fatalf("put: %d %s", r.Status, r.Body)
	}
	env := map[string]string{"GRIN_DATA_DIR": in.Dir}
	code, out, errOut := runGrin(t, env, "policy", "explain", "carol")
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	for _, want := range []string{
		"(user carol)", "roles: role:legal",
		`allowed by the rule "p, role:legal, declarative:contracts, read" (policy.csv line`,
		"may not (deny rules):", `denied by the rule "p, user:carol, conversation:*, delete, deny"`,
		"rules naming it:", "g, user:carol, role:legal",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if code, _, errOut := runGrin(t, env, "policy", "explain", "nobody"); code != 2 || !strings.Contains(errOut, "nobody") {
		t.Errorf("explain nobody: exit %d %s", code, errOut)
	}
}

// TestPolicyCheckWithRefusedFile: with a broken policy.csv, grin policy
// check answers as the server does, from the last good policy, and says on
// stderr which lines were refused.
func TestPolicyCheckWithRefusedFile(t *testing.T) {
	in := apptest.Start(t)
	path := filepath.Join(in.Dir, "policy.csv")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(good), "p, role:admin, *, *", "p, role:admin, *", 1)
	if err := os.WriteFile(path, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runGrin(t, map[string]string{"GRIN_DATA_DIR": in.Dir}, "policy", "check", "admin", "policies", "edit")
	if code != 0 || !strings.Contains(out, "allowed") {
		t.Errorf("exit %d, want the last good policy's answer (allowed): %s %s", code, out, errOut)
	}
	if !strings.Contains(errOut, "policy files refused") || !strings.Contains(errOut, "policy.csv line") {
		t.Errorf("stderr does not say the file was refused: %s", errOut)
	}
}

func TestUnknownCommand(t *testing.T) {
	code, _, errOut := runGrin(t, nil, "frobnicate")
	if code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("%d %s", code, errOut)
	}
	code, out, _ := runGrin(t, nil, "version")
	if code != 0 || !strings.Contains(out, fmt.Sprint("grin ", version)) {
		t.Errorf("version: %d %s", code, out)
	}
}

func TestBenchChatRuns(t *testing.T) {
	traceFile := filepath.Join(t.TempDir(), "bench.trace")
	// Ten users: heap/session is measured only when the heap grew, and
	// the growth of three was within a loaded machine's noise.
	memFile := filepath.Join(t.TempDir(), "bench.memprofile")
	code, out, errOut := runGrin(t, nil, "bench", "chat", "-users", "10", "-messages", "2", "-trace", traceFile, "-memprofile", memFile)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	textOut := out
	for _, want := range []string{"replies=20 errors=0", "ws-echo", "heap/session=", "grin ÷ echo: ", "p99 ÷ p50: ",
		"first-message-p99=", "cpu/reply=", "faults/reply=", "switches/reply=", "grin's CPU per reply: "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// A runtime trace, as go tool trace reads it.
	if b, err := os.ReadFile(traceFile); err != nil || !bytes.HasPrefix(b, []byte("go 1.")) {
		t.Errorf("-trace wrote %d bytes (%v), want a Go execution trace", len(b), err)
	}

	// An allocation profile, as go tool pprof reads it (gzipped protobuf).
	if b, err := os.ReadFile(memFile); err != nil || !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		t.Errorf("-memprofile wrote %d bytes (%v), want a pprof profile", len(b), err)
	}

	// -json: one document, grin beside the echo of the same run.
	code, out, errOut = runGrin(t, nil, "bench", "chat", "-users", "2", "-messages", "3", "-json")
	if code != 0 {
		t.Fatalf("-json: exit %d: %s", code, errOut)
	}
	var rep struct {
		Grin, Echo struct {
			Replies    int     `json:"replies"`
			Errors     int     `json:"errors"`
			Throughput float64 `json:"replies_per_second"`
			P50        float64 `json:"p50_ms"`
			P99        float64 `json:"p99_ms"`
			Max        float64 `json:"max_ms"`
			FirstP99   float64 `json:"first_message_p99_ms"`
			CPU        float64 `json:"cpu_per_reply_us"`
			Faults     float64 `json:"page_faults_per_reply"`
			Switches   float64 `json:"context_switches_per_reply"`
		}
		Ratio     float64 `json:"ratio"`
		CPURatio  float64 `json:"cpu_ratio"`
		PageFault float64 `json:"page_fault_us"`
		Memory    string  `json:"memory"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("-json output is not one JSON document: %v\n%s", err, out)
	}
	if rep.Grin.Replies != 6 || rep.Echo.Replies != 6 || rep.Grin.Errors != 0 || rep.Memory != "embedded" {
		t.Errorf("-json: %+v", rep)
	}
	if rep.Grin.P50 <= 0 || rep.Grin.P99 < rep.Grin.P50 || rep.Ratio <= 0 ||
		math.Abs(rep.Ratio-rep.Grin.Throughput/rep.Echo.Throughput) > 1e-9 {
		t.Errorf("-json figures do not hold together: %+v", rep)
	}
	// Each user's first message is one of the replies, so its p99 is at
	// most the slowest reply; the CPU per reply is measured for both
	// servers (in this process) and their ratio given.
	if rep.Grin.FirstP99 <= 0 || rep.Grin.FirstP99 > rep.Grin.Max ||
		rep.Grin.CPU <= 0 || rep.Echo.CPU <= 0 || math.Abs(rep.CPURatio-rep.Grin.CPU/rep.Echo.CPU) > 1e-9 {
		t.Errorf("-json first-message and CPU figures do not hold together: %+v", rep)
	}
	// How many there are depends on what the process did before (a warm
	// heap faults no more); that they are counted is platform/loadtest's
	// TestProcessUsageCounts.
	if rep.Grin.Switches < 0 || rep.Grin.Faults < 0 || rep.PageFault < 0 {
		t.Errorf("-json page faults, their cost and context switches: %+v", rep)
	}

	// On Linux a page fault is priced beside the faults per reply.
	if runtime.GOOS == "linux" {
		if !strings.Contains(textOut, "a page fault on this machine: ") || rep.PageFault <= 0 {
			t.Errorf("no price of a page fault: %g in -json, and text:\n%s", rep.PageFault, textOut)
		}
	}

	// Refusals say what to do.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-memory", "weaviate"}, "-weaviate-url or GRIN_WEAVIATE_URL"},
		{[]string{"-memory", "postgres"}, "use embedded or weaviate"},
		{[]string{"-users", "0"}, "must be positive"},
	} {
		code, _, errOut := runGrin(t, nil, append([]string{"bench", "chat"}, c.args...)...)
		if code == 0 || !strings.Contains(errOut, c.want) {
			t.Errorf("bench chat %v: exit %d, %q, want it to say %q", c.args, code, errOut, c.want)
		}
	}
}

// TestBenchChatWarmup: -warmup has other users chat first, unmeasured:
// the report counts the measured users' replies alone and gives the
// warm-up's beside them, and the grin's history holds both sets of users
// apart.
func TestBenchChatWarmup(t *testing.T) {
	in := apptest.Start(t)
	code, out, errOut := runGrin(t, nil, "bench", "chat", "-url", in.URL, "-users", "2", "-messages", "2", "-warmup", "3x2", "-echo=false", "-json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep struct {
		Grin, Warmup struct {
			Users   int `json:"users"`
			Replies int `json:"replies"`
			Errors  int `json:"errors"`
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Grin.Users != 2 || rep.Grin.Replies != 4 || rep.Warmup.Users != 3 || rep.Warmup.Replies != 6 || rep.Grin.Errors+rep.Warmup.Errors != 0 {
		t.Errorf("-warmup 3x2 before 2 users × 2: %+v", rep)
	}
	for user, want := range map[string]int{"warmup-00000": 4, "warmup-00002": 4, "load-00000": 4, "load-00001": 4, "load-00002": 0} {
		r := in.Do("GET", "/memory/conversation_history", nil, "user_id", user)
		var h struct {
			History []json.RawMessage `json:"history"`
		}
		if err := json.Unmarshal(r.Body, &h); r.Status != 200 || err != nil || len(h.History) != want {
			t.Errorf("%s's history: %d, %d turns (%v), want %d", user, r.Status, len(h.History), err, want)
		}
	}
	code, _, errOut = runGrin(t, nil, "bench", "chat", "-warmup", "1000")
	if code == 0 || !strings.Contains(errOut, "USERSxMESSAGES") {
		t.Errorf("-warmup 1000: exit %d, %q, want it to show the form USERSxMESSAGES", code, errOut)
	}
}

func TestIngestCommand(t *testing.T) {
	in := apptest.Start(t)
	dir := t.TempDir()
	good := dir + "/rabbit.md"
	os.WriteFile(good, []byte("# The White Rabbit\n\nHe is always late for an important date."), 0o600)
	bad := dir + "/tool.exe"
	os.WriteFile(bad, []byte{0x4d, 0x5a, 0, 0, 1, 2, 3}, 0o600)
	code, out, errOut := runGrin(t, nil, "ingest", "-url", in.URL, "-user-id", "alice", good)
	if code != 0 || !strings.Contains(out, "rabbit.md: 1 chunks stored in shared") {
		t.Fatalf("ingest: %d\n%s\n%s", code, out, errOut)
	}
	var r struct {
		Vectors struct {
			Collections map[string][]struct {
				Metadata map[string]any `json:"metadata"`
			} `json:"collections"`
		} `json:"vectors"`
	}
	in.Do("POST", "/memory/recall", map[string]any{"text": "late important date"}).JSON(t, &r)
	if d := r.Vectors.Collections["declarative"]; len(d) != 1 || d[0].Metadata["source"] != "rabbit.md" {
		t.Errorf("after grin ingest, recall finds %+v", d)
	}
	code, _, errOut = runGrin(t, nil, "ingest", "-url", in.URL, "-quiet", good, bad, dir+"/missing.txt")
	if code == 0 || !strings.Contains(errOut, "tool.exe") || !strings.Contains(errOut, "415") || !strings.Contains(errOut, "2 of 3 files") {
		t.Errorf("bad files: %d %s", code, errOut)
	}
}

func TestPluginBuild(t *testing.T) {
	out := t.TempDir() + "/author.zip"
	code, stdout, stderr := runGrin(t, nil, "plugin", "build", "-o", out, "../../wasmhooks/examples/author")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "plugin author 1.0.0") || !strings.Contains(stdout, "before_rabbithole_insert_memory(1)") {
		t.Errorf("output: %s", stdout)
	}
	if info, err := os.Stat(out); err != nil || info.Size() < 100_000 {
		t.Errorf("zip: %v", err)
	}
	// A manifest naming a hook the module lacks is caught before upload.
	dir, err := os.MkdirTemp("../../wasmhooks/testdata", "build-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	src, _ := os.ReadFile("../../wasmhooks/testdata/guests/noop/main.go")
	os.WriteFile(dir+"/main.go", src, 0o600)
	os.WriteFile(dir+"/manifest.json", []byte(`{"id":"x","name":"X","version":"1","hooks":[{"name":"no_such_hook","priority":1}]}`), 0o600)
	code, _, stderr = runGrin(t, nil, "plugin", "build", "-o", dir+"/x.zip", dir)
	if code == 0 || !strings.Contains(stderr, "no_such_hook") {
		t.Errorf("bad manifest: %d %s", code, stderr)
	}
}
