package rabbithole

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/ledongthuc/pdf"
)

// The PDF reader is github.com/ledongthuc/pdf, a maintained fork of
// rsc.io/pdf: pure Go, no cgo, reads compressed object and xref streams
// and the standard RC4/AES encryption with an empty user password. Its
// own plain-text walk glues words that a PDF places apart without a space
// character (what TeX and most typesetters do), so pageText walks the
// content stream itself with the library's interpreter and font decoders.

// tjSpace is how far back (in thousandths of an em) a TJ adjustment must
// move the pen to stand for a space between words; kerning stays well
// below it, an inter-word gap is 250–350.
const tjSpace = 200

// pdfAbort carries an error out of the library's interpreter, which knows
// only panics.
type pdfAbort struct{ err error }

// pdfText returns the text of a PDF, pages separated by blank lines, and
// the Title of its document information.
func pdfText(ctx context.Context, data []byte) (text, title string, err error) {
	if bytes.HasPrefix(data, []byte("%PDF-2.")) {
		// PDF 2.0 reads as 1.7 for text; the library knows only 1.x
		// headers.
		data = append([]byte(nil), data...)
		copy(data[5:], "1.7")
	}
	r, err := openPDF(data)
	if err != nil {
		return "", "", err
	}
	title = pdfTitle(r)
	encrypted := isEncrypted(r)

	// A page object takes dozens of bytes: a page count beyond that is a
	// lie, and believing it would loop for nothing.
	n := r.NumPage()
	if limit := len(data)/16 + 1; n > limit {
		n = limit
	}
	// Decompression can make a small file produce a great deal of text;
	// more than 16 times the file is no honest document.
	budget := 16*len(data) + 1<<20
	var pages []string
	for i := 1; i <= n; i++ {
		if err := ctx.Err(); err != nil {
			return "", "", err
		}
		t, err := pageText(ctx, r, i, &budget)
		if err != nil && encrypted && errors.Is(err, ErrMalformed) {
			// The library opens owner-protected files but decrypts
			// keys shorter than 128 bits wrongly (40-bit RC4), which
			// shows as damaged streams.
			return "", "", fmt.Errorf("%w: its encryption could not be undone (page %d: %v)", ErrEncrypted, i, err)
		}
		if err != nil {
			return "", "", fmt.Errorf("page %d: %w", i, err)
		}
		if t = tidyLines(t); t != "" {
			pages = append(pages, t)
		}
	}
	if len(pages) == 0 {
		return "", "", fmt.Errorf("%w (%d pages, no text on any)", ErrNoText, n)
	}
	return strings.Join(pages, "\n\n"), title, nil
}

// openPDF opens data, telling encrypted and damaged files apart.
func openPDF(data []byte) (r *pdf.Reader, err error) {
	defer func() {
		if x := recover(); x != nil {
			r, err = nil, fmt.Errorf("%w: %v", ErrMalformed, x)
		}
	}()
	r, err = pdf.NewReader(bytes.NewReader(data), int64(len(data)))
	if err == nil {
		return r, nil
	}
	// The library tries the empty password itself, which is what viewers
	// do for files that are only owner-protected; what fails here needs a
	// password or a cipher it lacks.
	if errors.Is(err, pdf.ErrInvalidPassword) || strings.Contains(err.Error(), "encrypt") {
		return nil, fmt.Errorf("%w: %w", ErrEncrypted, err)
	}
	if !bytes.HasPrefix(data, []byte("%PDF-")) {
		return nil, fmt.Errorf("%w: not a PDF file", ErrMalformed)
	}
	return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
}

// isEncrypted reports whether the file has an encryption dictionary.
func isEncrypted(r *pdf.Reader) (yes bool) {
	defer func() {
		if recover() != nil {
			yes = true
		}
	}()
	return !r.Trailer().Key("Encrypt").IsNull()
}

// pdfTitle returns the document information's Title, or "".
func pdfTitle(r *pdf.Reader) (title string) {
	defer func() {
		if recover() != nil {
			title = ""
		}
	}()
	return r.Trailer().Key("Info").Key("Title").Text()
}

// pageText returns the text of page i. Lines of the page become lines of
// text; a move along the same line, or a wide TJ gap, becomes a space.
// It decrements budget by the text's length and fails with ErrTooLarge
// when the budget runs out.
func pageText(ctx context.Context, r *pdf.Reader, i int, budget *int) (text string, err error) {
	var out strings.Builder
	defer func() {
		if x := recover(); x != nil {
			text = ""
			if a, ok := x.(pdfAbort); ok {
				err = a.err
				return
			}
			err = fmt.Errorf("%w: %v", ErrMalformed, x)
		}
	}()
	p := r.Page(i)
	if p.V.IsNull() {
		return "", nil
	}
	contents := p.V.Key("Contents")
	if contents.Kind() == pdf.Null {
		return "", nil
	}
	fonts := make(map[string]*pdf.Font)
	for _, name := range p.Fonts() {
		f := p.Font(name)
		fonts[name] = &f
	}

	var (
		enc      pdf.TextEncoding
		size     = 1.0      // font size, text space units
		leading  float64    // TL
		tlm      = identity // text line matrix
		lastY    float64    // line of the last text shown
		started  bool       // text was shown on this page
		moved    bool       // the pen moved since the last text
		calls    int        // operators seen, to poll ctx now and then
		sameLine = func() bool {
			scale := math.Hypot(tlm[2], tlm[3])
			return math.Abs(tlm[5]-lastY) <= math.Max(0.3*size*scale, 0.5)
		}
	)
	write := func(s string) {
		*budget -= len(s)
		if *budget < 0 {
			panic(pdfAbort{fmt.Errorf("%w: the text extracted from the PDF is far larger than the file", ErrTooLarge)})
		}
		out.WriteString(s)
	}
	show := func(v pdf.Value) {
		raw := v.RawString()
		if raw == "" {
			return
		}
		text := latin1(raw)
		if enc != nil {
			text = enc.Decode(raw)
		}
		if moved && started {
			if !sameLine() {
				write("\n")
			} else if !endsInSpace(out.String()) && !strings.HasPrefix(text, " ") {
				write(" ")
			}
		}
		moved, started, lastY = false, true, tlm[5]
		write(text)
	}
	move := func(tx, ty float64) {
		tlm = matrix{1, 0, 0, 1, tx, ty}.mul(tlm)
		moved = true
	}

	pdf.Interpret(contents, func(stk *pdf.Stack, op string) {
		if calls++; calls%4096 == 0 {
			if err := ctx.Err(); err != nil {
				panic(pdfAbort{err})
			}
		}
		args := make([]pdf.Value, stk.Len())
		for i := len(args) - 1; i >= 0; i-- {
			args[i] = stk.Pop()
		}
		switch op {
		case "BT":
			tlm, moved = identity, true
		case "Tf":
			if len(args) == 2 {
				if f, ok := fonts[args[0].Name()]; ok {
					enc = f.Encoder()
				} else {
					enc = nil
				}
				size = math.Abs(args[1].Float64())
			}
		case "TL":
			if len(args) == 1 {
				leading = args[0].Float64()
			}
		case "Td", "TD":
			if len(args) == 2 {
				if op == "TD" {
					leading = -args[1].Float64()
				}
				move(args[0].Float64(), args[1].Float64())
			}
		case "Tm":
			if len(args) == 6 {
				for k := range tlm {
					tlm[k] = args[k].Float64()
				}
				moved = true
			}
		case "T*":
			move(0, -leading)
		case "Tj":
			if len(args) == 1 {
				show(args[0])
			}
		case "'":
			if len(args) == 1 {
				move(0, -leading)
				show(args[0])
			}
		case "\"":
			if len(args) == 3 {
				move(0, -leading)
				show(args[2])
			}
		case "TJ":
			if len(args) == 1 {
				a := args[0]
				for k := range a.Len() {
					x := a.Index(k)
					switch x.Kind() {
					case pdf.String:
						show(x)
					case pdf.Integer, pdf.Real:
						if x.Float64() < -tjSpace && started && !moved && !endsInSpace(out.String()) {
							write(" ")
						}
					}
				}
			}
		}
	})
	return out.String(), nil
}

func endsInSpace(s string) bool {
	return s == "" || strings.HasSuffix(s, " ") || strings.HasSuffix(s, "\n")
}

// matrix is a PDF transformation matrix [a b c d e f].
type matrix [6]float64

var identity = matrix{1, 0, 0, 1, 0, 0}

// mul returns m×n.
func (m matrix) mul(n matrix) matrix {
	return matrix{
		m[0]*n[0] + m[1]*n[2],
		m[0]*n[1] + m[1]*n[3],
		m[2]*n[0] + m[3]*n[2],
		m[2]*n[1] + m[3]*n[3],
		m[4]*n[0] + m[5]*n[2] + n[4],
		m[4]*n[1] + m[5]*n[3] + n[5],
	}
}

// latin1 reads bytes of a font without a known encoding one character
// each, which is right for the ASCII most such fonts hold and never makes
// invalid UTF-8.
func latin1(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteRune(rune(s[i]))
	}
	return b.String()
}
