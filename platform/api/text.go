package api

import (
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Text is a JSON string that must be exactly what was sent: valid UTF-8
// with no unpaired surrogate escapes. encoding/json silently turns both
// into U+FFFD, so a username or password that was not text would be stored,
// or compared, as something the sender never typed.
type Text string

// errNotUTF8 is the sentence a person sees in the 422 answer.
var errNotUTF8 = errors.New("the body holds a string that is not valid UTF-8 (bytes, or a \\u escape, that are no character): send usernames and passwords as UTF-8 text")

// UnmarshalJSON refuses strings whose decoding would lose text.
func (t *Text) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if lossy(b) {
		return errNotUTF8
	}
	*t = Text(s)
	return nil
}

// lossy reports whether decoding the JSON string literal b loses text:
// invalid UTF-8 bytes, or \u escapes of surrogates that do not pair.
func lossy(b []byte) bool {
	if !utf8.Valid(b) {
		return true
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		i++ // the escaped character; a backslash escapes only it
		if i >= len(b) || b[i] != 'u' {
			continue
		}
		r, ok := hex4(b, i+1)
		if !ok {
			return false // a syntax error, json.Unmarshal's to report
		}
		i += 4
		if !utf16.IsSurrogate(r) {
			continue
		}
		if i+2 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
			if r2, ok := hex4(b, i+3); ok && utf16.DecodeRune(r, r2) != utf8.RuneError {
				i += 6
				continue
			}
		}
		return true
	}
	return false
}

// hex4 reads the four hex digits of a \u escape starting at b[i].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[i:i+4]), 16, 16)
	return rune(n), err == nil
}
