package pdk

import (
	"encoding/json"
	"errors"
)

// ABI v1's envelope, read by the v1 build (-tags grin_abi_v1) and by Invoke.

// envelope is the host's input with the payload left as raw bytes.
type envelope struct {
	ctx      []byte
	settings []byte
	payload  []byte
}

var errEnvelope = errors.New("pdk: the host's input is not a JSON object")

// splitEnvelope finds the top-level fields of the input without decoding
// the payload: encoding/json is reflective and slow in a guest, more so
// under the host's deadline checks, and most hooks pass most of the payload
// through. One linear scan finds where each value starts and ends.
func splitEnvelope(b []byte) (envelope, error) {
	var e envelope
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return e, errEnvelope
	}
	i++
	for {
		i = skipSpace(b, i)
		if i < len(b) && b[i] == '}' {
			return e, nil
		}
		if i >= len(b) || b[i] != '"' {
			return e, errEnvelope
		}
		kEnd, err := skipString(b, i)
		if err != nil {
			return e, err
		}
		key := string(b[i+1 : kEnd-1])
		i = skipSpace(b, kEnd)
		if i >= len(b) || b[i] != ':' {
			return e, errEnvelope
		}
		i = skipSpace(b, i+1)
		vEnd, err := skipValue(b, i)
		if err != nil {
			return e, err
		}
		switch key {
		case "ctx":
			e.ctx = b[i:vEnd]
		case "settings":
			e.settings = b[i:vEnd]
		case "payload":
			e.payload = b[i:vEnd]
		}
		i = skipSpace(b, vEnd)
		if i < len(b) && b[i] == ',' {
			i++
			continue
		}
		if i < len(b) && b[i] == '}' {
			return e, nil
		}
		return e, errEnvelope
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"'.
func skipString(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, errEnvelope
}

// skipValue returns the index after the JSON value starting at b[i].
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errEnvelope
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, err := skipString(b, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, errEnvelope
	default: // number, true, false, null
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' && b[j] != '\t' && b[j] != '\r' {
			j++
		}
		if j == i {
			return 0, errEnvelope
		}
		return j, nil
	}
}

// loadEnvelope makes the envelope's ctx and settings the current call's.
func (c *callInfo) loadEnvelope(e envelope, name string) error {
	c.have = [fields]bool{true, true, true, true, true}
	c.vals = [fields]string{fieldHook: name}
	if len(e.ctx) > 0 && string(e.ctx) != "null" {
		// The ctx is a few strings: read them by hand, json.Unmarshal
		// only when one holds an escape.
		f, err := stringFields(e.ctx)
		if err != nil {
			return err
		}
		c.vals[fieldUserID], c.vals[fieldUsername] = f["user_id"], f["username"]
		c.vals[fieldPluginID], c.vals[fieldRequestID] = f["plugin_id"], f["request_id"]
	}
	settings := e.settings
	c.settingsVersion, c.settingsRaw = 0, func() []byte { return settings }
	return nil
}

// stringFields reads a flat JSON object of string values.
func stringFields(b []byte) (map[string]string, error) {
	out := map[string]string{}
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, errEnvelope
	}
	i++
	for {
		i = skipSpace(b, i)
		if i < len(b) && b[i] == '}' {
			return out, nil
		}
		kEnd, err := skipString(b, i)
		if err != nil {
			return nil, err
		}
		key, err := unquote(b[i:kEnd])
		if err != nil {
			return nil, err
		}
		i = skipSpace(b, kEnd)
		if i >= len(b) || b[i] != ':' {
			return nil, errEnvelope
		}
		i = skipSpace(b, i+1)
		vEnd, err := skipValue(b, i)
		if err != nil {
			return nil, err
		}
		if b[i] == '"' {
			if out[key], err = unquote(b[i:vEnd]); err != nil {
				return nil, err
			}
		}
		i = skipSpace(b, vEnd)
		if i < len(b) && b[i] == ',' {
			i++
		}
	}
}

// unquote decodes a JSON string, quickly when it holds no escape.
func unquote(q []byte) (string, error) {
	inner := q[1 : len(q)-1]
	for _, c := range inner {
		if c == '\\' {
			var s string
			err := json.Unmarshal(q, &s)
			return s, err
		}
	}
	return string(inner), nil
}
