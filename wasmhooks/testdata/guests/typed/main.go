// Guest typed is the first author's plugin written with the kit's typed
// hooks: it hides e-mail addresses before the message is read, and signs
// the reply's content with the user's name.
package main

import (
	"strings"

	"github.com/grin-ai/grin/wasmhooks/pdk"
)

func init() {
	pdk.OnBeforeCatReadsMessage(func(ctx pdk.Ctx, m *pdk.Message) error {
		words := strings.Fields(m.Text)
		for i, w := range words {
			if strings.Contains(w, "@") {
				words[i] = "[email]"
			}
		}
		m.Text = strings.Join(words, " ")
		return nil
	})
	pdk.OnBeforeCatSendsMessage(func(ctx pdk.Ctx, r *pdk.Reply) error {
		r.Content += " (for " + ctx.Username() + ")"
		return nil
	})
}

func main() {}
