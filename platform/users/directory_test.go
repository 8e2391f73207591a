package users

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	"github.com/grin-ai/grin/platform/database"
	"github.com/grin-ai/grin/platform/database/databasetest"
)

// TestDirectoryPages: EachUser visits every user once, in creation order,
// across pages, and stops when asked; on SQLite and on PostgreSQL.
func TestDirectoryPages(t *testing.T) {
	databasetest.EachEngine(t, func(t *testing.T, _ database.Engine, open databasetest.Open) {
		testDirectoryPages(t, open(t))
	})
}

func testDirectoryPages(t *testing.T, db *sql.DB) {
	ctx := context.Background()
	const n = 2*directoryPage + 345
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, username, password_hash, created_at) VALUES ($1, $2, '', 0)`,
			fmt.Sprintf("id-%d", i), fmt.Sprintf("name-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	d := NewDirectory(db)
	var seen int
	err = d.EachUser(ctx, func(id, username string) bool {
		if id != fmt.Sprintf("id-%d", seen) || username != fmt.Sprintf("name-%d", seen) {
			t.Fatalf("user %d is %s %s", seen, id, username)
		}
		seen++
		return true
	})
	if err != nil || seen != n {
		t.Fatalf("visited %d of %d: %v", seen, n, err)
	}
	seen = 0
	d.EachUser(ctx, func(string, string) bool { seen++; return seen < 1500 })
	if seen != 1500 {
		t.Errorf("visited %d after asking to stop at 1500", seen)
	}
	if name, ok, err := d.Username(ctx, "id-2000"); err != nil || !ok || name != "name-2000" {
		t.Errorf("Username(id-2000) = %q %v %v", name, ok, err)
	}
	if _, ok, err := d.Username(ctx, "role:admin"); err != nil || ok {
		t.Errorf("Username(role:admin) = %v %v, want no user", ok, err)
	}
}
