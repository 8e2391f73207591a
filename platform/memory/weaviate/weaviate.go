// Package weaviate is the memory backend of a grown deployment: points live
// in a Weaviate server or cluster, one tenant per user.
//
// Each grin collection is a Weaviate collection (class) named by a prefix:
// episodic memory is multi-tenant with one tenant per user, declarative
// memory multi-tenant with one tenant per space, procedural memory has no
// tenants. A partition maps to its tenant with TenantName, so two users
// never share a tenant whatever their ids. Vectors come from grin's
// embedder (no Weaviate vectorizer), compared by cosine distance; the size
// of each collection's vectors is recorded, so a changed embedder is
// refused with an explanation instead of being mixed in.
//
// Metadata is kept whole as JSON and, for filtering, as exact terms
// (memory.Term) in a text array, so the recall config's metadata filter is
// one ContainsAll condition whatever the keys.
package weaviate

import (
	"context"
	"crypto/sha1"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-openapi/strfmt"
	"github.com/google/uuid"
	wv "github.com/weaviate/weaviate-go-client/v5/weaviate"
	"github.com/weaviate/weaviate-go-client/v5/weaviate/filters"
	"github.com/weaviate/weaviate-go-client/v5/weaviate/graphql"
	wvgrpc "github.com/weaviate/weaviate-go-client/v5/weaviate/grpc"
	"github.com/weaviate/weaviate/entities/models"
	"golang.org/x/sync/errgroup"

	"github.com/grin-ai/grin/platform/memory"
)

// Config says where Weaviate is and how grin uses it.
type Config struct {
	// URL is Weaviate's HTTP address, e.g. http://127.0.0.1:8080, or the
	// addresses of several nodes of one cluster, comma-separated: grin
	// starts with the first that is ready and moves to the next when a
	// request fails.
	URL string
	// GRPCPort is every node's gRPC port, on its URL's host (default
	// 50051).
	GRPCPort int
	// GRPCPorts, when given, is each node's gRPC port, in the order of
	// the URLs (nodes sharing a host); it overrides GRPCPort.
	GRPCPorts []int
	// APIKey, when set, is sent as a bearer token.
	APIKey string
	// Prefix names grin's collections: Prefix+"Episodic" and so on
	// (default "Grin"). Several grin deployments can share one Weaviate
	// with different prefixes.
	Prefix string
	// Replication is the replication factor of collections grin creates
	// (0: Weaviate's default). Existing collections keep theirs.
	Replication int
	// Consistency is the consistency level of reads, and the least that
	// writes settle for: ONE, QUORUM (default) or ALL. Writes ask for ALL
	// first (see writeLevel).
	Consistency string
	// Timeout bounds each request (default 30 s).
	Timeout time.Duration
	Logger  *slog.Logger
}

// Store is the Weaviate memory.Store.
//
// Notes: safe for concurrent use.
type Store struct {
	nodes []node
	cur   atomic.Int32 // the node requests go to
	// degradedUntil (unix nanoseconds): writes until then do not ask
	// for ALL.
	degradedUntil atomic.Int64
	cfg           Config
	log           *slog.Logger
	classes       map[string]string // grin collection -> Weaviate class
	seq           atomic.Int64

	mu      sync.Mutex
	vectors map[string]VectorInfo // recorded per collection
	// unrecorded: when a collection was last found without a record
	unrecorded map[string]time.Time
	// used: episodic tenant -> its last request here, or when another
	// replica was last heard to have served it
	used map[string]time.Time
	// fresh: episodic tenants used here since the other replicas were
	// last told (nil unless CoolIdle shares them)
	fresh map[string]struct{}
	// gapAt: when the bus last lost events of other replicas' use; no
	// tenant counts as idle from before it
	gapAt  time.Time
	now    func() time.Time     // the clock of use, cooling and cached absences (tests set their own)
	parts  map[string]*partList // collection -> cached partition list
	hashed map[string]string    // hashed tenant name -> partition, learned once
	warned map[string]bool
}

// partList caches a collection's partitions: Scope asks for the
// declarative spaces on every chat turn.
type partList struct {
	names   map[string]bool
	fetched time.Time
}

// partitionsTTL bounds how stale the cached partition list may be for
// partitions created through another grin process.
const partitionsTTL = 5 * time.Second

// Open connects to Weaviate, checks that it is ready and creates grin's
// collections when they are missing. Its errors name the URL.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "Grin"
	}
	if cfg.GRPCPort == 0 {
		cfg.GRPCPort = 50051
	}
	if cfg.Consistency == "" {
		cfg.Consistency = "QUORUM"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if !ValidPrefix(cfg.Prefix) {
		return nil, fmt.Errorf("weaviate collection prefix %q: want a capital letter followed by letters and digits", cfg.Prefix)
	}
	nodes, err := connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &Store{
		nodes: nodes, cfg: cfg, log: cfg.Logger,
		classes: map[string]string{},
		vectors: map[string]VectorInfo{}, unrecorded: map[string]time.Time{}, used: map[string]time.Time{},
		parts: map[string]*partList{}, hashed: map[string]string{}, warned: map[string]bool{},
		now: time.Now,
	}
	for _, c := range memory.Collections() {
		s.classes[c] = cfg.Prefix + strings.ToUpper(c[:1]) + c[1:]
	}
	// Start with the first node that is ready.
	for i, n := range nodes {
		if n.readyErr == nil {
			s.cur.Store(int32(i))
			break
		}
		cfg.Logger.Warn("a weaviate node is not ready; using the others", "url", n.url, "err", n.readyErr)
	}
	s.seq.Store(time.Now().UnixMicro())
	if err := s.ensureSchema(ctx); err != nil {
		return nil, fmt.Errorf("weaviate at %s: %w", cfg.URL, err)
	}
	return s, nil
}

// node is one Weaviate node grin may talk to.
type node struct {
	url      string
	client   *wv.Client
	readyErr error // at start
}

// connect makes a client for every node of cfg.URL; at least one must be
// ready.
func connect(ctx context.Context, cfg Config) ([]node, error) {
	urls := strings.Split(cfg.URL, ",")
	ports := cfg.GRPCPorts
	switch {
	case len(ports) == 0:
		ports = []int{cfg.GRPCPort}
		fallthrough
	case len(ports) == 1:
		ports = slices.Repeat(ports, len(urls))
	case len(ports) != len(urls):
		return nil, fmt.Errorf("weaviate: %d gRPC ports for %d URLs; give one port for all, or one per URL", len(ports), len(urls))
	}
	headers := map[string]string{}
	if cfg.APIKey != "" {
		headers["Authorization"] = "Bearer " + cfg.APIKey
	}
	var nodes []node
	var down []error
	for i, raw := range urls {
		raw = strings.TrimRight(strings.TrimSpace(raw), "/")
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("weaviate URL %q: want http://host:port or https://host:port", redact(raw))
		}
		if u.User != nil {
			return nil, fmt.Errorf("weaviate URL %s: put credentials in GRIN_WEAVIATE_API_KEY, not in the URL", u.Redacted())
		}
		client, err := wv.NewClient(wv.Config{
			Host: u.Host, Scheme: u.Scheme, Headers: headers, Timeout: cfg.Timeout,
			GrpcConfig: &wvgrpc.Config{Host: u.Hostname() + ":" + strconv.Itoa(ports[i]), Secured: u.Scheme == "https"},
		})
		if err != nil {
			return nil, fmt.Errorf("connect to weaviate at %s: %w", raw, err)
		}
		n := node{url: raw, client: client, readyErr: ready(ctx, raw, cfg.APIKey)}
		if n.readyErr != nil {
			down = append(down, n.readyErr)
		}
		nodes = append(nodes, n)
	}
	if len(down) == len(nodes) {
		return nil, errors.Join(down...)
	}
	return nodes, nil
}

// ready asks a node's readiness endpoint once, so that a grin started
// against a Weaviate that is down or still starting says so plainly.
func ready(ctx context.Context, base, apiKey string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/.well-known/ready", nil)
	if err != nil {
		return fmt.Errorf("weaviate at %s: %w", base, err)
	}
	if apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+apiKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("weaviate at %s is not reachable: %w", base, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("weaviate at %s is not ready: %s from /v1/.well-known/ready", base, resp.Status)
	}
	return nil
}

// Ready reports whether Weaviate answers: nil when a node grin may talk
// to is ready, else every node's reason. It is what a load balancer's
// readiness probe asks of grin.
func (s *Store) Ready(ctx context.Context) error {
	var errs []error
	for _, n := range s.nodes {
		err := ready(ctx, n.url, s.cfg.APIKey)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// c is the client of the node requests go to now.
func (s *Store) c() *wv.Client { return s.nodes[s.cur.Load()].client }

// failover moves requests to the next node, unless another request
// already moved them since from was read.
func (s *Store) failover(from int32) {
	if len(s.nodes) < 2 {
		return
	}
	next := (from + 1) % int32(len(s.nodes))
	if s.cur.CompareAndSwap(from, next) {
		s.log.Warn("weaviate node failing; moving to the next", "from", s.nodes[from].url, "to", s.nodes[next].url)
	}
}

// redact hides a password in a URL that may hold one, for messages.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "(unreadable URL)"
}

// ValidPrefix reports whether p can prefix Weaviate collection names: a
// capital letter, then letters and digits.
func ValidPrefix(p string) bool {
	if p == "" || p[0] < 'A' || p[0] > 'Z' {
		return false
	}
	return strings.IndexFunc(p, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) < 0
}

// Class returns the Weaviate collection holding a grin collection.
func (s *Store) Class(collection string) string { return s.classes[collection] }

// Close ends the store's background use. The v5 client offers no way to
// close its connections; they last as long as the process.
func (s *Store) Close() error { return nil }

// tenant returns the tenant of a partition ("" for procedural memory).
func tenant(collection, partition string) string {
	if collection == memory.Procedural {
		return ""
	}
	return TenantName(partition)
}

// ObjectID is a point's Weaviate object id: a name-based UUID of its
// collection, partition and id, so an upsert of the same point replaces
// it, and tools can address the object directly.
func ObjectID(p memory.Point) string {
	return uuid.NewHash(sha1.New(), uuid.NameSpaceOID, []byte(p.Collection+"\x00"+p.Partition+"\x00"+p.ID), 5).String()
}

// Properties of every object.
const (
	propID        = "pointId"
	propPartition = "partition"
	propContent   = "content"
	propMetadata  = "metadata"
	propTerms     = "terms"
	propEmbedder  = "embedder"
	propSeq       = "seq"
)

// returned lists the properties a point is read back from.
func returned() []string {
	return []string{propID, propPartition, propContent, propMetadata, propEmbedder}
}

// batchSize is how many points one batch request carries.
const batchSize = 200

// Upsert implements memory.Store. Points go in batches; a point Weaviate
// refuses fails the call with its reason.
func (s *Store) Upsert(ctx context.Context, points []memory.Point) error {
	if len(points) == 0 {
		return nil
	}
	objects := make([]*models.Object, 0, len(points))
	for _, p := range points {
		if !memory.ValidCollection(p.Collection) || p.ID == "" {
			return fmt.Errorf("store memory %q: collection %q or id is not valid", p.ID, p.Collection)
		}
		if p.Collection == memory.Procedural && p.Partition != "" {
			return fmt.Errorf("store memory %q: procedural memory has no partitions", p.ID)
		}
		if err := s.checkVector(ctx, p); err != nil {
			return err
		}
		meta := p.Metadata
		if meta == nil {
			meta = map[string]any{}
		}
		raw, err := json.Marshal(meta)
		if err != nil {
			return fmt.Errorf("store memory %q: metadata: %w", p.ID, err)
		}
		terms := make([]string, 0, len(meta))
		for k, v := range meta {
			terms = append(terms, memory.Term(k, v))
		}
		objects = append(objects, &models.Object{
			Class: s.classes[p.Collection], ID: strfmt.UUID(ObjectID(p)), Tenant: tenant(p.Collection, p.Partition),
			Vector: p.Vector,
			Properties: map[string]any{
				propID: p.ID, propPartition: p.Partition, propContent: p.Content,
				propMetadata: string(raw), propTerms: terms, propEmbedder: p.Embedder,
				propSeq: s.nextSeq(),
			},
		})
	}
	for chunk := range slices.Chunk(objects, batchSize) {
		// Objects carry their ids, so sending a chunk again is harmless.
		err := s.retry(ctx, func() error {
			level := s.writeLevel()
			resp, err := s.c().Batch().ObjectsBatcher().WithObjects(chunk...).WithConsistencyLevel(level).Do(ctx)
			if err != nil {
				s.degrade(level)
				return err
			}
			for _, r := range resp {
				if r.Result != nil && r.Result.Errors != nil && len(r.Result.Errors.Error) > 0 {
					s.degrade(level)
					return fmt.Errorf("%s: %s", r.Class, r.Result.Errors.Error[0].Message)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("store memories in weaviate: %w", err)
		}
	}
	now := s.now()
	s.mu.Lock()
	for _, p := range points {
		s.touchLocked(p.Collection, p.Partition, now)
		if l := s.parts[p.Collection]; l != nil {
			l.names[p.Partition] = true
		}
	}
	s.mu.Unlock()
	return nil
}

// writeLevel is the consistency level of the next write. A search reads
// one replica's index, so a point only some replicas hold yet may be
// missed by the next recall: writes ask every replica (ALL) so that a
// user's next turn recalls what they just said. When a replica is down
// ALL fails; the retry and the writes of the next half minute settle for
// the configured level, which the live replicas can give.
func (s *Store) writeLevel() string {
	if time.Now().UnixNano() < s.degradedUntil.Load() {
		return s.cfg.Consistency
	}
	return "ALL"
}

// degrade notes that a write at level failed.
func (s *Store) degrade(level string) {
	if level == "ALL" && s.cfg.Consistency != "ALL" {
		s.degradedUntil.Store(time.Now().Add(degradedFor).UnixNano())
	}
}

// degradedFor is how long writes settle for the configured level after
// one at ALL failed.
const degradedFor = 30 * time.Second

// nextSeq orders points by insertion for List: microseconds since 1970,
// strictly increasing within the process. Microseconds, not nanoseconds:
// the batch protocol carries numbers as float64, exact only below 2^53
// (microseconds stay below it until the year 2255). Points of two grin
// processes may still share a seq; listings break ties by point id.
func (s *Store) nextSeq() int64 {
	for {
		prev := s.seq.Load()
		next := max(prev+1, time.Now().UnixMicro())
		if s.seq.CompareAndSwap(prev, next) {
			return next
		}
	}
}

// touch records a request to a partition, for cooling idle tenants.
func (s *Store) touch(collection string, partitions []string) {
	if collection != memory.Episodic {
		return
	}
	now := s.now()
	s.mu.Lock()
	for _, p := range partitions {
		s.touchLocked(collection, p, now)
	}
	s.mu.Unlock()
}

func (s *Store) touchLocked(collection, partition string, now time.Time) {
	if collection == memory.Procedural {
		return
	}
	name := TenantName(partition)
	if name[0] == 'h' {
		s.hashed[name] = partition
	}
	if collection == memory.Episodic {
		s.used[name] = now
		if s.fresh != nil {
			s.fresh[name] = struct{}{}
		}
	}
}

// search is the gRPC search of one partition.
func (s *Store) search(collection, partition string) *graphql.Search {
	return s.c().Experimental().Search().
		WithCollection(s.classes[collection]).
		WithTenant(tenant(collection, partition)).
		WithConsistencyLevel(s.cfg.Consistency).
		WithProperties(returned()...)
}

// Recall implements memory.Store: a near-vector search in each partition
// with the metadata filter, merged by score.
func (s *Store) Recall(ctx context.Context, collection string, partitions []string, q memory.Query) ([]memory.Match, error) {
	if q.K <= 0 || len(partitions) == 0 || len(q.Vector) == 0 {
		return nil, nil
	}
	s.touch(collection, partitions)
	info, ok, err := s.recorded(ctx, collection)
	if err != nil {
		return nil, fmt.Errorf("recall %s memories: %w", collection, err)
	}
	if ok && info.Dimensions != len(q.Vector) {
		// Vectors of another size were made by another embedder: they
		// are never compared, as the embedded store skips them.
		s.warnOnce(collection, q.Embedder, info, len(q.Vector))
		return nil, nil
	}
	// !ok: no vector was stored when this process last asked, a few
	// seconds ago at most. Another grin may have stored the first since,
	// so the partitions are searched all the same: a user whose first
	// memory went through another replica recalls it on this one. The
	// cached absence saves only the record's read.
	near := s.c().GraphQL().NearVectorArgBuilder().WithVector(q.Vector)
	if q.Threshold > -1 {
		// Cosine distance is 1 - similarity; Weaviate computes it in
		// float32, so a point exactly at the threshold needs a hair of
		// room.
		near = near.WithDistance(float32(1 - q.Threshold + thresholdSlack))
	}
	filter := where(q.Embedder, q.Metadata)
	meta := &graphql.Metadata{ID: true, Distance: true, Vector: !q.OmitVectors}
	// The partitions are searched at once, a few at a time: each is a
	// round trip, and a user reading several spaces waited for their sum.
	found := make([][]memory.Match, len(partitions))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(recallConcurrency)
	for i, part := range partitions {
		g.Go(func() error {
			var res []graphql.SearchResult
			err := s.retry(gctx, func() (err error) {
				res, err = s.search(collection, part).
					WithNearVector(near).
					WithWhere(filter).
					WithLimit(q.K).
					WithMetadata(meta).
					Do(gctx)
				return err
			})
			if err != nil {
				if missingTenant(err) {
					return nil
				}
				return fmt.Errorf("recall %s memories of %q: %w", collection, part, err)
			}
			for _, r := range res {
				p, err := pointOf(collection, r)
				if err != nil {
					return err
				}
				score := 1 - float64(r.Metadata.Distance)
				if score < q.Threshold-thresholdSlack {
					continue
				}
				found[i] = append(found[i], memory.Match{Point: p, Score: score})
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		if !ok && wrongLength(err) {
			// The first vectors, stored meanwhile by another grin, are of
			// another size: as above, there is nothing to compare.
			s.forgetRecorded(collection)
			if info, ok, rerr := s.recorded(ctx, collection); rerr == nil && ok && info.Dimensions != len(q.Vector) {
				s.warnOnce(collection, q.Embedder, info, len(q.Vector))
				return nil, nil
			}
		}
		return nil, err
	}
	out := slices.Concat(found...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Score > out[j].Score })
	if len(out) > q.K {
		out = out[:q.K]
	}
	return out, nil
}

// recallConcurrency bounds the partitions one recall searches at once.
const recallConcurrency = 8

// thresholdSlack absorbs float32 rounding in Weaviate's distances.
const thresholdSlack = 1e-6

// Get implements memory.Store.
func (s *Store) Get(ctx context.Context, collection, partition, id string) (memory.Point, error) {
	if !memory.ValidCollection(collection) {
		return memory.Point{}, memory.ErrNotFound
	}
	s.touch(collection, []string{partition})
	var res []graphql.SearchResult
	err := s.retry(ctx, func() (err error) {
		res, err = s.search(collection, partition).
			WithWhere(filters.Where().WithPath([]string{propID}).WithOperator(filters.Equal).WithValueText(id)).
			WithLimit(1).
			WithMetadata(&graphql.Metadata{ID: true, Vector: true}).
			Do(ctx)
		return err
	})
	if err != nil {
		if missingTenant(err) {
			return memory.Point{}, memory.ErrNotFound
		}
		return memory.Point{}, fmt.Errorf("get %s memory %q: %w", collection, id, err)
	}
	if len(res) == 0 {
		return memory.Point{}, memory.ErrNotFound
	}
	return pointOf(collection, res[0])
}

// List implements memory.Store: partitions in the order given, each
// oldest first.
func (s *Store) List(ctx context.Context, collection string, partitions []string, filter map[string]any, offset, limit int) ([]memory.Point, error) {
	var out []memory.Point
	s.touch(collection, partitions)
	for _, part := range partitions {
		if len(out) >= limit {
			break
		}
		if offset > 0 {
			n, err := s.count(ctx, collection, part, filter)
			if err != nil {
				return nil, err
			}
			if n <= offset {
				offset -= n
				continue
			}
		}
		points, err := s.listPartition(ctx, collection, part, filter, offset, limit-len(out))
		if err != nil {
			return nil, err
		}
		offset = 0
		out = append(out, points...)
	}
	return out, nil
}

// listPage is how many points one listing request asks for. Weaviate
// caps a query's offset plus limit (QUERY_MAXIMUM_RESULTS, 10,000 by
// default), so listings walk by insertion order (seq, then point id)
// instead of by offset, and any page of any partition can be read.
const listPage = 1000

// listPartition returns up to limit points of one partition after skipping
// skip, oldest first.
func (s *Store) listPartition(ctx context.Context, collection, part string, filter map[string]any, skip, limit int) ([]memory.Point, error) {
	var out []memory.Point
	var last *position
	for len(out) < limit {
		// While skipping, only the order is fetched.
		skipping := skip > 0
		size := min(limit-len(out), listPage)
		props, meta := []string{propSeq, propID}, &graphql.Metadata{ID: true}
		if skipping {
			size = min(skip, listPage)
		} else {
			props, meta = append(returned(), propSeq), &graphql.Metadata{ID: true, Vector: true}
		}
		w := allOf(where("", filter), last.after())
		var res []graphql.SearchResult
		err := s.retry(ctx, func() (err error) {
			res, err = s.search(collection, part).WithProperties(props...).
				WithWhere(w).
				WithSort(graphql.Sort{Path: []string{propSeq}, Order: graphql.Asc}, graphql.Sort{Path: []string{propID}, Order: graphql.Asc}).
				WithLimit(size).
				WithMetadata(meta).
				Do(ctx)
			return err
		})
		if err != nil {
			if missingTenant(err) {
				return out, nil
			}
			return nil, fmt.Errorf("list %s memories of %q: %w", collection, part, err)
		}
		for _, r := range res {
			last = positionOf(r)
			if skipping {
				skip--
				continue
			}
			p, err := pointOf(collection, r)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
		if len(res) < size {
			break
		}
	}
	return out, nil
}

// position is a point's place in a partition's insertion order.
type position struct {
	seq int64
	id  string
}

func positionOf(r graphql.SearchResult) *position {
	p := &position{}
	switch seq := r.Properties[propSeq].(type) {
	case int64:
		p.seq = seq
	case float64:
		p.seq = int64(seq)
	}
	p.id, _ = r.Properties[propID].(string)
	return p
}

// after is the condition "later than p" (nil: everything).
func (p *position) after() *filters.WhereBuilder {
	if p == nil {
		return nil
	}
	seq := func(op filters.WhereOperator) *filters.WhereBuilder {
		return filters.Where().WithPath([]string{propSeq}).WithOperator(op).WithValueInt(p.seq)
	}
	return filters.Where().WithOperator(filters.Or).WithOperands([]*filters.WhereBuilder{
		seq(filters.GreaterThan),
		allOf(seq(filters.Equal), filters.Where().WithPath([]string{propID}).WithOperator(filters.GreaterThan).WithValueText(p.id)),
	})
}

// Delete implements memory.Store.
func (s *Store) Delete(ctx context.Context, collection, partition string, ids []string) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	s.touch(collection, []string{partition})
	n := 0
	for chunk := range slices.Chunk(ids, batchSize) {
		k, err := s.deleteWhere(ctx, collection, partition,
			filters.Where().WithPath([]string{propID}).WithOperator(filters.ContainsAny).WithValueText(chunk...))
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// DeleteWhere implements memory.Store. Erasing a tenant's every point
// (no filter) deletes the tenant: that is how a deleted user's memories
// go, files and all.
func (s *Store) DeleteWhere(ctx context.Context, collection string, partitions []string, filter map[string]any) (int, error) {
	n := 0
	for _, part := range partitions {
		if len(filter) == 0 && collection != memory.Procedural {
			k, err := s.count(ctx, collection, part, nil)
			if err != nil {
				return n, err
			}
			err = s.retry(ctx, func() error {
				return s.c().Schema().TenantsDeleter().WithClassName(s.classes[collection]).WithTenants(TenantName(part)).Do(ctx)
			})
			if err != nil && !missingTenant(err) {
				return n, fmt.Errorf("delete the %s tenant of %q: %w", collection, part, err)
			}
			n += k
			s.mu.Lock()
			if l := s.parts[collection]; l != nil {
				delete(l.names, part)
			}
			if collection == memory.Episodic {
				delete(s.used, TenantName(part))
			}
			s.mu.Unlock()
			continue
		}
		w := where("", filter)
		if w == nil {
			w = filters.Where().WithPath([]string{propID}).WithOperator(filters.Like).WithValueText("*")
		}
		k, err := s.deleteWhere(ctx, collection, part, w)
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// deleteWhere deletes matching objects of one partition, in as many
// rounds as Weaviate's per-request limit needs.
func (s *Store) deleteWhere(ctx context.Context, collection, partition string, w *filters.WhereBuilder) (int, error) {
	n := 0
	for {
		// Deleting what matches is idempotent: a retry deletes the rest.
		var resp *models.BatchDeleteResponse
		err := s.retry(ctx, func() (err error) {
			d := s.c().Batch().ObjectsBatchDeleter().
				WithClassName(s.classes[collection]).
				WithWhere(w).
				WithOutput("minimal").
				WithConsistencyLevel(s.cfg.Consistency)
			if t := tenant(collection, partition); t != "" {
				d = d.WithTenant(t)
			}
			resp, err = d.Do(ctx)
			return err
		})
		if err != nil {
			if missingTenant(err) {
				return n, nil
			}
			return n, fmt.Errorf("delete %s memories of %q: %w", collection, partition, err)
		}
		if resp.Results == nil {
			return n, nil
		}
		n += int(resp.Results.Successful)
		if resp.Results.Failed > 0 {
			return n, fmt.Errorf("delete %s memories of %q: weaviate failed to delete %d", collection, partition, resp.Results.Failed)
		}
		if resp.Results.Matches < resp.Results.Limit || resp.Results.Matches == 0 {
			return n, nil
		}
	}
}

// Count implements memory.Store.
func (s *Store) Count(ctx context.Context, collection string, partitions []string) (int, error) {
	s.touch(collection, partitions)
	n := 0
	for _, part := range partitions {
		k, err := s.count(ctx, collection, part, nil)
		if err != nil {
			return 0, err
		}
		n += k
	}
	return n, nil
}

// CountWhere implements memory.Store: Count with the filter in the
// aggregate's where clause.
func (s *Store) CountWhere(ctx context.Context, collection string, partitions []string, filter map[string]any) (int, error) {
	s.touch(collection, partitions)
	n := 0
	for _, part := range partitions {
		k, err := s.count(ctx, collection, part, filter)
		if err != nil {
			return 0, err
		}
		n += k
	}
	return n, nil
}

func (s *Store) count(ctx context.Context, collection, partition string, filter map[string]any) (int, error) {
	if !memory.ValidCollection(collection) {
		return 0, nil
	}
	class := s.classes[collection]
	var resp *models.GraphQLResponse
	err := s.retry(ctx, func() (err error) {
		agg := s.c().GraphQL().Aggregate().WithClassName(class).
			WithFields(graphql.Field{Name: "meta", Fields: []graphql.Field{{Name: "count"}}})
		if t := tenant(collection, partition); t != "" {
			agg = agg.WithTenant(t)
		}
		if w := where("", filter); w != nil {
			agg = agg.WithWhere(w)
		}
		resp, err = agg.Do(ctx)
		if err == nil && len(resp.Errors) > 0 {
			err = errors.New(resp.Errors[0].Message)
		}
		return err
	})
	if err != nil {
		if missingTenant(err) {
			return 0, nil
		}
		return 0, fmt.Errorf("count %s memories of %q: %w", collection, partition, err)
	}
	var out struct {
		Aggregate map[string][]struct {
			Meta struct {
				Count int `json:"count"`
			} `json:"meta"`
		}
	}
	raw, err := json.Marshal(resp.Data)
	if err == nil {
		err = json.Unmarshal(raw, &out)
	}
	if err != nil {
		return 0, fmt.Errorf("count %s memories of %q: %w", collection, partition, err)
	}
	if rows := out.Aggregate[class]; len(rows) > 0 {
		return rows[0].Meta.Count, nil
	}
	return 0, nil
}

// Partitions implements memory.Store: the collection's tenants, named
// back by their partitions. The list is cached for a few seconds.
func (s *Store) Partitions(ctx context.Context, collection string) ([]string, error) {
	if collection == memory.Procedural {
		n, err := s.count(ctx, collection, "", nil)
		if err != nil || n == 0 {
			return nil, err
		}
		return []string{""}, nil
	}
	if !memory.ValidCollection(collection) {
		return nil, nil
	}
	s.mu.Lock()
	if l := s.parts[collection]; l != nil && time.Since(l.fetched) < partitionsTTL {
		out := slices.Sorted(maps.Keys(l.names))
		s.mu.Unlock()
		return out, nil
	}
	s.mu.Unlock()
	tenants, err := s.tenants(ctx, s.classes[collection])
	if err != nil {
		return nil, fmt.Errorf("list %s partitions: %w", collection, err)
	}
	names := map[string]bool{}
	for _, t := range tenants {
		p, ok := s.partitionOf(ctx, collection, t.Name)
		if ok {
			names[p] = true
		}
	}
	s.mu.Lock()
	s.parts[collection] = &partList{names: names, fetched: time.Now()}
	s.mu.Unlock()
	return slices.Sorted(maps.Keys(names)), nil
}

// partitionOf names a tenant's partition. A hashed name (an id too long
// to spell out) is looked up in the tenant's points once and remembered:
// it never changes. An empty or vanished tenant reports false.
func (s *Store) partitionOf(ctx context.Context, collection, tenant string) (string, bool) {
	if p, ok := PartitionOf(tenant); ok {
		return p, true
	}
	s.mu.Lock()
	p, ok := s.hashed[tenant]
	s.mu.Unlock()
	if ok {
		return p, true
	}
	res, err := s.c().Experimental().Search().WithCollection(s.classes[collection]).WithTenant(tenant).
		WithConsistencyLevel(s.cfg.Consistency).WithProperties(propPartition).WithLimit(1).Do(ctx)
	if err != nil || len(res) == 0 {
		if err != nil && !missingTenant(err) {
			s.log.Warn("cannot name a tenant's partition", "collection", collection, "tenant", tenant, "err", err)
		}
		return "", false
	}
	p, ok = res[0].Properties[propPartition].(string)
	if ok && TenantName(p) == tenant {
		s.mu.Lock()
		s.hashed[tenant] = p
		s.mu.Unlock()
		return p, true
	}
	return "", false
}

// where is the filter of a query: the embedder's vectors only (when
// named) and every metadata equality.
func where(embedder string, metadata map[string]any) *filters.WhereBuilder {
	var ops []*filters.WhereBuilder
	if embedder != "" {
		ops = append(ops, filters.Where().WithPath([]string{propEmbedder}).WithOperator(filters.Equal).WithValueText(embedder))
	}
	if len(metadata) > 0 {
		terms := make([]string, 0, len(metadata))
		for k, v := range metadata {
			terms = append(terms, memory.Term(k, v))
		}
		ops = append(ops, filters.Where().WithPath([]string{propTerms}).WithOperator(filters.ContainsAll).WithValueText(terms...))
	}
	return allOf(ops...)
}

// allOf is the conjunction of the conditions given (nil ones left out).
func allOf(conds ...*filters.WhereBuilder) *filters.WhereBuilder {
	var ops []*filters.WhereBuilder
	for _, c := range conds {
		if c != nil {
			ops = append(ops, c)
		}
	}
	switch len(ops) {
	case 0:
		return nil
	case 1:
		return ops[0]
	}
	return filters.Where().WithOperator(filters.And).WithOperands(ops)
}

// pointOf turns a search result back into a point.
func pointOf(collection string, r graphql.SearchResult) (memory.Point, error) {
	str := func(k string) string { v, _ := r.Properties[k].(string); return v }
	p := memory.Point{
		ID: str(propID), Collection: collection, Partition: str(propPartition),
		Content: str(propContent), Embedder: str(propEmbedder), Vector: r.Vector,
	}
	if raw := str(propMetadata); raw != "" {
		if err := json.Unmarshal([]byte(raw), &p.Metadata); err != nil {
			return memory.Point{}, fmt.Errorf("memory %q: metadata: %w", p.ID, err)
		}
	}
	if p.Metadata == nil {
		p.Metadata = map[string]any{}
	}
	return p, nil
}

// Retries of a failed request: a replica that has just died fails the
// requests in flight through it; the next attempt goes to those alive.
const (
	attempts = 4
	backoff  = 250 * time.Millisecond
)

// retry runs call until it succeeds, its failure is final (a missing
// tenant, a query vector of the wrong size, ctx ended) or attempts run
// out. Only idempotent calls retry.
func (s *Store) retry(ctx context.Context, call func() error) error {
	var err error
	for i := range attempts {
		node := s.cur.Load()
		if err = call(); err == nil || missingTenant(err) || wrongLength(err) || ctx.Err() != nil {
			return err
		}
		s.failover(node)
		if i < attempts-1 {
			s.log.Warn("weaviate request failed; trying again", "attempt", i+1, "err", err)
			select {
			case <-ctx.Done():
				return err
			case <-time.After(backoff << i):
			}
		}
	}
	return err
}

// missingTenant reports whether err says a tenant does not exist: a
// partition nobody has written to yet, which holds nothing.
//
// Only Weaviate's own words count: anything else (a missing collection, a
// shard that is down) is an error, never an empty answer.
func missingTenant(err error) bool {
	return strings.Contains(strings.ToLower(err.Error()), "tenant not found")
}

// wrongLength reports Weaviate refusing a query vector whose size is not
// the stored vectors': asking again cannot help.
func wrongLength(err error) bool {
	return strings.Contains(strings.ToLower(err.Error()), "vector lengths don't match")
}

var _ memory.Store = (*Store)(nil)
