package wasmhooks

import "fmt"

// Refusals are read by plugin authors, who know their language and its
// kit, not grin's ABI: each names what is wrong and how to fix it in each
// language grin has a kit for. The server does not know which language a
// module came from, so it says all three, briefly.

// missingMarker is the refusal of a module without an ABI marker. The Go
// kit builds ABI v2 modules (v1 with -tags grin_abi_v1); the
// AssemblyScript and Rust kits build v1 ones.
func missingMarker() string {
	return fmt.Sprintf("exports neither %s() nor %s(), so it was not built for grin's hook ABI (v2, or v1, which grin still serves). "+
		"With Go, import github.com/grin-ai/grin/wasmhooks/pdk and build with GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared (grin plugin build does; the kit exports %s()); "+
		"with AssemblyScript, add export { %s } from \"@grin-ai/grin-kit/assembly/index\" to your entry file (grin plugin new writes it); "+
		"with Rust, add grin_kit::export_abi!(); to your lib.rs (grin plugin new writes it)",
		MarkerExportV2, MarkerExport, MarkerExportV2, MarkerExport)
}

// foreignImport explains an import grin does not provide to a module of
// the ABI abi (whose host module is host), for the ones toolchains add by
// default.
func foreignImport(mod, name, host string, abi int) string {
	switch {
	case mod == "env" && name == "abort":
		return "imports env.abort, AssemblyScript's default abort handler, which grin does not provide: " +
			"build with --use abort=~lib/@grin-ai/grin-kit/assembly/index/abort (grin plugin build and the template's asconfig.json do), or --use abort= to trap without a message"
	case mod == "env" && name == "seed", mod == "env" && name == "trace":
		return fmt.Sprintf("imports env.%s, which AssemblyScript adds for Math.random and trace: grin does not provide it; "+
			"build with --use Math.random= or avoid trace(), and log with the kit's log function instead", name)
	case mod == "__wbindgen_placeholder__" || mod == "wbg":
		return fmt.Sprintf("imports %s.%s, which wasm-bindgen adds: grin does not run JavaScript glue; "+
			"build the crate without wasm-bindgen (cargo build --target wasm32-unknown-unknown --release, with crate-type cdylib)", mod, name)
	}
	return fmt.Sprintf("imports %s.%s: only %s and %s are provided to an ABI v%d module", mod, name, host, "wasi_snapshot_preview1", abi)
}
