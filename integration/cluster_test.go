package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grin-ai/grin/integration/weaviatetest"
	"github.com/grin-ai/grin/platform/memory"
	"github.com/grin-ai/grin/platform/memory/weaviate"
)

// TestClusterKeepsAnsweringWhenANodeDies: grin on a three-node Weaviate
// cluster with replication factor 3, given every node's address. Users
// chat while the node grin talks to is killed; grin moves to the next,
// chat and recall keep answering, and once the node is back every
// acknowledged memory is there, read with consistency ALL through the
// node that was down.
func TestClusterKeepsAnsweringWhenANodeDies(t *testing.T) {
	nodes := weaviatetest.StartCluster(t, 3)
	var urls, ports []string
	for _, n := range nodes {
		urls, ports = append(urls, n.URL), append(ports, strconv.Itoa(n.GRPCPort))
	}
	url := server(t, "GRIN_MEMORY=weaviate", "GRIN_WEAVIATE_URL="+strings.Join(urls, ","),
		"GRIN_WEAVIATE_GRPC_PORT="+strings.Join(ports, ","), "GRIN_WEAVIATE_REPLICATION=3")

	type ack struct{ user, text string }
	var (
		mu     sync.Mutex
		acked  []ack
		failed []string
	)
	chat := func(user, text string) (recalled int, err error) {
		body, _ := json.Marshal(map[string]string{"text": text})
		req, _ := http.NewRequest("POST", url+"/message", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("user_id", user)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		var f struct {
			Why struct {
				Memory struct {
					Episodic []any `json:"episodic"`
				} `json:"memory"`
			} `json:"why"`
		}
		if resp.StatusCode != 200 {
			return 0, fmt.Errorf("status %d", resp.StatusCode)
		}
		if err := json.NewDecoder(resp.Body).Decode(&f); err != nil {
			return 0, err
		}
		return len(f.Why.Memory.Episodic), nil
	}
	// Each phase: every user sends rounds messages at once.
	const users = 6
	phase := func(name string, rounds int) {
		var wg sync.WaitGroup
		for u := range users {
			wg.Go(func() {
				user := fmt.Sprintf("user-%d", u)
				for i := range rounds {
					text := fmt.Sprintf("%s note %d of %s", name, i, user)
					recalled, err := chat(user, text)
					mu.Lock()
					if err != nil {
						failed = append(failed, fmt.Sprintf("%s: %v", text, err))
					} else {
						acked = append(acked, ack{user, text})
						if recalled == 0 && !(name == "before" && i == 0) {
							failed = append(failed, text+": recalled nothing")
						}
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}

	phase("before", 5)
	if len(failed) > 0 {
		t.Fatalf("with every node up: %v", failed)
	}
	// Kill the node grin talks to while messages are in flight: grin
	// retries what failed through it on the next node, so no request
	// fails.
	var wg sync.WaitGroup
	wg.Go(func() { phase("during", 6) })
	time.Sleep(300 * time.Millisecond)
	nodes[0].Kill()
	wg.Wait()
	phase("after", 5)
	if len(failed) > 0 {
		t.Errorf("with a node dying and down, chat failed: %v", failed)
	}

	nodes[0].Restart(t)
	ctx := context.Background()
	// Every acknowledged memory is in the cluster...
	alive, err := weaviate.Open(ctx, weaviate.Config{URL: nodes[1].URL, GRPCPort: nodes[1].GRPCPort, Consistency: "ALL"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	for _, a := range acked {
		want[a.user] = append(want[a.user], a.text)
	}
	stored := map[string][]memory.Point{}
	for user, texts := range want {
		points, err := alive.List(ctx, memory.Episodic, []string{user}, nil, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range points {
			if p.Partition != user {
				t.Errorf("%s's memory holds %s's point", user, p.Partition)
			}
			if slices.Contains(texts, p.Content) {
				stored[user] = append(stored[user], p)
			}
		}
		if len(stored[user]) != len(texts) {
			t.Errorf("%s: %d of %d acknowledged memories in the cluster", user, len(stored[user]), len(texts))
		}
	}
	// ...and reads through the node that was down find each of them,
	// asking every replica (ALL), which repairs that node's copy.
	missing := 0
	for _, points := range stored {
		for _, p := range points {
			u := fmt.Sprintf("%s/v1/objects/%s/%s?tenant=%s&consistency_level=ALL", nodes[0].URL,
				alive.Class(memory.Episodic), weaviate.ObjectID(p), weaviate.TenantName(p.Partition))
			resp, err := http.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				missing++
				t.Errorf("%s's %q through the returned node: %s", p.Partition, p.Content, resp.Status)
			}
		}
	}
	if missing > 0 {
		for _, line := range strings.Split(nodes[0].Logs(), "\n") {
			if strings.Contains(line, `"level":"error"`) || strings.Contains(line, `"level":"warning"`) {
				t.Log(line)
			}
		}
	}
	t.Logf("%d messages acknowledged; after the node returned, all %d read through it with consistency ALL (%d missing)", len(acked), len(acked)-missing, missing)
}
