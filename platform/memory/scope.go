package memory

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/grin-ai/grin/platform/auth"
	"github.com/grin-ai/grin/policies"
)

// Scope answers which partitions an identity reaches, by asking the
// policy: episodic partitions are objects "episodic:<user id>", declarative
// spaces "declarative:<space>", procedural memory "procedural".
//
// Notes: safe for concurrent use.
type Scope struct {
	store  Store
	policy *policies.Enforcer
}

// NewScope returns the scope of store under policy.
func NewScope(store Store, policy *policies.Enforcer) *Scope {
	return &Scope{store: store, policy: policy}
}

// Object is the policy object of a partition.
func Object(collection, partition string) string {
	if collection == Procedural {
		return Procedural
	}
	return collection + ":" + partition
}

// Allowed reports whether id may act on one partition.
func (s *Scope) Allowed(id auth.Identity, collection, partition string, action policies.Permission) (bool, error) {
	return s.policy.Decide(policies.Request{Subjects: id.Subjects, Self: id.ID, Object: Object(collection, partition), Action: action.Action()})
}

// Own returns the partitions of a collection that are the caller's by
// default: their own episodic partition, every declarative space they may
// act on, procedural memory; each only when the policy allows action.
// Other users' episodic partitions are never included, even for those who
// may reach them: those are named explicitly (Partition).
func (s *Scope) Own(ctx context.Context, id auth.Identity, collection string, action policies.Permission) ([]string, error) {
	var candidates []string
	switch collection {
	case Episodic:
		candidates = []string{id.ID}
	case Declarative:
		parts, err := s.store.Partitions(ctx, Declarative)
		if err != nil {
			return nil, err
		}
		candidates = parts
		if !slices.Contains(parts, DefaultSpace) {
			candidates = append(candidates, DefaultSpace)
		}
	case Procedural:
		candidates = []string{""}
	default:
		return nil, fmt.Errorf("unknown collection %q", collection)
	}
	var out []string
	for _, p := range candidates {
		ok, err := s.Allowed(id, collection, p, action)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// Recall recalls from the partitions of a collection that are the
// caller's by default (Own, for reading): what a chat turn and
// /memory/recall search.
func (s *Scope) Recall(ctx context.Context, id auth.Identity, collection string, q Query) ([]Match, error) {
	parts, err := s.Own(ctx, id, collection, policies.Read)
	if err != nil {
		return nil, err
	}
	return s.store.Recall(ctx, collection, parts, q)
}

// ValidPartition reports whether name can name a partition of collection:
// any identity id for episodic memory; for spaces, letters, digits, "-",
// "_" and ".", so a space name reads unambiguously in a policy object.
func ValidPartition(collection, name string) bool {
	switch collection {
	case Episodic:
		return name != ""
	case Declarative:
		return name != "" && len(name) <= 64 && strings.IndexFunc(name, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
		}) < 0
	case Procedural:
		return name == ""
	}
	return false
}
