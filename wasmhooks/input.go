package wasmhooks

import (
	"encoding/json"

	"github.com/grin-ai/grin/platform/hooks"
)

// EncodeInput is the JSON a hook receives: the server's pipeline and
// grin plugin run both build it here, so a plugin run locally sees exactly
// what it will see on the server.
func EncodeInput(hook string, caller hooks.Caller, plugin string, settings, payload json.RawMessage) ([]byte, error) {
	if len(settings) == 0 {
		settings = json.RawMessage("{}")
	}
	return json.Marshal(Input{ABI: ABIVersion, Hook: hook, Ctx: CallContext{UserID: caller.UserID, Username: caller.Username, PluginID: plugin, RequestID: caller.RequestID}, Settings: settings, Payload: payload})
}
