package walbatch_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grin-ai/grin/internal/walbatch"
	_ "modernc.org/sqlite"
)

// open opens the database at path, through the VFS when batched, as
// grin's writer does: WAL, synchronous=NORMAL, one connection.
func open(t testing.TB, path string, batched bool, pragmas ...string) *sql.DB {
	t.Helper()
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(10000)"
	for _, p := range pragmas {
		dsn += "&_pragma=" + p
	}
	if batched {
		if err := walbatch.Register(); err != nil {
			t.Fatal(err)
		}
		dsn += "&vfs=" + walbatch.Name
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	return db
}

func exec1(t testing.TB, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func size(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// writeCalls reads how many write system calls the process has made.
func writeCalls(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Skipf("this system does not count system calls in /proc/self/io: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Skip("no syscw in /proc/self/io")
	return 0
}

// A commit's frames reach the log in one write (or a few, for a
// transaction of more than 124 KiB), where SQLite alone makes two per
// page. The process's count of write calls also counts the Go runtime's
// own (a write that wakes the network poller), so each count is the
// least of three tries, and the bound allows two more.
func TestCommitIsOneWrite(t *testing.T) {
	for _, tc := range []struct {
		rows, size int
	}{
		{8, 3000},
		{20, 3000},
		{200, 3000}, // 600 KiB: several writes of at most 124 KiB
	} {
		t.Run(fmt.Sprintf("%dx%d", tc.rows, tc.size), func(t *testing.T) {
			calls, frames := map[bool]int{}, map[bool]int{}
			for _, batched := range []bool{false, true} {
				calls[batched] = -1
				for range 3 {
					path := filepath.Join(t.TempDir(), "t.db")
					db := open(t, path, batched, "wal_autocheckpoint(0)")
					exec1(t, db, "CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)")
					blob := make([]byte, tc.size)
					logBefore := size(t, path+"-wal")
					runtime.GC() // no collector work in the window below
					before := writeCalls(t)
					tx, err := db.Begin()
					if err != nil {
						t.Fatal(err)
					}
					for i := range tc.rows {
						if _, err := tx.Exec("INSERT INTO t (id, b) VALUES (?, ?)", i, blob); err != nil {
							t.Fatal(err)
						}
					}
					if err := tx.Commit(); err != nil {
						t.Fatal(err)
					}
					if n := writeCalls(t) - before; calls[batched] < 0 || n < calls[batched] {
						calls[batched] = n
					}
					frames[batched] = int(size(t, path+"-wal")-logBefore) / (4096 + 24)
					db.Close()
				}
			}
			most := 1 + frames[true]*(4096+24)/(128<<10-4096) + 2
			if calls[true] > most {
				t.Errorf("a commit of %d frames made %d write calls through the VFS, want at most %d (SQLite alone: %d)", frames[true], calls[true], most, calls[false])
			}
			if frames[false] < 8 || calls[false] < 2*frames[false] {
				t.Errorf("SQLite alone made %d write calls for %d frames: the test no longer measures what it should", calls[false], frames[false])
			}
		})
	}
}

// Readers on connections of their own, through SQLite's own VFS, see every
// commit the writer has returned from, and never a gap.
func TestReadersSeeEveryCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	w := open(t, path, true)
	exec1(t, w, "CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)")
	r := open(t, path, false)
	r.SetMaxOpenConns(4)

	const n = 400
	var committed sync.Map // id → struct{}: the writer returned from its commit
	done := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 3 {
		wg.Go(func() {
			last := -1
			for {
				select {
				case <-done:
					return
				default:
				}
				// Every id the writer had returned from before this read
				// began must be seen.
				want := -1
				committed.Range(func(k, _ any) bool { want = max(want, k.(int)); return true })
				var count, top int
				if err := r.QueryRow("SELECT count(*), coalesce(max(id), -1) FROM t").Scan(&count, &top); err != nil {
					errs <- err
					return
				}
				if count != top+1 {
					errs <- fmt.Errorf("a reader saw %d rows up to id %d: a gap", count, top)
					return
				}
				if top < want || top < last {
					errs <- fmt.Errorf("a reader saw up to id %d after the writer returned from id %d (and it had seen %d)", top, want, last)
					return
				}
				last = top
			}
		})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		exec1(t, w, "INSERT INTO t (id, b) VALUES (?, ?)", i, make([]byte, rng.IntN(9000)))
		committed.Store(i, struct{}{})
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// The same random work through the VFS and through SQLite alone leaves
// the same database: transactions large and small, rolled back after
// spilling pages (a page cache of a few pages), pages changed again after
// they were spilled (rewritten in place in the log), checkpoints that
// start the log over, and two writing connections taking turns.
func TestSameDatabaseAsSQLiteAlone(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			plain := work(t, false, seed)
			batched := work(t, true, seed)
			if plain != batched {
				t.Errorf("seed %d: the database written through the VFS differs from SQLite's own", seed)
			}
		})
	}
}

// work runs seed's random work on a new database and returns a digest of
// what it holds, read after reopening it without the VFS.
func work(t *testing.T, batched bool, seed uint64) string {
	dir := t.TempDir()
	path := filepath.Join(dir, "t.db")
	writers := []*sql.DB{
		open(t, path, batched, "cache_size(8)"),
		open(t, path, batched, "cache_size(8)"),
	}
	exec1(t, writers[0], "CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)")
	ckpt := open(t, path, false)
	rng := rand.New(rand.NewPCG(seed, 99))
	blob := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	for range 120 {
		w := writers[rng.IntN(2)]
		tx, err := w.Begin()
		if err != nil {
			t.Fatal(err)
		}
		ops := 1 + rng.IntN(12)
		big := rng.IntN(40) == 0 // more than the VFS gathers at once
		if big {
			ops = 30
		}
		for range ops {
			id := rng.IntN(300)
			size := rng.IntN(6000)
			if big {
				size = 200_000
			}
			var err error
			switch rng.IntN(4) {
			case 0, 1:
				_, err = tx.Exec("INSERT OR REPLACE INTO t (id, b) VALUES (?, ?)", id, blob(size))
			case 2:
				_, err = tx.Exec("UPDATE t SET b = ? WHERE id >= ? AND id < ?", blob(size/4), id, id+5)
			case 3:
				_, err = tx.Exec("DELETE FROM t WHERE id = ?", id)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if rng.IntN(5) == 0 {
			err = tx.Rollback()
		} else {
			err = tx.Commit()
		}
		if err != nil {
			t.Fatal(err)
		}
		if rng.IntN(10) == 0 {
			mode := []string{"PASSIVE", "FULL", "RESTART", "TRUNCATE"}[rng.IntN(4)]
			if _, err := ckpt.Exec("PRAGMA wal_checkpoint(" + mode + ")"); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, w := range writers {
		w.Close()
	}
	ckpt.Close()
	return digest(t, path)
}

// digest checks the database's integrity and hashes its rows.
func digest(t *testing.T, path string) string {
	t.Helper()
	db := open(t, path, false)
	defer db.Close()
	var ok string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("integrity_check: %q %v", ok, err)
	}
	rows, err := db.Query("SELECT id, b FROM t ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	h := sha256.New()
	for rows.Next() {
		var id int
		var b []byte
		if err := rows.Scan(&id, &b); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%d:%x;", id, sha256.Sum256(b))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// A process killed at any moment keeps every commit it returned from: the
// child commits rows and prints each id once its commit returned; the
// parent kills it with SIGKILL and reopens the database.
func TestKilledProcessKeepsEveryCommit(t *testing.T) {
	if dir := os.Getenv("WALBATCH_CHILD_DIR"); dir != "" {
		child(t, dir)
		return
	}
	for round := range 3 {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestKilledProcessKeepsEveryCommit$", "-test.count=1")
		cmd.Env = append(os.Environ(), "WALBATCH_CHILD_DIR="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		want := 150 + 100*round
		acked := -1
		for sc.Scan() {
			id, err := strconv.Atoi(sc.Text())
			if err != nil {
				continue // the test framework's own lines
			}
			acked = id
			if acked >= want {
				break
			}
		}
		cmd.Process.Kill()
		cmd.Wait()
		if acked < want {
			t.Fatalf("the child stopped after id %d", acked)
		}
		path := filepath.Join(dir, "t.db")
		digest(t, path) // integrity
		db := open(t, path, false)
		var count, top int
		if err := db.QueryRow("SELECT count(*), coalesce(max(id), -1) FROM t").Scan(&count, &top); err != nil {
			t.Fatal(err)
		}
		if top < acked || count != top+1 {
			t.Errorf("round %d: after the kill the database holds %d rows up to id %d; the child had returned from the commit of id %d", round, count, top, acked)
		}
	}
}

func child(t *testing.T, dir string) {
	db := open(t, filepath.Join(dir, "t.db"), true, "wal_autocheckpoint(64)")
	exec1(t, db, "CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)")
	rng := rand.New(rand.NewPCG(7, 7))
	ctx := context.Background()
	out := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec("INSERT INTO t (id, b) VALUES (?, ?)", i, make([]byte, rng.IntN(20000))); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(out, i)
		out.Flush()
		if i > 100_000 {
			time.Sleep(time.Hour) // the parent kills it long before
		}
	}
}
