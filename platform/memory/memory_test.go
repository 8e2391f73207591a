package memory

import (
	"encoding/json"
	"testing"
)

// TestTermsAgreeWithMatches: a backend filtering by terms finds exactly
// the points Matches would.
func TestTermsAgreeWithMatches(t *testing.T) {
	values := []any{
		"1", 1, 1.0, int64(1), json.Number("1"), float32(1), 2, "a", "A", true, false, nil, "true",
		[]any{"1"}, []any{1}, []any{1.0}, map[string]any{"x": 1}, map[string]any{"x": "1"},
	}
	for _, a := range values {
		for _, b := range values {
			matches := Matches(map[string]any{"k": a}, map[string]any{"k": b})
			terms := Term("k", a) == Term("k", b)
			if matches != terms {
				t.Errorf("%#v vs %#v: Matches %v, terms equal %v", a, b, matches, terms)
			}
		}
	}
	for _, tc := range []struct {
		a, b any
		want bool
	}{
		{1, 1.0, true}, {"1", 1, false}, {[]any{1}, []any{1.0}, true}, {[]any{"1"}, []any{1}, false}, {true, "true", false}, {nil, "", false},
	} {
		if got := Matches(map[string]any{"k": tc.a}, map[string]any{"k": tc.b}); got != tc.want {
			t.Errorf("Matches(%#v, %#v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
	if Term("a=b", "c") == Term("a", "b=c") {
		t.Error("keys and values run together in terms")
	}
}
