package database

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"time"
)

// CheckpointEvery is how often Checkpoints copies the write-ahead log into
// the database file.
const CheckpointEvery = 100 * time.Millisecond

// WriterCheckpointPages is where the writer's own automatic checkpoint is
// left (SQLite's default is 1,000 pages), as the bound on the log (about
// 48 MiB at 12,000 pages): a checkpoint beside a busy writer is never
// quite caught up when the writer's next transaction begins, which is the
// only moment SQLite starts the log again from its beginning, so under
// sustained writes only the writer's checkpoint restarts it. Most pages
// are copied by then, and the pause it makes (the copy of what is left,
// and the syncs, during which every turn of the group waits) comes twelve
// times rarer. At 4,000 pages it came every eighth of a second at 100
// chatting users, and the writer itself made a third of the copies: 12,000
// gave 5–6 % more replies/s (100 × 40 and 100 × 200, every pair of ten);
// 24,000 no more than that.
const WriterCheckpointPages = 12000

// Checkpoints copies the write-ahead log's pages into the database file on
// a connection of its own, beside grin's single writer. SQLite's automatic
// checkpoint runs inside the commit that takes the log past 1,000 pages,
// with the file's fsyncs (two thirds of its time); every turn in that
// group commit waited for it (at 100 chatting users it was half the time
// commits spent in system calls). Here most of it runs beside the writer:
// a PASSIVE checkpoint takes no lock a writer or reader waits for, and
// copies what no reader still needs.
//
// Durability does not change: a turn is durable once its commit is in the
// log, before and after.
type Checkpoints struct {
	db     *sql.DB
	logger *slog.Logger
	stop   chan struct{}
	done   chan struct{}
}

// StartCheckpoints starts checkpointing the SQLite database in dir, whose
// writing handle is writer (Open's), and moves the writer's own automatic
// checkpoint to WriterCheckpointPages. Should the writer's connection ever
// be replaced, the new one checkpoints at SQLite's default again: slower,
// never wrong. Call Close before closing writer.
func StartCheckpoints(ctx context.Context, dir string, writer *sql.DB, logger *slog.Logger) (*Checkpoints, error) {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, FileName)+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open the database for checkpoints: %w", err)
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open the database for checkpoints: %w", err)
	}
	if _, err := writer.ExecContext(ctx, fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", WriterCheckpointPages)); err != nil {
		db.Close()
		return nil, fmt.Errorf("leave checkpoints to their own connection: %w", err)
	}
	c := &Checkpoints{db: db, logger: logger, stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c, nil
}

func (c *Checkpoints) run() {
	defer close(c.done)
	t := time.NewTicker(CheckpointEvery)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		var busy, logged, copied int
		err := c.db.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logged, &copied)
		// One warning when checkpoints start failing, one when they work
		// again: the log grows meanwhile, and the next success catches up.
		switch {
		case err != nil && !failing:
			c.logger.Warn("checkpoint the database's write-ahead log; it grows until one succeeds", "err", err)
			failing = true
		case err == nil && failing:
			c.logger.Info("checkpoints of the write-ahead log work again")
			failing = false
		}
	}
}

// Close stops the checkpoints. The writer's last connection checkpoints
// what is left when it closes, as SQLite always does.
func (c *Checkpoints) Close() error {
	close(c.stop)
	<-c.done
	return c.db.Close()
}
