// Guest ctxprobe answers with everything its Ctx tells it, and how many
// times the kit decoded its settings (a new map each time).
package main

import (
	"encoding/json"
	"reflect"

	"github.com/grin-ai/grin/wasmhooks/pdk"
)

var (
	lastSettings uintptr
	decodes      int
)

func init() {
	pdk.Hook("before_cat_reads_message", func(ctx pdk.Ctx, in json.RawMessage) (json.RawMessage, error) {
		s := ctx.Settings()
		if p := reflect.ValueOf(s).Pointer(); p != lastSettings {
			lastSettings = p
			decodes++
		}
		return json.Marshal(map[string]any{
			"hook": ctx.Hook(), "user": ctx.UserID(), "username": ctx.Username(),
			"plugin": ctx.PluginID(), "request": ctx.RequestID(),
			"suffix": s["suffix"], "decodes": decodes, "payload": in,
		})
	})
}

func main() {}
