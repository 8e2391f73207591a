// Command hookdoc writes what is generated from the catalogue of hook
// points in platform/hooks: the reference (docs/hooks.md) and the Go kit's
// typed hooks (wasmhooks/pdk/hooks_gen.go) and hook exports
// (wasmhooks/pdk/exports_v1.go, exports_v2.go). go generate runs it:
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
	"path/filepath"

	"github.com/grin-ai/grin/platform/hooks/reference"
)

func main() {
	doc := flag.String("o", "", "write the Markdown reference to this file")
	kit := flag.String("pdk", "", "write the Go kit's typed hooks to this file")
	exports := flag.String("exports", "", "write the Go kit's hook exports, exports_v1.go and exports_v2.go, to this directory")
	flag.Parse()
	if *doc == "" && *kit == "" && *exports == "" {
		fmt.Fprintln(os.Stderr, "hookdoc: say what to write: -o docs/hooks.md, -pdk wasmhooks/pdk/hooks_gen.go, -exports wasmhooks/pdk")
		os.Exit(2)
	}
	if *doc != "" {
		write(*doc, reference.Markdown(reference.Build()), nil)
	}
	if *kit != "" {
		src, err := reference.GoKit()
		write(*kit, src, err)
	}
	if *exports != "" {
		for _, abi := range []int{1, 2} {
			src, err := reference.GoExports(abi)
			write(filepath.Join(*exports, fmt.Sprintf("exports_v%d.go", abi)), src, err)
		}
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
