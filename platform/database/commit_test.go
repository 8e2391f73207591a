package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func openTest(t *testing.T) *sql.DB {
	t.Helper()
	db, err := Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE t (k TEXT PRIMARY KEY);
		CREATE TABLE parent (id INTEGER PRIMARY KEY);
		CREATE TABLE child (p INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)`); err != nil {
		t.Fatal(err)
	}
	return db
}

func insert(k string, tx *[]*sql.Tx, mu *sync.Mutex) Op {
	return Op{Write: func(ctx context.Context, t *sql.Tx) error {
		if tx != nil {
			mu.Lock()
			*tx = append(*tx, t)
			mu.Unlock()
		}
		_, err := t.ExecContext(ctx, `INSERT INTO t (k) VALUES (?)`, k)
		return err
	}}
}

func keys(t *testing.T, db *sql.DB) map[string]bool {
	t.Helper()
	rows, err := db.Query(`SELECT k FROM t`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var k string
		rows.Scan(&k)
		out[k] = true
	}
	return out
}

// TestCommitterGroupsWaitingCallers: callers that arrive while a commit is
// under way are committed together, in one transaction, and each is
// answered only after it.
func TestCommitterGroupsWaitingCallers(t *testing.T) {
	db := openTest(t)
	c := NewCommitter(db)
	hold, held := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- c.Do(t.Context(), Op{Write: func(ctx context.Context, tx *sql.Tx) error {
			close(held)
			<-hold
			_, err := tx.ExecContext(ctx, `INSERT INTO t (k) VALUES ('first')`)
			return err
		}})
	}()
	<-held
	const n = 50
	var mu sync.Mutex
	var txs []*sql.Tx
	var committed sync.WaitGroup
	committed.Add(n)
	errs := make(chan error, n)
	for i := range n {
		go func() {
			op := insert(fmt.Sprint("k", i), &txs, &mu)
			op.Committed = committed.Done
			errs <- c.Do(t.Context(), op)
		}()
	}
	for { // all n queued behind the first
		c.mu.Lock()
		q := len(c.queue)
		c.mu.Unlock()
		if q == n {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(hold)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	committed.Wait()
	if got := len(keys(t, db)); got != n+1 {
		t.Errorf("%d rows, want %d", got, n+1)
	}
	distinct := map[*sql.Tx]bool{}
	for _, tx := range txs {
		distinct[tx] = true
	}
	if len(distinct) != 1 {
		t.Errorf("the %d waiting callers were committed in %d transactions, want one", n, len(distinct))
	}
}

// TestCommitterLeaderGathersCallersReadyToRun: callers whose goroutines
// are ready to run when a leader takes its group join that group instead
// of waiting for the next commit. On one core the scheduler makes this
// exact: the first caller to run leads, and without yielding it would take
// a group of itself alone, since the others have not run yet.
func TestCommitterLeaderGathersCallersReadyToRun(t *testing.T) {
	db := openTest(t)
	c := NewCommitter(db)
	var mu sync.Mutex
	var groups []int
	c.Observe(func(writes int, _ time.Duration, err error) {
		mu.Lock()
		groups = append(groups, writes)
		mu.Unlock()
	})
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const n = 20
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- c.Do(t.Context(), insert(fmt.Sprint("k", i), nil, nil)) }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := len(keys(t, db)); got != n {
		t.Errorf("%d rows, want %d", got, n)
	}
	if len(groups) != 1 || groups[0] != n {
		t.Errorf("%d callers ready at once were committed in groups of %v, want one group of %d", n, groups, n)
	}
}

// TestCommitterFailureIsTheCallersOwn: in a group, a failing write takes
// back its own caller's ops (all of them) and no one else's; a commit that
// fails fails everyone in it, and nothing of theirs is kept.
func TestCommitterFailureIsTheCallersOwn(t *testing.T) {
	db := openTest(t)
	c := NewCommitter(db)
	hold, held := make(chan struct{}), make(chan struct{})
	go c.Do(t.Context(), Op{Write: func(ctx context.Context, tx *sql.Tx) error {
		select {
		case <-held:
		default:
			close(held)
			<-hold
		}
		return nil
	}})
	<-held
	boom := errors.New("boom")
	calls := map[string]int{}
	var mu sync.Mutex
	committed := func(k string) func() {
		return func() { mu.Lock(); calls[k]++; mu.Unlock() }
	}
	type result struct {
		name string
		err  error
	}
	res := make(chan result, 3)
	do := func(name string, ops ...Op) {
		go func() { res <- result{name, c.Do(t.Context(), ops...)} }()
	}
	a := insert("a", nil, nil)
	a.Committed = committed("a")
	do("a", a)
	b1 := insert("b1", nil, nil)
	b1.Committed = committed("b")
	do("b", b1, Op{Write: func(context.Context, *sql.Tx) error { return boom }})
	d := insert("d", nil, nil)
	d.Committed = committed("d")
	do("d", d)
	for {
		c.mu.Lock()
		q := len(c.queue)
		c.mu.Unlock()
		if q == 3 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(hold)
	for range 3 {
		r := <-res
		if (r.name == "b") != errors.Is(r.err, boom) || r.name != "b" && r.err != nil {
			t.Errorf("%s: %v", r.name, r.err)
		}
	}
	if got := keys(t, db); !got["a"] || !got["d"] || got["b1"] {
		t.Errorf("rows %v: want a and d, not b's", got)
	}
	if calls["a"] != 1 || calls["d"] != 1 || calls["b"] != 0 {
		t.Errorf("Committed ran %v, want once for a and d, never for b", calls)
	}

	// A commit that fails (a deferred foreign key) is everyone's failure.
	orphan := Op{Write: func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO child (p) VALUES (42)`)
		return err
	}}
	e := insert("e", nil, nil)
	e.Committed = committed("e")
	if err := c.Do(t.Context(), e, orphan); err == nil || !strings.Contains(err.Error(), "commit") {
		t.Errorf("a commit refused by the database: %v", err)
	}
	if keys(t, db)["e"] || calls["e"] != 0 {
		t.Error("a failed commit kept a write or told its caller it was committed")
	}

	// A caller gone before its turn writes nothing.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.Do(ctx, insert("gone", nil, nil)); !errors.Is(err, context.Canceled) || keys(t, db)["gone"] {
		t.Errorf("a cancelled caller: %v", err)
	}
}
