package pluginkit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
)

// Example is one file of a plugin's examples/ folder: a hook call and
// what it should give.
type Example struct {
	Name     string          `json:"-"`
	Hook     string          `json:"hook"`
	User     string          `json:"user,omitempty"`
	Settings map[string]any  `json:"settings,omitempty"`
	Payload  json.RawMessage `json:"payload"`
	// Want is the payload the hook should leave (the input's, when it
	// should change nothing).
	Want json.RawMessage `json:"want,omitempty"`
	// WantError is a part of the error the hook should fail with.
	WantError string `json:"want_error,omitempty"`
}

// ReadExample reads an example file; unknown fields are refused, so a
// misspelt "want" does not make an example that cannot fail.
func ReadExample(path string) (Example, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Example{}, err
	}
	var e Example
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return Example{}, fmt.Errorf("%s: %w (an example has hook, payload, and optionally user, settings, want, want_error)", path, err)
	}
	e.Name = strings.TrimSuffix(filepath.Base(path), ".json")
	switch {
	case e.Hook == "":
		return e, fmt.Errorf("%s: name the hook (\"hook\": \"before_cat_reads_message\")", path)
	case len(e.Payload) == 0:
		return e, fmt.Errorf("%s: give the hook's input as \"payload\"", path)
	case len(e.Want) == 0 && e.WantError == "":
		return e, fmt.Errorf("%s: say what the hook should give: \"want\" (the payload after it) or \"want_error\"", path)
	}
	return e, nil
}

// ReadExamples reads dir/examples/*.json, by name.
func ReadExamples(dir string) ([]Example, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "examples", "*.json"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%s has no examples/*.json to test", dir)
	}
	sort.Strings(paths)
	out := make([]Example, 0, len(paths))
	for _, p := range paths {
		e, err := ReadExample(p)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Outcome is an example's verdict.
type Outcome struct {
	Example Example
	Result  Result
	Pass    bool
	// Why says what differs: a diff of the payloads (- want, + got) or
	// the error that was or was not expected.
	Why string
}

// Test runs the example against the loaded plugin.
func (l *Loaded) Test(ctx context.Context, e Example) (Outcome, error) {
	r, err := l.Run(ctx, Call{Hook: e.Hook, User: e.User, Settings: e.Settings, Payload: e.Payload})
	if err != nil {
		return Outcome{}, fmt.Errorf("example %s: %w", e.Name, err)
	}
	o := Outcome{Example: e, Result: r}
	switch {
	case e.WantError != "" && r.Err == nil:
		o.Why = "the hook did not fail; want an error containing " + fmt.Sprintf("%q", e.WantError)
	case e.WantError != "":
		o.Pass = strings.Contains(r.Err.Error(), e.WantError)
		if !o.Pass {
			o.Why = fmt.Sprintf("the hook failed with %q; want an error containing %q", r.Err, e.WantError)
		}
	case r.Err != nil:
		o.Why = "the hook failed: " + r.Err.Error()
	default:
		var want, got any
		if err := json.Unmarshal(e.Want, &want); err != nil {
			return o, fmt.Errorf("example %s: want: %w", e.Name, err)
		}
		if err := json.Unmarshal(r.Output, &got); err != nil {
			return o, fmt.Errorf("example %s: output: %w", e.Name, err)
		}
		o.Pass = reflect.DeepEqual(want, got)
		if !o.Pass {
			o.Why = Diff(indent(want), indent(got))
		}
	}
	return o, nil
}

// indent is v as indented JSON with sorted keys, for diffs.
func indent(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

// Diff is a line diff of want and got: "- " lines only in want, "+ "
// lines only in got, "  " lines in both.
func Diff(want, got string) string {
	a, b := strings.Split(want, "\n"), strings.Split(got, "\n")
	// Longest common subsequence, by dynamic programming: payloads in
	// examples are small.
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			out.WriteString("  " + a[i] + "\n")
			i++
			j++
		case j < len(b) && (i == len(a) || lcs[i][j+1] >= lcs[i+1][j]):
			out.WriteString("+ " + b[j] + "\n")
			j++
		default:
			out.WriteString("- " + a[i] + "\n")
			i++
		}
	}
	return out.String()
}
