package rabbithole

import (
	"bytes"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html/charset"
	"golang.org/x/text/encoding/unicode/utf32"
)

// decodeText turns the bytes of a text file into a string: a byte order
// mark or a declared charset is honoured, anything else is read as UTF-8
// (invalid sequences are replaced later by cleanText). Guessing a legacy
// encoding for undeclared text would be wrong as often as right.
func decodeText(data []byte, label string) string {
	switch {
	case bytes.HasPrefix(data, []byte{0xEF, 0xBB, 0xBF}):
		return string(data[3:])
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE, 0, 0}):
		label = "utf-32le"
	case bytes.HasPrefix(data, []byte{0, 0, 0xFE, 0xFF}):
		label = "utf-32be"
	case bytes.HasPrefix(data, []byte{0xFE, 0xFF}):
		label = "utf-16be"
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE}):
		label = "utf-16le"
	}
	switch strings.ToLower(strings.TrimSpace(label)) {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		return string(data)
	case "utf-32le":
		if out, err := utf32.UTF32(utf32.LittleEndian, utf32.UseBOM).NewDecoder().Bytes(data); err == nil {
			return string(out)
		}
		return string(data)
	case "utf-32be":
		if out, err := utf32.UTF32(utf32.BigEndian, utf32.UseBOM).NewDecoder().Bytes(data); err == nil {
			return string(out)
		}
		return string(data)
	}
	enc, _ := charset.Lookup(label)
	if enc == nil {
		return string(data)
	}
	out, err := enc.NewDecoder().Bytes(data)
	if err != nil {
		return string(data)
	}
	return string(out)
}

// textWriter collects extracted text, turning the structure of a document
// into line breaks: a paragraph ends with a blank line, a list item or a
// table row with a newline, and runs of inline whitespace become one space.
type textWriter struct {
	b strings.Builder
}

// inline writes running text, collapsing whitespace as a browser does.
func (w *textWriter) inline(s string) {
	if s == "" {
		return
	}
	if r, _ := utf8.DecodeRuneInString(s); unicode.IsSpace(r) {
		w.space()
	}
	fields := strings.Fields(s)
	for i, f := range fields {
		if i > 0 {
			w.space()
		}
		w.b.WriteString(f)
	}
	if r, _ := utf8.DecodeLastRuneInString(s); len(fields) > 0 && unicode.IsSpace(r) {
		w.space()
	}
}

// space writes one space unless the text is empty or already ends with
// whitespace.
func (w *textWriter) space() {
	s := w.b.String()
	if r, _ := utf8.DecodeLastRuneInString(s); s != "" && !unicode.IsSpace(r) {
		w.b.WriteByte(' ')
	}
}

// raw writes text as it is, for preformatted blocks and code.
func (w *textWriter) raw(s string) { w.b.WriteString(s) }

// line ends the current line, if it has anything on it.
func (w *textWriter) line() {
	s := w.b.String()
	if s != "" && !strings.HasSuffix(s, "\n") {
		w.b.WriteByte('\n')
	}
}

// block ends the current paragraph with a blank line.
func (w *textWriter) block() {
	w.line()
	s := w.b.String()
	if s != "" && !strings.HasSuffix(s, "\n\n") {
		w.b.WriteByte('\n')
	}
}

// String returns the text with trailing spaces cut from every line and at
// most one blank line in a row.
func (w *textWriter) String() string { return tidyLines(w.b.String()) }

// tidyLines cuts trailing whitespace from lines, keeps at most one blank
// line in a row and drops blank lines at either end. Leading indentation
// is kept: in code it carries meaning.
func tidyLines(s string) string {
	s = cleanText(s)
	lines := strings.Split(s, "\n")
	out := lines[:0]
	blank := true // no blank lines at the start
	for _, l := range lines {
		l = strings.TrimRightFunc(l, unicode.IsSpace)
		if l == "" {
			if blank {
				continue
			}
			blank = true
		} else {
			blank = false
		}
		out = append(out, l)
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return strings.Join(out, "\n")
}
