// Package work is what every benchmark guest does in its JSON hook, so
// grin, raw wazero and Extism run the same code per call.
package work

import (
	"encoding/json"
	"strings"
)

// Transform decodes a JSON object with encoding/json, upper-cases its
// "text" and adds a field, and encodes it again.
func Transform(in []byte) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(in, &m); err != nil {
		return nil, err
	}
	if s, ok := m["text"].(string); ok {
		m["text"] = strings.ToUpper(s)
	}
	m["seen_by"] = "bench"
	return json.Marshal(m)
}
