package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// startAt runs the binary on addr with its data in dir (and env) until the
// test ends or the process is killed; it returns once grin answers.
func startAt(t *testing.T, addr, dir string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binary, "serve")
	cmd.Env = append(append(os.Environ(), "GRIN_ADDR="+addr, "GRIN_DATA_DIR="+dir, "GRIN_ADMIN_PASSWORD=admin-password"), env...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if r, err := http.Get("http://" + addr + "/auth/available-permissions"); err == nil {
			r.Body.Close()
			return cmd
		}
		select {
		case <-done:
			t.Fatalf("grin exited; log:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("grin did not start; log:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKill9UnderLoadLosesNoAnsweredTurn: users chat at once; grin is
// killed with SIGKILL in the middle. After a restart on the same data
// directory, every user's history holds every message that was answered,
// in the order sent, each followed by its reply; at most the one message
// in flight at the kill may be there unanswered-but-kept, never half of a
// turn, never out of order.
func TestKill9UnderLoadLosesNoAnsweredTurn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	cmd := startAt(t, addr, dir)

	const users = 40
	acked := make([]atomic.Int64, users) // messages answered, per user
	var total atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for u := range users {
		wg.Go(func() {
			c, _, err := websocket.Dial(ctx, fmt.Sprintf("ws://%s/ws/crash-%02d", addr, u), nil)
			if err != nil {
				t.Errorf("dial: %v", err)
				return
			}
			defer c.CloseNow()
			for m := 0; ; m++ {
				msg, _ := json.Marshal(map[string]string{"text": fmt.Sprintf("user %d message %d", u, m)})
				if c.Write(ctx, websocket.MessageText, msg) != nil {
					return
				}
				for {
					_, b, err := c.Read(ctx)
					if err != nil {
						return // the kill
					}
					var f struct{ Type, Description string }
					json.Unmarshal(b, &f)
					if f.Type == "error" {
						t.Errorf("user %d message %d: %s", u, m, f.Description)
						return
					}
					if f.Type == "chat" {
						break
					}
				}
				acked[u].Store(int64(m + 1))
				total.Add(1)
			}
		})
	}
	for total.Load() < 400 {
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no shutdown at all
		t.Fatal(err)
	}
	wg.Wait()

	startAt(t, addr, dir)
	for u := range users {
		h := historyOf(t, "http://"+addr, fmt.Sprintf("crash-%02d", u))
		n := len(h)
		if n%2 != 0 {
			t.Errorf("user %d: %d turns, half a turn kept", u, n)
			continue
		}
		if kept, answered := int64(n/2), acked[u].Load(); kept < answered || kept > answered+1 {
			t.Errorf("user %d: %d messages kept, %d were answered", u, kept, answered)
		}
		for i := 0; i+1 < n; i += 2 {
			want := fmt.Sprintf("user %d message %d", u, i/2)
			if h[i].Who != "Human" || h[i].Text != want || h[i+1].Who != "AI" || strings.TrimSpace(h[i+1].Text) == "" {
				t.Errorf("user %d turn %d: %+v %+v, want %q and its reply", u, i/2, h[i], h[i+1], want)
				break
			}
		}
	}
}

// TestBenchStart: grin bench start times the built binary's start, fresh
// and on an existing data directory, beside a bare Go server started
// from the same binary, and says so in JSON for machines.
func TestBenchStart(t *testing.T) {
	out, err := exec.Command(binary, "bench", "start", "-runs", "2", "-json").Output()
	if err != nil {
		t.Fatalf("grin bench start: %v", err)
	}
	var rep struct {
		Fresh          float64   `json:"fresh_ms"`
		Existing       []float64 `json:"existing_ms"`
		Bare           []float64 `json:"bare_ms"`
		ExistingFaults []int64   `json:"existing_faults"`
		BareFaults     []int64   `json:"bare_faults"`
		PageFault      float64   `json:"page_fault_us"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if rep.Fresh <= 0 || len(rep.Existing) != 2 || len(rep.Bare) != 2 || rep.Existing[0] <= 0 || rep.Bare[0] <= 0 ||
		rep.Existing[0] > rep.Existing[1] {
		t.Errorf("grin bench start: %+v", rep)
	}
	// On Linux, the page faults each process took by its first answer
	// (a Go binary takes hundreds before main) and what one costs here.
	if runtime.GOOS == "linux" {
		if len(rep.ExistingFaults) != 2 || len(rep.BareFaults) != 2 || rep.PageFault <= 0 ||
			slices.Min(rep.ExistingFaults) < 100 || slices.Min(rep.BareFaults) < 100 {
			t.Errorf("grin bench start's page faults: %+v", rep)
		}
	}
	if out, err := exec.Command(binary, "bench", "start", "-runs", "0").CombinedOutput(); err == nil || !strings.Contains(string(out), "-runs must be") {
		t.Errorf("-runs 0: %v %s", err, out)
	}
}

// historyTurn is one turn of GET /memory/conversation_history.
type historyTurn struct{ Who, Text string }

// historyOf reads user's conversation from the grin at base.
func historyOf(t *testing.T, base, user string) []historyTurn {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/memory/conversation_history", nil)
	req.Header.Set("user_id", user)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var h struct {
		History []historyTurn `json:"history"`
	}
	if err := json.NewDecoder(r.Body).Decode(&h); err != nil {
		t.Fatalf("the history of %s: %v", user, err)
	}
	return h.History
}
