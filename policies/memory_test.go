package policies

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/grin-ai/grin/platform/database/databasetest"
)

// TestPolicyHeldCompactly: the policy in force holds the grants of 20,000
// users (200,000 grants: ten permission roles each, a few kinds of
// dictionary) in under 1 KB a user. Casbin's role manager, which held them
// before, took 4.4 KB a user (a role object of six sync.Maps for every
// user, an entry at each end of every link) and most of a start with
// 100,000 users went to building and collecting it; users with the same
// dictionary now share one list of roles (rolegraph.go). Memory, unlike
// time, does not depend on the machine's load.
func TestPolicyHeldCompactly(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a database with 200,000 grants")
	}
	const users = 20_000
	ctx := context.Background()
	dir, db := databasetest.SQLite(t)
	kinds := []Dict{BaseDict(), BaseDict(), BaseDict()}
	kinds[1][Users] = []Permission{Read}
	kinds[2][Plugins] = []Permission{Read, List}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range users {
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		for _, r := range kinds[i%len(kinds)].roles() {
			if _, err := tx.ExecContext(ctx, `INSERT INTO grants (subject, role) VALUES (?, ?)`, id, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	e, err := Open(ctx, dir, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	after := heap()
	id := "00000000-0000-4000-8000-000000000001" // kinds[1]: USERS READ
	if ok, err := e.Decide(Request{Subjects: []string{id}, Self: id, Object: "users", Action: "read"}); err != nil || !ok {
		t.Fatalf("a user granted USERS READ may not read users: %v %v", ok, err)
	}
	runtime.KeepAlive(e)
	perUser := float64(after-before) / users
	t.Logf("the policy in force holds %.0f bytes a user (%d users, %.1f MB)", perUser, users, float64(after-before)/1e6)
	if perUser > 1024 {
		t.Errorf("the policy in force holds %.0f bytes a user, want under 1 KB", perUser)
	}
}
