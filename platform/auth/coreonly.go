package auth

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/grin-ai/grin/platform/settings"
)

// CoreOnly is the configuration that installs no configurable handler:
// only the embedder's handlers and the built-in JWT and key paths.
const CoreOnly = "CoreOnlyAuthConfig"

// CoreOnlyFactory offers CoreOnly to the auth handler settings; it is the
// default selection.
func CoreOnlyFactory() settings.Factory[Handler] {
	return settings.Factory[Handler]{
		Name:     CoreOnly,
		Schema:   map[string]any{"type": "object", "title": "Core only", "description": "grin's own tokens and keys only.", "properties": map[string]any{}, "additionalProperties": false},
		Defaults: json.RawMessage(`{}`),
		Build: func(_ context.Context, raw json.RawMessage) (Handler, error) {
			var v map[string]any
			if err := json.Unmarshal(raw, &v); err != nil || len(v) != 0 {
				return nil, fmt.Errorf("%s takes no settings; send {}", CoreOnly)
			}
			return nil, nil
		},
	}
}
