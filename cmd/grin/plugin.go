package main

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/grin-ai/grin/wasmhooks"
)

// pluginBuild builds a Go plugin for grin's hook ABI, checks it as the
// server will at install (imports, exports, manifest), and packs it with
// its manifest into a zip ready for POST /plugins/upload.
func pluginBuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("grin plugin build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "the zip to write (default <id>.zip in the current directory)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: grin plugin build [-o plugin.zip] DIR\n\nDIR holds a Go package main using grin/wasmhooks/pdk and its manifest.json.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("name the plugin's directory")
	}
	dir := fs.Arg(0)
	manifestRaw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return fmt.Errorf("read the manifest: %w", err)
	}
	tmp, err := os.MkdirTemp("", "grin-plugin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	wasmPath := filepath.Join(tmp, "plugin.wasm")
	build := exec.CommandContext(ctx, "go", "build", "-buildmode=c-shared", "-trimpath", "-o", wasmPath, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	build.Stdout, build.Stderr = stderr, stderr
	fmt.Fprintf(stderr, "GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin.wasm .   (in %s)\n", dir)
	if err := build.Run(); err != nil {
		return fmt.Errorf("build: %w", err)
	}
	wasm, err := os.ReadFile(wasmPath)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	for name, b := range map[string][]byte{"manifest.json": manifestRaw, "plugin.wasm": wasm} {
		w, err := z.Create(name)
		if err != nil {
			return err
		}
		w.Write(b)
	}
	if err := z.Close(); err != nil {
		return err
	}
	// Check it exactly as the server will.
	man, module, err := wasmhooks.ReadArchive(buf.Bytes())
	if err != nil {
		return err
	}
	engine, err := wasmhooks.NewEngine(ctx, wasmhooks.EngineConfig{})
	if err != nil {
		return err
	}
	defer engine.Close(ctx)
	m, err := engine.Compile(ctx, module)
	if err != nil {
		return err
	}
	if err := man.Validate(m.Hooks, wasmhooks.KnownHooks); err != nil {
		return err
	}
	if err := engine.CheckStart(ctx, m, man.ID); err != nil {
		return err
	}
	if *out == "" {
		*out = man.ID + ".zip"
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: plugin %s %s (%d KiB), hooks:", *out, man.ID, man.Version, len(buf.Bytes())>>10)
	for _, h := range man.Hooks {
		fmt.Fprintf(stdout, " %s(%d)", h.Name, h.Priority)
	}
	fmt.Fprintln(stdout)
	return nil
}
