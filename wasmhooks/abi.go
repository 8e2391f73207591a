// Package wasmhooks runs plugins written as WebAssembly modules at the
// Cat's hook points, sandboxed by wazero: no filesystem, no network, a
// memory cap, a deadline on every call, and nothing shared with the server
// but the few functions of the versioned host module.
//
// ABI v1, what a guest must have:
//
//	exports  memory
//	         grin_hook_abi_v1()                     an empty marker
//	         hook_<hook name>(input_len i32) i32    one per hook
//	         _initialize()                          optional; called once per instance
//	imports  grin_v1.input_read(ptr, len i32) i32   copy the input into guest memory
//	         grin_v1.output_write(ptr, len i32)     the new payload (status 0)
//	         grin_v1.error_write(ptr, len i32)      an error message (status 1)
//	         grin_v1.log(level, ptr, len i32)       a log line (level: 0 debug … 3 error)
//	         and wasi_snapshot_preview1, as Go's wasip1 port needs it
//
// The input is JSON {"abi":1, "hook", "ctx":{"user_id","username","plugin_id",
// "request_id"}, "settings":{…}, "payload":…}; a hook returns 0 when it
// wrote a new payload, 1 when it wrote an error, 2 when the payload is
// unchanged. Go authors use package wasmhooks/pdk.
package wasmhooks

import "encoding/json"

// ABI constants.
const (
	ABIVersion   = 1
	HostModule   = "grin_v1"
	MarkerExport = "grin_hook_abi_v1"
	HookPrefix   = "hook_"
	InitExport   = "_initialize"
)

// Hook results.
const (
	StatusOutput    = 0
	StatusError     = 1
	StatusUnchanged = 2
)

// Input is what a hook receives: settings and payload are passed through
// as the JSON they already are.
type Input struct {
	ABI      int             `json:"abi"`
	Hook     string          `json:"hook"`
	Ctx      CallContext     `json:"ctx"`
	Settings json.RawMessage `json:"settings"`
	Payload  json.RawMessage `json:"payload"`
}

// CallContext tells a hook for whom it runs.
type CallContext struct {
	UserID string `json:"user_id"`
	// Username is the user's name for people (for users without an
	// account, their id).
	Username  string `json:"username"`
	PluginID  string `json:"plugin_id"`
	RequestID string `json:"request_id"`
}
