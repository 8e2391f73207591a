package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/grin-ai/grin/platform/app/apptest"
)

// TestUnknownPathsAndMethods: a path no route serves answers 404, and a
// method a path does not take answers 405 with Allow, both as problem
// details; GET / is the status and nothing below it; the pages and
// documents outside huma still answer.
func TestUnknownPathsAndMethods(t *testing.T) {
	for _, auth := range []string{"off", "required"} {
		t.Run("auth "+auth, func(t *testing.T) {
			in := apptest.Start(t)
			if auth == "required" {
				in = authRequired(t)
			}
			// The first answer, not where a redirect leads.
			client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			do := func(method, path string, headers ...string) (*http.Response, []byte) {
				t.Helper()
				req, err := http.NewRequest(method, in.URL+path, nil)
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i+1 < len(headers); i += 2 {
					req.Header.Set(headers[i], headers[i+1])
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", method, path, err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp, b
			}
			for _, tc := range []struct {
				method, path string
				want         int
				allow        []string
			}{
				{"GET", "/favicon.ico", 404, nil},
				{"GET", "/anything", 404, nil},
				{"POST", "/anything", 404, nil},
				{"DELETE", "/anything/else/", 404, nil},
				{"GET", "/no-such-resource/settings", 404, nil},
				{"GET", "/users/x/y/z", 404, nil},
				{"PATCH", "/nothing-here", 404, nil},
				{"GET", "/../etc/passwd", 404, nil},
				{"GET", "/%2e%2e/etc/passwd", 404, nil},
				{"GET", "/users/%2e%2e/%2e%2e/etc/passwd", 404, nil},
				{"GET", "/ws/alice/extra", 404, nil},
				{"GET", "/admin/x/y", 404, nil},
				{"GET", "/docs/nothing", 404, nil},
				{"GET", "/openapi.jsonx", 404, nil},
				{"PATCH", "/users", 405, []string{"GET", "HEAD", "POST"}},
				{"DELETE", "/", 405, []string{"GET", "HEAD"}},
				{"PUT", "/auth/token", 405, []string{"POST"}},
				{"PUT", "/auth/token/", 405, []string{"POST"}},
				{"POST", "/openapi.json", 405, []string{"GET", "HEAD"}},
				{"DELETE", "/admin", 405, []string{"GET", "HEAD"}},
				{"POST", "/ws/alice", 405, []string{"GET", "HEAD"}},
			} {
				resp, body := do(tc.method, tc.path)
				var p struct {
					Status int    `json:"status"`
					Detail string `json:"detail"`
				}
				json.Unmarshal(body, &p)
				if resp.StatusCode != tc.want || resp.Header.Get("Content-Type") != "application/problem+json" || p.Status != tc.want || p.Detail == "" {
					t.Errorf("%s %s: %d %s %s, want %d problem+json", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.want)
					continue
				}
				if tc.allow != nil {
					got := strings.Split(resp.Header.Get("Allow"), ", ")
					slices.Sort(got)
					if !slices.Equal(got, tc.allow) {
						t.Errorf("%s %s: Allow %q, want %v", tc.method, tc.path, resp.Header.Get("Allow"), tc.allow)
					}
				}
			}

			// What is served still is.
			var key []string
			if auth == "required" {
				key = apptest.Bearer(testAPIKey)
			}
			for _, path := range []string{"/", "/users/", "/admin", "/admin/", "/docs", "/openapi.json", "/openapi.yaml", "/auth/available-permissions"} {
				if resp, body := do("GET", path, key...); resp.StatusCode != 200 {
					t.Errorf("GET %s: %d %.200s", path, resp.StatusCode, body)
				}
			}
			if resp, body := do("GET", "/", key...); !strings.Contains(string(body), "We're all mad here") {
				t.Errorf("GET /: %d %s, want the status", resp.StatusCode, body)
			}
			// The socket's path is a route: a plain GET is asked to upgrade.
			if resp, _ := do("GET", "/ws"); resp.StatusCode == 404 || resp.StatusCode == 405 {
				t.Errorf("GET /ws without upgrading: %d, want the socket handler's answer", resp.StatusCode)
			}
		})
	}
}
