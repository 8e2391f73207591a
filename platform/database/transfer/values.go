package transfer

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// kind is what PostgreSQL stores a column as, the types grin's schema
// uses. A column of another type stops the migration before it starts:
// its values would be converted by guesswork.
type kind int

const (
	kindInt kind = iota + 1
	kindFloat
	kindText
	kindBytes
	kindBool
)

// kindOf maps a PostgreSQL data_type (information_schema) to a kind.
func kindOf(pgType string) (kind, bool) {
	switch pgType {
	case "smallint", "integer", "bigint":
		return kindInt, true
	case "real", "double precision":
		return kindFloat, true
	case "text", "character varying", "character":
		return kindText, true
	case "bytea":
		return kindBytes, true
	case "boolean":
		return kindBool, true
	}
	return 0, false
}

// convert turns a value read from either engine into the Go type that
// the column's kind is written and compared as: int64, float64, string,
// []byte, bool, or nil for NULL. SQLite stores what it was given whatever
// the column's declared type, so a value that does not fit the column
// (text that is not a number in an integer column, a NUL byte in text,
// which PostgreSQL cannot hold) is an error, never a silent change.
func convert(k kind, v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case int32: // what a driver may hand back for PostgreSQL's integer
		v = int64(x)
	case int16:
		v = int64(x)
	case float32:
		v = float64(x)
	}
	switch k {
	case kindInt:
		switch x := v.(type) {
		case int64:
			return x, nil
		case float64:
			if x == math.Trunc(x) && math.Abs(x) < 1<<63 {
				return int64(x), nil
			}
			return nil, fmt.Errorf("%v is not a whole number", x)
		case string:
			n, err := strconv.ParseInt(x, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("the text %q is not a whole number", clip(x))
			}
			return n, nil
		}
	case kindFloat:
		switch x := v.(type) {
		case float64:
			return x, nil
		case int64:
			return float64(x), nil
		case string:
			f, err := strconv.ParseFloat(x, 64)
			if err != nil {
				return nil, fmt.Errorf("the text %q is not a number", clip(x))
			}
			return f, nil
		}
	case kindText:
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case []byte:
			s = string(x)
		case int64:
			s = strconv.FormatInt(x, 10)
		case float64:
			s = strconv.FormatFloat(x, 'g', -1, 64)
		default:
			return nil, fmt.Errorf("a %T is not text", v)
		}
		if !utf8.ValidString(s) {
			return nil, errors.New("the text is not valid UTF-8, which PostgreSQL refuses")
		}
		if strings.IndexByte(s, 0) >= 0 {
			return nil, errors.New("the text holds a NUL byte, which PostgreSQL's text cannot")
		}
		return s, nil
	case kindBytes:
		switch x := v.(type) {
		case []byte:
			return x, nil
		case string:
			return []byte(x), nil
		}
	case kindBool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case int64:
			if x == 0 || x == 1 {
				return x == 1, nil
			}
			return nil, fmt.Errorf("%d is neither 0 nor 1", x)
		}
	}
	return nil, fmt.Errorf("a %T cannot be stored in this column", v)
}

// clip shortens a value quoted in a message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// digest adds one converted value to h, tagged with its type and
// length-prefixed, so that no two different rows hash alike by running
// into each other.
func digest(h hash.Hash, v any) {
	var b [binary.MaxVarintLen64 + 1]byte
	switch x := v.(type) {
	case nil:
		h.Write([]byte{'n'})
	case int64:
		b[0] = 'i'
		binary.BigEndian.PutUint64(b[1:9], uint64(x))
		h.Write(b[:9])
	case float64:
		b[0] = 'f'
		binary.BigEndian.PutUint64(b[1:9], math.Float64bits(x))
		h.Write(b[:9])
	case bool:
		if x {
			h.Write([]byte{'T'})
		} else {
			h.Write([]byte{'F'})
		}
	case string:
		b[0] = 's'
		n := binary.PutUvarint(b[1:], uint64(len(x)))
		h.Write(b[:1+n])
		h.Write([]byte(x))
	case []byte:
		b[0] = 'b'
		n := binary.PutUvarint(b[1:], uint64(len(x)))
		h.Write(b[:1+n])
		h.Write(x)
	}
}

// keyValue is one value of a primary key as the progress table records
// it: JSON alone would turn blobs into strings and large integers into
// floats.
type keyValue struct {
	Type  string  `json:"t"` // null, int, float, text, blob
	Int   int64   `json:"i,omitempty"`
	Float float64 `json:"f,omitempty"`
	Text  string  `json:"s,omitempty"`
	Blob  []byte  `json:"b,omitempty"`
}

// encodeKey records the key of the last row copied, as read from SQLite.
func encodeKey(vals []any) (string, error) {
	kv := make([]keyValue, len(vals))
	for i, v := range vals {
		switch x := v.(type) {
		case nil:
			kv[i].Type = "null"
		case int64:
			kv[i] = keyValue{Type: "int", Int: x}
		case float64:
			kv[i] = keyValue{Type: "float", Float: x}
		case string:
			kv[i] = keyValue{Type: "text", Text: x}
		case []byte:
			kv[i] = keyValue{Type: "blob", Blob: x}
		default:
			return "", fmt.Errorf("a key value of type %T", v)
		}
	}
	b, err := json.Marshal(kv)
	return string(b), err
}

// decodeKey is encodeKey's inverse; "" is the start of the table.
func decodeKey(s string) ([]any, error) {
	if s == "" {
		return nil, nil
	}
	var kv []keyValue
	if err := json.Unmarshal([]byte(s), &kv); err != nil {
		return nil, err
	}
	vals := make([]any, len(kv))
	for i, k := range kv {
		switch k.Type {
		case "null":
		case "int":
			vals[i] = k.Int
		case "float":
			vals[i] = k.Float
		case "text":
			vals[i] = k.Text
		case "blob":
			vals[i] = append([]byte{}, k.Blob...)
		default:
			return nil, fmt.Errorf("unknown key type %q", k.Type)
		}
	}
	return vals, nil
}

// describeKey shows a row's key in messages: (alice, 3).
func describeKey(vals []any) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		switch x := v.(type) {
		case string:
			parts[i] = strconv.Quote(clip(x))
		case []byte:
			parts[i] = fmt.Sprintf("x'%x'", x)
		default:
			parts[i] = fmt.Sprint(v)
		}
	}
	return "(" + strings.Join(parts, ", ") + ")"
}
