package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/grin-ai/grin/internal/pluginkit"
	"github.com/grin-ai/grin/platform/config"
	"github.com/grin-ai/grin/wasmhooks"
)

const pluginUsage = `Usage:
  grin plugin new [--lang go|assemblyscript|rust] DIR
                      write a working plugin: a manifest, one hook, a settings schema, examples
  grin plugin build [-o FILE.zip] DIR
                      build DIR's module, check it as the server will at upload, and zip it
  grin plugin pack [-o FILE.zip] [-wasm FILE] DIR
                      check and zip a module you built yourself with DIR's manifest.json
  grin plugin run [--payload FILE] [--user NAME] [--settings FILE] PLUGIN HOOK
                      run one hook of PLUGIN (an archive or a plugin folder) in the server's sandbox
  grin plugin test DIR
                      run DIR's examples/*.json against the built module; exit 1 when one fails
  grin plugin dev [--server URL] [--token TOKEN] DIR
                      build and upload on every change, and show the plugin's logs

The sandbox has the server's limits, read from the same GRIN_PLUGIN_* variables.
`

func plugin(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (int, error) {
	if len(args) == 0 {
		fmt.Fprint(stderr, pluginUsage)
		return 2, nil
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "new":
		return 0, pluginNew(args, stdout, stderr)
	case "build", "pack":
		return 0, pluginBuild(ctx, cmd, args, getenv, stdout, stderr)
	case "run":
		return 0, pluginRun(ctx, args, getenv, stdout, stderr)
	case "test":
		return pluginTest(ctx, args, getenv, stdout, stderr)
	case "dev":
		return 0, pluginDev(ctx, args, getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, pluginUsage)
		return 0, nil
	}
	fmt.Fprintf(stderr, "grin plugin: unknown command %q\n\n%s", cmd, pluginUsage)
	return 2, nil
}

// flags parses a subcommand's flags wherever they stand among its
// arguments (grin plugin run DIR HOOK --user bob), and wants n arguments.
func flags(fs *flag.FlagSet, args []string, n int, what string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != n {
		fs.Usage()
		return nil, fmt.Errorf("%s: %s", fs.Name(), what)
	}
	return pos, nil
}

func usageOf(fs *flag.FlagSet, stderr io.Writer, line string) {
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s\n", line)
		fs.PrintDefaults()
	}
}

func pluginNew(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("grin plugin new", flag.ContinueOnError)
	usageOf(fs, stderr, "grin plugin new [--lang go|assemblyscript|rust] DIR")
	langName := fs.String("lang", "go", "the plugin's language: go, assemblyscript or rust")
	pos, err := flags(fs, args, 1, "name the folder to write")
	if err != nil {
		return err
	}
	lang, err := pluginkit.ParseLang(*langName)
	if err != nil {
		return err
	}
	c, err := pluginkit.New(pos[0], lang)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote plugin %s (%s) in %s:\n", c.ID, c.Lang, c.Dir)
	for _, f := range c.Files {
		if !strings.HasPrefix(f, "grin-") { // the kit's files: said below
			fmt.Fprintf(stdout, "  %s\n", f)
		}
	}
	fmt.Fprintf(stdout, "%s\n\nNext:\n  grin plugin build %s\n  grin plugin test %s\n", c.Kit, c.Dir, c.Dir)
	return nil
}

// sandbox starts the server's engine with the limits the environment
// gives the server.
func sandbox(ctx context.Context, getenv func(string) string) (*pluginkit.Sandbox, error) {
	cfg, err := config.Load(nil, getenv, io.Discard)
	if err != nil {
		return nil, fmt.Errorf("read the plugin limits from GRIN_* variables: %w", err)
	}
	return pluginkit.NewSandbox(ctx, wasmhooks.EngineConfig{
		MemoryMiB: cfg.PluginMemoryMiB, InitTimeout: cfg.PluginInitTimeout,
		LogRate: cfg.PluginLogRate, LogBurst: cfg.PluginLogBurst, LogLineBytes: cfg.PluginLogLineBytes,
	})
}

// load builds (a folder) or reads (an archive) a plugin and checks it as
// the server does at upload.
func load(ctx context.Context, box *pluginkit.Sandbox, path string, log io.Writer) (*pluginkit.Loaded, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		archive, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		return box.LoadArchive(ctx, archive)
	}
	b, err := pluginkit.Build(ctx, path, log)
	if err != nil {
		return nil, err
	}
	return box.Load(ctx, b.Manifest, b.Wasm)
}

// pluginBuild is grin plugin build and grin plugin pack: one builds the
// module, the other takes one built by hand; both check it exactly as the
// server will at upload and zip it with its manifest.
func pluginBuild(ctx context.Context, cmd string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("grin plugin "+cmd, flag.ContinueOnError)
	line := "grin plugin build [-o FILE.zip] DIR\n\nDIR holds manifest.json and a Go (go.mod), AssemblyScript (package.json) or Rust (Cargo.toml) plugin."
	if cmd == "pack" {
		line = "grin plugin pack [-o FILE.zip] [-wasm FILE] DIR\n\nDIR holds manifest.json and the module (the one .wasm file, unless -wasm names it)."
	}
	usageOf(fs, stderr, line)
	out := fs.String("o", "", "the zip to write (default <id>.zip in the current directory)")
	wasm := new(string)
	if cmd == "pack" {
		wasm = fs.String("wasm", "", "the module (default: the one .wasm file in DIR)")
	}
	pos, err := flags(fs, args, 1, "name the plugin's folder")
	if err != nil {
		return err
	}
	box, err := sandbox(ctx, getenv)
	if err != nil {
		return err
	}
	defer box.Close(ctx)
	var l *pluginkit.Loaded
	if cmd == "pack" {
		manifest, module, err := pluginkit.ReadModule(pos[0], *wasm)
		if err != nil {
			return err
		}
		l, err = box.Load(ctx, manifest, module)
		if err != nil {
			return err
		}
	} else if l, err = load(ctx, box, pos[0], stderr); err != nil {
		return err
	}
	defer l.Close(ctx)
	if *out == "" {
		*out = l.Manifest.ID + ".zip"
	}
	if err := os.WriteFile(*out, l.Archive, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: plugin %s %s (%d KiB), hooks:", *out, l.Manifest.ID, l.Manifest.Version, len(l.Archive)>>10)
	for _, h := range l.Manifest.Hooks {
		fmt.Fprintf(stdout, " %s(%d)", h.Name, h.Priority)
	}
	fmt.Fprintln(stdout)
	return nil
}

func pluginRun(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("grin plugin run", flag.ContinueOnError)
	usageOf(fs, stderr, "grin plugin run [--payload FILE] [--user NAME] [--settings FILE] PLUGIN HOOK\n\n"+
		"PLUGIN is an archive or a plugin folder (built first). --payload is the hook's payload as JSON,\n"+
		"or an example file of the plugin (its payload, user and settings are used unless flags say otherwise).")
	payloadFile := fs.String("payload", "", "a file holding the payload, or an example (default {})")
	user := fs.String("user", "", `the user the hook runs for (default "user")`)
	settingsFile := fs.String("settings", "", "a file holding the plugin's settings as a JSON object (default {})")
	pos, err := flags(fs, args, 2, "name the plugin and the hook")
	if err != nil {
		return err
	}
	call := pluginkit.Call{Hook: pos[1]}
	if *payloadFile != "" {
		b, err := os.ReadFile(*payloadFile)
		if err != nil {
			return err
		}
		call.Payload = b
		if e, err := pluginkit.ReadExample(*payloadFile); err == nil && bytes.Contains(b, []byte(`"hook"`)) {
			call.Payload, call.User, call.Settings = e.Payload, e.User, e.Settings
		}
	}
	if *user != "" {
		call.User = *user
	}
	if *settingsFile != "" {
		b, err := os.ReadFile(*settingsFile)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &call.Settings); err != nil {
			return fmt.Errorf("%s: the settings must be a JSON object: %w", *settingsFile, err)
		}
	}
	box, err := sandbox(ctx, getenv)
	if err != nil {
		return err
	}
	defer box.Close(ctx)
	l, err := load(ctx, box, pos[0], stderr)
	if err != nil {
		return err
	}
	defer l.Close(ctx)
	r, err := l.Run(ctx, call)
	if err != nil {
		return err
	}
	for _, line := range r.Logs {
		fmt.Fprintf(stderr, "log %s: %s\n", line.Level, line.Msg)
	}
	switch {
	case r.Err != nil:
		fmt.Fprintf(stderr, "%s failed after %v: %v\n(the server logs this and goes on with the payload as it was)\n", call.Hook, r.Took, r.Err)
	case r.Changed:
		fmt.Fprintf(stderr, "%s changed the payload in %v\n", call.Hook, r.Took)
	default:
		fmt.Fprintf(stderr, "%s left the payload unchanged in %v\n", call.Hook, r.Took)
	}
	var pretty bytes.Buffer
	if json.Indent(&pretty, r.Output, "", "  ") != nil {
		pretty.Write(r.Output)
	}
	fmt.Fprintln(stdout, pretty.String())
	if r.Err != nil {
		return errors.New("the hook failed")
	}
	return nil
}

func pluginTest(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (int, error) {
	fs := flag.NewFlagSet("grin plugin test", flag.ContinueOnError)
	usageOf(fs, stderr, "grin plugin test DIR\n\nBuilds DIR's module and runs each examples/*.json against it in the server's sandbox.")
	verbose := fs.Bool("v", false, "print each example's logs, even when it passes")
	pos, err := flags(fs, args, 1, "name the plugin's folder")
	if err != nil {
		return 0, err
	}
	examples, err := pluginkit.ReadExamples(pos[0])
	if err != nil {
		return 0, err
	}
	box, err := sandbox(ctx, getenv)
	if err != nil {
		return 0, err
	}
	defer box.Close(ctx)
	l, err := load(ctx, box, pos[0], stderr)
	if err != nil {
		return 0, err
	}
	defer l.Close(ctx)
	failed := 0
	for _, e := range examples {
		o, err := l.Test(ctx, e)
		if err != nil {
			return 0, err
		}
		verdict := "ok  "
		if !o.Pass {
			verdict = "FAIL"
			failed++
		}
		fmt.Fprintf(stdout, "%s %s (%s, %v)\n", verdict, e.Name, e.Hook, o.Result.Took)
		if !o.Pass || *verbose {
			for _, line := range o.Result.Logs {
				fmt.Fprintf(stdout, "     log %s: %s\n", line.Level, line.Msg)
			}
		}
		if !o.Pass {
			for _, line := range strings.Split(strings.TrimRight(o.Why, "\n"), "\n") {
				fmt.Fprintf(stdout, "     %s\n", line)
			}
		}
	}
	if failed > 0 {
		fmt.Fprintf(stdout, "%d of %d examples failed\n", failed, len(examples))
		return 1, nil
	}
	fmt.Fprintf(stdout, "all %d examples pass\n", len(examples))
	return 0, nil
}

func pluginDev(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("grin plugin dev", flag.ContinueOnError)
	usageOf(fs, stderr, "grin plugin dev [--server URL] [--token TOKEN] DIR\n\nBuilds, checks and uploads DIR now and after every change; prints the plugin's logs. Stop with Ctrl-C.")
	server := fs.String("server", "http://localhost:1865", "the running grin")
	token := fs.String("token", getenv("GRIN_TOKEN"), "an administrator's token (default $GRIN_TOKEN)")
	pos, err := flags(fs, args, 1, "name the plugin's folder")
	if err != nil {
		return err
	}
	box, err := sandbox(ctx, getenv)
	if err != nil {
		return err
	}
	defer box.Close(ctx)
	fmt.Fprintf(stdout, "watching %s; uploading to %s (Ctrl-C stops)\n", pos[0], *server)
	return pluginkit.Dev(ctx, pluginkit.DevConfig{Dir: pos[0], Server: *server, Token: *token, Sandbox: box, Out: stdout})
}
