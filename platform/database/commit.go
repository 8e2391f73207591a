package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"
)

// Op is one caller's write, committed by a Committer together with other
// callers' writes.
type Op struct {
	// Write runs inside the shared transaction. An error rolls back this
	// caller's ops alone; the others' still commit. It may run more than
	// once, so it keeps nothing from an earlier run.
	Write func(ctx context.Context, tx *sql.Tx) error
	// Committed, when set, runs once the transaction is committed, before
	// the caller is answered: the place to update what is cached of the
	// data written.
	Committed func()
}

// MaxGroup bounds how many callers' writes one transaction commits.
const MaxGroup = 512

// Committer is grin's single writer: it commits the writes of many
// callers in one transaction (group commit) and answers each caller only
// once that transaction is committed, so a caller that got nil knows its
// write is durable.
//
// SQLite admits one writer, and a commit costs about the same whether it
// carries one chat turn or a hundred; so callers queue, and whoever finds
// no commit under way leads: it takes everything queued so far, commits it
// in one transaction, then hands the lead to the first caller that queued
// meanwhile. There is no goroutine of its own to start or stop.
//
// A failing write takes back only its own caller's ops: the others are
// committed without it.
//
// Notes: safe for concurrent use. An Op's Write must use only the tx it is
// given, never the database handle (it holds the one connection), and may
// run more than once (when another caller's write in its group fails):
// it must start afresh each time.
type Committer struct {
	db      *sql.DB
	observe func(writes int, d time.Duration, err error)

	mu      sync.Mutex
	queue   []*job
	leading bool
}

type job struct {
	ctx  context.Context
	ops  []Op
	err  error
	done chan bool // true: the job is done; false: lead the next group
}

// NewCommitter returns the committer of db, grin's writing handle (Open's).
func NewCommitter(db *sql.DB) *Committer { return &Committer{db: db} }

// Observe has fn told of every transaction the committer runs: how many
// callers' writes it held, how long it took from its start to its commit
// or rollback, and its error (nil once committed). Call it before use;
// fn must be quick (it runs while the next group waits).
func (c *Committer) Observe(fn func(writes int, d time.Duration, err error)) { c.observe = fn }

// DB is the writing handle, for writes that are not on a hot path.
func (c *Committer) DB() *sql.DB { return c.db }

// Do commits ops, all or none, together with other callers' writes, and
// returns once they are committed. A caller whose ctx ends before its turn
// comes is answered with ctx's error and nothing of it is written; once its
// ops have begun it waits for the commit, since they may be committed.
func (c *Committer) Do(ctx context.Context, ops ...Op) error {
	if len(ops) == 0 {
		return nil
	}
	j := &job{ctx: ctx, ops: ops, done: make(chan bool, 1)}
	c.mu.Lock()
	c.queue = append(c.queue, j)
	lead := !c.leading
	c.leading = true
	c.mu.Unlock()
	if !lead && <-j.done {
		return j.err
	}
	// This caller leads: commit one group, which includes its own job,
	// and hand over to the next. First it lets the goroutines that are
	// ready to run have the cores, for as long as they keep joining the
	// queue: turns that were a few microseconds from their write join this
	// group instead of waiting for the next.
	c.gather()
	c.mu.Lock()
	group := c.queue[:min(len(c.queue), MaxGroup)]
	c.queue = c.queue[len(group):]
	c.mu.Unlock()
	c.commit(group)
	c.mu.Lock()
	if len(c.queue) > 0 {
		c.queue[0].done <- false // still leading: the next one leads
	} else {
		c.leading = false
	}
	c.mu.Unlock()
	for _, g := range group {
		if g != j {
			g.done <- true
		}
	}
	return j.err
}

// gatherRounds bounds how many times a leader yields before it takes its
// group, so that a stream of arrivals cannot hold a commit back.
const gatherRounds = 4

// gather yields the leader's core to the goroutines ready to run, again
// while each yield brought a caller to the queue (at most gatherRounds
// times). With nothing else ready, a yield returns at once, so a lone
// caller is not held back. Under load, larger groups spread a commit's
// fixed costs over more turns: at 100 users groups grew from 4–5 turns to
// 11–19 and replies/s by a median of 6 % (docs/benchmarks.md).
func (c *Committer) gather() {
	c.mu.Lock()
	n := len(c.queue)
	c.mu.Unlock()
	for range gatherRounds {
		runtime.Gosched()
		c.mu.Lock()
		m := len(c.queue)
		c.mu.Unlock()
		if m == n || m >= MaxGroup {
			return
		}
		n = m
	}
}

// commit writes a group in one transaction and sets each job's error.
//
// Callers' writes run one after another without savepoints (a savepoint
// copies every page it touches to a sub-journal: 4 % of the CPU of a
// 1,000-user run). When one fails, the transaction is rolled back and the
// group run again without it, so a failing write takes back only its own
// caller's ops; failures are rare, so the common case pays nothing.
func (c *Committer) commit(group []*job) {
	live := make([]*job, 0, len(group))
	for _, j := range group {
		if err := j.ctx.Err(); err != nil {
			j.err = err
			continue
		}
		live = append(live, j)
	}
	for len(live) > 0 {
		start := time.Now()
		failed, err := c.try(live)
		if c.observe != nil {
			c.observe(len(live), time.Since(start), err)
		}
		if failed < 0 {
			for _, j := range live {
				j.err = err
				if err == nil {
					for _, op := range j.ops {
						if op.Committed != nil {
							op.Committed()
						}
					}
				}
			}
			return
		}
		// Only the failed caller is told; the others go again.
		live[failed].err = err
		live = append(live[:failed:failed], live[failed+1:]...)
	}
}

// try runs the jobs' writes in one transaction and commits it. It returns
// the index of the job whose write failed and its error (the transaction
// is rolled back), or -1 and the error of the transaction itself (nil once
// committed), which is everyone's.
func (c *Committer) try(jobs []*job) (int, error) {
	// The transaction is everyone's: one caller leaving must not end it.
	ctx := context.Background()
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return -1, fmt.Errorf("begin a write: %w", err)
	}
	for i, j := range jobs {
		if err := run(context.WithoutCancel(j.ctx), tx, j.ops); err != nil {
			if rerr := tx.Rollback(); rerr != nil {
				return -1, errors.Join(err, fmt.Errorf("take back a failed write: %w", rerr))
			}
			return i, err
		}
	}
	if err := tx.Commit(); err != nil {
		return -1, fmt.Errorf("commit: %w", err)
	}
	return -1, nil
}

func run(ctx context.Context, tx *sql.Tx, ops []Op) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("write: %v", r)
		}
	}()
	for _, op := range ops {
		if op.Write == nil {
			return errors.New("write: an Op without Write")
		}
		if err := op.Write(ctx, tx); err != nil {
			return err
		}
	}
	return nil
}
