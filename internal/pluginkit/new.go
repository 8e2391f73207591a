package pluginkit

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/grin-ai/grin/wasmhooks/kits"
	"github.com/grin-ai/grin/wasmhooks/pdk"
)

//go:embed templates
var templates embed.FS

// Created says what New wrote.
type Created struct {
	Dir  string
	ID   string
	Lang Lang
	// Files are the paths written, relative to Dir.
	Files []string
	// Kit says where the kit came from and how the build finds it.
	Kit string
}

// kitDir is the folder, inside a plugin, that holds the copy of the kit.
func kitDir(l Lang) string {
	if l == Go {
		return "grin-pdk"
	}
	return "grin-kit"
}

// kitNote is what New says about the kit, and what the plugin's README
// repeats.
func kitNote(l Lang) string {
	switch l {
	case Go:
		return "The Go kit (github.com/grin-ai/grin/wasmhooks/pdk) is copied into grin-pdk/, and go.mod's replace points at it, so the plugin builds with no checkout of grin and no network. When the kit is published, delete grin-pdk/ and the replace line."
	case AssemblyScript:
		return "The AssemblyScript kit (@grin-ai/grin-kit) is copied into grin-kit/, and package.json depends on it by path; grin plugin build runs npm ci once (the AssemblyScript compiler, from package-lock.json) when node_modules is missing."
	default:
		return "The Rust kit (crate grin-kit) is copied into grin-kit/, and Cargo.toml depends on it by path; it needs no other crate, so the build works offline."
	}
}

// New writes a working plugin in dir (which must be missing or empty):
// a manifest with one hook and a settings schema, the hook's source,
// examples that grin plugin test runs, and a copy of the kit.
func New(dir string, lang Lang) (Created, error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return Created{}, fmt.Errorf("%s is not empty: grin plugin new writes a new folder", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Created{}, err
	}
	c := Created{Dir: dir, ID: idFor(dir), Lang: lang, Kit: kitNote(lang)}
	data := map[string]any{"ID": c.ID, "Lang": string(lang), "KitNote": c.Kit}
	write := func(rel string, b []byte) error {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		c.Files = append(c.Files, rel)
		return nil
	}
	for _, root := range []string{"templates/common", "templates/" + string(lang)} {
		err := fs.WalkDir(templates, root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := templates.ReadFile(p)
			if err != nil {
				return err
			}
			rel := strings.TrimPrefix(p, root+"/")
			if name, ok := strings.CutSuffix(rel, ".tmpl"); ok {
				t, err := template.New(rel).Option("missingkey=error").Parse(string(b))
				if err != nil {
					return fmt.Errorf("template %s: %w", rel, err)
				}
				var out bytes.Buffer
				if err := t.Execute(&out, data); err != nil {
					return fmt.Errorf("template %s: %w", rel, err)
				}
				rel, b = name, out.Bytes()
			}
			if rel == "gitignore" {
				rel = ".gitignore"
			}
			return write(rel, b)
		})
		if err != nil {
			return c, err
		}
	}
	kit, err := kitSource(lang)
	if err != nil {
		return c, err
	}
	err = fs.WalkDir(kit, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, "_test.go") {
			return err
		}
		b, err := fs.ReadFile(kit, p)
		if err != nil {
			return err
		}
		return write(path.Join(kitDir(lang), p), b)
	})
	return c, err
}

// kitSource is the kit's source as the grin binary carries it.
func kitSource(l Lang) (fs.FS, error) {
	switch l {
	case Go:
		return pdk.Source, nil
	case AssemblyScript:
		return fs.Sub(kits.Source, "assemblyscript")
	case Rust:
		return fs.Sub(kits.Source, "rust")
	}
	return nil, fmt.Errorf("grin has no %s kit yet", l)
}
