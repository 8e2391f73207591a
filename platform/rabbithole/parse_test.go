package rabbithole

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-pdf/fpdf"
)

// writeFile makes a real file in the test's directory and returns its
// path, so Parse reads from an *os.File as the server does.
func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func parseFile(t *testing.T, name, contentType string, data []byte, maxBytes int64) (Document, error) {
	t.Helper()
	f, err := os.Open(writeFile(t, name, data))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return Parse(context.Background(), name, contentType, f, maxBytes)
}

// makePDF writes a PDF with fpdf; build draws its pages.
func makePDF(t *testing.T, build func(p *fpdf.Fpdf)) []byte {
	t.Helper()
	p := fpdf.New("P", "mm", "A4", "")
	build(p)
	var buf bytes.Buffer
	if err := p.Output(&buf); err != nil {
		t.Fatalf("make pdf: %v", err)
	}
	return buf.Bytes()
}

func textPDF(t *testing.T, title string, pages ...[]string) []byte {
	return makePDF(t, func(p *fpdf.Fpdf) {
		if title != "" {
			p.SetTitle(title, true)
		}
		for _, lines := range pages {
			p.AddPage()
			p.SetFont("Helvetica", "", 12)
			for _, l := range lines {
				p.Cell(0, 8, l)
				p.Ln(10)
			}
		}
	})
}

const sampleHTML = `<!DOCTYPE html>
<html><head>
  <title>The Rabbit  Hole</title>
  <style>body { color: red } .secret { display: none }</style>
  <script>var stolen = "cookie";</script>
  <meta name="description" content="meta text never shown">
</head>
<body>
  <nav>Home</nav>
  <h1>Alice's   adventures</h1>
  <p>She fell <b>down</b> the <a href="https://example.org/hole">rabbit hole</a>.</p>
  <script type="text/javascript">document.write("injected")</script>
  <noscript>Enable JavaScript</noscript>
  <template><p>template text</p></template>
  <div hidden>hidden div</div>
  <p style="display: none">invisible paragraph</p>
  <ul><li>Cheshire Cat</li><li>Mad Hatter</li></ul>
  <table><tr><th>Name</th><th>Role</th></tr><tr><td>Queen</td><td>Hearts</td></tr></table>
  <pre>  indented
    code</pre>
  <svg><title>svg tooltip</title><text>svg text</text></svg>
  <p>line one<br>line two</p>
</body></html>`

const sampleMarkdown = "# Alice in Wonderland\n\n" +
	"Alice follows the **White Rabbit** into [a hole](https://example.org/rabbit-hole \"title\").\n\n" +
	"![the cat](https://example.org/cat.png)\n\n" +
	"## Characters\n\n" +
	"- Cheshire *Cat*\n" +
	"- Mad Hatter\n\n" +
	"1. first\n2. second\n\n" +
	"> Off with their heads!\n\n" +
	"```go\nfmt.Println(\"hello\")\n```\n\n" +
	"| Name | Role |\n|------|------|\n| Queen | Hearts |\n\n" +
	"Reference [link][ref] and <https://auto.example/x>.\n\n" +
	"[ref]: https://example.org/ref-target\n\n" +
	"<div class=\"note\">html <b>block</b> text<script>evil()</script></div>\n"

func TestParseRoundTrip(t *testing.T) {
	cases := []struct {
		name, file, contentType string
		data                    []byte
		wantType, wantTitle     string
		want, notWant           []string
	}{
		{
			name: "plain text", file: "notes.txt", contentType: "text/plain",
			data:     []byte("Line one.\r\nLine two.\n\nThird paragraph."),
			wantType: TypeText,
			want:     []string{"Line one.\nLine two.\n\nThird paragraph."},
			notWant:  []string{"\r"},
		},
		{
			name: "markdown", file: "alice.md", contentType: "text/markdown",
			data:      []byte(sampleMarkdown),
			wantType:  TypeMarkdown,
			wantTitle: "Alice in Wonderland",
			want: []string{
				"Alice in Wonderland", "Alice follows the White Rabbit into a hole.",
				"the cat", "Characters", "Cheshire Cat", "Mad Hatter", "first", "second",
				"Off with their heads!", `fmt.Println("hello")`, "Name | Role", "Queen | Hearts",
				"Reference link and https://auto.example/x.", "html block text",
			},
			notWant: []string{
				"example.org", "rabbit-hole", "cat.png", "ref-target", "**", "](", "![", "# ",
				"```", "|---", "evil", "<div", "title\"",
			},
		},
		{
			name: "html", file: "page.html", contentType: "text/html; charset=utf-8",
			data:      []byte(sampleHTML),
			wantType:  TypeHTML,
			wantTitle: "The Rabbit Hole",
			want: []string{
				"The Rabbit Hole\n", "Alice's adventures", "She fell down the rabbit hole.",
				"Cheshire Cat\nMad Hatter", "Name | Role\nQueen | Hearts", "  indented\n    code",
				"line one\nline two", "Home",
			},
			notWant: []string{
				"stolen", "cookie", "color: red", "injected", "Enable JavaScript", "template text",
				"hidden div", "invisible paragraph", "svg", "https://example.org", "meta text", "<",
			},
		},
		{
			name: "json", file: "data.json", contentType: "application/json",
			data: []byte(`{"a":{"b":["x",{"c":true}]},"n":1.50,"empty":{},"none":[],"nil":null,` +
				`"dot.key":"v","list":[[1,2]],"name":"Cheshire Cat"}`),
			wantType: TypeJSON,
			want: []string{
				"a.b[0]: x\na.b[1].c: true\nn: 1.50\nempty: {}\nnone: []\nnil: null\n" +
					"[\"dot.key\"]: v\nlist[0][0]: 1\nlist[0][1]: 2\nname: Cheshire Cat",
			},
		},
		{
			name: "json top-level array", file: "list.json", contentType: "",
			data:     []byte(`[{"q":"who?","a":"the cat"}, "two"]`),
			wantType: TypeJSON,
			want:     []string{"[0].q: who?\n[0].a: the cat\n[1]: two"},
		},
		{
			name: "pdf", file: "alice.pdf", contentType: "application/pdf",
			data: textPDF(t, "Alice's Adventures",
				[]string{"Down the Rabbit-Hole", "Alice was beginning to get very tired."},
				[]string{"The Pool of Tears"}),
			wantType:  TypePDF,
			wantTitle: "Alice's Adventures",
			want: []string{
				"Down the Rabbit-Hole\nAlice was beginning to get very tired.", "The Pool of Tears",
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc, err := parseFile(t, c.file, c.contentType, c.data, 1<<20)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if doc.MimeType != c.wantType {
				t.Errorf("MimeType = %q, want %q", doc.MimeType, c.wantType)
			}
			if doc.Title != c.wantTitle {
				t.Errorf("Title = %q, want %q", doc.Title, c.wantTitle)
			}
			for _, w := range c.want {
				if !strings.Contains(doc.Text, w) {
					t.Errorf("text lacks %q; text:\n%s", w, doc.Text)
				}
			}
			for _, nw := range c.notWant {
				if strings.Contains(doc.Text, nw) {
					t.Errorf("text has %q; text:\n%s", nw, doc.Text)
				}
			}
		})
	}
}

// TestParseDeepHTML checks a page nested deeper than the HTML parser
// accepts is still read, by its tokens, with the same rules.
func TestParseDeepHTML(t *testing.T) {
	page := "<html><head><title>Deep</title><style>p{}</style></head><body>" +
		strings.Repeat("<div>", 600) + "<p>deep text</p>" +
		"<div hidden><div>hidden</div><p>still hidden</p></div><script>var x;</script>" +
		"<table><tr><td>a</td><td>b</td></tr></table>after" + strings.Repeat("</div>", 600) + "</body></html>"
	doc, err := Parse(context.Background(), "deep.html", "", strings.NewReader(page), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Deep\n\ndeep text\n\na | b\n\nafter"; doc.Text != want || doc.Title != "Deep" {
		t.Errorf("got %q (title %q), want %q", doc.Text, doc.Title, want)
	}
}

// TestParseMarkdownOrder checks the markdown text reads in the source's
// order, blocks on lines of their own.
func TestParseMarkdownOrder(t *testing.T) {
	doc, err := Parse(context.Background(), "a.md", "", strings.NewReader("# T\n\nOne *two* three.\nFour.\n\n- a\n- b\n"), 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	if want := "T\n\nOne two three.\nFour.\n\na\nb"; doc.Text != want {
		t.Errorf("text = %q, want %q", doc.Text, want)
	}
}

func TestParseDetection(t *testing.T) {
	html := []byte("<html><body><p>hi there</p></body></html>")
	cases := []struct {
		name, file, contentType string
		data                    []byte
		want                    string
	}{
		{"content type wins over extension", "x.txt", "text/html", html, TypeHTML},
		{"charset parameter", "x", "text/plain; charset=utf-8", []byte("hi"), TypeText},
		{"alias", "x", "text/x-markdown", []byte("# hi"), TypeMarkdown},
		{"xhtml", "x", "application/xhtml+xml", html, TypeHTML},
		{"json suffix", "x", "application/ld+json", []byte(`{"a":1}`), TypeJSON},
		{"text/plain named .md", "README.md", "text/plain", []byte("# hi"), TypeMarkdown},
		{"octet-stream falls to extension", "a.markdown", "application/octet-stream", []byte("# hi"), TypeMarkdown},
		{"extension htm", "a.HTM", "", html, TypeHTML},
		{"extension pdf", "a.pdf", "", textPDF(t, "", []string{"x"}), TypePDF},
		{"extension of a URL", "https://example.org/doc.json?x=1", "", []byte(`{"a":1}`), TypeJSON},
		{"sniff pdf", "upload", "", textPDF(t, "", []string{"x"}), TypePDF},
		{"sniff json", "upload", "", []byte(" {\"a\": [1]}"), TypeJSON},
		{"sniff html", "upload", "", html, TypeHTML},
		{"sniff text", "upload", "", []byte("just words"), TypeText},
		{"sniff text for unknown extension", "data.csv", "", []byte("a,b\n1,2\n"), TypeText},
		{"broken header, good extension", "a.md", "text/markdown; charset", []byte("# hi"), TypeMarkdown},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc, err := Parse(context.Background(), c.file, c.contentType, bytes.NewReader(c.data), 1<<20)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if doc.MimeType != c.want {
				t.Errorf("MimeType = %q, want %q", doc.MimeType, c.want)
			}
		})
	}
}

func TestParseUnsupported(t *testing.T) {
	var img bytes.Buffer
	if err := png.Encode(&img, image.NewGray(image.Rect(0, 0, 2, 2))); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, file, contentType string
		data                    []byte
	}{
		{"declared image", "cat.png", "image/png", img.Bytes()},
		{"sniffed image", "upload", "", img.Bytes()},
		{"declared office document", "a.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", []byte("PK\x03\x04")},
		{"sniffed zip", "a.docx", "application/octet-stream", []byte("PK\x03\x04\x14\x00\x00\x00")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseFile(t, c.file, c.contentType, c.data, 1<<20)
			if !errors.Is(err, ErrUnsupportedType) {
				t.Fatalf("err = %v, want ErrUnsupportedType", err)
			}
			for _, typ := range AllowedMimeTypes() {
				if !strings.Contains(err.Error(), typ) {
					t.Errorf("error %q does not list %s", err, typ)
				}
			}
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	data := bytes.Repeat([]byte("a"), 2048)
	if _, err := parseFile(t, "big.txt", "text/plain", data, 2048); err != nil {
		t.Fatalf("exactly at the limit: %v", err)
	}
	_, err := parseFile(t, "big.txt", "text/plain", data, 2047)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if !strings.Contains(err.Error(), "2047 bytes") {
		t.Errorf("error %q does not say the limit", err)
	}
	_, err = parseFile(t, "big.txt", "text/plain", data, 1<<10)
	if !strings.Contains(err.Error(), "1 KiB") {
		t.Errorf("error %q does not say the limit", err)
	}
	if _, err := Parse(context.Background(), "x", "", strings.NewReader("x"), 0); err == nil {
		t.Error("maxBytes 0 accepted")
	}
}

func TestParseInvalidUTF8(t *testing.T) {
	bad := []byte("caf\xe9 au lait\x00 \xff\xfe\xfd end")
	for _, typ := range []string{"text/plain", "text/markdown", "text/html", "application/json"} {
		t.Run(typ, func(t *testing.T) {
			data := bad
			if typ == "application/json" {
				data = []byte("{\"k\": \"caf\xe9 \xff\"}")
			}
			doc, err := Parse(context.Background(), "x", typ+"; charset=utf-8", bytes.NewReader(data), 1<<10)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !strings.Contains(doc.Text, "\uFFFD") {
				t.Errorf("text %q has no replacement character", doc.Text)
			}
			if strings.ContainsRune(doc.Text, 0) || !strings.Contains(doc.Text, "caf") {
				t.Errorf("text = %q", doc.Text)
			}
		})
	}
}

func TestParseCharsets(t *testing.T) {
	cases := []struct {
		name, contentType string
		data              []byte
		want              string
	}{
		{"latin-1 text by header", "text/plain; charset=ISO-8859-1", []byte("caf\xe9"), "café"},
		{"utf-16 text by BOM", "text/plain", []byte("\xff\xfeh\x00i\x00"), "hi"},
		{"utf-8 BOM", "text/plain", []byte("\xef\xbb\xbfhi"), "hi"},
		{"html meta charset", "text/html", []byte(`<html><head><meta charset="windows-1252"></head><body>caf` + "\xe9" + `</body></html>`), "café"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc, err := Parse(context.Background(), "x", c.contentType, bytes.NewReader(c.data), 1<<10)
			if err != nil {
				t.Fatal(err)
			}
			if doc.Text != c.want {
				t.Errorf("text = %q, want %q", doc.Text, c.want)
			}
		})
	}
}

func TestParseMalformed(t *testing.T) {
	cases := []struct {
		name, file, contentType string
		data                    []byte
	}{
		{"broken json", "a.json", "application/json", []byte(`{"a": [1, 2}`)},
		{"trailing json", "a.json", "application/json", []byte(`{"a": 1} {"b": 2}`)},
		{"not a pdf", "a.pdf", "application/pdf", []byte("hello, I am text")},
		{"truncated pdf", "a.pdf", "application/pdf", textPDF(t, "", []string{"x"})[:300]},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseFile(t, c.file, c.contentType, c.data, 1<<20)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestParsePDFWithoutText(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := range 8 {
		img.Set(i, i, color.RGBA{R: 255, A: 255})
	}
	var pngData bytes.Buffer
	if err := png.Encode(&pngData, img); err != nil {
		t.Fatal(err)
	}
	scan := makePDF(t, func(p *fpdf.Fpdf) {
		p.AddPage()
		opts := fpdf.ImageOptions{ImageType: "PNG"}
		p.RegisterImageOptionsReader("scan", opts, &pngData)
		p.ImageOptions("scan", 10, 10, 100, 100, false, opts, 0, "")
		p.Rect(20, 150, 50, 20, "D")
	})
	_, err := parseFile(t, "scan.pdf", "application/pdf", scan, 1<<20)
	if !errors.Is(err, ErrNoText) {
		t.Fatalf("err = %v, want ErrNoText", err)
	}
	if !strings.Contains(err.Error(), "OCR") {
		t.Errorf("error %q does not say what to do", err)
	}
}

func TestParseEncryptedPDF(t *testing.T) {
	protected := func(user string) []byte {
		return makePDF(t, func(p *fpdf.Fpdf) {
			p.SetProtection(fpdf.CnProtectPrint, user, "owner-secret")
			p.AddPage()
			p.SetFont("Helvetica", "", 12)
			p.Cell(0, 10, "Secret plans of the Queen")
		})
	}
	_, err := parseFile(t, "locked.pdf", "application/pdf", protected("user-secret"), 1<<20)
	if !errors.Is(err, ErrEncrypted) {
		t.Fatalf("password-protected: err = %v, want ErrEncrypted", err)
	}
	// Owner-only protection has an empty user password: viewers open it
	// without asking, and Parse tries to. fpdf encrypts with 40-bit RC4,
	// which the PDF library decrypts wrongly; then the answer must still
	// be ErrEncrypted, not a confusing "malformed".
	doc, err := parseFile(t, "restricted.pdf", "application/pdf", protected(""), 1<<20)
	switch {
	case err == nil && !strings.Contains(doc.Text, "Secret plans of the Queen"):
		t.Errorf("owner-only protection: text = %q", doc.Text)
	case err != nil && !errors.Is(err, ErrEncrypted):
		t.Errorf("owner-only protection: err = %v, want text or ErrEncrypted", err)
	}
}

func TestParseCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Parse(ctx, "a.pdf", "", bytes.NewReader(textPDF(t, "", []string{"x"})), 1<<20)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestAllowedMimeTypes(t *testing.T) {
	got := AllowedMimeTypes()
	want := []string{"text/plain", "text/markdown", "text/html", "application/pdf", "application/json"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("AllowedMimeTypes = %v, want %v", got, want)
	}
	got[0] = "changed"
	if AllowedMimeTypes()[0] != "text/plain" {
		t.Error("AllowedMimeTypes shares its slice with callers")
	}
}

// rawPDF writes a one-page PDF around a hand-written content stream, to
// test how text placement becomes spaces and lines. Typesetters such as
// TeX place words with TJ gaps and Td moves instead of space characters.
func rawPDF(header, content string) []byte {
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content)+1, content),
	}
	var b bytes.Buffer
	b.WriteString(header + "\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return b.Bytes()
}

func TestParsePDFLayout(t *testing.T) {
	cases := []struct {
		name, content, want string
		header              string
	}{
		{"TJ gaps are spaces, kerning is not", "BT /F1 12 Tf 72 700 Td [(Down)-333(the)-250(Rab)20(bit)] TJ ET", "Down the Rabbit", ""},
		{"Td along the line is a space", "BT /F1 12 Tf 72 700 Td (Down) Tj 40 0 Td (the) Tj 30 0 Td (hole) Tj ET", "Down the hole", ""},
		{"Td down is a new line", "BT /F1 12 Tf 72 700 Td (first line) Tj 0 -14 Td (second line) Tj ET", "first line\nsecond line", ""},
		{"T* and quote operators", "BT /F1 12 Tf 14 TL 72 700 Td (one) Tj T* (two) Tj (three) ' ET", "one\ntwo\nthree", ""},
		{"separate text objects", "BT /F1 12 Tf 72 700 Td (top) Tj ET BT /F1 12 Tf 72 600 Td (bottom) Tj ET", "top\nbottom", ""},
		{"Tm placement", "BT /F1 12 Tf 1 0 0 1 72 700 Tm (left) Tj 1 0 0 1 200 700 Tm (right) Tj 1 0 0 1 72 680 Tm (below) Tj ET", "left right\nbelow", ""},
		{"WinAnsi encoding", "BT /F1 12 Tf 72 700 Td (caf\\351) Tj ET", "café", ""},
		{"PDF 2.0 header", "BT /F1 12 Tf 72 700 Td (version two) Tj ET", "version two", "%PDF-2.0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			header := "%PDF-1.4"
			if c.header != "" {
				header = c.header
			}
			data := rawPDF(header, c.content)
			doc, err := Parse(context.Background(), "raw.pdf", "", bytes.NewReader(data), 1<<20)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if doc.Text != c.want {
				t.Errorf("text = %q, want %q", doc.Text, c.want)
			}
		})
	}
}
