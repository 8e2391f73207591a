package database_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/grin-ai/grin/platform/database"
)

// TestKnownSet: changes committed while the set is read are applied over
// what the read returns, whether it saw them or not; nothing is known
// before the read is in or after it failed.
func TestKnownSet(t *testing.T) {
	ctx := context.Background()
	release := make(chan struct{})
	k := database.LoadKnownSet(func(context.Context) (map[string]struct{}, error) {
		<-release
		// What the read saw: b was added before it began, d removed after
		// its snapshot (so still here).
		return map[string]struct{}{"a": {}, "b": {}, "d": {}}, nil
	})
	defer k.Close()
	if k.Absent("zzz") {
		t.Error("absent before the read is in")
	}
	k.Set("b", true)  // also in the read: applied again, harmless
	k.Set("c", true)  // after the read's snapshot
	k.Set("d", false) // after it too
	close(release)
	if err := k.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(k.Keys(), ","); got != "a,b,c" {
		t.Errorf("keys %q, want a,b,c", got)
	}
	for key, absent := range map[string]bool{"a": false, "c": false, "d": true, "new": true} {
		if k.Absent(key) != absent {
			t.Errorf("Absent(%q) = %v, want %v", key, !absent, absent)
		}
	}
	k.Set("new", true)
	k.Set("a", false)
	if k.Absent("new") || !k.Absent("a") {
		t.Error("changes after the read are not applied")
	}

	failed := database.LoadKnownSet(func(context.Context) (map[string]struct{}, error) {
		return nil, errors.New("disk on fire")
	})
	if err := failed.Wait(ctx); err == nil || !failed.Failed() {
		t.Errorf("a failed read: %v, Failed %v", err, failed.Failed())
	}
	failed.Set("x", true)
	if failed.Absent("y") {
		t.Error("a failed set claims to know")
	}
}
