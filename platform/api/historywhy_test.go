package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/grin-ai/grin/platform/app/apptest"
	"github.com/grin-ai/grin/platform/database"
)

// TestHistoryKeepsTheWhyWithoutTheEmbedding: the chat frame carries the
// recall query's embedding in why.model_interactions, as the Cat's does;
// the conversation history keeps everything else of that why (memories,
// prompts, tokens, agent output) and shows the embedder's reply as an empty
// list, so a turn's stored why does not grow with the embedder's dimension.
func TestHistoryKeepsTheWhyWithoutTheEmbedding(t *testing.T) {
	in := apptest.Start(t)
	alice := dial(t, in, "/ws/alice")
	var frameWhy map[string]any
	var vector []any
	for _, text := range []string{"My favourite colour is blue", "What is my favourite colour?"} {
		alice.send(map[string]string{"text": text})
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			_, b, err := alice.conn.Read(ctx)
			cancel()
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			var f struct {
				Type string         `json:"type"`
				Why  map[string]any `json:"why"`
			}
			if err := json.Unmarshal(b, &f); err != nil {
				t.Fatalf("frame %s: %v", b, err)
			}
			if f.Type == "error" {
				t.Fatalf("error frame: %s", b)
			}
			if f.Type == "chat" {
				frameWhy = f.Why
				break
			}
		}
	}
	// The frame, as the Cat's: the embedder's reply is the query's vector.
	mis, _ := frameWhy["model_interactions"].([]any)
	for _, mi := range mis {
		if m, _ := mi.(map[string]any); m["model_type"] == "embedder" {
			vector, _ = m["reply"].([]any)
			m["reply"] = []any{} // what the history is to show
		}
	}
	if len(vector) == 0 {
		t.Fatalf("the chat frame's why has no embedder interaction with a vector: %v", frameWhy)
	}

	var h struct {
		History []struct {
			Who string          `json:"who"`
			Why json.RawMessage `json:"why"`
		} `json:"history"`
	}
	in.Do("GET", "/memory/conversation_history", nil, "user_id", "alice").JSON(t, &h)
	if len(h.History) != 4 || h.History[3].Who != "AI" {
		t.Fatalf("history = %+v", h.History)
	}
	var histWhy map[string]any
	if err := json.Unmarshal(h.History[3].Why, &histWhy); err != nil {
		t.Fatalf("history why %s: %v", h.History[3].Why, err)
	}
	if !reflect.DeepEqual(histWhy, frameWhy) {
		got, _ := json.Marshal(histWhy)
		want, _ := json.Marshal(frameWhy)
		t.Errorf("the history's why differs from the frame's but for the embedding:\n got %s\nwant %s", got, want)
	}

	// What the database holds has none of the vector's numbers.
	vecJSON, _ := json.Marshal(vector)
	var raw any
	db := apptest.OpenDatabase(t, in.Dir)
	if err := db.QueryRow(`SELECT why FROM conversation_history WHERE user_id = $1 AND who = 'AI' ORDER BY seq DESC LIMIT 1`, "alice").Scan(&raw); err != nil {
		t.Fatal(err)
	}
	stored, err := database.Unpack(raw) // compressed on SQLite
	if err != nil || !json.Valid(stored) {
		t.Fatalf("the stored why: %.60q, %v", stored, err)
	}
	if bytes.Contains(stored, vecJSON[1:len(vecJSON)-1]) {
		t.Errorf("the stored why still holds the embedding (%d bytes of it)", len(vecJSON))
	}
}
