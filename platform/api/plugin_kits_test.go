package api_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/grin-ai/grin/internal/pluginkit"
	"github.com/grin-ai/grin/platform/app/apptest"
)

// requireKit skips a test whose plugin language has no toolchain on this
// machine, saying how to install it; with GRIN_REQUIRE_PLUGIN_KITS=1 (CI
// installs them all) it fails instead.
func requireKit(t *testing.T, lang pluginkit.Lang) {
	t.Helper()
	if err := pluginkit.Toolchain(lang); err != nil {
		if os.Getenv("GRIN_REQUIRE_PLUGIN_KITS") == "1" {
			t.Fatalf("GRIN_REQUIRE_PLUGIN_KITS=1: %v", err)
		}
		t.Skip(err)
	}
}

// TestSeedExampleInEveryKit: the seed's author filter, written with each
// kit, built from source with grin plugin build's code and uploaded: each
// of two users recalls only the document they uploaded.
func TestSeedExampleInEveryKit(t *testing.T) {
	for _, tc := range []struct {
		lang pluginkit.Lang
		dir  string
	}{
		{pluginkit.Go, "../../wasmhooks/examples/author"},
		{pluginkit.AssemblyScript, "../../wasmhooks/examples/author-assemblyscript"},
		{pluginkit.Rust, "../../wasmhooks/examples/author-rust"},
	} {
		t.Run(string(tc.lang), func(t *testing.T) {
			requireKit(t, tc.lang)
			var log strings.Builder
			b, err := pluginkit.Build(context.Background(), tc.dir, &log)
			if errors.Is(err, pluginkit.ErrToolchain) {
				requireKit(t, tc.lang)
			}
			if err != nil {
				t.Fatalf("build: %v\n%s", err, log.String())
			}
			in := apptest.Start(t)
			if r := uploadPlugin(t, in, zipPlugin(t, string(b.Manifest), b.Wasm)); r.Status != 200 {
				t.Fatalf("install: %d %s", r.Status, r.Body)
			}
			upload(t, in, "?wait=true", "alice.txt", "text/plain", []byte("The tarts were stolen by the Knave of Hearts."), nil, "user_id", "alice")
			upload(t, in, "?wait=true", "bob.txt", "text/plain", []byte("The tarts were baked by the Queen of Hearts."), nil, "user_id", "bob")
			for _, u := range []string{"alice", "bob"} {
				var f frame
				in.Do("POST", "/message", map[string]any{"text": "Who made the tarts of Hearts?"}, "user_id", u).JSON(t, &f)
				got := f.Why.Memory.Declarative
				if len(got) != 1 || got[0].Metadata["author"] != u {
					t.Errorf("%s recalls %+v, want only their own upload", u, got)
				}
			}
		})
	}
}
