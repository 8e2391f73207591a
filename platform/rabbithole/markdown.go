package rabbithole

import (
	"html"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// markdownText returns the readable text of a markdown document and its
// first top-level heading.
//
// Heading, paragraph, list, quote and table text is kept, line by line as
// in the source; heading marks, list bullets, quote marks, emphasis, link
// and image URLs, link definitions and table rules are dropped (an image
// leaves its alt text, an <https://...> autolink its URL, which is what a
// reader sees). Fenced code is kept as it is; raw HTML is reduced to its
// visible text.
//
// It is a single pass over the lines, linear in the input, rather than a
// full CommonMark parser: the parsers at hand take quadratic time or worse
// on inputs such as a line of a million ">" or "[a](", which an uploader
// could use to tie up the server. For search, the text is what matters,
// and this keeps all of it.
func markdownText(src string) (text, title string) {
	lines := strings.Split(cleanText(src), "\n")
	defs := linkLabels(lines)
	var (
		out        []string
		fence      string // the opening fence while inside fenced code
		fenceQuote bool   // the fence opened inside a block quote
	)
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if fence != "" {
			body, quoted := stripContainers(line)
			if isFenceClose(strings.TrimSpace(body), fence) {
				fence = ""
				out = append(out, "")
				continue
			}
			if fenceQuote && quoted {
				line = stripQuotes(line)
			}
			out = append(out, line)
			continue
		}
		body, quoted := stripContainers(line)
		trimmed := strings.TrimSpace(body)
		if f := fenceOpen(trimmed); f != "" {
			fence, fenceQuote = f, quoted
			out = append(out, "")
			continue
		}
		if end := htmlBlockEnd(trimmed); end != "" {
			block := []string{body}
			for !htmlBlockDone(body, end) && i+1 < len(lines) {
				next, _ := stripContainers(lines[i+1])
				if end == "\n" && strings.TrimSpace(next) == "" {
					break
				}
				i++
				body = next
				block = append(block, next)
			}
			t, _, err := htmlText([]byte(strings.Join(block, "\n")), "text/html; charset=utf-8")
			if err == nil {
				out = append(out, "", t, "")
			}
			continue
		}
		switch {
		case trimmed == "":
			out = append(out, "")
		case setextRule.MatchString(trimmed) && trimmed[0] == '=' && len(out) > 0 && out[len(out)-1] != "":
			if title == "" {
				title = out[len(out)-1]
			}
			out = append(out, "")
		case thematicBreak.MatchString(trimmed) || setextRule.MatchString(trimmed):
			out = append(out, "")
		case isLinkDefinition(trimmed), tableRule.MatchString(trimmed) && strings.Contains(trimmed, "-"):
			// dropped: they hold URLs and table layout only
		case atxHeading.MatchString(trimmed):
			level := len(trimmed) - len(strings.TrimLeft(trimmed, "#"))
			h := strings.TrimSpace(trimmed[level:])
			if closing := strings.TrimRight(h, "#"); closing == "" || strings.HasSuffix(closing, " ") {
				h = strings.TrimSpace(closing)
			}
			h = mdInline(h, defs)
			if level == 1 && title == "" {
				title = h
			}
			out = append(out, "", h, "")
		case strings.HasPrefix(trimmed, "|"):
			out = append(out, tableRow(trimmed, defs))
		default:
			out = append(out, mdInline(trimmed, defs))
		}
	}
	return tidyLines(strings.Join(out, "\n")), strings.TrimSpace(title)
}

var (
	atxHeading    = regexp.MustCompile(`^#{1,6}(\s|$)`)
	setextRule    = regexp.MustCompile(`^(=+|-+)$`)
	thematicBreak = regexp.MustCompile(`^(\*[ \t]*){3,}$|^(-[ \t]*){3,}$|^(_[ \t]*){3,}$`)
	tableRule     = regexp.MustCompile(`^\|?\s*:?-*:?\s*(\|\s*:?-*:?\s*)+\|?$|^\|?\s*:?-+:?\s*\|?$`)
)

// linkLabels collects the labels of link reference definitions
// ("[label]: https://..."), so "[label]" alone can be read as a link.
func linkLabels(lines []string) map[string]bool {
	labels := make(map[string]bool)
	for _, l := range lines {
		l, _ = stripContainers(l)
		l = strings.TrimSpace(l)
		if isLinkDefinition(l) {
			labels[normalizeLabel(l[1:strings.Index(l, "]:")])] = true
		}
	}
	return labels
}

func normalizeLabel(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

// stripContainers removes the block quote marks and list bullets (with
// a task box) at the start of line, and reports whether there was a quote.
func stripContainers(line string) (string, bool) {
	quoted := false
	if thematicBreak.MatchString(strings.TrimSpace(line)) {
		return line, false // "- - -" and "* * *" are rules, not bullets
	}
	for {
		rest := strings.TrimLeft(line, " \t")
		switch {
		case strings.HasPrefix(rest, ">"):
			line, quoted = strings.TrimPrefix(rest[1:], " "), true
			continue
		case len(rest) >= 2 && strings.ContainsRune("-*+", rune(rest[0])) && (rest[1] == ' ' || rest[1] == '\t'):
			line = stripTaskBox(rest[2:])
			continue
		}
		digits := len(rest) - len(strings.TrimLeft(rest, "0123456789"))
		if digits >= 1 && digits <= 9 && len(rest) > digits+1 && (rest[digits] == '.' || rest[digits] == ')') &&
			(rest[digits+1] == ' ' || rest[digits+1] == '\t') {
			line = rest[digits+2:]
			continue
		}
		return line, quoted
	}
}

func stripTaskBox(s string) string {
	t := strings.TrimLeft(s, " \t")
	for _, box := range []string{"[ ] ", "[x] ", "[X] "} {
		if strings.HasPrefix(t, box) {
			return t[len(box):]
		}
	}
	return s
}

func stripQuotes(line string) string {
	for {
		rest := strings.TrimLeft(line, " \t")
		if !strings.HasPrefix(rest, ">") {
			return line
		}
		line = strings.TrimPrefix(rest[1:], " ")
	}
}

// fenceOpen returns the fence that opens a code block on this line, or "".
func fenceOpen(line string) string {
	for _, c := range []string{"`", "~"} {
		fence := line[:len(line)-len(strings.TrimLeft(line, c))]
		if len(fence) >= 3 && (c == "~" || !strings.Contains(line[len(fence):], "`")) {
			return fence
		}
	}
	return ""
}

func isFenceClose(line, fence string) bool {
	return strings.HasPrefix(line, fence) && strings.Trim(line, fence[:1]) == ""
}

// htmlBlockEnd says whether line starts an HTML block and what ends it: a
// closing tag or comment end, or "\n" for a blank line.
func htmlBlockEnd(line string) string {
	if len(line) < 2 || line[0] != '<' {
		return ""
	}
	if strings.HasPrefix(line, "<!--") {
		return "-->"
	}
	lower := strings.ToLower(line)
	for _, tag := range []string{"script", "pre", "style", "textarea"} {
		if strings.HasPrefix(lower, "<"+tag) && (len(lower) == len(tag)+1 || strings.ContainsRune(" \t>", rune(lower[len(tag)+1]))) {
			return "</" + tag + ">"
		}
	}
	c := line[1]
	if c == '/' || c == '!' || c == '?' || ('a' <= c|0x20 && c|0x20 <= 'z') {
		if gt := strings.IndexByte(line, '>'); gt > 0 && autolink.MatchString(line[1:gt]) {
			return "" // <https://...> is a link, not a tag
		}
		return "\n"
	}
	return ""
}

func htmlBlockDone(line, end string) bool {
	return end != "\n" && strings.Contains(strings.ToLower(line), end)
}

// isLinkDefinition reports whether a line is a link reference definition,
// "[label]: destination", with a label of 1 to 999 characters as
// CommonMark allows. Written out rather than as the regular expression
// `^\[[^\]]{1,999}\]:\s*\S`: its bounded repetition compiled into a
// program of about a thousand states, a fifth of every process start's
// package initialisation (measured with GODEBUG=inittrace=1).
func isLinkDefinition(l string) bool {
	if !strings.HasPrefix(l, "[") {
		return false
	}
	end := strings.IndexByte(l[1:], ']')
	if end < 0 {
		return false
	}
	if n := utf8.RuneCountInString(l[1 : 1+end]); n < 1 || n > 999 {
		return false
	}
	rest, ok := strings.CutPrefix(l[1+end+1:], ":")
	return ok && strings.TrimLeft(rest, "\t\n\f\r ") != ""
}

var autolink = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]{1,31}:[^\s<>]*$|^[^\s<>@]+@[^\s<>@]+\.[^\s<>@]+$`)

// tableRow turns "| a | b |" into "a | b".
func tableRow(line string, defs map[string]bool) string {
	line = strings.TrimSuffix(strings.TrimPrefix(line, "|"), "|")
	var cells []string
	start := 0
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '\\':
			i++
		case '|':
			cells = append(cells, strings.TrimSpace(mdInline(line[start:i], defs)))
			start = i + 1
		}
	}
	cells = append(cells, strings.TrimSpace(mdInline(line[start:], defs)))
	return strings.Join(cells, " | ")
}

// maxTag bounds the length of an inline tag or autolink, so a line of
// many "<" before one ">" stays linear.
const maxTag = 2048

// maxLabel bounds the link labels looked up in the definitions, keeping
// the lookups linear however brackets nest.
const maxLabel = 100

// mdInline drops the inline markup of one line: emphasis, code span
// backticks, link destinations and image marks, inline HTML tags and
// escapes. Every structure is matched in a precomputed pass, so the line
// is read once: no input makes it quadratic.
func mdInline(s string, defs map[string]bool) string {
	n := len(s)
	escaped := make([]bool, n)
	for i := 0; i < n-1; i++ {
		if s[i] == '\\' && !escaped[i] && isASCIIPunct(s[i+1]) {
			escaped[i+1] = true
		}
	}

	// Code spans: a backtick run closed by the next run of equal length.
	type run struct{ pos, len int }
	var runs []run
	for i := 0; i < n; {
		if s[i] != '`' || escaped[i] {
			i++
			continue
		}
		j := i
		for j < n && s[j] == '`' {
			j++
		}
		runs = append(runs, run{i, j - i})
		i = j
	}
	nextSame := make([]int, len(runs))
	last := map[int]int{}
	for k := len(runs) - 1; k >= 0; k-- {
		nextSame[k] = -1
		if j, ok := last[runs[k].len]; ok {
			nextSame[k] = j
		}
		last[runs[k].len] = k
	}
	codeEnd := map[int]int{} // opening run position → position after the closing run
	inCode := make([]bool, n)
	for k := 0; k < len(runs); {
		j := nextSame[k]
		if j < 0 {
			k++
			continue
		}
		codeEnd[runs[k].pos] = runs[j].pos + runs[j].len
		for p := runs[k].pos; p < runs[j].pos+runs[j].len; p++ {
			inCode[p] = true
		}
		k = j + 1
	}

	// Bracket and parenthesis pairs, outside code and escapes.
	match := make([]int, n)
	var squares, parens []int
	for i := 0; i < n; i++ {
		match[i] = -1
		if inCode[i] || escaped[i] {
			continue
		}
		switch s[i] {
		case '[':
			squares = append(squares, i)
		case ']':
			if len(squares) > 0 {
				o := squares[len(squares)-1]
				squares = squares[:len(squares)-1]
				match[o], match[i] = i, o
			}
		case '(':
			parens = append(parens, i)
		case ')':
			if len(parens) > 0 {
				o := parens[len(parens)-1]
				parens = parens[:len(parens)-1]
				match[o], match[i] = i, o
			}
		}
	}
	// nextGT[i] is the first '>' at or after i.
	nextGT := make([]int, n+1)
	nextGT[n] = -1
	for i := n - 1; i >= 0; i-- {
		nextGT[i] = nextGT[i+1]
		if s[i] == '>' {
			nextGT[i] = i
		}
	}

	var b strings.Builder
	skip := map[int]int{} // a link's "]" → where its destination ends
	for i := 0; i < n; {
		c := s[i]
		switch {
		case c == '\\' && i+1 < n && escaped[i+1]:
			b.WriteByte(s[i+1])
			i += 2
		case c == '`' && codeEnd[i] > 0:
			j := i
			for j < n && s[j] == '`' {
				j++
			}
			end := codeEnd[i]
			content := s[j : end-(j-i)]
			if len(content) > 1 && content[0] == ' ' && content[len(content)-1] == ' ' {
				content = content[1 : len(content)-1]
			}
			b.WriteString(content)
			i = end
		case c == '!' && i+1 < n && s[i+1] == '[' && isLink(s, match, i+1, defs):
			i++ // an image: its alt text stays, as the link text below
		case c == '[' && isLink(s, match, i, defs):
			k := match[i]
			switch {
			case k+1 < n && (s[k+1] == '(' || s[k+1] == '[') && match[k+1] > k:
				skip[k] = match[k+1] + 1
			default:
				skip[k] = k + 1
			}
			i++
		case c == ']' && skip[i] > 0:
			i = skip[i]
		case c == '<' && nextGT[i] > i+1 && nextGT[i]-i <= maxTag:
			gt := nextGT[i]
			inner := s[i+1 : gt]
			switch {
			case autolink.MatchString(inner):
				b.WriteString(inner)
				i = gt + 1
			case isTag(inner):
				i = gt + 1
			default:
				b.WriteByte(c)
				i++
			}
		case (c == '*' || c == '_' || c == '~') && !escaped[i]:
			j := i
			for j < n && s[j] == c {
				j++
			}
			if !isEmphasis(s, i, j) {
				b.WriteString(s[i:j])
			}
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return html.UnescapeString(b.String())
}

// isLink reports whether the bracket at i opens a link: followed by a
// destination "(...)", a reference "[...]", or naming a defined label.
func isLink(s string, match []int, i int, defs map[string]bool) bool {
	k := match[i]
	if k < i {
		return false
	}
	if k+1 < len(s) && (s[k+1] == '(' || s[k+1] == '[') && match[k+1] > k {
		return true
	}
	return len(defs) > 0 && k-i-1 <= maxLabel && defs[normalizeLabel(s[i+1:k])]
}

// isTag reports whether inner (between < and >) looks like an HTML tag
// or comment.
func isTag(inner string) bool {
	if inner == "" {
		return false
	}
	c := inner[0]
	if c == '/' || c == '!' || c == '?' {
		return len(inner) > 1
	}
	return 'a' <= c|0x20 && c|0x20 <= 'z' && !strings.ContainsAny(inner[:1], " \t")
}

// isEmphasis reports whether the run s[i:j] of *, _ or ~ is markup rather
// than text: it must touch a word on one side; an underscore inside a word
// (snake_case) and a single tilde are text.
func isEmphasis(s string, i, j int) bool {
	var before, after rune = ' ', ' '
	if i > 0 {
		before, _ = utf8.DecodeLastRuneInString(s[:i])
	}
	if j < len(s) {
		after, _ = utf8.DecodeRuneInString(s[j:])
	}
	if unicode.IsSpace(before) && unicode.IsSpace(after) {
		return false
	}
	switch s[i] {
	case '_':
		return !(isWord(before) && isWord(after))
	case '~':
		return j-i == 2
	}
	return true
}

func isWord(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

func isASCIIPunct(c byte) bool {
	return c < utf8.RuneSelf && unicode.IsPunct(rune(c)) || strings.IndexByte("$+<=>^`|~", c) >= 0
}
