package wasmhooks

import (
	"encoding/json"

	"github.com/grin-ai/grin/platform/hooks"
)

// EncodeInput is the JSON a hook receives: the server's pipeline and
// grin plugin run both build it here, so a plugin run locally sees exactly
// what it will see on the server.
func EncodeInput(hook string, caller hooks.Caller, plugin string, settings, payload json.RawMessage) ([]byte, error) {
	return encodeEnvelope(hook, NewCallContext(caller, plugin), settings, payload)
}

// NewCallContext is the context of a call for caller to plugin: what an
// ABI v1 hook finds in its envelope's ctx and an ABI v2 hook reads with
// ctx_read.
func NewCallContext(caller hooks.Caller, plugin string) CallContext {
	return CallContext{UserID: caller.UserID, Username: caller.Username, PluginID: plugin, RequestID: caller.RequestID}
}

// encodeEnvelope is ABI v1's envelope; missing settings are {}.
func encodeEnvelope(hook string, cc CallContext, settings, payload json.RawMessage) ([]byte, error) {
	if len(settings) == 0 {
		settings = json.RawMessage("{}")
	}
	return json.Marshal(Input{ABI: ABIVersion, Hook: hook, Ctx: cc, Settings: settings, Payload: payload})
}
