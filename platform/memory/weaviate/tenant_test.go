package weaviate

import (
	"math/rand/v2"
	"regexp"
	"strconv"
	"testing"
)

var tenantPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func TestTenantNames(t *testing.T) {
	for id, want := range map[string]string{
		"alice":                                "ualice",
		"":                                     "u",
		"6f1c2b7e-1d2a-4c3b-9a8e-0f1e2d3c4b5a": "u6f1c2b7e-2D1d2a-2D4c3b-2D9a8e-2D0f1e2d3c4b5a",
		"oidc:bob":                             "uoidc-3Abob",
		"a-b":                                  "ua-2Db",
		"a_b":                                  "ua_b",
	} {
		if got := TenantName(id); got != want {
			t.Errorf("TenantName(%q) = %q, want %q", id, got, want)
		}
	}
}

// TestTenantNamesAreValidAndInjective: random ids, including ones that
// look like escapes and ones too long to keep readable, all map to valid
// and distinct names.
func TestTenantNamesAreValidAndInjective(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("ab-_:/ éA0")
	seen := map[string]string{}
	check := func(id string) {
		name := TenantName(id)
		if !tenantPattern.MatchString(name) {
			t.Fatalf("TenantName(%q) = %q is not a valid tenant name", id, name)
		}
		if other, ok := seen[name]; ok && other != id {
			t.Fatalf("%q and %q share the tenant %q", id, other, name)
		}
		seen[name] = id
		if back, ok := PartitionOf(name); ok && back != id {
			t.Fatalf("PartitionOf(%q) = %q, want %q", name, back, id)
		} else if !ok && name[0] == 'u' {
			t.Fatalf("PartitionOf(%q) cannot read back a readable name", name)
		}
	}
	for i := range 20000 {
		n := rng.IntN(80)
		b := make([]byte, n)
		for j := range b {
			b[j] = alphabet[rng.IntN(len(alphabet))]
		}
		check(string(b))
		check(strconv.Itoa(i))
	}
	// Escape lookalikes: a literal "-2D" in an id is itself escaped.
	check("x-2Dy")
	check("x--2Dy")
}
