package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/grin-ai/grin/platform/memory"
	"github.com/grin-ai/grin/policies"
)

// RecallRequest asks for memories about a text.
type RecallRequest struct {
	Text     string         `json:"text" minLength:"1" maxLength:"32000" doc:"What to recall memories about."`
	K        int            `json:"k,omitempty" minimum:"1" maximum:"1000" default:"100" doc:"How many memories per collection at most."`
	Metadata map[string]any `json:"metadata,omitempty" doc:"Only memories whose metadata has these values."`
	// Collection and Partition narrow a recall to one partition, as the
	// admin panel's memory browser searches the user it shows.
	Collection string `json:"collection,omitempty" enum:"episodic,declarative,procedural" doc:"Search only this collection (grin extension)."`
	Partition  string `json:"partition,omitempty" maxLength:"256" doc:"With collection: search only this partition, another user's episodic memory (a user id) or one declarative space, where the policy allows reading it (grin extension)."`
}

// Resolve refuses a partition without the collection it belongs to.
func (r *RecallRequest) Resolve(huma.Context) []error {
	if r.Partition != "" && r.Collection == "" {
		return []error{&huma.ErrorDetail{Location: "body.collection", Message: "name the collection the partition belongs to (episodic for a user, declarative for a space)", Value: r.Collection}}
	}
	return nil
}

// RecallInput is the body of POST /memory/recall.
type RecallInput struct {
	Body RecallRequest
}

// MemoryPoint is a memory as the Cat shows it.
type MemoryPoint struct {
	ID          string         `json:"id"`
	PageContent string         `json:"page_content"`
	Metadata    map[string]any `json:"metadata"`
	Score       *float64       `json:"score,omitempty"`
	Vector      []float32      `json:"vector"`
}

// RecallCollections holds the recalled points of each collection.
type RecallCollections struct {
	Episodic    []MemoryPoint `json:"episodic"`
	Declarative []MemoryPoint `json:"declarative"`
	Procedural  []MemoryPoint `json:"procedural"`
}

// RecallQuery echoes the query.
type RecallQuery struct {
	Text   string    `json:"text"`
	Vector []float32 `json:"vector"`
}

// RecallVectors is the recall's result.
type RecallVectors struct {
	Embedder    string            `json:"embedder"`
	Collections RecallCollections `json:"collections"`
}

// RecallResult is the answer of POST /memory/recall.
type RecallResult struct {
	Query   RecallQuery   `json:"query"`
	Vectors RecallVectors `json:"vectors"`
}

// CollectionInfo counts a collection's points within reach.
type CollectionInfo struct {
	Name         string `json:"name"`
	VectorsCount int    `json:"vectors_count"`
}

// CollectionsList is the answer of GET /memory/collections.
type CollectionsList struct {
	Collections []CollectionInfo `json:"collections"`
}

// SpaceList lists declarative spaces with their counts.
type SpaceList struct {
	Spaces []CollectionInfo `json:"spaces"`
}

// CollectionPath names a collection.
type CollectionPath struct {
	Collection string `path:"collection" enum:"episodic,declarative,procedural"`
}

// PartitionQuery lets those the policy allows name a partition other than
// their own: another user's episodic memory, or a declarative space.
type PartitionQuery struct {
	Partition string `query:"partition" maxLength:"256" doc:"episodic: a user id (default: your own); declarative: a space (default: every space you may reach; shared for writes). grin extension."`
}

// PointInput is a memory to store.
type PointInput struct {
	Content  string         `json:"content" minLength:"1" maxLength:"100000"`
	Metadata map[string]any `json:"metadata,omitempty"`
}

// PointsPage is a page of points.
type PointsPage struct {
	Points     []MemoryPoint `json:"points"`
	NextOffset *int          `json:"next_offset" doc:"Pass as offset for the next page; null at the end."`
}

// DeletedCount says how many points went.
type DeletedCount struct {
	Deleted map[string]int `json:"deleted" doc:"Points deleted per collection."`
}

// HistoryQuery names whose conversation (grin extension for
// administrators).
type HistoryQuery struct {
	UserID string `query:"user_id" maxLength:"256" doc:"Whose conversation; your own when absent. Others' need the policy's permission."`
}

// HistoryDeleted confirms a conversation was forgotten.
type HistoryDeleted struct {
	Deleted bool `json:"deleted"`
}

// ConversationMessage is one turn of a conversation, as the Cat 1.8's
// ConversationMessage: message is its computed copy of text, which the
// Cat's TypeScript client still reads.
type ConversationMessage struct {
	Who     string          `json:"who" enum:"Human,AI"`
	UserID  string          `json:"user_id"`
	Text    string          `json:"text"`
	Message string          `json:"message" doc:"A copy of text (the Cat's deprecated name)."`
	When    float64         `json:"when" doc:"Unix seconds."`
	Why     json.RawMessage `json:"why,omitempty" doc:"For the AI's turns: why it answered so, as in the chat frame."`
}

// History is a conversation.
type History struct {
	History []ConversationMessage `json:"history"`
}

func pointOf(p memory.Point, score *float64) MemoryPoint {
	md := p.Metadata
	if md == nil {
		md = map[string]any{}
	}
	v := p.Vector
	if v == nil {
		v = []float32{}
	}
	return MemoryPoint{ID: p.ID, PageContent: p.Content, Metadata: md, Score: score, Vector: v}
}

// recall searches each collection within the caller's reach: their own
// episodic memory, the declarative spaces they may read, procedural memory.
func (s *Server) recall(ctx context.Context, in RecallRequest) (*struct{ Body RecallResult }, error) {
	id := identity(ctx)
	emb := s.deps.Providers.Embedder()
	vecs, err := emb.Embed(ctx, []string{in.Text})
	if err != nil {
		return nil, huma.Error502BadGateway("the embedder failed: " + err.Error())
	}
	k := in.K
	if k == 0 {
		k = 100
	}
	out := RecallResult{Query: RecallQuery{Text: in.Text, Vector: vecs[0]}, Vectors: RecallVectors{Embedder: emb.Name()}}
	for _, c := range []struct {
		name string
		dst  *[]MemoryPoint
	}{{memory.Episodic, &out.Vectors.Collections.Episodic}, {memory.Declarative, &out.Vectors.Collections.Declarative}, {memory.Procedural, &out.Vectors.Collections.Procedural}} {
		*c.dst = []MemoryPoint{}
		if in.Collection != "" && in.Collection != c.name {
			continue
		}
		q := memory.Query{Vector: vecs[0], Embedder: emb.Name(), K: k, Metadata: in.Metadata}
		var matches []memory.Match
		if in.Partition != "" {
			part, perr := s.onePartition(ctx, c.name, in.Partition, policies.Read)
			if perr != nil {
				return nil, perr
			}
			matches, err = s.deps.Memory.Recall(ctx, c.name, []string{part}, q)
		} else {
			matches, err = s.deps.Scope.Recall(ctx, id, c.name, q)
		}
		if err != nil {
			return nil, s.internal(ctx, "recall", err)
		}
		for _, m := range matches {
			score := m.Score
			*c.dst = append(*c.dst, pointOf(m.Point, &score))
		}
	}
	return &struct{ Body RecallResult }{out}, nil
}

func (s *Server) registerMemory() {
	register(s, huma.Operation{
		OperationID: "recallMemories", Method: http.MethodPost, Path: "/memory/recall",
		Summary: "Recall memories", Description: "Searches your own episodic memory, the declarative spaces you may read and procedural memory.",
		Tags: []string{"Memory"},
	}, catNeed(policies.Memory, policies.Read), func(ctx context.Context, in *RecallInput) (*struct{ Body RecallResult }, error) {
		return s.recall(ctx, in.Body)
	})
	// The Cat 1.8 still serves the GET beside the POST (deprecated there),
	// and it is the only recall the Cat's own TypeScript client offers.
	register(s, huma.Operation{
		OperationID: "recallMemoriesFromText", Method: http.MethodGet, Path: "/memory/recall",
		Summary: "Recall memories (query string)", Description: "As POST /memory/recall, with text and k in the query string and no metadata filter; the Cat's older form, which its TypeScript client calls.",
		Tags: []string{"Memory"},
	}, catNeed(policies.Memory, policies.Read), func(ctx context.Context, in *struct {
		Text string `query:"text" required:"true" minLength:"1" maxLength:"32000" doc:"What to recall memories about."`
		K    int    `query:"k" minimum:"1" maximum:"1000" default:"100" doc:"How many memories per collection at most."`
	}) (*struct{ Body RecallResult }, error) {
		return s.recall(ctx, RecallRequest{Text: in.Text, K: in.K})
	})

	register(s, huma.Operation{
		OperationID: "listCollections", Method: http.MethodGet, Path: "/memory/collections",
		Summary: "Count memories",
		Description: "Counts the points of each collection within your reach; with user_id, the episodic count is that user's, " +
			"where the policy lets you read it.",
		Tags: []string{"Memory"},
	}, catNeed(policies.Memory, policies.Read), func(ctx context.Context, in *struct {
		UserID string `query:"user_id" maxLength:"256" doc:"Count this user's episodic memory instead of yours (grin extension)."`
	}) (*struct{ Body CollectionsList }, error) {
		out := CollectionsList{Collections: []CollectionInfo{}}
		for _, c := range memory.Collections() {
			var parts []string
			var err error
			if c == memory.Episodic && in.UserID != "" {
				parts, err = s.partitions(ctx, c, in.UserID, policies.Read)
				if err != nil {
					return nil, err
				}
			} else if parts, err = s.deps.Scope.Own(ctx, identity(ctx), c, policies.Read); err != nil {
				return nil, s.internal(ctx, "count memories", err)
			}
			n, err := s.deps.Memory.Count(ctx, c, parts)
			if err != nil {
				return nil, s.internal(ctx, "count memories", err)
			}
			out.Collections = append(out.Collections, CollectionInfo{Name: c, VectorsCount: n})
		}
		return &struct{ Body CollectionsList }{out}, nil
	})

	register(s, huma.Operation{
		OperationID: "listSpaces", Method: http.MethodGet, Path: "/memory/spaces",
		Summary: "Declarative spaces", Description: "The declarative spaces you may read, with their counts. grin extension.",
		Tags: []string{"Memory"},
	}, catNeed(policies.Memory, policies.Read), func(ctx context.Context, _ *struct{}) (*struct{ Body SpaceList }, error) {
		parts, err := s.deps.Scope.Own(ctx, identity(ctx), memory.Declarative, policies.Read)
		if err != nil {
			return nil, s.internal(ctx, "list spaces", err)
		}
		out := SpaceList{Spaces: []CollectionInfo{}}
		for _, p := range parts {
			n, err := s.deps.Memory.Count(ctx, memory.Declarative, []string{p})
			if err != nil {
				return nil, s.internal(ctx, "list spaces", err)
			}
			out.Spaces = append(out.Spaces, CollectionInfo{Name: p, VectorsCount: n})
		}
		return &struct{ Body SpaceList }{out}, nil
	})

	wipe := func(ctx context.Context, collections []string, partition string) (*struct{ Body DeletedCount }, error) {
		out := DeletedCount{Deleted: map[string]int{}}
		for _, c := range collections {
			parts, err := s.partitions(ctx, c, partition, policies.Delete)
			if err != nil {
				return nil, err
			}
			if c == memory.Episodic && partition == "" && len(parts) == 0 {
				// Your own episodic memory is within reach unless a rule
				// refuses it: say so rather than answer 200 with nothing done.
				id := identity(ctx)
				return nil, s.refused(id, memory.Object(c, id.ID), policies.Delete)
			}
			if c == memory.Procedural && len(parts) == 0 {
				// As the Cat does, procedural memory is wiped with the others, for
				// those the policy lets delete there (administrators by default).
				if len(collections) > 1 {
					continue
				}
				return nil, huma.Error403Forbidden("Permission denied: you may not delete procedural")
			}
			n, err := s.deps.Memory.DeleteWhere(ctx, c, parts, nil)
			if err != nil {
				return nil, s.internal(ctx, "delete memories", err)
			}
			out.Deleted[c] = n
		}
		return &struct{ Body DeletedCount }{out}, nil
	}
	register(s, huma.Operation{
		OperationID: "wipeCollections", Method: http.MethodDelete, Path: "/memory/collections",
		Summary: "Delete memories", Description: "Deletes every point within your reach: your own episodic memory, the declarative spaces you may delete from, and procedural memory if the policy lets you delete there.",
		Tags: []string{"Memory"},
	}, catNeed(policies.Memory, policies.Delete), func(ctx context.Context, in *PartitionQuery) (*struct{ Body DeletedCount }, error) {
		return wipe(ctx, memory.Collections(), in.Partition)
	})
	register(s, huma.Operation{
		OperationID: "wipeCollection", Method: http.MethodDelete, Path: "/memory/collections/{collection}",
		Summary: "Delete a collection's memories", Description: "As DELETE /memory/collections, for one collection.",
		Tags: []string{"Memory"},
	}, catNeed(policies.Memory, policies.Delete), func(ctx context.Context, in *struct {
		CollectionPath
		PartitionQuery
	}) (*struct{ Body DeletedCount }, error) {
		return wipe(ctx, []string{in.Collection}, in.Partition)
	})

	register(s, huma.Operation{
		OperationID: "listPoints", Method: http.MethodGet, Path: "/memory/collections/{collection}/points",
		Summary: "List memories", Tags: []string{"Memory"},
	}, catNeed(policies.Memory, policies.List), func(ctx context.Context, in *struct {
		CollectionPath
		PartitionQuery
		Offset int `query:"offset" minimum:"0" default:"0"`
		Limit  int `query:"limit" minimum:"1" maximum:"1000" default:"100"`
	}) (*struct{ Body PointsPage }, error) {
		parts, err := s.partitions(ctx, in.Collection, in.Partition, policies.List)
		if err != nil {
			return nil, err
		}
		points, err := s.deps.Memory.List(ctx, in.Collection, parts, nil, in.Offset, in.Limit+1)
		if err != nil {
			return nil, s.internal(ctx, "list memories", err)
		}
		out := PointsPage{Points: []MemoryPoint{}}
		for i, p := range points {
			if i == in.Limit {
				next := in.Offset + in.Limit
				out.NextOffset = &next
				break
			}
			out.Points = append(out.Points, pointOf(p, nil))
		}
		return &struct{ Body PointsPage }{out}, nil
	})

	register(s, huma.Operation{
		OperationID: "createPoint", Method: http.MethodPost, Path: "/memory/collections/{collection}/points",
		Summary: "Store a memory", Description: "Embeds and stores a memory: in your own episodic memory, or a declarative space (shared unless ?partition names another).",
		Tags: []string{"Memory"}, Errors: []int{http.StatusConflict},
	}, catNeed(policies.Memory, policies.Write), func(ctx context.Context, in *struct {
		CollectionPath
		PartitionQuery
		Body PointInput
	}) (*struct{ Body MemoryPoint }, error) {
		part, err := s.onePartition(ctx, in.Collection, in.Partition, policies.Write)
		if err != nil {
			return nil, err
		}
		md := in.Body.Metadata
		if md == nil {
			md = map[string]any{}
		}
		id := identity(ctx)
		if in.Collection == memory.Episodic {
			md["source"] = part
		} else if _, ok := md["source"]; !ok {
			md["source"] = id.ID
		}
		md["when"] = memory.Now()
		p, err := s.embedPoint(ctx, memory.Point{ID: uuid.NewString(), Collection: in.Collection, Partition: part, Content: in.Body.Content, Metadata: md})
		if err != nil {
			return nil, err
		}
		return &struct{ Body MemoryPoint }{pointOf(p, nil)}, nil
	})

	register(s, huma.Operation{
		OperationID: "editPoint", Method: http.MethodPut, Path: "/memory/collections/{collection}/points/{point_id}",
		Summary: "Edit a memory", Tags: []string{"Memory"}, Errors: []int{http.StatusNotFound, http.StatusConflict},
	}, catNeed(policies.Memory, policies.Edit), func(ctx context.Context, in *struct {
		CollectionPath
		PartitionQuery
		PointID string `path:"point_id" maxLength:"128"`
		Body    PointInput
	}) (*struct{ Body MemoryPoint }, error) {
		part, err := s.onePartition(ctx, in.Collection, in.Partition, policies.Edit)
		if err != nil {
			return nil, err
		}
		old, err := s.deps.Memory.Get(ctx, in.Collection, part, in.PointID)
		if errors.Is(err, memory.ErrNotFound) {
			return nil, huma.Error404NotFound("no memory " + in.PointID + " within your reach")
		}
		if err != nil {
			return nil, s.internal(ctx, "edit memory", err)
		}
		md := in.Body.Metadata
		if md == nil {
			md = old.Metadata
		}
		if in.Collection == memory.Episodic {
			md["source"] = part
		}
		p, err := s.embedPoint(ctx, memory.Point{ID: old.ID, Collection: in.Collection, Partition: part, Content: in.Body.Content, Metadata: md})
		if err != nil {
			return nil, err
		}
		return &struct{ Body MemoryPoint }{pointOf(p, nil)}, nil
	})

	register(s, huma.Operation{
		OperationID: "deletePoint", Method: http.MethodDelete, Path: "/memory/collections/{collection}/points/{point_id}",
		Summary: "Delete a memory", Tags: []string{"Memory"}, Errors: []int{http.StatusNotFound},
	}, catNeed(policies.Memory, policies.Delete), func(ctx context.Context, in *struct {
		CollectionPath
		PartitionQuery
		PointID string `path:"point_id" maxLength:"128"`
	}) (*struct{ Body DeletedCount }, error) {
		part, err := s.onePartition(ctx, in.Collection, in.Partition, policies.Delete)
		if err != nil {
			return nil, err
		}
		n, err := s.deps.Memory.Delete(ctx, in.Collection, part, []string{in.PointID})
		if err != nil {
			return nil, s.internal(ctx, "delete memory", err)
		}
		if n == 0 {
			return nil, huma.Error404NotFound("no memory " + in.PointID + " within your reach")
		}
		return &struct{ Body DeletedCount }{DeletedCount{Deleted: map[string]int{in.Collection: n}}}, nil
	})

	register(s, huma.Operation{
		OperationID: "deletePointsByMetadata", Method: http.MethodDelete, Path: "/memory/collections/{collection}/points",
		Summary: "Delete memories by metadata", Description: "Deletes the points within your reach whose metadata has all the given values; with no body or {}, every point within your reach, as the Cat does.",
		Tags: []string{"Memory"},
	}, catNeed(policies.Memory, policies.Delete), func(ctx context.Context, in *struct {
		CollectionPath
		PartitionQuery
		Body *map[string]any `doc:"Metadata values every deleted point has; none (the Cat's default {}) matches every point."`
	}) (*struct{ Body DeletedCount }, error) {
		parts, err := s.partitions(ctx, in.Collection, in.Partition, policies.Delete)
		if err != nil {
			return nil, err
		}
		var filter map[string]any
		if in.Body != nil {
			filter = *in.Body
		}
		n, err := s.deps.Memory.DeleteWhere(ctx, in.Collection, parts, filter)
		if err != nil {
			return nil, s.internal(ctx, "delete memories", err)
		}
		return &struct{ Body DeletedCount }{DeletedCount{Deleted: map[string]int{in.Collection: n}}}, nil
	})

	register(s, huma.Operation{
		OperationID: "getConversationHistory", Method: http.MethodGet, Path: "/memory/conversation_history",
		Summary: "Conversation history", Tags: []string{"Memory"},
	}, catNeed(policies.Conversation, policies.Read), func(ctx context.Context, in *HistoryQuery) (*struct{ Body History }, error) {
		uid, err := s.historyOwner(ctx, in.UserID, policies.Read)
		if err != nil {
			return nil, err
		}
		turns, err := s.deps.Sessions.History().Recent(ctx, uid, 0)
		if err != nil {
			return nil, s.internal(ctx, "read history", err)
		}
		out := History{History: make([]ConversationMessage, 0, len(turns))}
		for _, t := range turns {
			out.History = append(out.History, ConversationMessage{Who: t.Who, UserID: uid, Text: t.Text, Message: t.Text, When: t.When, Why: t.Why})
		}
		return &struct{ Body History }{out}, nil
	})

	register(s, huma.Operation{
		OperationID: "deleteConversationHistory", Method: http.MethodDelete, Path: "/memory/conversation_history",
		Summary: "Forget the conversation", Tags: []string{"Memory"},
	}, catNeed(policies.Conversation, policies.Delete), func(ctx context.Context, in *HistoryQuery) (*struct{ Body HistoryDeleted }, error) {
		uid, err := s.historyOwner(ctx, in.UserID, policies.Delete)
		if err != nil {
			return nil, err
		}
		if err := s.deps.Sessions.ClearHistory(ctx, uid); err != nil {
			return nil, s.internal(ctx, "delete history", err)
		}
		return &struct{ Body HistoryDeleted }{HistoryDeleted{Deleted: true}}, nil
	})
}

// partitions resolves the partitions a request acts on: the named one when
// the policy allows it, else every one of the caller's own.
func (s *Server) partitions(ctx context.Context, collection, named string, action policies.Permission) ([]string, error) {
	if named == "" {
		parts, err := s.deps.Scope.Own(ctx, identity(ctx), collection, action)
		if err != nil {
			return nil, s.internal(ctx, "resolve memory partitions", err)
		}
		return parts, nil
	}
	p, err := s.onePartition(ctx, collection, named, action)
	if err != nil {
		return nil, err
	}
	return []string{p}, nil
}

// onePartition resolves the one partition a write acts on: the named one,
// or the caller's own episodic partition, or the shared space.
func (s *Server) onePartition(ctx context.Context, collection, named string, action policies.Permission) (string, error) {
	id := identity(ctx)
	part := named
	switch {
	case collection == memory.Procedural:
		// Plugins write procedural memory; through the API it is read and,
		// for those the policy lets (as the Cat lets MEMORY DELETE), deleted.
		if action == policies.Write || action == policies.Edit {
			return "", huma.Error403Forbidden("procedural memory is read-only through the API")
		}
		part = ""
	case part == "" && collection == memory.Episodic:
		part = id.ID
	case part == "":
		part = memory.DefaultSpace
	}
	if !memory.ValidPartition(collection, part) {
		return "", huma.Error422UnprocessableEntity(fmt.Sprintf("%q cannot name a %s partition (spaces use letters, digits, -, _ and .)", part, collection))
	}
	ok, err := s.deps.Scope.Allowed(id, collection, part, action)
	if err != nil {
		return "", s.internal(ctx, "decide memory access", err)
	}
	if !ok {
		return "", s.refused(id, memory.Object(collection, part), action)
	}
	return part, nil
}

// historyOwner resolves whose conversation a request means.
func (s *Server) historyOwner(ctx context.Context, named string, action policies.Permission) (string, error) {
	id := identity(ctx)
	uid := named
	if uid == "" {
		uid = id.ID
	}
	ok, err := s.allowed(ctx, "conversation:"+uid, action)
	if err != nil {
		return "", s.internal(ctx, "decide history access", err)
	}
	if !ok {
		return "", s.refused(id, "conversation:"+uid, action)
	}
	return uid, nil
}

// embedPoint embeds a point's content with the embedder in force and
// stores it.
func (s *Server) embedPoint(ctx context.Context, p memory.Point) (memory.Point, error) {
	emb := s.deps.Providers.Embedder()
	vecs, err := emb.Embed(ctx, []string{p.Content})
	if err != nil {
		return memory.Point{}, huma.Error502BadGateway("the embedder failed: " + err.Error())
	}
	p.Vector, p.Embedder = vecs[0], emb.Name()
	if err := s.deps.Memory.Upsert(ctx, []memory.Point{p}); err != nil {
		if errors.Is(err, memory.ErrDimensions) {
			return memory.Point{}, memoryConflict(err)
		}
		return memory.Point{}, s.internal(ctx, "store memory", err)
	}
	return p, nil
}
