package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/grin-ai/grin/platform/app/apptest"
)

// TestMalformedInputIsA4xx sends broken requests to every kind of
// operation: each gets a 4xx with a problem-details message, never a 500,
// and the server keeps serving.
func TestMalformedInputIsA4xx(t *testing.T) {
	in := apptest.Start(t)
	huge := `{"username":"` + strings.Repeat("a", 2<<20) + `","password":"secret1"}`
	for _, tc := range []struct {
		method, path string
		body         any
		headers      []string
	}{
		{"POST", "/users", "{", nil},
		{"POST", "/users", "null", nil},
		{"POST", "/users", "[1,2]", nil},
		{"POST", "/users", `{"username":"\u0000\u0000","password":"secret1"}`, nil},
		{"POST", "/users", huge, nil},
		{"POST", "/users", `{"username":"ok","password":"secret1"}`, []string{"Content-Type", "text/plain"}},
		{"PUT", "/users/x", `{"permissions":{"USERS":"READ"}}`, nil},
		{"PUT", "/users/" + strings.Repeat("x", 500), `{}`, nil},
		{"GET", "/users?limit=abc", nil, nil},
		{"GET", "/users?skip=1e99", nil, nil},
		{"POST", "/auth/token", `{"username":["a"],"password":{}}`, nil},
		{"PUT", "/policies", `{"model":1}`, nil},
		{"POST", "/policies/check", `{"subject":"","object":"users","action":"read"}`, nil},
		{"PUT", "/auth_handler/settings/OIDCAuthConfig", `{"issuer":5}`, nil},
		{"PUT", "/auth_handler/settings/OIDCAuthConfig", `"text"`, nil},
		{"PUT", "/auth_handler/settings/CoreOnlyAuthConfig", `{"x":1}`, nil},
		{"GET", "/users", nil, []string{"Authorization", "Bearer " + strings.Repeat("a", 4000) + ".b.c"}},
		{"GET", "/users", nil, []string{"Authorization", "Bearer eyJhbGciOiJub25lIn0.e30."}},
	} {
		t.Run(tc.method+" "+tc.path[:min(len(tc.path), 40)], func(t *testing.T) {
			r := in.Do(tc.method, tc.path, tc.body, tc.headers...)
			if r.Status < 400 || r.Status >= 500 {
				t.Fatalf("%d, want a 4xx: %.300s", r.Status, r.Body)
			}
			if !strings.Contains(string(r.Body), `"detail"`) && !strings.Contains(string(r.Body), `"title"`) {
				t.Errorf("not a problem-details answer: %.300s", r.Body)
			}
		})
	}
	if r := in.Do("GET", "/", nil); r.Status != http.StatusOK {
		t.Errorf("the server stopped serving: %d", r.Status)
	}
}
