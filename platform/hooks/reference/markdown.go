package reference

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/grin-ai/grin/platform/hooks"
)

// Markdown renders the reference as docs/hooks.md.
func Markdown(entries []HookPoint) []byte {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Hook points\n\n")
	p("<!-- Generated from platform/hooks/catalogue.go by `go generate ./platform/hooks/...`; do not edit. -->\n\n")
	p("Every point where grin calls plugins, in the order it calls them, with the payload each hook\n")
	p("receives and returns, and what changing each field does. The same reference is served as JSON\n")
	p("at `GET /plugins/hooks`, without credentials. How to write, build and upload a plugin:\n")
	p("[plugins.md](plugins.md).\n\n")
	p("A hook gets its payload inside the ABI's envelope, `{\"abi\": 1, \"hook\", \"ctx\": {\"user_id\", \"username\",\n")
	p("\"plugin_id\", \"request_id\"}, \"settings\", \"payload\"}`, and returns the new payload (or leaves it\n")
	p("unchanged). Plugins implementing the same hook run by descending priority, each receiving the\n")
	p("previous one's output. A hook that fails or runs past its deadline is logged (in the server's log\n")
	p("and at `GET /plugins/logs/{id}`) and skipped: the pipeline goes on with the payload as it was. Output\n")
	p("that does not have the payload's shape is ignored the same way, and said in the server's log.\n\n")
	p("`ctx.request_id` names the request the call is part of: the `X-Request-Id` grin answered it with\n")
	p("(the client's own when it is 1 to 128 letters, digits and `._-:`, else a new one), or for a\n")
	p("WebSocket's n-th message `<socket id>.<n>`, the socket id being its handshake's. Every line of\n")
	p("grin's log for that request, the plugin's own lines included, carries it as `request_id`, so an\n")
	p("operator can follow a client's report to what each plugin did.\n\n")

	p("## Which hook changes what\n\n")
	p("A mark means the hook's output can change it. To keep something a user said out of everything\n")
	p("(the history, `why.input`, episodic memory, the prompt), change the message in\n")
	p("`before_cat_reads_message`: `before_cat_stores_episodic_memory` changes only what episodic memory\n")
	p("stores, after the message has been everywhere else.\n\n")
	targets := hooks.Targets()
	p("| hook |")
	for _, t := range targets {
		p(" %s |", strings.ReplaceAll(string(t), "_", " "))
	}
	p("\n| --- |%s\n", strings.Repeat(" :-: |", len(targets)))
	for _, e := range entries {
		p("| [`%s`](#%s) |", e.Name, e.Name)
		for _, t := range targets {
			if slices.Contains(e.Reaches, t) {
				p(" ✓ |")
			} else {
				p("   |")
			}
		}
		p("\n")
	}
	p("\n- **recall**: which memories are recalled (`why.memory`, and the context in the prompt);\n")
	p("- **prompt**: what the model is asked (`why.model_interactions`);\n")
	p("- **episodic memory**: what the user's message stores, which later turns recall;\n")
	p("- **declarative memory**: what an upload stores;\n")
	p("- **history**: the conversation history (`GET /memory/conversation_history`, and the prompt of later turns);\n")
	p("- **why**: the reply's `why` beyond recall and prompt (`why.input`, `why.agent_output`);\n")
	p("- **reply**: the reply's `text` and `content`.\n")

	for _, stage := range []struct {
		stage hooks.Stage
		title string
	}{{hooks.StageChat, "Chat: a message, from arrival to reply"}, {hooks.StageIngestion, "Ingestion: a document, from text to stored chunks"}} {
		p("\n## %s\n", stage.title)
		for _, e := range entries {
			if e.Stage != stage.stage {
				continue
			}
			p("\n### %s\n\n", e.Name)
			p("**When:** %s\n\n", e.When)
			p("**Output:** %s\n\n", e.Output)
			p("| field | what changing it does |\n| --- | --- |\n")
			for _, ef := range e.Effects {
				field := "(the payload)"
				if ef.Field != "" {
					field = "`" + ef.Field + "`"
				}
				p("| %s | %s |\n", field, strings.ReplaceAll(ef.Effect, "|", "\\|"))
			}
			p("\n**In the Cat:** %s\n\n", e.Cat)
			p("Example payload:\n\n```json\n%s\n```\n\n", indent(e.Example))
			p("<details><summary>JSON Schema of the payload</summary>\n\n```json\n%s\n```\n\n</details>\n", indent(e.Payload))
		}
	}
	return b.Bytes()
}

func indent(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err)
	}
	return string(b)
}
