package wasmhooks

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/grin-ai/grin/platform/database/databasetest"
)

// TestKeyValues runs the plugins' key-value stores' behaviour suite on
// SQLite and on PostgreSQL: each case gets a new, empty database.
func TestKeyValues(t *testing.T) {
	databasetest.Suite(t, func(_ *testing.T, db *sql.DB) keyValues { return keyValues{db} }, []databasetest.Case[keyValues]{
		{Name: "keys are set, read, replaced and deleted, store by store", Run: testKVStores},
		{Name: "the quota counts keys and values in bytes, and a replaced value once", Run: testKVQuota},
		{Name: "sets at once cannot pass the quota together", Run: testKVQuotaConcurrent},
		{Name: "a user's and a plugin's stores are erased with them", Run: testKVErase},
	}...)
}

func kvGet(t *testing.T, kv keyValues, plugin, user, key string) string {
	t.Helper()
	v, ok, err := kv.get(context.Background(), plugin, user, key)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return "(none)"
	}
	return string(v)
}

func kvSet(t *testing.T, kv keyValues, plugin, user, key, value string) {
	t.Helper()
	if err := kv.set(context.Background(), plugin, user, key, []byte(value), 1<<20); err != nil {
		t.Fatal(err)
	}
}

func testKVStores(t *testing.T, kv keyValues) {
	ctx := context.Background()
	binary := "a\x00b\xffc" // any bytes
	kvSet(t, kv, "p1", "alice", "k", binary)
	kvSet(t, kv, "p1", "bob", "k", "bob's")
	kvSet(t, kv, "p1", "", "k", "plugin-wide")
	kvSet(t, kv, "p2", "alice", "k", "other plugin")
	for _, c := range [][4]string{
		{"p1", "alice", "k", binary}, {"p1", "bob", "k", "bob's"}, {"p1", "", "k", "plugin-wide"},
		{"p2", "alice", "k", "other plugin"}, {"p2", "bob", "k", "(none)"}, {"p1", "alice", "K", "(none)"},
	} {
		if got := kvGet(t, kv, c[0], c[1], c[2]); got != c[3] {
			t.Errorf("%s/%s/%s: %q, want %q", c[0], c[1], c[2], got, c[3])
		}
	}
	kvSet(t, kv, "p1", "alice", "k", "replaced")
	if got := kvGet(t, kv, "p1", "alice", "k"); got != "replaced" {
		t.Errorf("replaced: %q", got)
	}
	for _, want := range []bool{true, false} {
		if ok, err := kv.delete(ctx, "p1", "alice", "k"); ok != want || err != nil {
			t.Errorf("delete: %v %v, want %v", ok, err, want)
		}
	}
	if got := kvGet(t, kv, "p1", "bob", "k"); got != "bob's" {
		t.Errorf("bob's after alice's deletion: %q", got)
	}
}

func testKVQuota(t *testing.T, kv keyValues) {
	ctx := context.Background()
	const quota = 20
	set := func(key, value string) error { return kv.set(ctx, "p", "u", key, []byte(value), quota) }
	if err := set("é", strings.Repeat("x", 8)); err != nil { // 2 + 8 bytes
		t.Fatal(err)
	}
	if err := set("b", strings.Repeat("x", 9)); err != nil { // 20 in all
		t.Fatal(err)
	}
	if err := set("c", ""); !errors.Is(err, errKVQuota) {
		t.Errorf("one byte more: %v", err)
	}
	if err := set("b", strings.Repeat("y", 9)); err != nil { // replaced, not added
		t.Errorf("replacing a value of the same size: %v", err)
	}
	if err := kv.set(ctx, "p", "other user", "c", []byte("1"), quota); err != nil {
		t.Errorf("another store: %v", err)
	}
	if got := kvGet(t, kv, "p", "u", "c"); got != "(none)" {
		t.Errorf("a refused key is stored: %q", got)
	}
}

func testKVQuotaConcurrent(t *testing.T, kv keyValues) {
	const quota, writers = 100, 12
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			// 2 + 18 bytes each: five fit.
			err := kv.set(context.Background(), "p", "u", fmt.Sprintf("%02d", i), []byte(strings.Repeat("v", 18)), quota)
			if err != nil && !errors.Is(err, errKVQuota) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var n int
	if err := kv.db.QueryRow(`SELECT count(*) FROM plugin_kv WHERE plugin_id = 'p' AND user_id = 'u'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 5 {
		t.Errorf("%d keys of 20 bytes stored under a quota of %d", n, quota)
	}
}

func testKVErase(t *testing.T, kv keyValues) {
	ctx := context.Background()
	kvSet(t, kv, "p1", "alice", "k", "1")
	kvSet(t, kv, "p2", "alice", "k", "2")
	kvSet(t, kv, "p1", "", "alice", "plugin-wide, named alice")
	kvSet(t, kv, "p1", "bob", "k", "3")
	kvSet(t, kv, "p2", "", "k", "4")
	if err := kv.eraseUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := kv.eraseUser(ctx, ""); err != nil { // never the plugin-wide stores
		t.Fatal(err)
	}
	for _, c := range [][4]string{
		{"p1", "alice", "k", "(none)"}, {"p2", "alice", "k", "(none)"}, {"p1", "", "alice", "plugin-wide, named alice"},
		{"p1", "bob", "k", "3"}, {"p2", "", "k", "4"},
	} {
		if got := kvGet(t, kv, c[0], c[1], c[2]); got != c[3] {
			t.Errorf("after erasing alice, %s/%s/%s: %q, want %q", c[0], c[1], c[2], got, c[3])
		}
	}
	if err := kv.erasePlugin(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	if a, b := kvGet(t, kv, "p1", "", "alice"), kvGet(t, kv, "p2", "", "k"); a != "(none)" || b != "4" {
		t.Errorf("after erasing p1: %q %q", a, b)
	}
}
