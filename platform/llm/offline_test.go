package llm_test

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/grin-ai/grin/platform/llm"
)

func embedOne(t *testing.T, e llm.Embedder, text string) []float32 {
	t.Helper()
	v, err := e.Embed(t.Context(), []string{text})
	if err != nil {
		t.Fatalf("Embed(%q): %v", text, err)
	}
	return v[0]
}

func cosine(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return dot / math.Sqrt(na*nb)
}

func norm(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

func TestHashingIsDeterministicAndNormalized(t *testing.T) {
	for _, dims := range []int{64, 512, 4096} {
		h := llm.NewHashing(dims)
		for _, text := range []string{"cat", "The Cheshire Cat grins from ear to ear.", "Ünïcödé wörds, 42 numbers!"} {
			a := embedOne(t, h, text)
			b := embedOne(t, llm.NewHashing(dims), text)
			if !reflect.DeepEqual(a, b) {
				t.Errorf("dims %d: %q embeds differently on a second embedder", dims, text)
			}
			if len(a) != dims || h.Dimensions() != dims {
				t.Errorf("dims %d: vector length %d, Dimensions %d", dims, len(a), h.Dimensions())
			}
			if n := norm(a); math.Abs(n-1) > 1e-5 {
				t.Errorf("dims %d: |%q| = %v, want 1", dims, text, n)
			}
		}
	}
	if h := llm.NewHashing(0); h.Dimensions() != 512 || h.Name() != "hashing-512" {
		t.Errorf("NewHashing(0) = %d dimensions, %q; want 512, hashing-512", h.Dimensions(), h.Name())
	}
}

func TestHashingSharedWordsAreNearer(t *testing.T) {
	h := llm.NewHashing(512)
	tests := []struct{ text, related, unrelated string }{
		{"my cat likes tuna fish", "what fish does the cat like", "the stock market fell sharply today"},
		{"Alice fell down the rabbit hole", "the rabbit hole Alice fell into", "quarterly revenue projections spreadsheet"},
		{"password reset instructions", "how do I reset my password", "chocolate cake recipe with cherries"},
	}
	for _, tt := range tests {
		v := embedOne(t, h, tt.text)
		near := cosine(v, embedOne(t, h, tt.related))
		far := cosine(v, embedOne(t, h, tt.unrelated))
		if near <= far {
			t.Errorf("cos(%q, %q) = %.3f is not above cos(%q, %q) = %.3f", tt.text, tt.related, near, tt.text, tt.unrelated, far)
		}
	}
}

func TestHashingEmptyTextIsZero(t *testing.T) {
	h := llm.NewHashing(128)
	for _, text := range []string{"", "   ", "!?…", "the of and"} { // "the of and": only stop words
		v := embedOne(t, h, text)
		if len(v) != 128 {
			t.Fatalf("%q: %d dimensions, want 128", text, len(v))
		}
		for i, x := range v {
			if x != 0 || math.IsNaN(float64(x)) {
				t.Fatalf("%q: component %d = %v, want a zero vector", text, i, x)
			}
		}
	}
}

func TestOfflineQuotesWhatItRemembers(t *testing.T) {
	recalled := []string{
		"The cat's name is Dinah.",
		"Alice likes  tea\nwith milk.",
		"The Queen plays croquet with flamingos.",
		"A fourth memory that is not quoted.",
	}
	var tokens []string
	reply, err := llm.Offline{}.Generate(t.Context(), llm.Request{Input: "What do you know?", Recalled: recalled}, collect(&tokens))
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if strings.Join(tokens, "") != reply || len(tokens) < 2 {
		t.Errorf("%d tokens joined = %q, want the reply %q, streamed in pieces", len(tokens), strings.Join(tokens, ""), reply)
	}
	for _, q := range []string{"The cat's name is Dinah.", "Alice likes tea with milk.", "The Queen plays croquet with flamingos."} {
		if !strings.Contains(reply, q) {
			t.Errorf("reply %q does not quote %q", reply, q)
		}
	}
	if strings.Contains(reply, "fourth memory") {
		t.Errorf("reply %q quotes more than the three most relevant memories", reply)
	}
	if !strings.Contains(reply, "/llm/settings") {
		t.Errorf("reply %q does not say where to configure a model", reply)
	}

	empty, err := llm.Offline{}.Generate(t.Context(), llm.Request{Input: "Hello"}, nil)
	if err != nil || !strings.Contains(empty, "don't remember anything") {
		t.Errorf("with nothing recalled: %q, %v; want it to say it remembers nothing", empty, err)
	}
}

func TestOfflineStops(t *testing.T) {
	errClosed := errors.New("websocket closed")
	calls := 0
	_, err := llm.Offline{}.Generate(t.Context(), llm.Request{Recalled: []string{"one two three"}}, func(string) error {
		calls++
		return errClosed
	})
	if !errors.Is(err, errClosed) || calls != 1 {
		t.Errorf("onToken failing: %v after %d calls; want its error after 1", err, calls)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := (llm.Offline{}).Generate(ctx, llm.Request{}, func(string) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v, want context.Canceled", err)
	}
}
