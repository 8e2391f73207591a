package rabbithole

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/grin-ai/grin/platform/auth"
	"github.com/grin-ai/grin/platform/hooks"
	"github.com/grin-ai/grin/platform/llm"
	"github.com/grin-ai/grin/platform/memory"
	"github.com/grin-ai/grin/platform/requestid"
	"github.com/grin-ai/grin/platform/session"
	"github.com/grin-ai/grin/policies"
)

// ErrForbidden is returned when the uploader may not write to the space.
var ErrForbidden = errors.New("permission denied")

// Options shape one ingestion.
type Options struct {
	ChunkSize    int
	ChunkOverlap int
	// Metadata is added to every chunk's metadata.
	Metadata map[string]any
	// Space is the declarative space to store in (default "shared").
	Space string
}

func (o *Options) defaults() {
	if o.ChunkSize == 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.ChunkOverlap == 0 {
		// The Cat's 64 for its 256; a quarter of smaller chunks.
		o.ChunkOverlap = min(DefaultChunkOverlap, o.ChunkSize/4)
	}
	if o.Space == "" {
		o.Space = memory.DefaultSpace
	}
}

// Result says what one ingestion stored.
type Result struct {
	Source string `json:"source"`
	Space  string `json:"space"`
	Chunks int    `json:"chunks"`
}

// Notification is the frame that tells the uploader an ingestion ended.
type Notification struct {
	Type    string `json:"type" enum:"notification"`
	Content string `json:"content"`
}

// Ingester reads documents into declarative memory: parse, split, pass
// each chunk through the hooks, embed, store, and tell the uploader.
//
// Notes: safe for concurrent use.
type Ingester struct {
	store     memory.Store
	scope     *memory.Scope
	policy    *policies.Enforcer
	providers *llm.Current
	hooks     hooks.Runner
	sessions  *session.Registry
	fetcher   *Fetcher
	limits    Limits
	quotas    *quotas
	logger    *slog.Logger

	wg   sync.WaitGroup
	mu   sync.Mutex
	jobs map[string]*Job // running ingestions by id
}

// NewIngester returns an ingester bounded by limits (zero fields take the
// defaults). limits.MaxBytes caps every document it reads: an uploaded
// file, an export of memories, and a fetched page (the fetcher's own
// MaxBytes is lowered to it, so a page is cut as it downloads).
func NewIngester(store memory.Store, scope *memory.Scope, policy *policies.Enforcer, providers *llm.Current, runner hooks.Runner, sessions *session.Registry, fetcher *Fetcher, limits Limits, logger *slog.Logger) *Ingester {
	if runner == nil {
		runner = hooks.Nop{}
	}
	limits = limits.withDefaults()
	if fetcher != nil && limits.MaxBytes > 0 && (fetcher.MaxBytes <= 0 || fetcher.MaxBytes > limits.MaxBytes) {
		f := *fetcher
		f.MaxBytes = limits.MaxBytes
		fetcher = &f
	}
	return &Ingester{store: store, scope: scope, policy: policy, providers: providers, hooks: runner, sessions: sessions, fetcher: fetcher,
		limits: limits, quotas: &quotas{store: store, limits: limits}, logger: logger, jobs: map[string]*Job{}}
}

// MaxBytes is the largest file accepted.
func (in *Ingester) MaxBytes() int64 { return in.limits.MaxBytes }

// Check says whether id may store in the options' space, that the
// chunking parameters are sound, and that the uploader and the space are
// not already at their quotas, before any work starts.
func (in *Ingester) Check(ctx context.Context, id auth.Identity, o Options) error {
	o.defaults()
	if o.ChunkSize < in.limits.MinChunkSize {
		return fmt.Errorf("%w: chunk_size must be at least %d tokens, got %d; smaller chunks multiply the points stored and slow every recall", ErrInvalidChunking, in.limits.MinChunkSize, o.ChunkSize)
	}
	if _, err := Split("x", o.ChunkSize, o.ChunkOverlap); err != nil {
		return err
	}
	if o.ChunkOverlap > o.ChunkSize/2 {
		return fmt.Errorf("%w: chunk_overlap must be at most half the chunk size (%d), got %d", ErrInvalidChunking, o.ChunkSize/2, o.ChunkOverlap)
	}
	if !memory.ValidPartition(memory.Declarative, o.Space) {
		return fmt.Errorf("%w: %q is not a space name (letters, digits, -, _ and .)", ErrInvalidChunking, o.Space)
	}
	ok, err := in.scope.Allowed(id, memory.Declarative, o.Space, policies.Write)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: you may not write to %s", ErrForbidden, memory.Object(memory.Declarative, o.Space))
	}
	return in.quotas.check(ctx, id.ID, o.Space, 0)
}

// admit refuses n points over the per-upload cap, else reserves room for
// them under the quotas.
func (in *Ingester) admit(ctx context.Context, id auth.Identity, source, space string, n int) (*reservation, error) {
	if n > in.limits.MaxPoints {
		return nil, fmt.Errorf("%w: %s makes %d chunks and one upload may store at most %d (GRIN_UPLOAD_MAX_POINTS); use a larger chunk_size or split the document",
			ErrTooManyPoints, source, n, in.limits.MaxPoints)
	}
	return in.quotas.reserve(ctx, id.ID, space, n)
}

// Reach checks that a page could be fetched, before the request that asks
// for it is answered (see Fetcher.Reach).
func (in *Ingester) Reach(ctx context.Context, rawURL string) error {
	return in.fetcher.Reach(ctx, rawURL)
}

// File ingests an uploaded file.
func (in *Ingester) File(ctx context.Context, id auth.Identity, name, contentType string, r io.Reader, o Options) (Result, error) {
	doc, err := Parse(ctx, name, contentType, r, in.limits.MaxBytes)
	if err != nil {
		return Result{Source: name}, err
	}
	return in.Text(ctx, id, name, doc.Text, o)
}

// URL fetches a page and ingests it.
func (in *Ingester) URL(ctx context.Context, id auth.Identity, rawURL string, o Options) (Result, error) {
	page, err := in.fetcher.Fetch(ctx, rawURL)
	if err != nil {
		return Result{Source: rawURL}, err
	}
	doc, err := Parse(ctx, page.URL, page.ContentType, strings.NewReader(string(page.Body)), int64(len(page.Body))+1)
	if err != nil {
		return Result{Source: rawURL}, err
	}
	return in.Text(ctx, id, rawURL, doc.Text, o)
}

// Text splits text and stores its chunks with source as their "source".
func (in *Ingester) Text(ctx context.Context, id auth.Identity, source, text string, o Options) (Result, error) {
	o.defaults()
	res := Result{Source: source, Space: o.Space}
	if err := in.Check(ctx, id, o); err != nil {
		return res, err
	}
	caller := hooks.Caller{UserID: id.ID, Username: id.Name, RequestID: requestID(ctx)}
	ctx = auth.WithIdentity(ctx, id) // plugins' host functions act as the uploader
	text, err := hooks.OnBeforeRabbitholeSplitsText.Apply(ctx, in.hooks, in.logger, caller, text)
	if err != nil {
		return res, err
	}
	chunks, err := Split(text, o.ChunkSize, o.ChunkOverlap)
	if err != nil {
		return res, err
	}
	chunks, err = hooks.OnAfterRabbitholeSplittedText.Apply(ctx, in.hooks, in.logger, caller, chunks)
	if err != nil {
		return res, err
	}
	when := memory.Now()
	docs := make([]hooks.NewMemory, 0, len(chunks))
	for _, c := range chunks {
		md := map[string]any{}
		for k, v := range o.Metadata {
			md[k] = v
		}
		md["source"], md["when"], md[UploaderKey] = source, when, id.ID
		d, err := hooks.OnBeforeRabbitholeInsertMemory.Apply(ctx, in.hooks, in.logger, caller, hooks.NewMemory{PageContent: c, Metadata: md})
		if err != nil {
			return res, err
		}
		if strings.TrimSpace(d.PageContent) != "" {
			docs = append(docs, d)
		}
	}
	docs, err = hooks.OnBeforeRabbitholeStoresDocuments.Apply(ctx, in.hooks, in.logger, caller, docs)
	if err != nil {
		return res, err
	}
	room, err := in.admit(ctx, id, source, o.Space, len(docs))
	if err != nil {
		return res, err
	}
	defer room.release()
	job := jobOf(ctx)
	if job != nil {
		job.total.Store(int64(len(docs)))
	}
	emb := in.providers.Embedder()
	const batch = 64
	for start := 0; start < len(docs); start += batch {
		// Asked again before every batch: a deleted user, a revoked
		// grant or a reloaded policy stops the ingestion here.
		if err := in.mayStore(id, o.Space); err != nil {
			return res, err
		}
		part := docs[start:min(start+batch, len(docs))]
		texts := make([]string, len(part))
		for i, d := range part {
			texts[i] = d.PageContent
		}
		vecs, err := emb.Embed(ctx, texts)
		if err != nil {
			return res, fmt.Errorf("embed %s: %w", source, err)
		}
		points := make([]memory.Point, len(part))
		ids := make([]string, len(part))
		for i, d := range part {
			ids[i] = uuid.NewString()
			points[i] = memory.Point{ID: ids[i], Collection: memory.Declarative, Partition: o.Space,
				Content: d.PageContent, Metadata: d.Metadata, Vector: vecs[i], Embedder: emb.Name()}
		}
		if job != nil {
			job.writing(ids)
		}
		if err := in.store.Upsert(ctx, points); err != nil {
			return res, fmt.Errorf("store %s: %w", source, err)
		}
		room.stored(len(points))
		res.Chunks += len(points)
		if job != nil {
			job.done.Store(int64(res.Chunks))
		}
	}
	if _, err := hooks.OnAfterRabbitholeStoredDocuments.Apply(ctx, in.hooks, in.logger, caller, hooks.Stored{Source: source, Chunks: res.Chunks}); err != nil {
		return res, err
	}
	return res, nil
}

// Background runs a started ingestion after the request that asked for it
// has been answered, and tells the uploader over their sockets when it
// ends, well or badly. ctx should outlive the request (the server's).
func (in *Ingester) Background(ctx context.Context, job *Job, run func(ctx context.Context) (Result, error)) {
	id, source := job.id, job.info.Source
	in.wg.Go(func() {
		res, err := job.Run(ctx, run)
		msg := fmt.Sprintf("Finished reading %s: %d chunks stored in %s.", source, res.Chunks, memory.Object(memory.Declarative, res.Space))
		if err != nil {
			in.logger.WarnContext(ctx, "ingestion failed", "source", source, "user", id.ID, "err", err)
			msg = fmt.Sprintf("Could not read %s: %v", source, err)
		}
		in.sessions.Send(id.ID, Notification{Type: "notification", Content: msg})
	})
}

// Wait blocks until background ingestions end; for shutdown and tests.
func (in *Ingester) Wait() { in.wg.Wait() }

// Exported is the Cat's export of declarative memories, accepted by
// /rabbithole/memory.
type Exported struct {
	Embedder struct {
		Name string `json:"name"`
	} `json:"embedder"`
	Collections struct {
		Declarative []struct {
			ID          string         `json:"id"`
			PageContent string         `json:"page_content"`
			Metadata    map[string]any `json:"metadata"`
			Vector      []float32      `json:"vector"`
		} `json:"declarative"`
	} `json:"collections"`
}

// Memories imports exported declarative memories into a space. Vectors
// made by another embedder than the one in force are made again, so the
// memories can be recalled. An export over the upload limit (raw longer
// than MaxBytes: read at most one byte more) fails with ErrTooLarge.
func (in *Ingester) Memories(ctx context.Context, id auth.Identity, raw []byte, o Options) (Result, error) {
	o.defaults()
	res := Result{Source: "memory import", Space: o.Space}
	if err := in.Check(ctx, id, o); err != nil {
		return res, err
	}
	if int64(len(raw)) > in.limits.MaxBytes {
		// Checked before decoding: a cut export would read as malformed.
		return res, fmt.Errorf("memory import: %w: the limit is %s", ErrTooLarge, formatBytes(in.limits.MaxBytes))
	}
	var ex Exported
	if err := json.Unmarshal(raw, &ex); err != nil {
		return res, fmt.Errorf("%w: not an export of memories: %v", ErrMalformed, err)
	}
	emb := in.providers.Embedder()
	var points []memory.Point
	var reembed []int
	for _, d := range ex.Collections.Declarative {
		if strings.TrimSpace(d.PageContent) == "" {
			continue
		}
		// Always a new id: an imported point must never replace one that
		// is already stored (that would be an edit, which UPLOAD is not).
		pid := uuid.NewString()
		md := d.Metadata
		if md == nil {
			md = map[string]any{}
		}
		md[UploaderKey] = id.ID
		p := memory.Point{ID: pid, Collection: memory.Declarative, Partition: o.Space, Content: d.PageContent, Metadata: md, Vector: d.Vector, Embedder: emb.Name()}
		if ex.Embedder.Name != emb.Name() || len(d.Vector) != emb.Dimensions() {
			reembed = append(reembed, len(points))
		}
		points = append(points, p)
	}
	room, err := in.admit(ctx, id, res.Source, o.Space, len(points))
	if err != nil {
		return res, err
	}
	defer room.release()
	if len(reembed) > 0 {
		// Embedders batch their own requests.
		texts := make([]string, len(reembed))
		for i, k := range reembed {
			texts[i] = points[k].Content
		}
		vecs, err := emb.Embed(ctx, texts)
		if err != nil {
			return res, fmt.Errorf("embed imported memories: %w", err)
		}
		for i, k := range reembed {
			points[k].Vector = vecs[i]
		}
	}
	if err := in.mayStore(id, o.Space); err != nil {
		return res, err
	}
	if job := jobOf(ctx); job != nil {
		ids := make([]string, len(points))
		for i, p := range points {
			ids[i] = p.ID
		}
		job.total.Store(int64(len(points)))
		job.writing(ids)
	}
	if err := in.store.Upsert(ctx, points); err != nil {
		return res, err
	}
	room.stored(len(points))
	res.Chunks = len(points)
	return res, nil
}

// requestID is the id of the upload that asked for the reading, which
// hooks see as ctx request_id; a fresh one when there is none (a tool).
func requestID(ctx context.Context) string {
	if id := requestid.From(ctx); id != "" {
		return id
	}
	return requestid.New()
}
