package rabbithole

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
	"golang.org/x/net/html/charset"
)

// hidden are elements whose content a reader never sees. <head> is among
// them; its <title> is read separately.
var hidden = map[atom.Atom]bool{
	atom.Script: true, atom.Style: true, atom.Noscript: true, atom.Template: true,
	atom.Head: true, atom.Svg: true, atom.Canvas: true, atom.Iframe: true,
	atom.Object: true, atom.Embed: true, atom.Audio: true, atom.Video: true,
	atom.Datalist: true,
}

// paragraphs end with a blank line, lines with a newline; everything else
// is inline and runs on.
var (
	paragraphs = map[atom.Atom]bool{
		atom.P: true, atom.H1: true, atom.H2: true, atom.H3: true, atom.H4: true,
		atom.H5: true, atom.H6: true, atom.Pre: true, atom.Blockquote: true,
		atom.Table: true, atom.Ul: true, atom.Ol: true, atom.Dl: true,
		atom.Section: true, atom.Article: true, atom.Header: true, atom.Footer: true,
		atom.Figure: true, atom.Hr: true,
	}
	lineBreaks = map[atom.Atom]bool{
		atom.Div: true, atom.Li: true, atom.Tr: true, atom.Dt: true, atom.Dd: true,
		atom.Nav: true, atom.Aside: true, atom.Main: true, atom.Address: true,
		atom.Caption: true, atom.Figcaption: true, atom.Form: true, atom.Fieldset: true,
		atom.Legend: true, atom.Details: true, atom.Summary: true, atom.Option: true,
		atom.Thead: true, atom.Tbody: true, atom.Tfoot: true, atom.Body: true,
		atom.Textarea: true, atom.Label: true, atom.Center: true,
	}
)

// htmlText returns the visible text of an HTML document and its <title>.
//
// The bytes are decoded by the charset the content type, a byte order
// mark or a <meta> declares, as a browser would. Script, style and other
// invisible elements are dropped, as are elements marked hidden; block
// elements end lines, table cells are joined with " | ", <pre> keeps its
// layout. The title, when there is one, is the first line of the text.
func htmlText(data []byte, contentType string) (text, title string, err error) {
	if r, err := charset.NewReader(bytes.NewReader(data), contentType); err == nil {
		if decoded, err := io.ReadAll(r); err == nil {
			data = decoded
		}
	} // else an unknown charset label: read the bytes as UTF-8 rather than refuse the page
	doc, err := html.Parse(bytes.NewReader(data))
	if err != nil {
		// The parser refuses documents nested deeper than it allows,
		// which browsers show all the same: read their tokens instead.
		return htmlTokenText(data)
	}

	var w textWriter
	if t := findTitle(doc); t != nil {
		var tw textWriter
		for c := t.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.TextNode {
				tw.inline(c.Data)
			}
		}
		title = strings.TrimSpace(tw.String())
		if title != "" {
			w.inline(title)
			w.block()
		}
	}

	// An explicit stack, not recursion: a page of a million nested <div>s
	// must not exhaust the goroutine's stack.
	type step struct {
		n    *html.Node
		exit bool
	}
	stack := []step{{n: doc}}
	pre := 0 // depth of <pre> and <textarea> around the current node
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n := s.n
		if s.exit {
			if n.DataAtom == atom.Pre || n.DataAtom == atom.Textarea {
				pre--
			}
			endElement(&w, n)
			continue
		}
		switch n.Type {
		case html.TextNode:
			if pre > 0 {
				w.raw(n.Data)
			} else {
				w.inline(n.Data)
			}
			continue
		case html.ElementNode:
			if hidden[n.DataAtom] || isHidden(n) {
				continue
			}
			startElement(&w, n)
			if n.DataAtom == atom.Pre || n.DataAtom == atom.Textarea {
				pre++
			}
			stack = append(stack, step{n: n, exit: true})
		case html.DocumentNode:
		default: // comments, doctypes
			continue
		}
		var kids []*html.Node
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			kids = append(kids, c)
		}
		for i := len(kids) - 1; i >= 0; i-- {
			stack = append(stack, step{n: kids[i]})
		}
	}
	return w.String(), title, nil
}

func startElement(w *textWriter, n *html.Node) {
	switch a := n.DataAtom; {
	case paragraphs[a]:
		w.block()
	case lineBreaks[a]:
		w.line()
	case a == atom.Br:
		w.raw("\n")
	case a == atom.Td || a == atom.Th:
		for p := n.PrevSibling; p != nil; p = p.PrevSibling {
			if p.Type == html.ElementNode && (p.DataAtom == atom.Td || p.DataAtom == atom.Th) {
				w.raw(" | ")
				break
			}
		}
	}
}

func endElement(w *textWriter, n *html.Node) {
	switch a := n.DataAtom; {
	case paragraphs[a]:
		w.block()
	case lineBreaks[a]:
		w.line()
	}
}

// isHidden reports elements their author hid: the hidden attribute or an
// inline display:none or visibility:hidden.
func isHidden(n *html.Node) bool {
	for _, a := range n.Attr {
		switch strings.ToLower(a.Key) {
		case "hidden":
			return true
		case "style":
			s := strings.ToLower(strings.Join(strings.Fields(a.Val), ""))
			if strings.Contains(s, "display:none") || strings.Contains(s, "visibility:hidden") {
				return true
			}
		}
	}
	return false
}

// findTitle returns the document's first <title> element, searched
// without recursion.
func findTitle(doc *html.Node) *html.Node {
	stack := []*html.Node{doc}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n.Type == html.ElementNode && n.DataAtom == atom.Title {
			return n
		}
		if n.Type == html.ElementNode && n.DataAtom == atom.Svg {
			continue // an SVG's <title> is a tooltip, not the page's
		}
		for c := n.LastChild; c != nil; c = c.PrevSibling {
			stack = append(stack, c)
		}
	}
	return nil
}

// htmlTokenText is htmlText for documents the tree parser refuses: the
// same rules applied to the token stream, without the tree's repair of
// misnested tags.
func htmlTokenText(data []byte) (text, title string, err error) {
	var (
		w, tw   textWriter
		skip    atom.Atom // the hidden element being skipped, or 0
		depth   int       // how deep elements like skip nest inside it
		pre     int
		inTitle bool
		cells   int // cells so far in the current table row
	)
	z := html.NewTokenizer(bytes.NewReader(data))
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if z.Err() != io.EOF {
				return "", "", fmt.Errorf("%w: %w", ErrMalformed, z.Err())
			}
			title = strings.TrimSpace(tw.String())
			if title != "" {
				return title + "\n\n" + w.String(), title, nil
			}
			return w.String(), "", nil
		case html.TextToken:
			switch {
			case inTitle:
				tw.inline(string(z.Text()))
			case skip != 0:
			case pre > 0:
				w.raw(string(z.Text()))
			default:
				w.inline(string(z.Text()))
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			hide := false
			for more := true; more; {
				var k, v []byte
				k, v, more = z.TagAttr()
				hide = hide || isHidden(&html.Node{Attr: []html.Attribute{{Key: string(k), Val: string(v)}}})
			}
			switch {
			case a == atom.Title && tt == html.StartTagToken:
				inTitle = true
			case skip != 0:
				if a == skip && tt == html.StartTagToken {
					depth++
				}
			case (hidden[a] || hide) && a != atom.Head:
				if tt == html.StartTagToken && !voidElements[a] {
					skip, depth = a, 1
				}
			default:
				if a == atom.Tr {
					cells = 0
				}
				if a == atom.Td || a == atom.Th {
					if cells++; cells > 1 {
						w.raw(" | ")
					}
				}
				n := &html.Node{Type: html.ElementNode, DataAtom: a}
				if a != atom.Td && a != atom.Th {
					startElement(&w, n)
				}
				if (a == atom.Pre || a == atom.Textarea) && tt == html.StartTagToken {
					pre++
				}
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			switch {
			case a == atom.Title:
				inTitle = false
			case skip != 0:
				if a == skip {
					if depth--; depth == 0 {
						skip = 0
					}
				}
			default:
				if (a == atom.Pre || a == atom.Textarea) && pre > 0 {
					pre--
				}
				endElement(&w, &html.Node{Type: html.ElementNode, DataAtom: a})
			}
		}
	}
}

// voidElements never have an end tag.
var voidElements = map[atom.Atom]bool{
	atom.Area: true, atom.Base: true, atom.Br: true, atom.Col: true, atom.Embed: true,
	atom.Hr: true, atom.Img: true, atom.Input: true, atom.Link: true, atom.Meta: true,
	atom.Source: true, atom.Track: true, atom.Wbr: true,
}
