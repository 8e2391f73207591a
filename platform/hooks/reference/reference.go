// Package reference turns the catalogue of hook points into the reference
// hook authors read: JSON for GET /plugins/hooks and Markdown for
// docs/hooks.md, with each payload's JSON Schema generated from its Go
// type. Nothing here is written by hand about a payload, so the reference
// cannot say something the pipeline does not do.
package reference

//go:generate go run ../../../internal/hookdoc -o ../../../docs/hooks.md -pdk ../../../wasmhooks/pdk/hooks_gen.go -exports ../../../wasmhooks/pdk

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"

	"github.com/danielgtaylor/huma/v2"

	"github.com/grin-ai/grin/platform/hooks"
)

// HookPoint is one hook point in the reference.
type HookPoint struct {
	hooks.Info
	// Payload is the JSON Schema of the payload (the hook's input and
	// output), with the types it refers to under $defs.
	Payload map[string]any `json:"payload" doc:"The JSON Schema of the payload, the hook's input and output; referenced types are under $defs."`
	// Example is a payload as the pipeline passes it.
	Example any `json:"example" doc:"A payload as the pipeline passes it."`
}

// Build returns the reference of every hook point, in pipeline order.
func Build() []HookPoint {
	var out []HookPoint
	for _, h := range hooks.Catalogue() {
		// The example goes through JSON, as a plugin sees it.
		var example any
		b, err := json.Marshal(h.ExamplePayload())
		if err != nil {
			panic(fmt.Sprintf("hook %s: example: %v", h.Describe().Name, err))
		}
		json.Unmarshal(b, &example)
		out = append(out, HookPoint{Info: h.Describe(), Payload: Schema(h.PayloadType()), Example: example})
	}
	return out
}

// Schema returns the standalone JSON Schema of t: named struct types go
// under $defs and are referred to from there.
func Schema(t reflect.Type) map[string]any {
	reg := huma.NewMapRegistry("#/$defs/", huma.DefaultSchemaNamer)
	s := reg.Schema(t, true, "")
	var doc map[string]any
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("schema of %s: %v", t, err))
	}
	json.Unmarshal(b, &doc)
	doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	if defs := reg.Map(); len(defs) > 0 {
		names := make([]string, 0, len(defs))
		for n := range defs {
			names = append(names, n)
		}
		sort.Strings(names)
		all := map[string]any{}
		for _, n := range names {
			var d any
			b, _ := json.Marshal(defs[n])
			json.Unmarshal(b, &d)
			all[n] = d
		}
		doc["$defs"] = all
	}
	return doc
}
