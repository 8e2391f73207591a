// Package wasmhooks runs plugins written as WebAssembly modules at the
// Cat's hook points, sandboxed by wazero: no filesystem, no network, a
// memory cap, a budget and a deadline on every call, and nothing shared
// with the server but the few functions of the versioned host module.
//
// Two ABIs are served side by side; a module says which it speaks by its
// marker export. docs/plugins.md describes both byte for byte.
//
// ABI v1 (marker grin_hook_abi_v1, imports from grin_v1): the hook gets one
// JSON envelope {"abi":1, "hook", "ctx":{"user_id","username","plugin_id",
// "request_id"}, "settings":{…}, "payload":…} and must scan it.
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
// ABI v2 (marker grin_hook_abi_v2, imports from grin_v2): the hook gets the
// payload alone and asks the host for the rest only when it needs it, so
// a hook that reads nothing but its payload pays for nothing else.
//
//	exports  memory, grin_hook_abi_v2(), _initialize() as in v1
//	         hook_<hook name>(payload_len i32, settings_version i32) i32
//	imports  grin_v2.input_read, output_write, error_write, log as in v1
//	         grin_v2.ctx_read(field, ptr, len i32) i32       copy one field of the call's context
//	         grin_v2.settings_read(ptr, len i32) i32         copy the settings (JSON)
//
// ctx_read and settings_read copy at most len bytes and return the value's
// full length (-1 for an unknown field), so a guest with a small buffer
// learns the size it needs. settings_version changes whenever the settings
// change: a guest keeps the settings it decoded and reads them again only
// when the version differs.
//
// Both host modules also offer host_call and host_result, the host
// capabilities (capabilities.go).
//
// In both, a hook returns 0 when it wrote a new payload, 1 when it wrote an
// error, 2 when the payload is unchanged. Go authors use package
// wasmhooks/pdk, which builds v2 modules.
package wasmhooks

import "encoding/json"

// ABI constants.
const (
	ABIVersion   = 1
	HostModule   = "grin_v1"
	MarkerExport = "grin_hook_abi_v1"
	HookPrefix   = "hook_"
	InitExport   = "_initialize"

	// HostModuleV2 and MarkerExportV2 are ABI v2's.
	HostModuleV2   = "grin_v2"
	MarkerExportV2 = "grin_hook_abi_v2"
)

// Hook results.
const (
	StatusOutput    = 0
	StatusError     = 1
	StatusUnchanged = 2
)

// Fields of ctx_read (ABI v2).
const (
	CtxUserID    = 0
	CtxUsername  = 1
	CtxPluginID  = 2
	CtxRequestID = 3
	CtxHook      = 4
)

// Input is what an ABI v1 hook receives: settings and payload are passed
// through as the JSON they already are.
type Input struct {
	ABI      int             `json:"abi"`
	Hook     string          `json:"hook"`
	Ctx      CallContext     `json:"ctx"`
	Settings json.RawMessage `json:"settings"`
	Payload  json.RawMessage `json:"payload"`
}

// CallContext tells a hook for whom it runs: in v1's envelope, and field
// by field through v2's ctx_read.
type CallContext struct {
	UserID string `json:"user_id"`
	// Username is the user's name for people (for users without an
	// account, their id).
	Username  string `json:"username"`
	PluginID  string `json:"plugin_id"`
	RequestID string `json:"request_id"`
}
