package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/danielgtaylor/huma/v2"

	"github.com/grin-ai/grin/platform/api"
	"github.com/grin-ai/grin/platform/app/apptest"
)

// jsonOperation is an operation of the API that takes a JSON body.
type jsonOperation struct {
	method, path string
}

// jsonOperations lists, from the OpenAPI document, every operation whose
// body is JSON, in a stable order so a corpus entry names the same
// operation on every run. Path parameters become "fuzz".
func jsonOperations(tb testing.TB) []jsonOperation {
	tb.Helper()
	params := regexp.MustCompile(`\{[^}]+\}`)
	var ops []jsonOperation
	for path, item := range api.Document().Paths {
		for method, op := range map[string]*huma.Operation{
			"POST": item.Post, "PUT": item.Put, "PATCH": item.Patch, "DELETE": item.Delete,
		} {
			if op != nil && op.RequestBody != nil && op.RequestBody.Content["application/json"] != nil {
				ops = append(ops, jsonOperation{method, params.ReplaceAllString(path, "fuzz")})
			}
		}
	}
	slices.SortFunc(ops, func(a, b jsonOperation) int {
		return strings.Compare(a.method+" "+a.path, b.method+" "+b.path)
	})
	if len(ops) < 10 {
		tb.Fatalf("only %d operations with JSON bodies found in the document", len(ops))
	}
	return ops
}

// FuzzJSONBodies sends arbitrary bytes as the body of every operation that
// takes JSON, as the shadow user with the Cat's full permissions (so the
// body reaches the handler rather than stopping at a 403). Whatever the
// bytes, the answer is never a 500 (grin's own failure, a panic included)
// and an error is a problem-details document. Run it longer with
//
//	go test ./platform/api -run '^$' -fuzz FuzzJSONBodies -fuzztime 60s
func FuzzJSONBodies(f *testing.F) {
	ops := jsonOperations(f)
	for i := range ops {
		for _, seed := range []string{`{}`, `null`, `[]`, `{"text":"hi","username":"u","password":"secret12","permissions":{"USERS":["READ"]}}`, `{"policy":"p, a, b, c","model":""}`, "\xff\xfe"} {
			f.Add(uint8(i), []byte(seed))
		}
	}
	in := apptest.Start(f)
	client := &http.Client{Timeout: 30 * time.Second}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		op := ops[int(which)%len(ops)]
		req, err := http.NewRequest(op.method, in.URL+op.path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", op.method, op.path, err)
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusInternalServerError {
			t.Fatalf("%s %s with %q: 500 %s", op.method, op.path, body, got)
		}
		if resp.StatusCode >= 400 && !json.Valid(got) {
			t.Fatalf("%s %s with %q: %d and a body that is not a problem document: %q", op.method, op.path, body, resp.StatusCode, got)
		}
	})
}

// FuzzWebSocketFrames sends an arbitrary text frame on a chat socket. Every
// frame gets an answer, a reply or an error frame that says what was wrong,
// never grin's own failure, and the socket stays open for the next frame.
//
//	go test ./platform/api -run '^$' -fuzz FuzzWebSocketFrames -fuzztime 60s
func FuzzWebSocketFrames(f *testing.F) {
	for _, seed := range []string{
		`{"text":"hello"}`, `{"text":""}`, `{"text":5}`, `{}`, `null`, `[]`, `"text"`, `{"text":"hi","user_id":"admin"}`,
		`{"text":"a","prompt_settings":{"k":-1}}`, "\xff", `{"text":"\u0000"}`,
	} {
		f.Add([]byte(seed))
	}
	in := apptest.Start(f)
	url := "ws" + strings.TrimPrefix(in.URL, "http") + "/ws/fuzzer"
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		for i, frame := range [][]byte{data, []byte(`{"text":"still there?"}`)} {
			if err := c.Write(ctx, websocket.MessageText, frame); err != nil {
				t.Fatalf("write frame %d: %v", i, err)
			}
			for {
				_, got, err := c.Read(ctx)
				if err != nil {
					t.Fatalf("after frame %d (%q): %v", i, frame, err)
				}
				var m struct {
					Type, Name, Description string
				}
				if err := json.Unmarshal(got, &m); err != nil {
					t.Fatalf("after frame %d: an answer that is not JSON: %q", i, got)
				}
				if m.Type == "error" {
					if m.Name == "ChatFailed" {
						t.Fatalf("frame %q: grin failed: %s", frame, got)
					}
					break
				}
				if m.Type == "chat" {
					break
				}
			}
		}
	})
}
