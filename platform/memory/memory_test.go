package memory

import (
	"encoding/json"
	"math"
	"math/rand/v2"
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

// cosineOnePass is the cosine as first written, summing the dot product
// and both norms in one loop: the reference Cosine is held to, and the
// anchor of BenchmarkCosine.
func cosineOnePass(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		dot += x * y
		na += x * x
		nb += y * y
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / (math.Sqrt(na) * math.Sqrt(nb))
}

func TestCosine(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = rng.Float32()*2 - 1
		}
		return v
	}
	for _, tc := range []struct {
		name string
		a, b []float32
		want float64
	}{
		{"same direction", []float32{1, 2, 3}, []float32{2, 4, 6}, 1},
		{"opposite", []float32{1, 2, 3, 4, 5}, []float32{-1, -2, -3, -4, -5}, -1},
		{"orthogonal", []float32{1, 0, 0, 0, 0, 0, 0}, []float32{0, 0, 0, 0, 0, 0, 1}, 0},
		{"a zero vector", []float32{0, 0, 0, 0}, []float32{1, 2, 3, 4}, 0},
		{"a zero vector second", []float32{1, 1}, []float32{0, 0}, 0},
		{"empty", nil, nil, 0},
		{"45 degrees, odd length", []float32{1, 0, 0}, []float32{1, 1, 0}, 1 / math.Sqrt2},
	} {
		// Written so that NaN (a zero norm divided by) fails too.
		if got := Cosine(tc.a, tc.b, Norm(tc.a), Norm(tc.b)); !(math.Abs(got-tc.want) <= 1e-12) {
			t.Errorf("%s: Cosine = %v, want %v", tc.name, got, tc.want)
		}
	}
	// Random vectors of every length near an embedder's: Dot (gonum's
	// vector loop) agrees with one loop's single sums to within float64
	// rounding.
	for n := 1; n <= 40; n++ {
		for _, size := range []int{n, 512 + n} {
			a, b := random(size), random(size)
			got, want := Cosine(a, b, Norm(a), Norm(b)), cosineOnePass(a, b)
			if math.Abs(got-want) > 1e-12 {
				t.Errorf("length %d: Cosine = %v, one loop gives %v", size, got, want)
			}
			if d, w := Dot(a, a), Norm(a)*Norm(a); math.Abs(d-w) > 1e-9*w {
				t.Errorf("length %d: Dot(a, a) = %v, Norm(a)² = %v", size, d, w)
			}
		}
	}
}

// Equal strings match however they are held; a string never matches a
// number or a list, even one printed the same.
func TestMatchesStrings(t *testing.T) {
	for _, tc := range []struct {
		got, want any
		match     bool
	}{
		{"alice", "alice", true},
		{"alice", "bob", false},
		{"", "", true},
		{"1", json.Number("1"), false},
		{"1", 1.0, false},
		{json.Number("1"), 1, true},
	} {
		if m := Matches(map[string]any{"source": tc.got}, map[string]any{"source": tc.want}); m != tc.match {
			t.Errorf("%#v against %#v: Matches = %v, want %v", tc.got, tc.want, m, tc.match)
		}
	}
}

// BenchmarkCosine compares one stored vector with a query, as recall does
// for every point of a partition: with both norms known beforehand
// (Cosine, the embedded store's way) and with one loop that sums the norms
// as it goes, the anchor.
func BenchmarkCosine(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	q, p := make([]float32, 512), make([]float32, 512)
	for i := range q {
		q[i], p[i] = rng.Float32(), rng.Float32()
	}
	qn, pn := Norm(q), Norm(p)
	var sink float64
	b.Run("norms-known", func(b *testing.B) {
		for b.Loop() {
			sink += Cosine(q, p, qn, pn)
		}
	})
	b.Run("one-loop", func(b *testing.B) {
		for b.Loop() {
			sink += cosineOnePass(q, p)
		}
	})
	_ = sink
}
