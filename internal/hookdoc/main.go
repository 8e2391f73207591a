// Command hookdoc writes the reference of grin's hook points, generated
// from the catalogue in platform/hooks. It is run by go generate:
//
//	go generate ./platform/hooks/...
//
// and a test in platform/hooks/reference fails while the committed file
// differs from what it would write.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/grin-ai/grin/platform/hooks/reference"
)

func main() {
	out := flag.String("o", "", "write the Markdown reference to this file")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "hookdoc: say where to write the reference: -o docs/hooks.md")
		os.Exit(2)
	}
	if err := os.WriteFile(*out, reference.Markdown(reference.Build()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "hookdoc:", err)
		os.Exit(1)
	}
}
