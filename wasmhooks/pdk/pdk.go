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
//			pdk.Log(pdk.Info, "reading a message of "+ctx.UserID)
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
// A hook receives the payload as JSON and returns the new payload; it
// returns nil to leave it unchanged, or an error, which the host logs with
// the plugin's id before going on with the previous payload. A panic is
// turned into such an error. After each call the kit yields to the Go
// runtime (runtime.Gosched): without that, a Go guest's background
// sweeper never runs and a hook that allocates runs out of memory after
// tens of thousands of calls.
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

// Ctx tells a hook for whom and with what settings it runs.
type Ctx struct {
	Hook   string
	UserID string
	// Username is the user's name for people; for users without an
	// account (a key's or a shadow user), their id.
	Username  string
	PluginID  string
	RequestID string
	// Settings are the plugin's settings, as the administrator saved them.
	Settings map[string]any
}

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

// handle decodes the input, runs the hook and says what to answer.
func handle(name string, raw []byte) (out []byte, status uint32, errMsg string) {
	fn := hooks[name]
	if fn == nil {
		return nil, 2, ""
	}
	env, err := splitEnvelope(raw)
	if err != nil {
		return nil, 1, err.Error()
	}
	ctx, err := decodeCtx(env, name)
	if err != nil {
		return nil, 1, "pdk: the host's ctx or settings are not JSON: " + err.Error()
	}
	defer func() {
		if r := recover(); r != nil {
			out, status, errMsg = nil, 1, fmt.Sprintf("hook %s panicked: %v", name, r)
		}
	}()
	res, err := fn(ctx, json.RawMessage(env.payload))
	if err != nil {
		return nil, 1, err.Error()
	}
	if res == nil {
		return nil, 2, ""
	}
	return res, 0, ""
}

// run is every export's body: read the input from the host, handle it,
// write the answer back, and yield so the garbage collector keeps up.
func run(name string, n uint32) uint32 {
	defer runtime.Gosched()
	buf := make([]byte, n)
	if n > 0 {
		hostInputRead(buf)
	}
	out, status, errMsg := handle(name, buf)
	switch status {
	case 0:
		hostOutputWrite(out)
	case 1:
		hostErrorWrite(errMsg)
	}
	return status
}
