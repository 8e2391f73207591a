package openapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/grin-ai/grin/platform/app/apptest"
)

// TestFramesMatchTheAsyncAPIDocument: every kind of frame the server sends
// on a real socket validates against openapi/asyncapi.yaml.
func TestFramesMatchTheAsyncAPIDocument(t *testing.T) {
	raw, err := os.ReadFile("asyncapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["asyncapi"] != "3.0.0" {
		t.Fatalf("asyncapi version %v", doc["asyncapi"])
	}
	b, _ := json.Marshal(doc)
	parsed, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("asyncapi.json", parsed); err != nil {
		t.Fatal(err)
	}
	schemas := map[string]*jsonschema.Schema{}
	for frame, name := range map[string]string{"chat_token": "ChatToken", "chat": "Chat", "notification": "Notification", "error": "Error"} {
		s, err := c.Compile("asyncapi.json#/components/schemas/" + name)
		if err != nil {
			t.Fatalf("schema %s: %v", name, err)
		}
		schemas[frame] = s
	}

	in := apptest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(in.URL, "http")+"/ws/alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	conn.Write(ctx, websocket.MessageText, []byte(`{"text": "Curiouser and curiouser"}`))
	conn.Write(ctx, websocket.MessageText, []byte(`not json`))
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	part, _ := w.CreateFormFile("file", "note.txt")
	part.Write([]byte("Down the rabbit hole."))
	w.Close()
	in.Do("POST", "/rabbithole/", body.Bytes(), "Content-Type", w.FormDataContentType(), "user_id", "alice")

	seen := map[string]int{}
	for len(seen) < 4 {
		_, frame, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v (seen %v)", err, seen)
		}
		var f map[string]any
		if err := json.Unmarshal(frame, &f); err != nil {
			t.Fatal(err)
		}
		typ := fmt.Sprint(f["type"])
		s, ok := schemas[typ]
		if !ok {
			t.Fatalf("frame of a type the document does not know: %s", frame)
		}
		v, _ := jsonschema.UnmarshalJSON(bytes.NewReader(frame))
		if err := s.Validate(v); err != nil {
			t.Errorf("%s frame does not match the document: %v\n%s", typ, err, frame)
		}
		seen[typ]++
	}
}
