package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/grin-ai/grin/integration/pgtest"
	"github.com/grin-ai/grin/integration/weaviatetest"
)

// TestReplicaKilledUnderLoad: three grin processes on one PostgreSQL and
// one Weaviate; users chat, each on one replica; one replica is killed
// with SIGKILL in the middle. Its users reconnect to the others and send
// again what was not answered; afterwards every user's history, read on
// any replica, holds every answered message once per sending, in the
// order sent, each followed by its reply, and no turn of one user in
// another's.
func TestReplicaKilledUnderLoad(t *testing.T) {
	pg := pgtest.Start(t)
	wv := weaviatetest.Start(t)
	db := pg.Database(t)
	addrs := make([]string, 3)
	procs := make([]*exec.Cmd, 3)
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs[i] = ln.Addr().String()
		ln.Close()
		procs[i] = startAt(t, addrs[i], t.TempDir(), "GRIN_DATABASE_URL="+db, "GRIN_MEMORY=weaviate",
			"GRIN_WEAVIATE_URL="+wv.URL, "GRIN_WEAVIATE_GRPC_PORT="+strconv.Itoa(wv.GRPCPort))
	}

	const users = 30
	var (
		total  atomic.Int64
		killed atomic.Bool
		after  atomic.Int64 // answers since the kill
		moved  atomic.Int64 // users who reconnected to another replica
	)
	acked := make([][]int, users) // per user, the messages answered in order
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for u := range users {
		wg.Go(func() {
			name := fmt.Sprintf("replica-user-%02d", u)
			replica := u % len(addrs)
			var c *websocket.Conn
			defer func() {
				if c != nil {
					c.CloseNow()
				}
			}()
			for m := 0; after.Load() < 300 && ctx.Err() == nil; {
				if c == nil {
					var err error
					if c, _, err = websocket.Dial(ctx, fmt.Sprintf("ws://%s/ws/%s", addrs[replica], name), nil); err != nil {
						replica = (replica + 1) % len(addrs) // that one is gone: the next
						c = nil
						continue
					}
				}
				msg, _ := json.Marshal(map[string]string{"text": fmt.Sprintf("%s message %d", name, m)})
				answered := c.Write(ctx, websocket.MessageText, msg) == nil
				for answered {
					_, b, err := c.Read(ctx)
					if err != nil {
						answered = false
						break
					}
					var f struct {
						Type, Description string
						UserID            string `json:"user_id"`
					}
					json.Unmarshal(b, &f)
					if f.Type == "error" {
						t.Errorf("%s message %d: %s", name, m, f.Description)
						return
					}
					if f.Type == "chat" {
						if f.UserID != name {
							t.Errorf("%s got a reply for %s", name, f.UserID)
						}
						break
					}
				}
				if !answered { // the replica died: reconnect elsewhere, send again
					moved.Add(1)
					c.CloseNow()
					c = nil
					replica = (replica + 1) % len(addrs)
					continue
				}
				acked[u] = append(acked[u], m)
				m++
				total.Add(1)
				if killed.Load() {
					after.Add(1)
				}
			}
		})
	}
	for total.Load() < 300 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	if err := procs[0].Process.Kill(); err != nil { // SIGKILL: no shutdown at all
		t.Fatal(err)
	}
	killed.Store(true)
	wg.Wait()
	if after.Load() < 300 {
		t.Fatalf("only %d answers after the kill", after.Load())
	}
	if moved.Load() == 0 {
		t.Fatal("no user lost their replica: the kill came too late to test anything")
	}
	t.Logf("%d answers before the kill, %d after; %d reconnections to another replica", total.Load()-after.Load(), after.Load(), moved.Load())

	for u := range users {
		name := fmt.Sprintf("replica-user-%02d", u)
		h := historyOf(t, "http://"+addrs[1+u%2], name)
		if len(h)%2 != 0 {
			t.Errorf("%s: %d turns, half a turn kept", name, len(h))
			continue
		}
		// Each kept message in order; one sent again after the kill may be
		// there twice (kept by the dead replica, then sent again).
		var kept []int
		for i := 0; i < len(h); i += 2 {
			human, ai := h[i], h[i+1]
			var who string
			var n int
			if _, err := fmt.Sscanf(human.Text, "%s message %d", &who, &n); err != nil || who != name || human.Who != "Human" || ai.Who != "AI" || ai.Text == "" {
				t.Errorf("%s turn %d: %+v then %+v", name, i/2, human, ai)
				continue
			}
			if len(kept) > 0 && kept[len(kept)-1] == n {
				continue
			}
			kept = append(kept, n)
		}
		for i, n := range kept {
			if n != i {
				t.Errorf("%s: messages kept %v, want 0…%d in order", name, kept, len(acked[u])-1)
				break
			}
		}
		if len(kept) < len(acked[u]) {
			t.Errorf("%s: %d messages answered, %d kept", name, len(acked[u]), len(kept))
		}
	}
}
