package rabbithole

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
)

// jsonText flattens a JSON document into one line per value,
// "path.to.key: value", arrays indexed as "items[2]", so that every fact
// lands in a chunk together with the names that give it meaning; a chunk
// of raw JSON would separate a value from its key. Keys keep the
// document's order. Empty objects and arrays appear as {} and [], so no
// key is lost.
func jsonText(data []byte) (string, error) {
	if !json.Valid(data) {
		// Decode once more to say where the document is broken.
		var v any
		err := json.Unmarshal(data, &v)
		if err == nil {
			err = errors.New("invalid JSON")
		}
		return "", fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	type frame struct {
		array   bool
		path    string
		index   int
		key     string
		wantKey bool
		empty   bool
	}
	var (
		stack []*frame
		out   strings.Builder
	)
	emit := func(path, value string) {
		if path != "" {
			out.WriteString(path)
			out.WriteString(": ")
		}
		out.WriteString(value)
		out.WriteByte('\n')
	}
	// next returns the path of the value about to be read.
	next := func() string {
		if len(stack) == 0 {
			return ""
		}
		f := stack[len(stack)-1]
		f.empty = false
		if f.array {
			p := f.path + "[" + strconv.Itoa(f.index) + "]"
			f.index++
			return p
		}
		f.wantKey = true
		return joinKey(f.path, f.key)
	}

	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				stack = append(stack, &frame{array: t == '[', path: next(), wantKey: t == '{', empty: true})
			case '}', ']':
				f := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				switch {
				case f.empty && f.array:
					emit(f.path, "[]")
				case f.empty:
					emit(f.path, "{}")
				}
			}
		case string:
			if f := top(stack); f != nil && !f.array && f.wantKey {
				f.key, f.wantKey = t, false
				continue
			}
			emit(next(), t)
		case json.Number:
			emit(next(), t.String())
		case bool:
			emit(next(), strconv.FormatBool(t))
		case nil:
			emit(next(), "null")
		}
	}
	return strings.TrimRight(cleanText(out.String()), "\n"), nil
}

func top[T any](s []*T) *T {
	if len(s) == 0 {
		return nil
	}
	return s[len(s)-1]
}

// joinKey appends key to path: "a.b" for plain keys, `a["b c"]` for keys
// that would be ambiguous after a dot.
func joinKey(path, key string) string {
	plain := key != "" && !strings.ContainsFunc(key, func(r rune) bool {
		return r == '.' || r == '[' || r == ']' || r == '"' || r == ':' || unicode.IsSpace(r) || unicode.IsControl(r)
	})
	switch {
	case !plain:
		return path + "[" + strconv.Quote(key) + "]"
	case path == "":
		return key
	}
	return path + "." + key
}
