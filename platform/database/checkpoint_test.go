package database_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grin-ai/grin/internal/logbuf"
	"github.com/grin-ai/grin/platform/database"
	"github.com/grin-ai/grin/platform/database/databasetest"
)

// TestCheckpointsBesideTheWriter: the database file receives what is
// written while the log is still short of the writer's own checkpoint, so
// the copying (and its syncs) happened beside the writer; the log stays
// bounded under writes that never pause; and everything written reads
// back after a reopen.
func TestCheckpointsBesideTheWriter(t *testing.T) {
	ctx := context.Background()
	dir, db := databasetest.SQLite(t)
	logs := &logbuf.Buffer{}
	ckpt, err := database.StartCheckpoints(ctx, dir, db, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	var auto int
	if err := db.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&auto); err != nil || auto != database.WriterCheckpointPages {
		t.Fatalf("the writer's automatic checkpoint: %d pages, %v; want %d", auto, err, database.WriterCheckpointPages)
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE filler (id INTEGER PRIMARY KEY, body TEXT)"); err != nil {
		t.Fatal(err)
	}
	const size = 8 << 10 // two pages or more a row
	body := strings.Repeat("x", size)
	insert := func(n int) {
		t.Helper()
		for range n {
			if _, err := db.ExecContext(ctx, "INSERT INTO filler (body) VALUES (?)", body); err != nil {
				t.Fatal(err)
			}
		}
	}
	fileSize := func(name string) int64 {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return 0
		}
		return fi.Size()
	}

	// About 1,000 pages: a quarter of the way to the writer's checkpoint.
	insert(500)
	deadline := time.Now().Add(30 * time.Second)
	for fileSize(database.FileName) < 500*size {
		if time.Now().After(deadline) {
			t.Fatalf("the database file holds %d bytes after %d were written: nothing copied the log into it", fileSize(database.FileName), 500*size)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Writes without a pause: the log is started again, not grown.
	const rows = 8000
	maxWAL := int64(0)
	for i := 0; i < rows; i += 100 {
		insert(100)
		maxWAL = max(maxWAL, fileSize(database.FileName+"-wal"))
	}
	if bound := int64(2 * database.WriterCheckpointPages * 4096); maxWAL > bound {
		t.Errorf("the write-ahead log reached %d bytes, more than %d", maxWAL, bound)
	}
	if err := ckpt.Close(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = database.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM filler WHERE length(body) = ?", size).Scan(&n); err != nil || n != rows+500 {
		t.Errorf("after reopening: %d rows, %v; want %d", n, err, rows+500)
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("checkpoints warned:\n%s", logs)
	}
}
