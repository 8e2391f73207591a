// Package redact is grin's one place for hiding secrets in what it shows
// or keeps: values under names that say "secret" (passwords, tokens, API
// keys, Authorization and cookie headers, in snake_case, kebab-case or
// camelCase), password hashes, and credentials written into text (a URL's
// user information, a secret query parameter, a bearer token).
//
// The Cat's /settings shows everything in its database; grin shows no
// secret through /settings, and keeps none in its audit log. Both ask this
// package, so what one hides the other hides too.
package redact

import (
	"encoding/json"
	"regexp"
	"strings"
	"unicode"
)

// Masked stands for a secret that was hidden.
const Masked = "********"

// secretStems make a name's value a secret wherever they appear in one of
// its words ("openai_api_key", "X-Auth-Token", "passwordHash",
// "Set-Cookie", "mytoken"). A word "tokens" alone counts tokens
// (max_tokens) and is no secret.
var secretStems = []string{
	"password", "passwd", "passphrase", "secret", "token", "credential",
	"authorization", "cookie", "bearer", "apikey", "accesskey", "privatekey",
}

// keyPrefixes are the words that, followed by "key", name a secret
// ("api key", "access key", "private key"); "key" alone, or as a name's
// last word, is one too ("key", "signing_key", "encryptionKey").
var keyPrefixes = map[string]bool{"api": true, "access": true, "private": true, "secret": true, "session": true}

// SecretName reports whether a value under name (a JSON field, a header,
// a query parameter, an error's location) is a secret.
func SecretName(name string) bool {
	words := Words(name)
	for i, w := range words {
		if w == "pwd" || (w == "key" && (i == len(words)-1 || (i > 0 && keyPrefixes[words[i-1]]))) {
			return true
		}
		if w == "tokens" {
			continue
		}
		for _, stem := range secretStems {
			if strings.Contains(w, stem) {
				return true
			}
		}
	}
	return false
}

// Words splits a name into its lower-case words: at anything that is not a
// letter or digit, and where camelCase starts a word ("accessKeyID" is
// access, key, id; "APIKey" is api, key).
func Words(name string) []string {
	var words []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			words = append(words, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	rs := []rune(name)
	for i, r := range rs {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			flush()
			continue
		}
		if unicode.IsUpper(r) && len(cur) > 0 {
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			// aB starts a word at B; ABc starts one at B (APIKey).
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
				flush()
			}
		}
		cur = append(cur, r)
	}
	flush()
	return words
}

// hashLike matches password hashes (bcrypt, argon2, scrypt in PHC form).
var hashLike = regexp.MustCompile(`^\$(2[abxy]?|argon2(id|i|d)|scrypt)\$`)

// urlUserinfo matches the user information of a URL written in text:
// scheme://user:password@host.
var urlUserinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#@"'<>]+@`)

// queryParam matches a query (or form) parameter written in text.
var queryParam = regexp.MustCompile(`([?&;])([^=&;#\s"'<>]+)=([^&;#\s"'<>]*)`)

// bearer matches a credential after an HTTP authorization scheme.
var bearer = regexp.MustCompile(`(?i)\b(bearer|basic|token)(\s+)[A-Za-z0-9._~+/=-]{6,}`)

// Text returns s with the credentials written into it masked: a URL's
// user information, the values of query parameters with secret names, and
// what follows "Bearer" or "Basic". A string that is a password hash is
// masked whole.
func Text(s string) string {
	if hashLike.MatchString(s) {
		return Masked
	}
	if strings.Contains(s, "://") {
		s = urlUserinfo.ReplaceAllString(s, "${1}"+Masked+"@")
	}
	if strings.Contains(s, "=") {
		s = queryParam.ReplaceAllStringFunc(s, func(m string) string {
			sub := queryParam.FindStringSubmatch(m)
			if sub[3] == "" || !SecretName(sub[2]) {
				return m
			}
			return sub[1] + sub[2] + "=" + Masked
		})
	}
	return bearer.ReplaceAllString(s, "${1}${2}"+Masked)
}

// Value returns v (decoded JSON: maps, slices, strings, numbers) with
// every value under a secret name masked, at any depth, and every string
// passed through Text. It changes v in place.
func Value(v any) any { return value(v, false) }

func value(x any, secret bool) any {
	switch t := x.(type) {
	case map[string]any:
		for k, v := range t {
			t[k] = value(v, secret || SecretName(k))
		}
		return t
	case []any:
		for i, v := range t {
			t[i] = value(v, secret)
		}
		return t
	case string:
		if secret && t != "" {
			return Masked
		}
		return Text(t)
	case nil:
		return nil
	default:
		if secret {
			return Masked
		}
		return t
	}
}

// JSON returns the JSON document v with its secrets masked (see Value).
// What is not JSON is returned as text, masked by Text.
func JSON(v json.RawMessage) json.RawMessage {
	var x any
	if json.Unmarshal(v, &x) != nil {
		b, _ := json.Marshal(Text(string(v)))
		return b
	}
	b, err := json.Marshal(value(x, false))
	if err != nil {
		return json.RawMessage(`null`)
	}
	return b
}
