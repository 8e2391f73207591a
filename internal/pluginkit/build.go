package pluginkit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// Built is a plugin folder's manifest and freshly built module.
type Built struct {
	Lang     Lang
	Manifest []byte
	Wasm     []byte
}

// ErrToolchain marks a build whose compiler is missing; the message says
// how to install it.
var ErrToolchain = errors.New("the toolchain is missing")

// Build builds the module of the plugin in dir with its language's
// toolchain, printing each command to log. The module is not checked:
// Sandbox.Load does that, as the server will.
func Build(ctx context.Context, dir string, log io.Writer) (Built, error) {
	lang, err := Detect(dir)
	if err != nil {
		return Built{}, err
	}
	manifest, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return Built{}, fmt.Errorf("read the manifest: %w", err)
	}
	tmp, err := os.MkdirTemp("", "grin-plugin-")
	if err != nil {
		return Built{}, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "plugin.wasm")
	switch lang {
	case Go:
		err = buildGo(ctx, dir, out, log)
	case AssemblyScript:
		err = buildAssemblyScript(ctx, dir, out, log)
	case Rust:
		err = buildRust(ctx, dir, out, log)
	}
	if err != nil {
		return Built{}, err
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		return Built{}, fmt.Errorf("read the built module: %w", err)
	}
	return Built{Lang: lang, Manifest: manifest, Wasm: wasm}, nil
}

// command runs name in dir with extra environment, echoing it to log
// first so an author can run it by hand.
func command(ctx context.Context, dir string, log io.Writer, env []string, name string, args ...string) error {
	shown := strings.Join(append(append(append([]string(nil), env...), name), args...), " ")
	fmt.Fprintf(log, "%s   (in %s)\n", shown, dir)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", shown, err)
	}
	return nil
}

// Toolchain says whether the tools that build a plugin in lang are
// installed; the error wraps ErrToolchain and says how to install them.
func Toolchain(lang Lang) error {
	switch lang {
	case Go:
		return need("go", goInstall)
	case AssemblyScript:
		return need("npm", nodeInstall)
	case Rust:
		return rustToolchain()
	}
	return fmt.Errorf("no toolchain for %q", lang)
}

const (
	goInstall   = "install Go 1.24 or later (https://go.dev/dl/)"
	nodeInstall = "install Node.js 18 or later with npm (Debian: apt-get install nodejs npm)"
)

func need(tool, install string) error {
	if _, err := exec.LookPath(tool); err != nil {
		return fmt.Errorf("%w: %s is not on PATH; %s", ErrToolchain, tool, install)
	}
	return nil
}

// buildGo builds a Go reactor: package init runs in _initialize, each
// hook is a //go:wasmexport of the kit.
func buildGo(ctx context.Context, dir, out string, log io.Writer) error {
	if err := need("go", goInstall); err != nil {
		return err
	}
	return command(ctx, dir, log, []string{"GOOS=wasip1", "GOARCH=wasm"}, "go", "build", "-buildmode=c-shared", "-trimpath", "-o", out, ".")
}

// asAbort is the kit's abort handler: without it AssemblyScript imports
// env.abort, which grin does not provide.
const asAbort = "abort=~lib/@grin-ai/grin-kit/assembly/index/abort"

// buildAssemblyScript installs the compiler from the lock file when
// node_modules is missing (without running packages' install scripts:
// building a plugin folder someone sent must not run their code), then
// compiles assembly/index.ts. The options
// grin needs are passed whatever asconfig.json says, so an author never
// meets them: the kit's abort, and _initialize for top-level code.
func buildAssemblyScript(ctx context.Context, dir, out string, log io.Writer) error {
	if err := need("npm", nodeInstall); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); err != nil {
		install := "install"
		if _, err := os.Stat(filepath.Join(dir, "package-lock.json")); err == nil {
			install = "ci"
		}
		if err := command(ctx, dir, log, nil, "npm", install, "--ignore-scripts", "--no-audit", "--no-fund"); err != nil {
			return err
		}
	}
	args := []string{"--no-install", "asc", "assembly/index.ts", "--outFile", out, "--use", asAbort, "--exportStart", "_initialize"}
	if _, err := os.Stat(filepath.Join(dir, "asconfig.json")); err == nil {
		args = append(args, "--config", "asconfig.json", "--target", "release")
	} else {
		args = append(args, "--optimize")
	}
	return command(ctx, dir, log, nil, "npx", args...)
}

// rustc finds a rustc with the standard library for wasm32-unknown-
// unknown: $RUSTC, the one on PATH (often rustup's), then Debian's.
func rustc() (string, error) {
	var tried []string
	for _, c := range []string{os.Getenv("RUSTC"), "rustc", "/usr/bin/rustc"} {
		if c == "" {
			continue
		}
		path, err := exec.LookPath(c)
		if err != nil {
			continue
		}
		out, err := exec.Command(path, "--print", "sysroot").Output()
		if err != nil {
			continue
		}
		lib := filepath.Join(strings.TrimSpace(string(out)), "lib", "rustlib", "wasm32-unknown-unknown", "lib")
		if entries, err := os.ReadDir(lib); err == nil && len(entries) > 0 {
			return path, nil
		}
		tried = append(tried, path)
	}
	if len(tried) == 0 {
		return "", fmt.Errorf("%w: rustc is not on PATH; %s", ErrToolchain, rustInstall)
	}
	return "", fmt.Errorf("%w: no rustc has the wasm32-unknown-unknown standard library (tried %s); %s", ErrToolchain, strings.Join(tried, ", "), rustInstall)
}

const rustInstall = "install it: Debian: apt-get install rustc lld libstd-rust-dev-wasm32; rustup: rustup target add wasm32-unknown-unknown"

func rustToolchain() error {
	_, err := rustc()
	return err
}

var kitDependency = regexp.MustCompile(`(?m)^\s*grin-kit\s*=\s*\{[^}]*\bpath\s*=\s*"([^"]+)"`)

// rustKit is the kit's lib.rs, from the path dependency in Cargo.toml.
func rustKit(dir string) (string, error) {
	cargo, err := os.ReadFile(filepath.Join(dir, "Cargo.toml"))
	if err != nil {
		return "", err
	}
	m := kitDependency.FindSubmatch(cargo)
	if m == nil {
		return "", fmt.Errorf(`%s/Cargo.toml has no grin-kit = { path = "..." } dependency: grin plugin build compiles the kit from there (grin plugin new copies it into grin-kit/); for another layout, build with cargo and use grin plugin pack`, dir)
	}
	lib := filepath.Join(filepath.FromSlash(string(m[1])), "src", "lib.rs")
	if _, err := os.Stat(filepath.Join(dir, lib)); err != nil {
		return "", fmt.Errorf("the grin-kit dependency of %s/Cargo.toml: %w", dir, err)
	}
	return lib, nil
}

// buildRust compiles the kit and then the plugin with rustc, as cargo
// would, so the build needs neither cargo nor the network: the kit is the
// only dependency and lives in the folder.
func buildRust(ctx context.Context, dir, out string, log io.Writer) error {
	rc, err := rustc()
	if err != nil {
		return err
	}
	kit, err := rustKit(dir)
	if err != nil {
		return err
	}
	work := filepath.Dir(out)
	common := []string{"--edition", "2021", "--target", "wasm32-unknown-unknown", "-O", "-C", "strip=debuginfo"}
	if err := command(ctx, dir, log, nil, rc, append(common, "--crate-type", "rlib", "--crate-name", "grin_kit",
		kit, "--out-dir", work)...); err != nil {
		return err
	}
	return command(ctx, dir, log, nil, rc, append(common, "--crate-type", "cdylib", "--crate-name", "plugin",
		"--extern", "grin_kit="+filepath.Join(work, "libgrin_kit.rlib"), "-L", work, "src/lib.rs", "-o", out)...)
}

// ReadModule reads a plugin folder's manifest and a module built by hand:
// wasm, or the one .wasm file in dir when wasm is empty.
func ReadModule(dir, wasm string) (manifest, module []byte, err error) {
	manifest, err = os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, nil, fmt.Errorf("read the manifest: %w", err)
	}
	if wasm == "" {
		found, _ := filepath.Glob(filepath.Join(dir, "*.wasm"))
		switch len(found) {
		case 0:
			return nil, nil, fmt.Errorf("%s holds no .wasm module: build one, or name it with -wasm FILE", dir)
		case 1:
			wasm = found[0]
		default:
			return nil, nil, fmt.Errorf("%s holds %d .wasm modules (%s): name one with -wasm FILE", dir, len(found), strings.Join(found, ", "))
		}
	}
	module, err = os.ReadFile(wasm)
	if err != nil {
		return nil, nil, fmt.Errorf("read the module: %w", err)
	}
	return manifest, module, nil
}
