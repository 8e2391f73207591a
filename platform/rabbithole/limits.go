package rabbithole

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/grin-ai/grin/platform/memory"
)

// Defaults of Limits, used where a field is zero. An upload of 293 KB cut
// into one-token chunks made 60,000 points and 280 MB, and slowed every
// user's chat: these bound what one user can make the server store and
// embed.
const (
	DefaultMinChunkSize    = 64
	DefaultMaxPoints       = 10_000
	DefaultUserQuota       = 100_000
	DefaultSpaceQuota      = 100_000
	DefaultUserConcurrent  = 2
	DefaultTotalConcurrent = 8
)

// UploaderKey is the metadata key naming the user whose upload stored a
// declarative point: the per-user quota counts points by it.
const UploaderKey = "uploaded_by"

var (
	// ErrTooManyPoints is returned when one upload would store more
	// points than Limits.MaxPoints.
	ErrTooManyPoints = errors.New("too many chunks for one upload")
	// ErrQuota is returned when an upload would take its uploader or its
	// space past their quota of points.
	ErrQuota = errors.New("quota of stored points reached")
	// ErrBusy is returned when the uploader, or the server, is already
	// reading as many documents at once as allowed.
	ErrBusy = errors.New("too many documents being read at once")
	// ErrCancelled is returned by an ingestion stopped through Cancel.
	ErrCancelled = errors.New("the reading was cancelled")
)

// Limits bound what uploads may cost. Zero fields take the defaults above.
type Limits struct {
	// MaxBytes caps an uploaded file.
	MaxBytes int64
	// MinChunkSize is the smallest chunk_size accepted, in tokens.
	MinChunkSize int
	// MaxPoints caps the points one upload may store
	// (GRIN_UPLOAD_MAX_POINTS).
	MaxPoints int
	// UserQuota caps the declarative points a user's uploads keep stored,
	// over every space (GRIN_QUOTA_USER_POINTS).
	UserQuota int
	// SpaceQuota caps the points of one declarative space
	// (GRIN_QUOTA_SPACE_POINTS).
	SpaceQuota int
	// UserConcurrent and TotalConcurrent bound the ingestions running at
	// once for one user and for the whole server
	// (GRIN_INGEST_MAX_PER_USER, GRIN_INGEST_MAX_TOTAL).
	UserConcurrent  int
	TotalConcurrent int
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MinChunkSize, DefaultMinChunkSize)
	def(&l.MaxPoints, DefaultMaxPoints)
	def(&l.UserQuota, DefaultUserQuota)
	def(&l.SpaceQuota, DefaultSpaceQuota)
	def(&l.UserConcurrent, DefaultUserConcurrent)
	def(&l.TotalConcurrent, DefaultTotalConcurrent)
	return l
}

// quotas reserves room for uploads before they store anything, so uploads
// running side by side cannot together pass a quota that each alone
// respects. A reservation shrinks as its points are stored (then the
// store's count has them).
//
// Notes: safe for concurrent use.
type quotas struct {
	store  memory.Store
	limits Limits

	mu    sync.Mutex
	user  map[string]int // points reserved and not yet stored, per user
	space map[string]int // the same, per space
}

// usage counts what a user's uploads and a space hold now, reservations
// included. Call with q.mu held.
func (q *quotas) usage(ctx context.Context, user, space string) (byUser, inSpace int, err error) {
	inSpace, err = q.store.Count(ctx, memory.Declarative, []string{space})
	if err != nil {
		return 0, 0, fmt.Errorf("count the points of space %s: %w", space, err)
	}
	spaces, err := q.store.Partitions(ctx, memory.Declarative)
	if err != nil {
		return 0, 0, fmt.Errorf("list spaces: %w", err)
	}
	byUser, err = q.store.CountWhere(ctx, memory.Declarative, spaces, map[string]any{UploaderKey: user})
	if err != nil {
		return 0, 0, fmt.Errorf("count the points uploaded by %s: %w", user, err)
	}
	return byUser + q.user[user], inSpace + q.space[space], nil
}

// check refuses an upload of n points that does not fit; n = 0 asks
// whether anything fits at all.
func (q *quotas) check(ctx context.Context, user, space string, n int) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.fits(ctx, user, space, max(n, 1))
}

func (q *quotas) fits(ctx context.Context, user, space string, n int) error {
	byUser, inSpace, err := q.usage(ctx, user, space)
	if err != nil {
		return err
	}
	if byUser+n > q.limits.UserQuota {
		return fmt.Errorf("%w: your uploads keep %d points and this one would add %d, past your quota of %d (GRIN_QUOTA_USER_POINTS); delete documents you no longer need, or ask an administrator",
			ErrQuota, byUser, n, q.limits.UserQuota)
	}
	if inSpace+n > q.limits.SpaceQuota {
		return fmt.Errorf("%w: the space %s holds %d points and this upload would add %d, past its quota of %d (GRIN_QUOTA_SPACE_POINTS)",
			ErrQuota, space, inSpace, n, q.limits.SpaceQuota)
	}
	return nil
}

// reserve takes room for n points, or says why there is none. The caller
// reports stored points to the reservation as they land and releases it
// at the end.
func (q *quotas) reserve(ctx context.Context, user, space string, n int) (*reservation, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.fits(ctx, user, space, n); err != nil {
		return nil, err
	}
	if q.user == nil {
		q.user, q.space = map[string]int{}, map[string]int{}
	}
	q.user[user] += n
	q.space[space] += n
	return &reservation{q: q, user: user, space: space, left: n}, nil
}

// reservation is room held for one upload's points.
type reservation struct {
	q           *quotas
	user, space string
	left        int
}

// stored shrinks the reservation by n points that are now in the store.
func (r *reservation) stored(n int) { r.give(min(n, r.left)) }

// release gives back whatever was not stored.
func (r *reservation) release() { r.give(r.left) }

func (r *reservation) give(n int) {
	r.q.mu.Lock()
	defer r.q.mu.Unlock()
	r.left -= n
	r.q.user[r.user] -= n
	r.q.space[r.space] -= n
	if r.q.user[r.user] <= 0 {
		delete(r.q.user, r.user)
	}
	if r.q.space[r.space] <= 0 {
		delete(r.q.space, r.space)
	}
}
