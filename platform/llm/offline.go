package llm

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"strings"
	"unicode"
)

// Hashing is the offline embedder: each lower-cased, lightly stemmed word
// is hashed into one of Dims buckets with a sign, and the vector is
// L2-normalized. Texts that share words get a high cosine ("carries" and
// "carry" count as one word); no network, no model file, the same vector
// every time.
type Hashing struct{ Dims int }

// NewHashing returns a hashing embedder of dims dimensions (512 when 0).
func NewHashing(dims int) *Hashing {
	if dims <= 0 {
		dims = 512
	}
	return &Hashing{Dims: dims}
}

// Name implements Embedder.
func (h *Hashing) Name() string { return fmt.Sprintf("hashing-%d", h.Dims) }

// Dimensions implements Embedder.
func (h *Hashing) Dimensions() int { return h.Dims }

// Embed implements Embedder.
func (h *Hashing) Embed(_ context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		out[i] = h.vector(t)
	}
	return out, nil
}

func (h *Hashing) vector(text string) []float32 {
	v := make([]float32, h.Dims)
	words := Words(text)
	add := func(token string, weight float32) {
		f := fnv.New64a()
		f.Write([]byte(token))
		sum := f.Sum64()
		idx := int(sum % uint64(h.Dims))
		if sum>>63 == 1 {
			weight = -weight
		}
		v[idx] += weight
	}
	for _, w := range words {
		add(stem(w), 1)
	}
	var norm float64
	for _, x := range v {
		norm += float64(x) * float64(x)
	}
	if norm > 0 {
		inv := float32(1 / math.Sqrt(norm))
		for i := range v {
			v[i] *= inv
		}
	}
	return v
}

// Words splits text into lower-case words of letters and digits, dropping
// the commonest English words so that they do not dominate similarity.
func Words(text string) []string {
	fields := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	out := fields[:0]
	for _, f := range fields {
		if !stopWords[f] {
			out = append(out, f)
		}
	}
	return out
}

var stopWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields("a an and are as at be but by do does for from had has have he her his how i in is it its me my of on or our she so than that the their them then there these they this to was we were what when where which who why will with you your") {
		m[w] = true
	}
	return m
}()

// stem strips the commonest English inflections, so that a question and
// the statement that answers it share words: carries/carry → carri,
// colours → colour, walked/walking → walk. It is deliberately crude: the
// same word always gives the same stem, which is all hashing needs.
func stem(w string) string {
	if len([]rune(w)) <= 3 {
		return w
	}
	for _, suf := range []struct{ from, to string }{
		{"ies", "i"}, {"ied", "i"}, {"ing", ""}, {"ed", ""}, {"es", ""}, {"s", ""}, {"y", "i"},
	} {
		if strings.HasSuffix(w, suf.from) && !strings.HasSuffix(w, "ss") && len(w)-len(suf.from) >= 3 {
			return strings.TrimSuffix(w, suf.from) + suf.to
		}
	}
	return w
}

// Offline is the model grin answers with when none is configured: it
// quotes the memories recalled for the question and says how to configure
// a real model, so a fresh install is useful and honest.
type Offline struct{}

// Generate implements Model. It streams its reply sentence by sentence and
// line by line, so clients see chat_token frames as with a real model.
func (Offline) Generate(ctx context.Context, req Request, onToken func(string) error) (string, error) {
	var b strings.Builder
	if len(req.Recalled) == 0 {
		b.WriteString("I don't remember anything about that yet. ")
	} else {
		b.WriteString("Here is what I remember that seems related:\n")
		for i, m := range req.Recalled {
			if i == 3 {
				break
			}
			fmt.Fprintf(&b, "- %s\n", oneLine(m, 300))
		}
	}
	b.WriteString("(No language model is configured, so I can only repeat what I remember; configure one in /llm/settings.)")
	reply := b.String()
	if onToken != nil {
		for _, piece := range splitPieces(reply) {
			if err := ctx.Err(); err != nil {
				return "", err
			}
			if err := onToken(piece); err != nil {
				return "", err
			}
		}
	}
	return reply, nil
}

// splitPieces cuts a reply after each line and each sentence.
func splitPieces(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' || (s[i] == '.' && i+1 < len(s) && s[i+1] == ' ') {
			end := i + 1
			if s[i] == '.' {
				end++ // the space goes with its sentence
			}
			out = append(out, s[start:end])
			start = end
			i = end - 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > max {
		return string(r[:max]) + "…"
	}
	return s
}

var (
	_ Embedder = (*Hashing)(nil)
	_ Model    = Offline{}
)
