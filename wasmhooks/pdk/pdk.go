// Package pdk is the kit for writing grin hooks in Go. A plugin is a
// package main that registers its hooks in init:
//
//	package main
//
//	import (
//		"encoding/json"
//		"github.com/grin-ai/grin/wasmhooks/pdk"
//	)
//
//	func init() {
//		pdk.Hook("before_cat_reads_message", func(ctx pdk.Ctx, in json.RawMessage) (json.RawMessage, error) {
//			pdk.Log(pdk.Info, "reading a message of "+ctx.UserID())
//			return in, nil
//		})
//	}
//
//	func main() {}
//
// and is built with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin.wasm .
//
// which makes a module of grin's hook ABI v2 (docs/plugins.md); add
// -tags grin_abi_v1 for the older ABI v1, which grin still runs.
//
// A hook receives the payload as JSON and returns the new payload; it
// returns nil to leave it unchanged, or an error, which the host logs with
// the plugin's id before going on with the previous payload. A panic is
// turned into such an error. The payload is valid only during the call:
// the kit reuses its buffer, so copy what you keep.
//
// What a call costs a hook is what it asks for: the context (Ctx's
// methods) is read from the host on first use in a call, the settings only
// when they changed since the kit last decoded them.
//
// The kit yields to the Go scheduler (runtime.Gosched) every YieldEvery
// calls, and sooner when calls moved much data: without that, a Go
// guest's background garbage collection work never runs and a hook that
// allocates runs out of memory after tens of thousands of calls; yielding
// on every call cost more than the rest of a small hook.
//
// Hooks must not keep one user's data in package variables unless the
// plugin's isolation is per-user or per-call: a shared instance serves all
// users.
package pdk

import (
	"encoding/json"
	"fmt"
	"runtime"
)

// Ctx tells a hook for whom and with what settings it runs. Its methods
// read from the host on first use in a call; a Ctx is valid only during
// the call it was given to.
type Ctx struct{ hook string }

// Hook is the hook point's name.
func (c Ctx) Hook() string { return c.hook }

// UserID is the id of the user the hook runs for.
func (Ctx) UserID() string { return cur.field(fieldUserID) }

// Username is that user's name, when the host knows it.
func (Ctx) Username() string { return cur.field(fieldUsername) }

// PluginID is this plugin's id.
func (Ctx) PluginID() string { return cur.field(fieldPluginID) }

// RequestID identifies the request the call is part of: the
// X-Request-Id grin answered it with (the client's, when sane), or
// "<socket id>.<n>" for a WebSocket's n-th message. grin's log lines of
// that request, this plugin's included, carry it as request_id.
func (Ctx) RequestID() string { return cur.field(fieldRequestID) }

// Settings are the plugin's settings, as the administrator saved them.
// The map is shared by the calls until the settings change: read it, do
// not modify it.
func (Ctx) Settings() map[string]any { return cur.settingsMap() }

// HookFunc is a hook: it gets the payload and returns the new one, or nil
// for "unchanged".
type HookFunc func(ctx Ctx, in json.RawMessage) (json.RawMessage, error)

var hooks = map[string]HookFunc{}

// Hook registers fn for the hook point name (call it from init).
func Hook(name string, fn HookFunc) { hooks[name] = fn }

// Log levels.
const (
	Debug = 0
	Info  = 1
	Warn  = 2
	Error = 3
)

// Log writes a line to grin's log, tagged with the plugin's id.
func Log(level int, msg string) { hostLog(level, msg) }

// Fields of the call's context, as ABI v2's ctx_read numbers them.
const (
	fieldUserID = iota
	fieldUsername
	fieldPluginID
	fieldRequestID
	fieldHook
	fields
)

// callInfo is the current call's context, filled on first use, and the
// settings the kit decoded last.
type callInfo struct {
	have [fields]bool
	vals [fields]string

	// settingsVersion is the version of the current call's settings
	// (ABI v2), 0 when unknown (ABI v1 and Invoke: decoded every call).
	settingsVersion uint32
	settingsRaw     func() []byte
	decoded         map[string]any
	decodedVersion  uint32
	decodedValid    bool
}

var cur callInfo

func (c *callInfo) field(f int) string {
	if !c.have[f] {
		c.vals[f], c.have[f] = hostCtxRead(f), true
	}
	return c.vals[f]
}

func (c *callInfo) settingsMap() map[string]any {
	if c.decodedValid && c.settingsVersion != 0 && c.decodedVersion == c.settingsVersion {
		return c.decoded
	}
	var m map[string]any
	if c.settingsRaw != nil {
		if raw := c.settingsRaw(); len(raw) > 0 {
			if err := json.Unmarshal(raw, &m); err != nil {
				hostLog(Warn, "pdk: the plugin's settings are not a JSON object: "+err.Error())
			}
		}
	}
	if m == nil {
		m = map[string]any{}
	}
	c.decoded, c.decodedVersion, c.decodedValid = m, c.settingsVersion, true
	return m
}

// handle runs the hook over the payload and says what to answer.
func handle(name string, payload []byte) (out []byte, status uint32, errMsg string) {
	fn := hooks[name]
	if fn == nil {
		return nil, 2, ""
	}
	defer func() {
		if r := recover(); r != nil {
			out, status, errMsg = nil, 1, fmt.Sprintf("hook %s panicked: %v", name, r)
		}
	}()
	res, err := fn(Ctx{hook: name}, json.RawMessage(payload))
	if err != nil {
		return nil, 1, err.Error()
	}
	if res == nil {
		return nil, 2, ""
	}
	return res, 0, ""
}

// YieldEvery is how many calls the kit makes between two yields to the
// Go scheduler; YieldBytes of input and output since the last yield make
// it yield sooner. Both keep a guest's memory flat (see the package
// comment); measured in wasmhooks' TestManyCallsKeepMemoryFlat.
const (
	YieldEvery = 64
	YieldBytes = 1 << 20
)

var sinceYield struct{ calls, bytes int }

// maybeYield yields when YieldEvery calls or YieldBytes went by.
func maybeYield(moved int) {
	sinceYield.calls++
	sinceYield.bytes += moved
	if sinceYield.calls >= YieldEvery || sinceYield.bytes >= YieldBytes {
		sinceYield.calls, sinceYield.bytes = 0, 0
		runtime.Gosched()
	}
}

// inputBuf is reused by every call; it grows to the largest input.
var inputBuf []byte

func input(n uint32) []byte {
	if cap(inputBuf) < int(n) {
		inputBuf = make([]byte, n)
	}
	return inputBuf[:n]
}

// runEnvelope handles an ABI v1 envelope: the context comes from it.
func runEnvelope(name string, raw []byte) (out []byte, status uint32, errMsg string) {
	env, err := splitEnvelope(raw)
	if err != nil {
		return nil, 1, err.Error()
	}
	if err := cur.loadEnvelope(env, name); err != nil {
		return nil, 1, "pdk: the host's ctx is not JSON: " + err.Error()
	}
	return handle(name, env.payload)
}
