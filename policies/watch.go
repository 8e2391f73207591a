package policies

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// settle is how long the watcher waits after the last change before it
// reloads, so that an editor's write-then-rename is read once, whole.
const settle = 150 * time.Millisecond

// Watch reloads the policy whenever model.conf or policy.csv in the data
// directory changes, until ctx is done. A change that does not load is
// logged and the policy in force stays. The directory is watched, not the
// files, because editors replace files by renaming. With a bus (WithBus)
// it also follows the other replicas: each version they put in force and
// each change of grants is loaded here, in place.
func (e *Enforcer) Watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch policy: %w", err)
	}
	if err := w.Add(e.dir); err != nil {
		w.Close()
		return fmt.Errorf("watch policy in %s: %w", e.dir, err)
	}
	e.follow(ctx)
	go func() {
		defer w.Close()
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if name := filepath.Base(ev.Name); name == ModelFile || name == PolicyFile {
					timer.Reset(settle)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				e.logger.Warn("policy watcher", "err", err)
			case <-timer.C:
				before := e.Documents()
				changed, err := e.reloadIfChanged(ctx)
				if changed && e.onFileEdit != nil {
					e.onFileEdit(ctx, e.fileEdit(before, err))
				}
				switch {
				case err != nil:
					ps := Problems(err)
					e.logger.Error("policy edit refused; the previous policy stays in force",
						"files", problemFiles(ps), "problems", len(ps), "err", err, "dir", e.dir)
				case changed:
					e.logger.Info("policy reloaded", "dir", e.dir)
				}
			}
		}
	}()
	return nil
}

// FileEdit is an edit of model.conf or policy.csv that the watcher read:
// put in force, or refused.
type FileEdit struct {
	// Before is the policy in force before the edit (and after it, when
	// the edit was refused).
	Before Documents
	// After is what the files say.
	After Documents
	// Refused is set when the edit was not put in force; Problems say
	// why, every one found.
	Refused  bool
	Problems []Problem
}

// WithFileEdits has the watcher call fn after each edit of the files it
// reads, put in force or refused, so that someone (the audit log) can
// record it. fn runs on the watcher's goroutine, after the edit took
// effect; it may use the Enforcer.
func WithFileEdits(fn func(context.Context, FileEdit)) Option {
	return func(e *Enforcer) { e.onFileEdit = fn }
}

// fileEdit describes the edit the watcher just read; err is the reload's.
func (e *Enforcer) fileEdit(before Documents, err error) FileEdit {
	if err == nil {
		return FileEdit{Before: before, After: e.Documents()}
	}
	after, _ := e.readFiles() // what could be read of them
	return FileEdit{Before: before, After: after, Refused: true, Problems: Problems(err)}
}
