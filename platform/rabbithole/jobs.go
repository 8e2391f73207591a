package rabbithole

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/grin-ai/grin/platform/auth"
	"github.com/grin-ai/grin/platform/memory"
	"github.com/grin-ai/grin/policies"
)

// Ingestion describes one running ingestion, as GET /rabbithole/ingestions
// lists it.
type Ingestion struct {
	ID       string    `json:"id" doc:"Names the ingestion for DELETE /rabbithole/ingestions/{id}."`
	UserID   string    `json:"user_id" doc:"Whose upload it is."`
	Username string    `json:"username"`
	Source   string    `json:"source" doc:"The file name or URL."`
	Space    string    `json:"space"`
	Done     int       `json:"chunks_done" doc:"Chunks stored so far."`
	Total    int       `json:"chunks_total" doc:"Chunks to store; 0 while the document is still being read and split."`
	Started  time.Time `json:"started"`
}

// Job is a registered ingestion: it holds one of its owner's slots until
// it ends, can be cancelled, and remembers the points it stored so a
// cancelled or failed ingestion leaves none behind.
//
// Notes: Run is called once; the other methods are safe for concurrent use.
type Job struct {
	in      *Ingester
	id      auth.Identity
	info    Ingestion
	done    atomic.Int64
	total   atomic.Int64
	ctx     context.Context // set by Run
	cancel  context.CancelCauseFunc
	started chan struct{} // closed once ctx and cancel are set
	ended   chan struct{}

	mu     sync.Mutex
	points []string // ids of the points stored, for rolling back
}

// jobKey carries the running Job on the context Run passes on.
type jobKey struct{}

func jobOf(ctx context.Context) *Job {
	j, _ := ctx.Value(jobKey{}).(*Job)
	return j
}

// Start registers an ingestion of source into space for id, or returns
// ErrBusy when id, or the server, already runs as many as the limits
// allow. The caller must Run the job.
func (in *Ingester) Start(id auth.Identity, source, space string) (*Job, error) {
	if space == "" {
		space = memory.DefaultSpace
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	mine := 0
	for _, j := range in.jobs {
		if j.id.ID == id.ID {
			mine++
		}
	}
	if mine >= in.limits.UserConcurrent {
		return nil, fmt.Errorf("%w: you already have %d documents being read, the most one user may (GRIN_INGEST_MAX_PER_USER); try again when one is done", ErrBusy, mine)
	}
	if len(in.jobs) >= in.limits.TotalConcurrent {
		return nil, fmt.Errorf("%w: the server is reading %d documents, the most it reads at once (GRIN_INGEST_MAX_TOTAL); try again shortly", ErrBusy, len(in.jobs))
	}
	j := &Job{in: in, id: id, started: make(chan struct{}), ended: make(chan struct{}),
		info: Ingestion{ID: uuid.NewString(), UserID: id.ID, Username: id.Name, Source: source, Space: space, Started: time.Now().UTC()}}
	in.jobs[j.info.ID] = j
	return j, nil
}

// Run runs fn under ctx as the job, then unregisters it. When fn fails,
// or the job is cancelled, the points it stored are deleted before Run
// returns, so nothing of a stopped ingestion stays or lands afterwards.
func (j *Job) Run(ctx context.Context, fn func(ctx context.Context) (Result, error)) (Result, error) {
	ctx, j.cancel = context.WithCancelCause(context.WithValue(ctx, jobKey{}, j))
	j.ctx = ctx
	close(j.started)
	defer j.end()
	res, err := fn(ctx)
	if err == nil {
		err = context.Cause(ctx) // cancelled after the last write: still undone
	}
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			err = cause
		}
		res.Chunks = 0
		j.rollback()
	}
	return res, err
}

func (j *Job) end() {
	j.cancel(nil)
	in := j.in
	in.mu.Lock()
	delete(in.jobs, j.info.ID)
	in.mu.Unlock()
	close(j.ended)
}

// rollback deletes the points the job stored. It runs on its own context:
// the job's is cancelled by then.
func (j *Job) rollback() {
	j.mu.Lock()
	ids := j.points
	j.points = nil
	j.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(j.ctx), time.Minute)
	defer cancel()
	if _, err := j.in.store.Delete(ctx, memory.Declarative, j.info.Space, ids); err != nil {
		j.in.logger.ErrorContext(ctx, "could not remove the points of a stopped ingestion", "source", j.info.Source, "space", j.info.Space, "points", len(ids), "err", err)
	}
}

// writing records points about to be stored, before the write, so a write
// cut short is rolled back too.
func (j *Job) writing(ids []string) {
	j.mu.Lock()
	j.points = append(j.points, ids...)
	j.mu.Unlock()
}

// stop cancels the job with cause and waits until it has ended and rolled
// back, or ctx is done.
func (j *Job) stop(ctx context.Context, cause error) error {
	select {
	case <-j.started:
		j.cancel(cause)
	case <-j.ended:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-j.ended:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for the ingestion of %s to stop: %w", j.info.Source, ctx.Err())
	}
}

// Info describes the job now.
func (j *Job) Info() Ingestion {
	i := j.info
	i.Done, i.Total = int(j.done.Load()), int(j.total.Load())
	return i
}

// Ingestions lists the running ingestions, oldest first: all of them when
// user is empty, else that user's.
func (in *Ingester) Ingestions(user string) []Ingestion {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := []Ingestion{}
	for _, j := range in.jobs {
		if user == "" || j.id.ID == user {
			out = append(out, j.Info())
		}
	}
	slices.SortFunc(out, func(a, b Ingestion) int { return a.Started.Compare(b.Started) })
	return out
}

// Ingestion returns one running ingestion.
func (in *Ingester) Ingestion(id string) (Ingestion, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	j, ok := in.jobs[id]
	if !ok {
		return Ingestion{}, false
	}
	return j.Info(), true
}

// Cancel stops a running ingestion and waits until its points are gone.
// It reports false when no such ingestion runs.
func (in *Ingester) Cancel(ctx context.Context, id, by string) (bool, error) {
	in.mu.Lock()
	j, ok := in.jobs[id]
	in.mu.Unlock()
	if !ok {
		return false, nil
	}
	return true, j.stop(ctx, fmt.Errorf("%w by %s", ErrCancelled, by))
}

// CancelUser stops every ingestion of a user, for their deletion, and
// waits until they have ended and their points are gone.
func (in *Ingester) CancelUser(ctx context.Context, user string) error {
	return in.stopWhere(ctx, func(j *Job) error {
		if j.id.ID != user {
			return nil
		}
		return fmt.Errorf("%w: its owner was deleted", ErrForbidden)
	})
}

// Revalidate stops the ingestions of a user who may no longer write where
// they were writing, after their grants changed, and waits for them.
func (in *Ingester) Revalidate(ctx context.Context, user string) error {
	return in.stopWhere(ctx, func(j *Job) error {
		if j.id.ID != user {
			return nil
		}
		return in.mayStore(j.id, j.info.Space)
	})
}

// stopWhere stops the jobs for which why returns an error, with it as the
// cause.
func (in *Ingester) stopWhere(ctx context.Context, why func(*Job) error) error {
	in.mu.Lock()
	jobs := make([]*Job, 0, len(in.jobs))
	for _, j := range in.jobs {
		jobs = append(jobs, j)
	}
	in.mu.Unlock()
	var errs []error
	for _, j := range jobs {
		if cause := why(j); cause != nil {
			errs = append(errs, j.stop(ctx, cause))
		}
	}
	return errors.Join(errs...)
}

// mayStore says whether id may still upload into space: UPLOAD WRITE and
// writing to the space. Asked before every batch, so a revoked permission,
// a deleted user or a reloaded policy stops an ingestion at the next batch.
func (in *Ingester) mayStore(id auth.Identity, space string) error {
	ok, err := in.policy.Decide(policies.Request{Subjects: id.Subjects, Self: id.ID, Object: policies.Upload.Object(), Action: policies.Write.Action()})
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s may no longer upload (UPLOAD WRITE)", ErrForbidden, id.Name)
	}
	ok, err = in.scope.Allowed(id, memory.Declarative, space, policies.Write)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s may no longer write to %s", ErrForbidden, id.Name, memory.Object(memory.Declarative, space))
	}
	return nil
}
