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

	"grin/integration/weaviatetest"
	"grin/platform/memory"
	"grin/platform/memory/weaviate"
)

// TestClusterKeepsAnsweringWhenANodeDies: grin on a three-node Weaviate
// cluster with replication factor 3. Users chat while one node is killed;
// chat and recall keep answering on the other two, and once the node is
// back every acknowledged memory is there, read with consistency ALL
// through the node that was down.
func TestClusterKeepsAnsweringWhenANodeDies(t *testing.T) {
	nodes := weaviatetest.StartCluster(t, 3)
	url := server(t, "GRIN_MEMORY=weaviate", "GRIN_WEAVIATE_URL="+nodes[0].URL,
		"GRIN_WEAVIATE_GRPC_PORT="+strconv.Itoa(nodes[0].GRPCPort), "GRIN_WEAVIATE_REPLICATION=3")

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
	// Kill a node while messages are in flight: grin retries what failed
	// through it, so no request fails.
	var wg sync.WaitGroup
	wg.Go(func() { phase("during", 6) })
	time.Sleep(300 * time.Millisecond)
	nodes[2].Kill()
	wg.Wait()
	phase("after", 5)
	if len(failed) > 0 {
		t.Errorf("with a node dying and down, chat failed: %v", failed)
	}

	nodes[2].Restart(t)
	ctx := context.Background()
	back, err := weaviate.Open(ctx, weaviate.Config{URL: nodes[2].URL, GRPCPort: nodes[2].GRPCPort, Consistency: "ALL"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	for _, a := range acked {
		want[a.user] = append(want[a.user], a.text)
	}
	// Reads with ALL wait for every replica, the returned node's included
	// (and repair it).
	deadline := time.Now().Add(time.Minute)
	for user, texts := range want {
		for {
			points, err := back.List(ctx, memory.Episodic, []string{user}, nil, 0, 1000)
			var have []string
			for _, p := range points {
				have = append(have, p.Content)
			}
			missing := 0
			for _, text := range texts {
				if !slices.Contains(have, text) {
					missing++
				}
			}
			if err == nil && missing == 0 {
				for _, p := range points {
					if p.Partition != user {
						t.Errorf("%s's memory holds %s's point", user, p.Partition)
					}
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d acknowledged memories missing after the node returned (err %v)", user, missing, len(texts), err)
			}
			time.Sleep(time.Second)
		}
	}
	t.Logf("%d messages acknowledged, all present on every replica after the node returned", len(acked))
}
