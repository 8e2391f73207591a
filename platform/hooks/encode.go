package hooks

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends the chat frame's JSON to b: byte for byte what
// json.Marshal(r) gives (TestAppendJSONIsMarshal, FuzzAppendJSON), in a
// third of its time. Every turn encodes one, and in encoding/json the
// frame was a tenth of a turn's CPU, most of it the embedder's vector in
// why.model_interactions (512 to 3,072 numbers, each through reflection).
// Values of types the frame does not fix (intermediate steps, metadata
// beyond strings, numbers and booleans, a model's reply other than text
// or a vector) are still written by encoding/json.
func (r Reply) AppendJSON(b []byte) ([]byte, error) {
	if b == nil {
		b = make([]byte, 0, r.sizeHint())
	}
	b = append(b, `{"type":`...)
	b = appendString(b, r.Type)
	b = append(b, `,"who":`...)
	b = appendString(b, r.Who)
	b = append(b, `,"user_id":`...)
	b = appendString(b, r.UserID)
	b = append(b, `,"text":`...)
	b = appendString(b, r.Text)
	b = append(b, `,"content":`...)
	b = appendString(b, r.Content)
	b = append(b, `,"message":`...)
	b = appendString(b, r.Message)
	b = append(b, `,"when":`...)
	b, err := appendFloat(b, r.When, 64)
	if err != nil {
		return nil, err
	}
	b = append(b, `,"why":`...)
	if b, err = r.Why.AppendJSON(b); err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// sizeHint guesses the frame's length from its strings and vectors, on
// the long side, so that its buffer is made once.
func (r Reply) sizeHint() int {
	return 256 + 3*len(r.Text) + len(r.UserID) + r.Why.sizeHint()
}

// sizeHint guesses the why's length.
func (w Why) sizeHint() int {
	n := 256 + len(w.Input) + len(w.AgentOutput.Output)
	for _, mi := range w.ModelInteractions {
		n += 160 + len(mi.Prompt) + len(mi.Source) + len(mi.ModelType)
		switch reply := mi.Reply.(type) {
		case string:
			n += len(reply)
		case []float32:
			n += 3 * len(reply)
		}
	}
	for _, docs := range [][]Document{w.Memory.Episodic, w.Memory.Declarative, w.Memory.Procedural} {
		for _, d := range docs {
			n += 160 + len(d.ID) + len(d.PageContent)
		}
	}
	return n + n/8 // escapes
}

// AppendJSON appends the why's JSON to b, as json.Marshal(w) gives it.
func (w Why) AppendJSON(b []byte) ([]byte, error) {
	if b == nil {
		b = make([]byte, 0, w.sizeHint())
	}
	b = append(b, `{"input":`...)
	b = appendString(b, w.Input)
	b = append(b, `,"intermediate_steps":`...)
	b, err := appendList(b, w.IntermediateSteps)
	if err != nil {
		return nil, err
	}
	b = append(b, `,"memory":{"episodic":`...)
	if b, err = appendDocuments(b, w.Memory.Episodic); err != nil {
		return nil, err
	}
	b = append(b, `,"declarative":`...)
	if b, err = appendDocuments(b, w.Memory.Declarative); err != nil {
		return nil, err
	}
	b = append(b, `,"procedural":`...)
	if b, err = appendDocuments(b, w.Memory.Procedural); err != nil {
		return nil, err
	}
	b = append(b, `},"model_interactions":`...)
	if w.ModelInteractions == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, mi := range w.ModelInteractions {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = mi.appendJSON(b); err != nil {
				return nil, err
			}
		}
		b = append(b, ']')
	}
	b = append(b, `,"agent_output":{"output":`...)
	b = appendString(b, w.AgentOutput.Output)
	b = append(b, `,"return_direct":`...)
	b = strconv.AppendBool(b, w.AgentOutput.ReturnDirect)
	b = append(b, `,"intermediate_steps":`...)
	if b, err = appendList(b, w.AgentOutput.IntermediateSteps); err != nil {
		return nil, err
	}
	return append(b, `}}`...), nil
}

func (mi ModelInteraction) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"model_type":`...)
	b = appendString(b, mi.ModelType)
	b = append(b, `,"source":`...)
	b = appendString(b, mi.Source)
	b = append(b, `,"prompt":`...)
	b = appendString(b, mi.Prompt)
	b = append(b, `,"reply":`...)
	var err error
	switch reply := mi.Reply.(type) {
	case string:
		b = appendString(b, reply)
	case []float32:
		b, err = appendFloats(b, reply)
	default:
		b, err = appendValue(b, reply)
	}
	if err != nil {
		return nil, err
	}
	b = append(b, `,"input_tokens":`...)
	b = strconv.AppendInt(b, int64(mi.InputTokens), 10)
	b = append(b, `,"output_tokens":`...)
	b = strconv.AppendInt(b, int64(mi.OutputTokens), 10)
	b = append(b, `,"started_at":`...)
	if b, err = appendFloat(b, mi.StartedAt, 64); err != nil {
		return nil, err
	}
	b = append(b, `,"ended_at":`...)
	if b, err = appendFloat(b, mi.EndedAt, 64); err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

func appendDocuments(b []byte, docs []Document) ([]byte, error) {
	if docs == nil {
		return append(b, "null"...), nil
	}
	b = append(b, '[')
	for i, d := range docs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = appendString(b, d.ID)
		b = append(b, `,"page_content":`...)
		b = appendString(b, d.PageContent)
		b = append(b, `,"metadata":`...)
		var err error
		if b, err = appendMap(b, d.Metadata); err != nil {
			return nil, err
		}
		b = append(b, `,"score":`...)
		if b, err = appendFloat(b, d.Score, 64); err != nil {
			return nil, err
		}
		b = append(b, '}')
	}
	return append(b, ']'), nil
}

// appendList appends a list of anything, the common empty one directly.
func appendList(b []byte, l []any) ([]byte, error) {
	if l != nil && len(l) == 0 {
		return append(b, "[]"...), nil
	}
	return appendValue(b, l)
}

// appendMap appends metadata as encoding/json writes a map: keys in
// order, values of the usual kinds directly, a map holding any other
// kind by encoding/json.
func appendMap(b []byte, m map[string]any) ([]byte, error) {
	if m == nil {
		return append(b, "null"...), nil
	}
	keys := make([]string, 0, len(m))
	for k, v := range m {
		switch v.(type) {
		case string, float64, bool, nil, int:
		default:
			return appendValue(b, m)
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		switch v := m[k].(type) {
		case string:
			b = appendString(b, v)
		case float64:
			var err error
			if b, err = appendFloat(b, v, 64); err != nil {
				return nil, err
			}
		case bool:
			b = strconv.AppendBool(b, v)
		case nil:
			b = append(b, "null"...)
		case int:
			b = strconv.AppendInt(b, int64(v), 10)
		}
	}
	return append(b, '}'), nil
}

// appendValue appends v as encoding/json writes it.
func appendValue(b []byte, v any) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, j...), nil
}

// safe marks the ASCII bytes encoding/json writes as they are in a string
// (it escapes HTML's <, > and & by default).
var safe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString appends s as encoding/json writes a string: quotes,
// backslashes and control characters escaped, <, > and & as \u003c,
// \u003e and \u0026, invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if safe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendFloats appends a vector as encoding/json writes a []float32, nil
// as null.
func appendFloats(b []byte, v []float32) ([]byte, error) {
	if v == nil {
		return append(b, "null"...), nil
	}
	b = append(b, '[')
	for i, f := range v {
		if i > 0 {
			b = append(b, ',')
		}
		if f == 0 && !math.Signbit(float64(f)) {
			b = append(b, '0') // most of a sparse vector
			continue
		}
		var err error
		if b, err = appendFloat(b, float64(f), 32); err != nil {
			return nil, err
		}
	}
	return append(b, ']'), nil
}

// appendFloat appends f as encoding/json writes a float of bits bits: the
// shortest form that reads back the same, in exponent form only below
// 1e-6 or from 1e21, the exponent without a leading zero.
func appendFloat(b []byte, f float64, bits int) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, &json.UnsupportedValueError{Str: strconv.FormatFloat(f, 'g', -1, bits)}
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		// e-09 becomes e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}
