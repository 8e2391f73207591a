// Package rabbithole turns uploaded files and fetched web pages into plain
// text and cuts that text into chunks, the first half of the Cheshire Cat's
// rabbit hole (/rabbithole/, /rabbithole/web).
//
// It knows nothing of memory, embeddings or HTTP handlers: the server reads
// the upload or calls Fetcher.Fetch, hands the bytes to Parse, cuts the text
// with Split, and stores the chunks itself. Keeping the package this narrow
// lets every parser be tested on real files without a model or a database.
//
// Every way a client can send something unusable has a sentinel error
// (ErrUnsupportedType, ErrTooLarge, ErrMalformed, ErrEncrypted, ErrNoText,
// ErrInvalidChunking; for web pages ErrInvalidURL, ErrForbiddenAddress,
// ErrTooManyRedirects and *StatusError), so the server can answer 4xx for
// the client's faults and 5xx for its own.
//
// The markdown, HTML and JSON readers take time linear in their input
// whatever it holds, and a PDF's text is capped relative to the file, so
// an upload cannot tie up the server with pathological nesting.
package rabbithole

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"unicode"
)

// The supported media types, as reported in Document.MimeType.
const (
	TypeText     = "text/plain"
	TypeMarkdown = "text/markdown"
	TypeHTML     = "text/html"
	TypePDF      = "application/pdf"
	TypeJSON     = "application/json"
)

// supported is the order AllowedMimeTypes reports; the Cat lists its
// parsers in this order too (JSON is grin's addition).
var supported = [...]string{TypeText, TypeMarkdown, TypeHTML, TypePDF, TypeJSON}

var (
	// ErrUnsupportedType is returned for content none of the parsers reads.
	// Its message, as returned by Parse, lists the supported types.
	ErrUnsupportedType = errors.New("unsupported content type")
	// ErrTooLarge is returned when a file or a fetched page is larger than
	// the limit; the message says the limit.
	ErrTooLarge = errors.New("content too large")
	// ErrMalformed is returned when content claims a type it does not
	// have: broken JSON, a damaged PDF.
	ErrMalformed = errors.New("malformed content")
	// ErrEncrypted is returned for password-protected PDFs, whose text
	// cannot be read without the password.
	ErrEncrypted = errors.New("the PDF is encrypted; upload a copy without a password")
	// ErrNoText is returned for a PDF with no text to extract, such as a
	// scanned document made only of images.
	ErrNoText = errors.New("the PDF has no extractable text (scanned images need OCR first)")
)

// Document is the text of one file or page.
type Document struct {
	// Text is the visible text, valid UTF-8 with "\n" line ends.
	Text string
	// MimeType is the type the content was read as, one of
	// AllowedMimeTypes.
	MimeType string
	// Title is the document's own title when it has one: an HTML <title>,
	// a markdown document's first top-level heading, a PDF's Title entry.
	Title string
}

// AllowedMimeTypes returns the media types Parse reads, the answer of the
// Cat's GET /rabbithole/allowed-mimetypes.
func AllowedMimeTypes() []string {
	return append([]string(nil), supported[:]...)
}

// aliases maps other names of a supported type to its canonical name.
var aliases = map[string]string{
	"text/x-markdown":       TypeMarkdown,
	"text/md":               TypeMarkdown,
	"application/xhtml+xml": TypeHTML,
	"application/x-pdf":     TypePDF,
	"text/json":             TypeJSON,
	"text/x-json":           TypeJSON,
}

// extensions maps file name extensions to types, for uploads whose client
// sent no useful content type.
var extensions = map[string]string{
	".txt":      TypeText,
	".text":     TypeText,
	".md":       TypeMarkdown,
	".markdown": TypeMarkdown,
	".html":     TypeHTML,
	".htm":      TypeHTML,
	".xhtml":    TypeHTML,
	".pdf":      TypePDF,
	".json":     TypeJSON,
}

// Parse reads at most maxBytes from r and returns its text.
//
// The type is the given contentType when it names one (parameters such as
// charset are honoured for text and HTML); when it is empty or generic
// (application/octet-stream), the extension of name decides; when that is
// unknown too, the content is sniffed. name may be a file name or a URL.
// A text/plain upload whose name ends in .md is read as markdown, since
// browsers often send text/plain for markdown files.
//
// Content over maxBytes gives ErrTooLarge; maxBytes must be positive.
// Invalid UTF-8 is replaced with U+FFFD, never refused.
func Parse(ctx context.Context, name, contentType string, r io.Reader, maxBytes int64) (Document, error) {
	if maxBytes <= 0 {
		return Document{}, fmt.Errorf("parse %q: maxBytes must be positive, got %d", name, maxBytes)
	}
	data, err := io.ReadAll(io.LimitReader(r, maxBytes+1))
	if err != nil {
		return Document{}, fmt.Errorf("read %q: %w", name, err)
	}
	if int64(len(data)) > maxBytes {
		return Document{}, fmt.Errorf("%q: %w: the limit is %s", name, ErrTooLarge, formatBytes(maxBytes))
	}
	if err := ctx.Err(); err != nil {
		return Document{}, err
	}
	typ, params, err := detect(name, contentType, data)
	if err != nil {
		return Document{}, fmt.Errorf("%q: %w", name, err)
	}
	doc := Document{MimeType: typ}
	switch typ {
	case TypeText:
		doc.Text = cleanText(decodeText(data, params["charset"]))
	case TypeMarkdown:
		doc.Text, doc.Title = markdownText(decodeText(data, params["charset"]))
	case TypeHTML:
		doc.Text, doc.Title, err = htmlText(data, contentType)
		if err != nil {
			return Document{}, fmt.Errorf("read html %q: %w", name, err)
		}
	case TypePDF:
		doc.Text, doc.Title, err = pdfText(ctx, data)
		if err != nil {
			return Document{}, fmt.Errorf("read pdf %q: %w", name, err)
		}
	case TypeJSON:
		doc.Text, err = jsonText(data)
		if err != nil {
			return Document{}, fmt.Errorf("read json %q: %w", name, err)
		}
	}
	doc.Title = strings.TrimSpace(cleanText(doc.Title))
	return doc, nil
}

// unsupportedError names the type that was refused and lists the ones that
// are not.
func unsupportedError(typ string) error {
	return fmt.Errorf("%w %q: supported types are %s", ErrUnsupportedType, typ, strings.Join(supported[:], ", "))
}

// detect decides the type of data: content type, then extension, then
// sniffing. It returns the canonical type and the content type's
// parameters.
func detect(name, contentType string, data []byte) (string, map[string]string, error) {
	var params map[string]string
	typ := ""
	if strings.TrimSpace(contentType) != "" {
		mt, p, err := mime.ParseMediaType(contentType)
		if err != nil {
			// A broken header is no reason to refuse the file: the
			// extension or the content can still tell.
			mt, _, _ = strings.Cut(strings.ToLower(strings.TrimSpace(contentType)), ";")
			mt = strings.TrimSpace(mt)
		}
		typ, params = mt, p
	}
	ext := strings.ToLower(fileExt(name))
	switch typ {
	case "", "application/octet-stream", "binary/octet-stream", "application/unknown":
		if t, ok := extensions[ext]; ok {
			return t, params, nil
		}
		t := sniff(data)
		if !slices.Contains(supported[:], t) {
			return "", nil, unsupportedError(t)
		}
		return t, params, nil
	}
	if t, ok := aliases[typ]; ok {
		typ = t
	}
	if typ == TypeText && extensions[ext] == TypeMarkdown {
		return TypeMarkdown, params, nil
	}
	if strings.HasSuffix(typ, "+json") {
		return TypeJSON, params, nil
	}
	if slices.Contains(supported[:], typ) {
		return typ, params, nil
	}
	return "", nil, unsupportedError(typ)
}

// fileExt returns name's extension; for a URL, that of its path, so
// "https://x.org/a.pdf?page=2" gives ".pdf".
func fileExt(name string) string {
	if strings.Contains(name, "://") {
		if u, err := url.Parse(name); err == nil {
			return path.Ext(u.Path)
		}
	}
	return path.Ext(strings.ReplaceAll(name, "\\", "/"))
}

// sniff guesses the type of data without a name or content type.
func sniff(data []byte) string {
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if bytes.HasPrefix(trimmed, []byte("%PDF-")) {
		return TypePDF
	}
	if (bytes.HasPrefix(trimmed, []byte("{")) || bytes.HasPrefix(trimmed, []byte("["))) && json.Valid(data) {
		return TypeJSON
	}
	mt, _, _ := mime.ParseMediaType(http.DetectContentType(data))
	switch mt {
	case TypeHTML:
		return TypeHTML
	case TypeText:
		return TypeText
	}
	if len(data) == 0 {
		return TypeText
	}
	return mt // refused by detect's caller as unsupported
}

// cleanText makes text valid UTF-8 with "\n" line ends and no control
// characters other than tab and newline, so later stages (the splitter,
// the embedder, JSON encoders) never see surprises.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.TrimPrefix(s, "\ufeff")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case r == '\r' || r == '\f' || r == '\v' || r == '\u2028' || r == '\u2029':
			return '\n'
		case r == '\ufeff' || unicode.IsControl(r):
			return -1
		}
		return r
	}, s)
}

// formatBytes writes a byte count the way an operator configures it.
func formatBytes(n int64) string {
	const mib, kib = 1 << 20, 1 << 10
	switch {
	case n >= mib && n%mib == 0:
		return fmt.Sprintf("%d MiB", n/mib)
	case n >= kib && n%kib == 0:
		return fmt.Sprintf("%d KiB", n/kib)
	}
	return fmt.Sprintf("%d bytes", n)
}
