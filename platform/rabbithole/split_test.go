package rabbithole

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestCountTokens(t *testing.T) {
	cases := []struct {
		in   string
		want int
	}{
		{"", 0},
		{"   \n\t ", 0},
		{"Hello, world!", 4},
		{"a-b", 3},
		{"don't", 3},
		{"3.14", 3},
		{"naïve café", 2},
		{"cafe\u0301", 1}, // a combining accent stays with its letter
		{"日本語", 3},
		{strings.Repeat("x", 16), 1},
		{strings.Repeat("x", 17), 2},
		{strings.Repeat("x", 40), 3},
	}
	for _, c := range cases {
		if got := countTokens(c.in); got != c.want {
			t.Errorf("countTokens(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestSplitExamples(t *testing.T) {
	cases := []struct {
		name          string
		text          string
		size, overlap int
		want          []string
	}{
		{"empty", "", 10, 0, []string{}},
		{"only whitespace", " \n\n \t", 10, 0, []string{}},
		{"fits whole", "  Hello, world!  ", 4, 0, []string{"Hello, world!"}},
		{"words with overlap", "aaa bbb ccc ddd", 2, 1, []string{"aaa bbb", "bbb ccc", "ccc ddd"}},
		{"paragraphs first", "Para one is here.\n\nPara two is here.", 6, 0, []string{"Para one is here.", "Para two is here."}},
		{"lines before sentences", "One. Two.\nThree. Four.", 4, 0, []string{"One. Two.", "Three. Four."}},
		{"sentences keep their stop", "One two. Three four. Five six.", 4, 0, []string{"One two.", "Three four.", "Five six."}},
		{"hard cut", "a,b,c,d", 3, 0, []string{"a,b", ",c,", "d"}},
		{"long word cut", strings.Repeat("x", 40), 2, 0, []string{strings.Repeat("x", 32), strings.Repeat("x", 8)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Split(c.text, c.size, c.overlap)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", c.want) {
				t.Errorf("Split = %q, want %q", got, c.want)
			}
		})
	}
}

func TestSplitRefusesBadParameters(t *testing.T) {
	cases := []struct {
		size, overlap int
		mention       string
	}{
		{0, 0, "chunk size"},
		{-5, 0, "chunk size"},
		{MaxChunkSize + 1, 0, "8192"},
		{10, -1, "overlap"},
		{10, 10, "overlap"},
		{10, 11, "overlap"},
	}
	for _, c := range cases {
		_, err := Split("some text", c.size, c.overlap)
		if !errors.Is(err, ErrInvalidChunking) {
			t.Errorf("Split(size %d, overlap %d): err = %v, want ErrInvalidChunking", c.size, c.overlap, err)
			continue
		}
		if !strings.Contains(err.Error(), c.mention) {
			t.Errorf("Split(size %d, overlap %d): error %q does not mention %q", c.size, c.overlap, err, c.mention)
		}
	}
	for _, ok := range [][2]int{{1, 0}, {MaxChunkSize, MaxChunkSize - 1}, {DefaultChunkSize, DefaultChunkOverlap}} {
		if _, err := Split("some text", ok[0], ok[1]); err != nil {
			t.Errorf("Split(size %d, overlap %d): %v", ok[0], ok[1], err)
		}
	}
}

// prose makes deterministic text with paragraphs, lines, sentences,
// punctuation and the odd long word. Every word carries its number
// spelled in letters, so a chunk's place in the text is never ambiguous.
func prose(seed uint64, words int) string {
	vocab := strings.Fields("alice rabbit hole cat cheshire grin queen hearts tea party hatter march hare " +
		"dormouse caterpillar mushroom croquet flamingo jury tarts king duchess pepper baby pig " +
		"supercalifragilisticexpialidocious 42 3.14 don't well-known (aside) «quoted» 日本語")
	r := rand.New(rand.NewPCG(seed, seed*7+1))
	var b strings.Builder
	for i := range words {
		b.WriteString(vocab[r.IntN(len(vocab))])
		for n := i + 1; n > 0; n /= 26 { // the word's number, in letters
			b.WriteByte(byte('a' + n%26))
		}
		switch n := r.IntN(40); {
		case i == words-1:
			b.WriteString(".")
		case n == 0:
			b.WriteString(".\n\n")
		case n < 3:
			b.WriteString(".\n")
		case n < 8:
			b.WriteString(". ")
		case n < 10:
			b.WriteString(", ")
		default:
			b.WriteString(" ")
		}
	}
	return b.String()
}

// numbered repeats format n times, with the count in each repetition.
func numbered(format string, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, format, i)
	}
	return b.String()
}

func TestSplitProperties(t *testing.T) {
	texts := map[string]string{
		"prose":            prose(1, 3000),
		"prose 2":          prose(2, 800),
		"one long line":    numbered("word%d ", 500),
		"no spaces at all": numbered("abc%d,def;", 200),
		"cjk":              numbered("日本語の文章%dです。", 100),
		"blob":             numbered("QUJDREVGR0hJSktMTU5PUA%d", 100) + " tail",
	}
	params := [][2]int{{1, 0}, {5, 2}, {16, 0}, {32, 8}, {DefaultChunkSize, DefaultChunkOverlap}, {500, 499}}
	for name, text := range texts {
		for _, p := range params {
			size, overlap := p[0], p[1]
			t.Run(fmt.Sprintf("%s/%d/%d", name, size, overlap), func(t *testing.T) {
				chunks, err := Split(text, size, overlap)
				if err != nil {
					t.Fatal(err)
				}
				checkChunks(t, text, chunks, size, overlap)
			})
		}
	}
}

// checkChunks verifies Split's promises: chunks fit, are trimmed and not
// empty, cover the text in order without gaps, and consecutive chunks
// overlap by at most overlap tokens (and do overlap somewhere when they
// can).
func checkChunks(t *testing.T, text string, chunks []string, size, overlap int) {
	t.Helper()
	if len(chunks) == 0 {
		t.Fatal("no chunks")
	}
	pos, prevEnd, overlaps := 0, 0, 0
	for i, c := range chunks {
		if c == "" || c != strings.TrimSpace(c) {
			t.Fatalf("chunk %d %q is empty or untrimmed", i, c)
		}
		if n := countTokens(c); n > size {
			t.Fatalf("chunk %d has %d tokens, more than %d: %q", i, n, size, c)
		}
		from := pos
		if i > 0 {
			from++ // each chunk starts after the one before
		}
		at := strings.Index(text[from:], c)
		if at < 0 {
			t.Fatalf("chunk %d %q is not in the text after the previous chunk's start", i, c)
		}
		start := from + at
		if i > 0 && strings.TrimSpace(text[min(prevEnd, start):start]) != "" {
			t.Fatalf("gap before chunk %d: %q left out", i, text[prevEnd:start])
		}
		if i == 0 && strings.TrimSpace(text[:start]) != "" {
			t.Fatalf("text before the first chunk left out: %q", text[:start])
		}
		if i > 0 && start < prevEnd {
			overlaps++
			if n := countTokens(text[start:prevEnd]); n > overlap {
				t.Fatalf("chunks %d and %d share %d tokens, more than %d", i-1, i, n, overlap)
			}
		}
		pos, prevEnd = start, max(prevEnd, start+len(c))
	}
	if rest := strings.TrimSpace(text[prevEnd:]); rest != "" {
		t.Fatalf("text after the last chunk left out: %q", rest)
	}
	if overlap >= 2 && len(chunks) > 2 && overlaps == 0 {
		t.Errorf("no two of %d chunks overlap (overlap %d)", len(chunks), overlap)
	}
	// And, as a reader would check: every word, in order, where no word
	// is too long to be cut.
	words := strings.Fields(text)
	for _, w := range words {
		if countTokens(w) > size {
			return
		}
	}
	w := 0
	for _, c := range chunks {
		for _, cw := range strings.Fields(c) {
			if w < len(words) && cw == words[w] {
				w++
			}
		}
	}
	if w != len(words) {
		t.Fatalf("only %d of %d words found in order; missing from %q", w, len(words), words[w])
	}
}
