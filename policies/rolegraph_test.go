package policies

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	defaultrolemanager "github.com/casbin/casbin/v3/rbac/default-role-manager"
)

// TestRoleGraphAnswersAsCasbin: the role graph, with the grants beside the
// rules of policy.csv, answers every question Casbin's default role manager
// answers when the grants are loaded among the rules (as grin did before):
// who holds what, directly and through chains of roles, and who are a
// role's members, while grants and rules are added and taken away in any
// order, the same link given by both, chains long enough to meet the depth
// limit, and cycles.
func TestRoleGraphAnswersAsCasbin(t *testing.T) {
	names := []string{"u1", "u2", "u3", "u4", "role:a", "role:b", "role:c", "role:d", "perm:x", "perm:y", "perm:z"}
	for l := range maxRoleDepth + 2 { // a chain longer than the limit
		names = append(names, fmt.Sprintf("role:chain%d", l))
	}
	type link struct{ from, to string }
	for seed := range uint64(20) {
		rnd := rand.New(rand.NewPCG(seed, 42))
		pick := func() link {
			return link{names[rnd.IntN(len(names))], names[rnd.IntN(len(names))]}
		}
		files := map[link]bool{}
		grants := newGrantTable()
		graph := newRoleGraph(grants)
		chain := func(to map[link]bool, add func(link)) {
			for l := range maxRoleDepth + 1 {
				k := link{fmt.Sprintf("role:chain%d", l), fmt.Sprintf("role:chain%d", l+1)}
				to[k] = true
				add(k)
			}
		}
		if seed%2 == 0 { // the chain in the file, else in the grants
			chain(files, func(k link) { graph.AddLink(k.from, k.to) })
		} else {
			chain(map[link]bool{}, func(k link) { grants.add(k.from, k.to) })
		}
		for step := range 60 {
			k := pick()
			switch rnd.IntN(4) {
			case 0:
				files[k] = true
				graph.AddLink(k.from, k.to)
			case 1:
				delete(files, k)
				graph.DeleteLink(k.from, k.to)
			case 2:
				grants.add(k.from, k.to)
			case 3:
				grants.remove(k.from, k.to)
			}
			// The reference: Casbin's own role manager with every link.
			ref := defaultrolemanager.NewRoleManagerImpl(maxRoleDepth)
			for l := range files {
				ref.AddLink(l.from, l.to)
			}
			grants.each(func(s string, roles []string) bool {
				for _, r := range roles {
					ref.AddLink(s, r)
				}
				return true
			})
			where := fmt.Sprintf("seed %d step %d", seed, step)
			for _, a := range names {
				for _, b := range names {
					want, _ := ref.HasLink(a, b)
					if got, _ := graph.HasLink(a, b); got != want {
						t.Fatalf("%s: HasLink(%s, %s) = %v, Casbin says %v", where, a, b, got, want)
					}
				}
				for _, q := range []struct {
					name     string
					got, ref func(string, ...string) ([]string, error)
				}{
					{"GetRoles", graph.GetRoles, ref.GetRoles},
					{"GetUsers", graph.GetUsers, ref.GetUsers},
					{"GetImplicitRoles", graph.GetImplicitRoles, ref.GetImplicitRoles},
					{"GetImplicitUsers", graph.GetImplicitUsers, ref.GetImplicitUsers},
				} {
					got, _ := q.got(a)
					want, _ := q.ref(a)
					slices.Sort(got)
					slices.Sort(want)
					if !slices.Equal(got, want) {
						t.Fatalf("%s: %s(%s) = %v, Casbin says %v", where, q.name, a, got, want)
					}
				}
			}
		}
	}
}

// TestGrantTableSharesNoChange: subjects holding the same roles share one
// list of them, and a change of one subject's roles never reaches another.
func TestGrantTableSharesNoChange(t *testing.T) {
	g := newGrantTable()
	for _, s := range []string{"alice", "bob", "carol"} {
		g.set(s, []string{"perm:memory:read", "perm:users:read"})
	}
	if len(g.lists) != 1 {
		t.Fatalf("%d lists for three subjects with the same roles, want 1", len(g.lists))
	}
	g.add("alice", "perm:plugins:read")
	g.remove("bob", "perm:users:read")
	for s, want := range map[string][]string{
		"alice": {"perm:memory:read", "perm:plugins:read", "perm:users:read"},
		"bob":   {"perm:memory:read"},
		"carol": {"perm:memory:read", "perm:users:read"},
	} {
		if got := g.rolesOf(s); !slices.Equal(got, want) {
			t.Errorf("%s holds %v, want %v", s, got, want)
		}
	}
	// Lists whose roles join alike stay apart.
	g.set("dave", []string{"role:a\x00role:b"})
	g.set("erin", []string{"role:a", "role:b"})
	g.set("fred", []string{"1:role:a"})
	g.set("gina", []string{"role:a1:"})
	if len(g.lists) != 7 || len(g.rolesOf("dave")) != 1 || len(g.rolesOf("erin")) != 2 {
		t.Errorf("lists %d, dave holds %q, erin %q", len(g.lists), g.rolesOf("dave"), g.rolesOf("erin"))
	}
	for _, s := range []string{"dave", "erin", "fred", "gina"} {
		g.set(s, nil)
	}
	if g.size() != 6 {
		t.Errorf("%d grants, want 6", g.size())
	}
	g.set("carol", nil)
	g.set("alice", nil)
	g.set("bob", nil)
	if len(g.lists) != 0 || len(g.subjects) != 0 || g.size() != 0 {
		t.Errorf("with no grants left the table still holds %d lists, %d subjects, %d grants", len(g.lists), len(g.subjects), g.size())
	}
}
