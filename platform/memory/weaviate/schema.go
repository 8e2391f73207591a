package weaviate

import (
	"context"
	"crypto/sha1"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/weaviate/weaviate-go-client/v5/weaviate/fault"
	"github.com/weaviate/weaviate-go-client/v5/weaviate/schema"
	"github.com/weaviate/weaviate/entities/models"

	"github.com/grin-ai/grin/platform/memory"
)

// Distance is the metric of every collection: grin's scores are cosine
// similarities.
const Distance = "cosine"

// VectorInfo is what a collection's vectors are: recorded at the first
// write, so that vectors of another size (another embedder) are refused
// with an explanation instead of failing deep inside Weaviate or, worse,
// being compared with vectors they have nothing to do with.
type VectorInfo struct {
	Collection string
	Embedder   string
	Dimensions int
	Distance   string
}

// metaClass holds one VectorInfo per grin collection.
func (s *Store) metaClass() string { return s.cfg.Prefix + "Meta" }

func (s *Store) classDef(collection string) *models.Class {
	no, yes := false, true
	text := func(name string, filterable bool) *models.Property {
		p := &models.Property{Name: name, DataType: []string{"text"}, IndexSearchable: &no, IndexFilterable: &no}
		if filterable {
			p.IndexFilterable, p.Tokenization = &yes, "field"
		}
		return p
	}
	c := &models.Class{
		Class:             s.classes[collection],
		Description:       "grin " + collection + " memory",
		Vectorizer:        "none",
		VectorIndexType:   "hnsw",
		VectorIndexConfig: map[string]any{"distance": Distance},
		Properties: []*models.Property{
			text(propID, true), text(propPartition, false), text(propContent, false), text(propMetadata, false),
			{Name: propTerms, DataType: []string{"text[]"}, Tokenization: "field", IndexFilterable: &yes, IndexSearchable: &no},
			text(propEmbedder, true),
			{Name: propSeq, DataType: []string{"int"}, IndexFilterable: &yes},
		},
	}
	if collection != memory.Procedural {
		// Tenants appear with their first point and wake when asked for.
		c.MultiTenancyConfig = &models.MultiTenancyConfig{Enabled: true, AutoTenantCreation: true, AutoTenantActivation: true}
	}
	if collection == memory.Episodic {
		// A user's memories are few: a brute-force index per tenant costs
		// no graph in memory and is exact.
		c.VectorIndexType = "flat"
	}
	s.replicate(c)
	return c
}

func (s *Store) replicate(c *models.Class) {
	if s.cfg.Replication > 0 {
		// Asynchronous replication lets a node that was down catch up on
		// the writes it missed. A point one replica lacks was either
		// written while it was down or deleted while another was: the
		// later of the two wins (a user's erasure included), where
		// Weaviate's default would leave the difference unresolved and
		// the point unreadable through that replica.
		c.ReplicationConfig = &models.ReplicationConfig{
			Factor: int64(s.cfg.Replication), AsyncEnabled: s.cfg.Replication > 1,
			DeletionStrategy: "TimeBasedResolution",
		}
	}
}

func (s *Store) metaDef() *models.Class {
	yes, no := true, false
	c := &models.Class{
		Class:       s.metaClass(),
		Description: "grin: what each memory collection's vectors are",
		Vectorizer:  "none",
		Properties: []*models.Property{
			{Name: "collection", DataType: []string{"text"}, Tokenization: "field", IndexFilterable: &yes, IndexSearchable: &no},
			{Name: "embedder", DataType: []string{"text"}, IndexFilterable: &no, IndexSearchable: &no},
			{Name: "dimensions", DataType: []string{"int"}, IndexFilterable: &no},
			{Name: "distance", DataType: []string{"text"}, IndexFilterable: &no, IndexSearchable: &no},
		},
	}
	s.replicate(c)
	return c
}

// ensureSchema creates missing collections and checks existing ones are
// laid out as grin expects.
func (s *Store) ensureSchema(ctx context.Context) error {
	var dump *schema.Dump
	err := s.retry(ctx, func() (err error) {
		dump, err = s.c().Schema().Getter().Do(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("read schema: %w", err)
	}
	have := map[string]*models.Class{}
	for _, c := range dump.Classes {
		have[c.Class] = c
	}
	want := []*models.Class{s.metaDef()}
	for _, c := range memory.Collections() {
		want = append(want, s.classDef(c))
	}
	for _, c := range want {
		existing, ok := have[c.Class]
		if !ok {
			if err := s.c().Schema().ClassCreator().WithClass(c).Do(ctx); err != nil {
				// Another grin may have created it meanwhile.
				if exists, _ := s.c().Schema().ClassExistenceChecker().WithClassName(c.Class).Do(ctx); !exists {
					return fmt.Errorf("create collection %s: %w", c.Class, err)
				}
			}
			continue
		}
		if err := compatible(existing, c); err != nil {
			return fmt.Errorf("collection %s exists but %w: choose another GRIN_WEAVIATE_PREFIX, or delete the collection", c.Class, err)
		}
	}
	return nil
}

// compatible reports how an existing collection differs from what grin
// would create, in what grin relies on: tenancy, distance, and every
// property's type and tokenization (a property Weaviate's auto-schema
// typed differently would make filters match wrongly).
func compatible(have, want *models.Class) error {
	mt := func(c *models.Class) models.MultiTenancyConfig {
		if c.MultiTenancyConfig == nil {
			return models.MultiTenancyConfig{}
		}
		return *c.MultiTenancyConfig
	}
	if h, w := mt(have), mt(want); h.Enabled != w.Enabled || (w.Enabled && (!h.AutoTenantCreation || !h.AutoTenantActivation)) {
		return fmt.Errorf("its multi-tenancy (enabled %v, auto-creation %v, auto-activation %v) is not grin's (enabled %v, both automatic)",
			h.Enabled, h.AutoTenantCreation, h.AutoTenantActivation, w.Enabled)
	}
	if want.VectorIndexConfig != nil {
		if cfg, ok := have.VectorIndexConfig.(map[string]any); ok {
			if d, _ := cfg["distance"].(string); d != "" && d != Distance {
				return fmt.Errorf("it measures %s distance where grin needs %s", d, Distance)
			}
		}
	}
	props := map[string]*models.Property{}
	for _, p := range have.Properties {
		props[p.Name] = p
	}
	for _, w := range want.Properties {
		h, ok := props[w.Name]
		if !ok {
			return fmt.Errorf("it has no property %q", w.Name)
		}
		if !slices.Equal(h.DataType, w.DataType) {
			return fmt.Errorf("its property %q is %v where grin needs %v", w.Name, h.DataType, w.DataType)
		}
		if w.Tokenization != "" && h.Tokenization != w.Tokenization {
			return fmt.Errorf("its property %q is tokenized %q where grin needs %q", w.Name, h.Tokenization, w.Tokenization)
		}
	}
	return nil
}

// Vectors returns what each collection's vectors are, for the collections
// that hold any.
func (s *Store) Vectors(ctx context.Context) ([]VectorInfo, error) {
	var out []VectorInfo
	for _, c := range memory.Collections() {
		info, ok, err := s.recorded(ctx, c)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, info)
		}
	}
	return out, nil
}

// CheckEmbedder explains, when it is so, why an embedder's vectors cannot
// be stored beside the ones already in Weaviate; nil when they can.
func (s *Store) CheckEmbedder(ctx context.Context, embedder string, dimensions int) error {
	infos, err := s.Vectors(ctx)
	if err != nil {
		return err
	}
	for _, info := range infos {
		if info.Dimensions != dimensions {
			return s.mismatch(info, embedder, dimensions)
		}
	}
	return nil
}

func (s *Store) mismatch(info VectorInfo, embedder string, dimensions int) error {
	return fmt.Errorf("%w: %s memory in Weaviate (%s) holds %d-dimensional %s vectors made by embedder %q, and embedder %q makes %d-dimensional ones; "+
		"vectors of different embedders are never compared, so go back to that embedder, or point grin at new collections (GRIN_WEAVIATE_PREFIX) and ingest again",
		memory.ErrDimensions, info.Collection, s.classes[info.Collection], info.Dimensions, info.Distance, info.Embedder, embedder, dimensions)
}

func (s *Store) warnOnce(collection, embedder string, info VectorInfo, dimensions int) {
	s.mu.Lock()
	key := collection + "\x00" + embedder
	seen := s.warned[key]
	s.warned[key] = true
	s.mu.Unlock()
	if !seen {
		s.log.Warn("recall skips vectors of another embedder", "err", s.mismatch(info, embedder, dimensions))
	}
}

// checkVector refuses a point whose vector does not fit its collection,
// and records the collection's vectors on its first write.
func (s *Store) checkVector(ctx context.Context, p memory.Point) error {
	if len(p.Vector) == 0 {
		return nil
	}
	info, ok, err := s.recorded(ctx, p.Collection)
	if err != nil {
		return fmt.Errorf("store memory %q: %w", p.ID, err)
	}
	if ok {
		if info.Dimensions != len(p.Vector) {
			return fmt.Errorf("store memory %q: %w", p.ID, s.mismatch(info, p.Embedder, len(p.Vector)))
		}
		return nil
	}
	info = VectorInfo{Collection: p.Collection, Embedder: p.Embedder, Dimensions: len(p.Vector), Distance: Distance}
	_, err = s.c().Data().Creator().WithClassName(s.metaClass()).WithID(metaID(p.Collection)).
		WithProperties(map[string]any{"collection": info.Collection, "embedder": info.Embedder, "dimensions": info.Dimensions, "distance": info.Distance}).
		WithConsistencyLevel(s.cfg.Consistency).Do(ctx)
	if err != nil {
		// Another writer recorded it first: theirs stands.
		s.forgetRecorded(p.Collection)
		if info, ok, rerr := s.recorded(ctx, p.Collection); rerr == nil && ok {
			if info.Dimensions != len(p.Vector) {
				return fmt.Errorf("store memory %q: %w", p.ID, s.mismatch(info, p.Embedder, len(p.Vector)))
			}
			return nil
		}
		return fmt.Errorf("record the vectors of %s memory: %w", p.Collection, err)
	}
	s.mu.Lock()
	s.vectors[p.Collection] = info
	s.mu.Unlock()
	return nil
}

func metaID(collection string) string {
	return uuid.NewHash(sha1.New(), uuid.NameSpaceOID, []byte("grin-vectors\x00"+collection), 5).String()
}

func (s *Store) forgetRecorded(collection string) {
	s.mu.Lock()
	delete(s.vectors, collection)
	delete(s.unrecorded, collection)
	s.mu.Unlock()
}

// unrecordedTTL is how long a collection found without vectors is taken
// to have none before asking again. Another grin may store the first
// meanwhile: a write then finds its record when creating its own, and a
// recall searches all the same.
const unrecordedTTL = 5 * time.Second

// recorded returns a collection's recorded vectors, from memory once
// known; ok is false while the collection has none.
func (s *Store) recorded(ctx context.Context, collection string) (_ VectorInfo, ok bool, _ error) {
	s.mu.Lock()
	info, ok := s.vectors[collection]
	absent := s.now().Sub(s.unrecorded[collection]) < unrecordedTTL
	s.mu.Unlock()
	if ok || absent {
		return info, ok, nil
	}
	// Read by its id, not searched: a search may not see an object just
	// created by another writer yet, and the writer that lost the race to
	// record it must find the winner's (a search here failed turns when two
	// users' first memories arrived at once).
	var obj *models.Object
	err := s.retry(ctx, func() error {
		objs, err := s.c().Data().ObjectsGetter().WithClassName(s.metaClass()).WithID(metaID(collection)).
			WithConsistencyLevel(s.cfg.Consistency).Do(ctx)
		var werr *fault.WeaviateClientError
		switch {
		case errors.As(err, &werr) && werr.StatusCode == http.StatusNotFound:
			obj = nil
		case err != nil:
			return err
		case len(objs) > 0:
			obj = objs[0]
		}
		return nil
	})
	if err != nil {
		return VectorInfo{}, false, fmt.Errorf("read what %s memory's vectors are: %w", collection, err)
	}
	var props map[string]any
	if obj != nil {
		props, _ = obj.Properties.(map[string]any)
	}
	if props == nil {
		// Nothing stored yet: asked again after unrecordedTTL, so that
		// turns on an empty collection do not read the record each.
		s.mu.Lock()
		s.unrecorded[collection] = s.now()
		s.mu.Unlock()
		return VectorInfo{}, false, nil
	}
	info.Collection = collection
	info.Embedder, _ = props["embedder"].(string)
	info.Distance, _ = props["distance"].(string)
	switch d := props["dimensions"].(type) {
	case int64:
		info.Dimensions = int(d)
	case float64:
		info.Dimensions = int(d)
	case json.Number:
		n, _ := d.Int64()
		info.Dimensions = int(n)
	}
	if info.Dimensions == 0 {
		return VectorInfo{}, false, nil
	}
	s.mu.Lock()
	s.vectors[collection] = info
	s.mu.Unlock()
	return info, true, nil
}
