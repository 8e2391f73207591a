// Package kits carries the sources of grin's hook kits for languages other
// than Go (the Go kit is the module wasmhooks/pdk), so that grin plugin new
// can copy them into a plugin folder: assemblyscript/ is an npm package,
// rust/ a crate with no dependencies. Each implements the ABI documented
// in docs/plugins.md and package wasmhooks.
package kits

import "embed"

// Source holds assemblyscript/ and rust/ (without node_modules or target).
//
//go:embed assemblyscript/package.json assemblyscript/README.md assemblyscript/assembly rust/Cargo.toml rust/README.md rust/src
var Source embed.FS
