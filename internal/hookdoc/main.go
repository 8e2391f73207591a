// Command hookdoc writes what is generated from the catalogue of hook
// points in platform/hooks: the reference (docs/hooks.md) and the Go kit's
// typed hooks (wasmhooks/pdk/hooks_gen.go). go generate runs it:
//
//	go generate ./platform/hooks/...
//
// and tests in platform/hooks/reference fail while a committed file
// differs from what it would write.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/grin-ai/grin/platform/hooks/reference"
)

func main() {
	doc := flag.String("o", "", "write the Markdown reference to this file")
	kit := flag.String("pdk", "", "write the Go kit's typed hooks to this file")
	flag.Parse()
	if *doc == "" && *kit == "" {
		fmt.Fprintln(os.Stderr, "hookdoc: say what to write: -o docs/hooks.md, -pdk wasmhooks/pdk/hooks_gen.go")
		os.Exit(2)
	}
	if *doc != "" {
		write(*doc, reference.Markdown(reference.Build()), nil)
	}
	if *kit != "" {
		src, err := reference.GoKit()
		write(*kit, src, err)
	}
}

func write(path string, b []byte, err error) {
	if err == nil {
		err = os.WriteFile(path, b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hookdoc:", err)
		os.Exit(1)
	}
}
