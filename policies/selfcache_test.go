package policies

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDecisionsCachedAcrossSelves: with the default model a decision on
// an object that does not name the requester (procedural memory, a shared
// space) is made once for every requester, while their own partitions are
// decided each on its own; a model whose matcher uses self otherwise gets
// every requester decided on their own, and right.
func TestDecisionsCachedAcrossSelves(t *testing.T) {
	e, dir, _ := open(t)
	const users = 50
	misses := func(obj string) int64 {
		t.Helper()
		before := e.Figures().CacheMisses
		for i := range users {
			self := fmt.Sprint("u", i)
			if !allowed(t, e, "credential:anonymous", strings.ReplaceAll(obj, "{u}", self), "read", self) {
				t.Fatalf("%s read by %s: denied", obj, self)
			}
		}
		return e.Figures().CacheMisses - before
	}
	for _, c := range []struct {
		obj  string
		want int64
	}{
		{"procedural", 1},
		{"declarative:shared", 1},
		{"episodic:{u}", users},
	} {
		if got := misses(c.obj); got != c.want {
			t.Errorf("%d users reading %s: %d decisions made, want %d", users, c.obj, got, c.want)
		}
	}

	model, err := os.ReadFile(filepath.Join(dir, ModelFile))
	if err != nil {
		t.Fatal(err)
	}
	const matcher = "m = actionMatch(r.act, p.act) && objectMatch(r.obj, p.obj, r.self) && g(r.sub, expand(p.sub, r.obj, r.act))"
	if !strings.Contains(string(model), matcher) {
		t.Fatalf("the default matcher changed; update this test:\n%s", model)
	}
	changed := strings.Replace(string(model), matcher, matcher+` && r.self != "u7"`, 1)
	if err := os.WriteFile(filepath.Join(dir, ModelFile), []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	for self, want := range map[string]bool{"u3": true, "u7": false, "u8": true} {
		if got := allowed(t, e, "credential:anonymous", "procedural", "read", self); got != want {
			t.Errorf("with a matcher that names u7, procedural read by %s: %v, want %v", self, got, want)
		}
	}
}
