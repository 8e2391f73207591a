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
// files, because editors replace files by renaming.
func (e *Enforcer) Watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch policy: %w", err)
	}
	if err := w.Add(e.dir); err != nil {
		w.Close()
		return fmt.Errorf("watch policy in %s: %w", e.dir, err)
	}
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
				changed, err := e.reloadIfChanged(ctx)
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
