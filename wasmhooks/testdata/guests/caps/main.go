// Guest caps uses every host capability, as the message tells it:
// "recall: TEXT", "store: TEXT", "kvset: KEY=VALUE", "kvget: KEY",
// "kvdel: KEY", "pkvset: KEY=VALUE", "pkvget: KEY", "notify: TEXT",
// "complete: PROMPT", "fetch: URL". The message text becomes the result,
// or "ERR code: message" when grin refused or the call failed, so the
// reply's why.input shows what the plugin got.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/grin-ai/grin/wasmhooks/pdk"
)

func init() {
	pdk.Hook("before_cat_reads_message", func(ctx pdk.Ctx, in json.RawMessage) (json.RawMessage, error) {
		var msg map[string]any
		if err := json.Unmarshal(in, &msg); err != nil {
			return nil, err
		}
		text, _ := msg["text"].(string)
		cmd, arg, ok := strings.Cut(text, ": ")
		if !ok {
			return nil, nil
		}
		result, err := run(ctx, cmd, arg)
		if err != nil {
			var he *pdk.HostError
			if !errors.As(err, &he) {
				return nil, err
			}
			result = "ERR " + he.Code + ": " + he.Message
		}
		msg["text"] = result
		return json.Marshal(msg)
	})
}

func run(ctx pdk.Ctx, cmd, arg string) (string, error) {
	key, value, _ := strings.Cut(arg, "=")
	switch cmd {
	case "recall":
		m, err := pdk.Recall(ctx, arg, 10)
		if err != nil {
			return "", err
		}
		var parts []string
		for _, d := range m.Episodic {
			parts = append(parts, "episodic:"+d.PageContent)
		}
		for _, d := range m.Declarative {
			parts = append(parts, "declarative:"+d.PageContent)
		}
		return "RECALLED [" + strings.Join(parts, " | ") + "]", nil
	case "store":
		id, err := pdk.Remember(ctx, arg, map[string]any{"kind": "note"})
		if err != nil {
			return "", err
		}
		return "STORED " + id, nil
	case "kvset":
		return "SET", pdk.KVSet(ctx, key, value)
	case "kvget":
		v, found, err := pdk.KVGet(ctx, key)
		return fmt.Sprintf("GOT %q %v", v, found), err
	case "kvdel":
		return "DELETED", pdk.KVDelete(ctx, key)
	case "pkvset":
		return "SET", pdk.PluginKVSet(ctx, key, value)
	case "pkvget":
		v, found, err := pdk.PluginKVGet(ctx, key)
		return fmt.Sprintf("GOT %q %v", v, found), err
	case "notify":
		return "NOTIFIED", pdk.Notify(ctx, arg)
	case "complete":
		c, err := pdk.Complete(ctx, "", arg, 0)
		return "COMPLETED " + c.Text, err
	case "fetch":
		r, err := pdk.Fetch(ctx, arg)
		return fmt.Sprintf("FETCHED %d %s", r.Status, r.Body), err
	}
	return "", fmt.Errorf("unknown command %q", cmd)
}

func main() {}
