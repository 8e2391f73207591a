// Package pluginkit is what grin plugin does for a hook author: write a
// plugin folder from a template, build it in its language, check and pack
// it as the server will at upload, run its hooks in the server's sandbox,
// test it against its example payloads, and keep a running grin in step
// with the folder. It never talks to a database; the only network it uses
// is the grin server a dev loop is pointed at.
package pluginkit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Lang is a language grin has a kit and templates for.
type Lang string

// The languages.
const (
	Go             Lang = "go"
	AssemblyScript Lang = "assemblyscript"
	Rust           Lang = "rust"
)

// Langs are the languages, in the order the usage lists them.
var Langs = []Lang{Go, AssemblyScript, Rust}

// ParseLang reads a --lang value; "as" and "ts" name AssemblyScript.
func ParseLang(s string) (Lang, error) {
	switch strings.ToLower(s) {
	case "go", "":
		return Go, nil
	case "assemblyscript", "as", "ts":
		return AssemblyScript, nil
	case "rust", "rs":
		return Rust, nil
	}
	return "", fmt.Errorf("language %q: grin has kits for go, assemblyscript and rust", s)
}

// ErrNotPlugin marks a folder grin cannot tell the language of.
var ErrNotPlugin = errors.New("not a plugin folder")

// Detect tells a plugin folder's language by its build file.
func Detect(dir string) (Lang, error) {
	if _, err := os.Stat(filepath.Join(dir, "manifest.json")); err != nil {
		return "", fmt.Errorf("%w: %s has no manifest.json (grin plugin new DIR writes one)", ErrNotPlugin, dir)
	}
	for _, c := range []struct {
		file string
		lang Lang
	}{{"go.mod", Go}, {"package.json", AssemblyScript}, {"Cargo.toml", Rust}} {
		if _, err := os.Stat(filepath.Join(dir, c.file)); err == nil {
			return c.lang, nil
		}
	}
	// A Go package inside a larger module (a plugin kept in its
	// application's repository) has no go.mod of its own.
	if goFiles, _ := filepath.Glob(filepath.Join(dir, "*.go")); len(goFiles) > 0 {
		return Go, nil
	}
	return "", fmt.Errorf("%w: %s has none of go.mod, package.json or Cargo.toml, so grin cannot tell how to build it; build the module yourself and use grin plugin pack", ErrNotPlugin, dir)
}

var notID = regexp.MustCompile(`[^a-z0-9_-]+`)

// idFor makes a plugin id from a folder name: lower case, letters, digits,
// - and _, at most 64.
func idFor(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	id := strings.Trim(notID.ReplaceAllString(strings.ToLower(filepath.Base(abs)), "-"), "-_")
	if len(id) > 64 {
		id = id[:64]
	}
	if id == "" {
		id = "my-plugin"
	}
	return id
}
