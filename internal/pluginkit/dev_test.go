package pluginkit_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grin-ai/grin/internal/pluginkit"
	"github.com/grin-ai/grin/platform/app/apptest"
	"github.com/grin-ai/grin/wasmhooks"
)

// syncBuffer is a bytes.Buffer the dev loop writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// eventually polls cond until it holds or a minute passes (builds are
// slow on a busy machine; nothing here measures speed).
func eventually(t *testing.T, what string, out *syncBuffer, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("%s did not happen; the dev loop said:\n%s", what, out.String())
}

// TestDev: the dev loop uploads the plugin, and uploads it again when its
// source changes; the server then answers with the new code.
func TestDev(t *testing.T) {
	in := apptest.Start(t)
	dir := filepath.Join(t.TempDir(), "hide-mail")
	if _, err := pluginkit.New(dir, pluginkit.Go); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	box, err := pluginkit.NewSandbox(ctx, wasmhooks.EngineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- pluginkit.Dev(ctx, pluginkit.DevConfig{Dir: dir, Server: in.URL, Sandbox: box, Out: out})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		box.Close(context.Background())
	})
	says := func() string {
		var f struct {
			Why struct {
				Input string `json:"input"`
			} `json:"why"`
		}
		in.Do("POST", "/message", map[string]any{"text": "mail me at a@example.com"}, "user_id", "alice").JSON(t, &f)
		return f.Why.Input
	}
	eventually(t, "the first upload", out, func() bool { return in.Do("GET", "/plugins/hide-mail", nil).Status == 200 })
	if got := says(); got != "mail me at [e-mail]" {
		t.Fatalf("after the first upload: %q", got)
	}
	src := filepath.Join(dir, "main.go")
	b, _ := os.ReadFile(src)
	if err := os.WriteFile(src, bytes.Replace(b, []byte(`ReplaceAllLiteralString(text, replacement)`), []byte(`ReplaceAllLiteralString(text, "[mail]")`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the upload after a change", out, func() bool { return says() == "mail me at [mail]" })
	// Logs: shown when the server keeps them, else the loop says where
	// they are.
	eventually(t, "word about the logs", out, func() bool {
		s := out.String()
		return strings.Contains(s, "does not offer plugin logs") || strings.Contains(s, "hid an e-mail address")
	})
	// A broken change is reported, and the server keeps the last good one.
	os.WriteFile(src, append(b, []byte("\nfunc broken( {\n")...), 0o644)
	eventually(t, "a build failure", out, func() bool { return strings.Contains(out.String(), "build failed") })
	if got := says(); got != "mail me at [mail]" {
		t.Errorf("after a failed build the server answers %q", got)
	}
}
