package reference_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/grin-ai/grin/platform/hooks/reference"
)

// TestCommittedReferenceIsCurrent: docs/hooks.md is what the catalogue
// generates; a change to a hook point or a payload type must come with the
// regenerated file.
func TestCommittedReferenceIsCurrent(t *testing.T) {
	committed, err := os.ReadFile("../../../docs/hooks.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := reference.Markdown(reference.Build()); !bytes.Equal(committed, want) {
		t.Errorf("docs/hooks.md is stale: run go generate ./platform/hooks/...")
	}
}

// TestCommittedGoKitIsCurrent: the Go kit's typed hooks
// (wasmhooks/pdk/hooks_gen.go) are what the catalogue generates.
func TestCommittedGoKitIsCurrent(t *testing.T) {
	committed, err := os.ReadFile("../../../wasmhooks/pdk/hooks_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	want, err := reference.GoKit()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(committed, want) {
		t.Errorf("wasmhooks/pdk/hooks_gen.go is stale: run go generate ./platform/hooks/...")
	}
}

// TestCommittedGoExportsAreCurrent: the Go kit's exports, one per hook
// point and ABI (wasmhooks/pdk/exports_v1.go, exports_v2.go), are what
// the catalogue generates, so a new hook point cannot lack its export.
func TestCommittedGoExportsAreCurrent(t *testing.T) {
	for _, abi := range []int{1, 2} {
		path := fmt.Sprintf("../../../wasmhooks/pdk/exports_v%d.go", abi)
		committed, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		want, err := reference.GoExports(abi)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(committed, want) {
			t.Errorf("%s is stale: run go generate ./platform/hooks/...", path)
		}
	}
}

// TestExamplesMatchTheirSchemas: each hook's example is a payload its
// schema accepts, so neither says something the other does not.
func TestExamplesMatchTheirSchemas(t *testing.T) {
	for _, e := range reference.Build() {
		b, _ := json.Marshal(e.Payload)
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		c := jsonschema.NewCompiler()
		if err := c.AddResource("payload.json", doc); err != nil {
			t.Fatalf("%s: %v", e.Name, err)
		}
		s, err := c.Compile("payload.json")
		if err != nil {
			t.Fatalf("%s: schema: %v", e.Name, err)
		}
		if err := s.Validate(e.Example); err != nil {
			t.Errorf("%s: the example does not match the schema: %v", e.Name, err)
		}
	}
}
