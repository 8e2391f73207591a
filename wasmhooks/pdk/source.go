//go:build !wasip1

package pdk

import "embed"

// Source is the kit's own source (its go.mod and Go files), for the grin
// binary to write into a plugin folder: until the kit is published, a
// plugin builds against this copy with no checkout of grin. It is left out
// of WebAssembly builds, so plugins do not carry it.
//
//go:embed go.mod *.go
var Source embed.FS
