package wasmhooks

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Manifest describes a plugin: manifest.json beside the module.
type Manifest struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Version     string     `json:"version"`
	Description string     `json:"description,omitempty"`
	Hooks       []HookSpec `json:"hooks"`
	// SettingsSchema is the JSON Schema of the plugin's settings.
	SettingsSchema map[string]any `json:"settings_schema,omitempty"`
	// Isolation defaults to shared; an administrator may force another.
	Isolation Isolation `json:"isolation,omitempty"`
	// TimeoutMS is the deadline of one call (default 100).
	TimeoutMS int `json:"timeout_ms,omitempty"`
	// Capabilities are the host capabilities the plugin asks for
	// (capabilities.go); each works only once the policy grants it.
	Capabilities map[string]CapabilitySpec `json:"capabilities,omitempty" doc:"Host capabilities the plugin asks for: memory.recall, memory.store, kv, notify, llm.complete, http.fetch (with its hosts). Each works only once the policy grants it to plugin:<id> (p, plugin:<id>, capability:<name>, use)."`

	// The Cat's plugin.json metadata, optional, shown in plugin lists.
	AuthorName    string `json:"author_name,omitempty"`
	AuthorURL     string `json:"author_url,omitempty"`
	PluginURL     string `json:"plugin_url,omitempty"`
	Tags          string `json:"tags,omitempty" doc:"Comma-separated, as in the Cat."`
	Thumb         string `json:"thumb,omitempty" doc:"An image's URL."`
	MinCatVersion string `json:"min_cat_version,omitempty"`
	MaxCatVersion string `json:"max_cat_version,omitempty"`
}

// HookSpec names a hook the plugin implements and its priority; hooks run
// by descending priority.
type HookSpec struct {
	Name     string `json:"name"`
	Priority int    `json:"priority"`
}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// reservedIDs are paths under /plugins/ that GET answers itself, so a
// plugin of that id could not be read at GET /plugins/{id}.
var reservedIDs = []string{"hooks", "settings"}

// Limits on a plugin archive.
const (
	MaxArchiveBytes = 64 << 20
	maxEntries      = 64
)

// ErrArchive marks an upload that is not a valid plugin.
var ErrArchive = errors.New("invalid plugin")

// Validate checks the manifest against the module's exports and the known
// hook points, reporting every problem at once.
func (m *Manifest) Validate(exported []string, known []string) error {
	var errs []string
	if !idPattern.MatchString(m.ID) {
		errs = append(errs, fmt.Sprintf("id %q must be 1–64 lower-case letters, digits, - or _", m.ID))
	}
	if slices.Contains(reservedIDs, m.ID) {
		errs = append(errs, fmt.Sprintf("id %q is taken by the API (GET /plugins/%s): choose another", m.ID, m.ID))
	}
	if strings.TrimSpace(m.Name) == "" {
		errs = append(errs, "name is required")
	}
	if strings.TrimSpace(m.Version) == "" {
		errs = append(errs, "version is required")
	}
	if len(m.Hooks) == 0 {
		errs = append(errs, "hooks must name at least one hook")
	}
	seen := map[string]bool{}
	for _, h := range m.Hooks {
		switch {
		case !slices.Contains(known, h.Name):
			errs = append(errs, fmt.Sprintf("hook %q is not a hook point grin calls (they are: %s)", h.Name, strings.Join(known, ", ")))
		case !slices.Contains(exported, h.Name):
			errs = append(errs, fmt.Sprintf("hook %q is not exported by the module (no %s%s)", h.Name, HookPrefix, h.Name))
		case seen[h.Name]:
			errs = append(errs, fmt.Sprintf("hook %q is listed twice", h.Name))
		}
		seen[h.Name] = true
	}
	if m.Isolation == "" {
		m.Isolation = Shared
	}
	if !m.Isolation.Valid() {
		errs = append(errs, fmt.Sprintf("isolation %q must be shared, per-user or per-call", m.Isolation))
	}
	if m.TimeoutMS < 0 || m.TimeoutMS > 60_000 {
		errs = append(errs, "timeout_ms must be between 1 and 60000")
	}
	errs = append(errs, validateCapabilities(m.Capabilities)...)
	if m.SettingsSchema != nil {
		if _, err := compileSchema(m.ID, m.SettingsSchema); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: manifest: %s", ErrArchive, strings.Join(errs, "; "))
	}
	return nil
}

// WithDefaults returns settings with the schema's defaults filled in:
// each property the settings lack and the schema gives a "default" gets
// it, in nested objects too. The settings given are not changed. Defaults
// behind a $ref, or in allOf/anyOf/oneOf, are not followed.
func (m *Manifest) WithDefaults(settings map[string]any) map[string]any {
	out := withDefaults(m.SettingsSchema, settings)
	if out == nil {
		out = map[string]any{}
	}
	return out
}

func withDefaults(schema, v map[string]any) map[string]any {
	out := make(map[string]any, len(v))
	for k, x := range v {
		out[k] = x
	}
	props, _ := schema["properties"].(map[string]any)
	for name, p := range props {
		ps, _ := p.(map[string]any)
		if ps == nil {
			continue
		}
		cur, present := out[name]
		if !present {
			if d, ok := ps["default"]; ok {
				out[name] = copyJSON(d)
				continue
			}
			if _, ok := ps["properties"]; !ok {
				continue
			}
			// An object without a default of its own may still have
			// properties with defaults: only fill it when one does.
			if filled := withDefaults(ps, nil); len(filled) > 0 {
				out[name] = filled
			}
			continue
		}
		if obj, ok := cur.(map[string]any); ok {
			out[name] = withDefaults(ps, obj)
		}
	}
	return out
}

// copyJSON copies a JSON value, so settings never share a default's maps.
func copyJSON(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var c any
	json.Unmarshal(b, &c)
	return c
}

// ValidateSettings checks settings against the manifest's schema.
func (m *Manifest) ValidateSettings(settings map[string]any) error {
	if m.SettingsSchema == nil {
		return nil
	}
	sch, err := compileSchema(m.ID, m.SettingsSchema)
	if err != nil {
		return err
	}
	// The validator wants JSON's own types: round-trip through JSON.
	b, _ := json.Marshal(settings)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return err
	}
	if err := sch.Validate(doc); err != nil {
		// The library's first line names the schema's URL; the lines
		// after it say what is wrong where.
		_, causes, ok := strings.Cut(err.Error(), "\n")
		if !ok {
			return err
		}
		var parts []string
		for _, l := range strings.Split(causes, "\n") {
			if l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "- ")); l != "" {
				parts = append(parts, l)
			}
		}
		return errors.New(strings.Join(parts, "; "))
	}
	return nil
}

// noLoader refuses every URL: a settings schema may refer only to itself
// ("#/$defs/…"), so compiling one never reads the server's disk (a
// "file:///…" $ref would otherwise be read and echoed in the error) nor
// reaches the network. It notes that it was asked, because the library's
// error around it does not unwrap.
type noLoader struct{ asked bool }

func (l *noLoader) Load(string) (any, error) {
	l.asked = true
	return nil, errors.New("a plugin's settings schema may refer only to itself")
}

// schemaURL is the schema's own resource id: neutral, so no message ever
// names a server path (a relative id would resolve against the working
// directory).
func schemaURL(id string) string {
	if !idPattern.MatchString(id) {
		id = "unnamed"
	}
	return "plugin://" + id + "/settings.schema.json"
}

// compileSchema compiles a plugin's settings schema. Its errors are
// sentences for the plugin's author; a reference to another document is
// reported without repeating the reference, so nothing of the server's
// (a path, a file's bytes, an internal address) can come back in one.
func compileSchema(id string, s map[string]any) (*jsonschema.Schema, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("settings_schema is not JSON: %v", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("settings_schema is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	loader := &noLoader{}
	c.UseLoader(loader)
	u := schemaURL(id)
	if err := c.AddResource(u, doc); err != nil {
		return nil, fmt.Errorf("settings_schema is not a JSON Schema: %v", err)
	}
	sch, err := c.Compile(u)
	if err != nil && loader.asked {
		return nil, errors.New(`settings_schema refers to another document ($ref, $schema or $id outside the schema): a plugin's settings schema may refer only to itself, as "#/$defs/name"`)
	}
	if err != nil {
		return nil, fmt.Errorf("settings_schema is not a JSON Schema: %v", err)
	}
	return sch, nil
}

// ReadArchive takes manifest.json and the one .wasm module out of a zip,
// tar or tar.gz, refusing anything else in the way of a valid plugin.
func ReadArchive(data []byte) (Manifest, []byte, error) {
	if len(data) > MaxArchiveBytes {
		return Manifest{}, nil, fmt.Errorf("%w: the archive is larger than %d MiB", ErrArchive, MaxArchiveBytes>>20)
	}
	files := map[string][]byte{}
	total := 0
	add := func(name string, r io.Reader) error {
		clean := path.Clean(strings.ReplaceAll(name, "\\", "/"))
		if strings.HasPrefix(clean, "../") || strings.HasPrefix(clean, "/") {
			return fmt.Errorf("%w: the archive holds %q, outside its folder", ErrArchive, name)
		}
		if len(files) >= maxEntries {
			return fmt.Errorf("%w: the archive holds more than %d files", ErrArchive, maxEntries)
		}
		b, err := io.ReadAll(io.LimitReader(r, int64(MaxArchiveBytes-total)+1))
		if err != nil {
			return err
		}
		if total += len(b); total > MaxArchiveBytes {
			return fmt.Errorf("%w: the archive unpacks to more than %d MiB", ErrArchive, MaxArchiveBytes>>20)
		}
		files[path.Base(clean)] = b
		return nil
	}
	switch {
	case bytes.HasPrefix(data, []byte("PK\x03\x04")):
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return Manifest{}, nil, fmt.Errorf("%w: not a readable zip: %v", ErrArchive, err)
		}
		for _, f := range zr.File {
			if f.FileInfo().IsDir() {
				continue
			}
			rc, err := f.Open()
			if err != nil {
				return Manifest{}, nil, fmt.Errorf("%w: %v", ErrArchive, err)
			}
			err = add(f.Name, rc)
			rc.Close()
			if err != nil {
				return Manifest{}, nil, err
			}
		}
	default:
		var r io.Reader = bytes.NewReader(data)
		if bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
			gz, err := gzip.NewReader(r)
			if err != nil {
				return Manifest{}, nil, fmt.Errorf("%w: not a readable gzip: %v", ErrArchive, err)
			}
			r = gz
		}
		tr := tar.NewReader(r)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return Manifest{}, nil, fmt.Errorf("%w: upload a zip or tar of manifest.json and the module: %v", ErrArchive, err)
			}
			if h.Typeflag == tar.TypeReg {
				if err := add(h.Name, tr); err != nil {
					return Manifest{}, nil, err
				}
			}
		}
	}
	var man Manifest
	raw, ok := files["manifest.json"]
	if !ok {
		return Manifest{}, nil, fmt.Errorf("%w: the archive has no manifest.json", ErrArchive)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&man); err != nil {
		return Manifest{}, nil, fmt.Errorf("%w: manifest.json: %v", ErrArchive, err)
	}
	var wasm []byte
	for name, b := range files {
		if strings.HasSuffix(name, ".wasm") {
			if wasm != nil {
				return Manifest{}, nil, fmt.Errorf("%w: the archive holds more than one .wasm module", ErrArchive)
			}
			wasm = b
		}
	}
	if wasm == nil {
		return Manifest{}, nil, fmt.Errorf("%w: the archive has no .wasm module", ErrArchive)
	}
	return man, wasm, nil
}
