package rabbithole

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// The Cheshire Cat's defaults for the rabbit hole's chunk_size and
// chunk_overlap, and the largest chunk Split accepts.
const (
	DefaultChunkSize    = 256
	DefaultChunkOverlap = 64
	MaxChunkSize        = 8192
)

// ErrInvalidChunking is returned by Split for a chunk size or overlap out
// of range; the message says which and why.
var ErrInvalidChunking = errors.New("invalid chunking")

// separators are tried in order, paragraphs before lines before sentences
// before words, so a chunk breaks at the coarsest boundary that lets it
// fit. Below words, text is cut between tokens.
var separators = []string{"\n\n", "\n", ". ", " "}

// maxRun is the longest run of letters or digits counted as one token.
// Tokenizers cut long words, and without a cap one base64 blob would make a
// "one-token" chunk of any size.
const maxRun = 16

// Split cuts text into chunks of at most chunkSize tokens, consecutive
// chunks sharing about chunkOverlap tokens, as the Cheshire Cat's
// RecursiveCharacterTextSplitter does.
//
// Length is measured in tokens, which approximate what an LLM tokenizer
// counts without needing a model file: a token is a run of letters and
// digits (combining marks included; runs longer than 16 count one token
// per 16 characters), a single ideograph or kana, or any other single
// character that is not whitespace. "Hello, world!" is four tokens.
//
// Text is split at the first of "\n\n", "\n", ". " and " " that it
// contains, each piece keeping its separator at its end; pieces still too
// long are split again at the next separator, and at token boundaries
// once none is left. Pieces are then merged up to chunkSize. Chunks are
// trimmed, never empty, and each is a substring of text, in order.
//
// chunkSize must be 1 to MaxChunkSize, chunkOverlap 0 to chunkSize-1.
func Split(text string, chunkSize, chunkOverlap int) ([]string, error) {
	if chunkSize < 1 || chunkSize > MaxChunkSize {
		return nil, fmt.Errorf("%w: chunk size must be between 1 and %d tokens, got %d", ErrInvalidChunking, MaxChunkSize, chunkSize)
	}
	if chunkOverlap < 0 || chunkOverlap >= chunkSize {
		return nil, fmt.Errorf("%w: chunk overlap must be at least 0 and less than the chunk size (%d), got %d", ErrInvalidChunking, chunkSize, chunkOverlap)
	}
	s := splitter{size: chunkSize, overlap: chunkOverlap}
	chunks := s.split(text, separators)
	if chunks == nil {
		chunks = []string{}
	}
	return chunks, nil
}

type splitter struct {
	size, overlap int
}

// split is LangChain's _split_text: cut at the coarsest separator text
// holds, merge the pieces that fit, recurse into those that do not.
func (s splitter) split(text string, seps []string) []string {
	var pieces, rest []string
	cut := false
	for i, sep := range seps {
		if strings.Contains(text, sep) {
			pieces, rest, cut = splitAfter(text, sep), seps[i+1:], true
			break
		}
	}
	if !cut {
		pieces = tokenPieces(text)
	}
	var chunks, fit []string
	for _, p := range pieces {
		if countTokens(p) <= s.size {
			fit = append(fit, p)
			continue
		}
		// Only a separator's piece can be too long: a token piece is one
		// token and chunkSize is at least one.
		chunks = append(chunks, s.merge(fit)...)
		fit = nil
		chunks = append(chunks, s.split(p, rest)...)
	}
	return append(chunks, s.merge(fit)...)
}

// merge is LangChain's _merge_splits: join consecutive pieces while they
// fit in a chunk; after each chunk, keep at most the last overlap tokens'
// worth of pieces to begin the next.
func (s splitter) merge(pieces []string) []string {
	var (
		chunks []string
		cur    []string
		lens   []int
		total  int
	)
	emit := func() {
		if c := strings.TrimSpace(strings.Join(cur, "")); c != "" {
			chunks = append(chunks, c)
		}
	}
	for _, p := range pieces {
		n := countTokens(p)
		if total+n > s.size && len(cur) > 0 {
			emit()
			for total > s.overlap || (total+n > s.size && total > 0) {
				total -= lens[0]
				cur, lens = cur[1:], lens[1:]
			}
		}
		cur, lens = append(cur, p), append(lens, n)
		total += n
	}
	emit()
	return chunks
}

// splitAfter cuts text after every sep, so the pieces joined give text
// back and a sentence keeps its full stop.
func splitAfter(text, sep string) []string {
	var pieces []string
	for {
		i := strings.Index(text, sep)
		if i < 0 {
			break
		}
		pieces = append(pieces, text[:i+len(sep)])
		text = text[i+len(sep):]
	}
	if text != "" {
		pieces = append(pieces, text)
	}
	return pieces
}

// tokenPieces cuts text into single tokens, each with the whitespace
// after it; leading whitespace goes with the first. Joined, they give
// text back.
func tokenPieces(text string) []string {
	var pieces []string
	start, run := 0, 0
	for i, r := range text {
		kind := runeKind(r)
		if kind == space {
			run = 0
			continue
		}
		if kind == word {
			run++
			if run%maxRun != 1 {
				continue // inside a run: same token
			}
		} else {
			run = 0
		}
		if i > start && strings.TrimSpace(text[start:i]) != "" {
			pieces = append(pieces, text[start:i])
			start = i
		}
	}
	if start < len(text) {
		pieces = append(pieces, text[start:])
	}
	return pieces
}

// countTokens returns the number of tokens in s; see Split.
func countTokens(s string) int {
	n, run := 0, 0
	for _, r := range s {
		switch runeKind(r) {
		case word:
			if run%maxRun == 0 {
				n++
			}
			run++
		case space:
			run = 0
		default:
			n++
			run = 0
		}
	}
	return n
}

type kind int

const (
	space  kind = iota
	word        // letters, digits and marks, which run together
	single      // a token on its own: punctuation, symbols, ideographs
)

func runeKind(r rune) kind {
	switch {
	case unicode.IsSpace(r):
		return space
	case unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana):
		return single
	case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsNumber(r) || unicode.IsMark(r):
		return word
	}
	return single
}
