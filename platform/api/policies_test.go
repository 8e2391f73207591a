package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/grin-ai/grin/platform/app/apptest"
)

type documents struct {
	Model  string `json:"model"`
	Policy string `json:"policy"`
}

func TestPoliciesAPI(t *testing.T) {
	in := authRequired(t)
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	userTok := apptest.Bearer(in.Login("user", apptest.UserPassword))

	// Only administrators see or change the policy.
	for _, c := range []struct{ method, path string }{{"GET", "/policies"}, {"PUT", "/policies"}, {"POST", "/policies/check"}} {
		if r := in.Do(c.method, c.path, map[string]any{}, userTok...); r.Status != http.StatusForbidden {
			t.Errorf("base user %s %s: %d, want 403", c.method, c.path, r.Status)
		}
	}
	var docs documents
	in.Do("GET", "/policies", nil, admin...).JSON(t, &docs)
	if !strings.Contains(docs.Model, "[matchers]") || !strings.Contains(docs.Policy, "p, role:admin, *, *") {
		t.Fatalf("GET /policies = %+v", docs)
	}

	check := func(sub, obj, act string) (bool, string) {
		var d struct {
			Allowed bool     `json:"allowed"`
			Rule    []string `json:"rule"`
		}
		r := in.Do("POST", "/policies/check", map[string]string{"subject": sub, "object": obj, "action": act}, admin...)
		if r.Status != 200 {
			t.Fatalf("check: %d %s", r.Status, r.Body)
		}
		r.JSON(t, &d)
		return d.Allowed, strings.Join(d.Rule, ", ")
	}
	if ok, _ := check("credential:ws_key", "users", "list"); ok {
		t.Fatal("the WS key may list users before the edit")
	}
	// A broken policy is refused with the line, and changes nothing.
	r := in.Do("PUT", "/policies", documents{docs.Model, docs.Policy + "\np, role:base, users\n"}, admin...)
	if r.Status != 422 || !strings.Contains(r.Detail(), "line") {
		t.Fatalf("broken policy: %d %s", r.Status, r.Body)
	}
	// Dry run validates only.
	var users []user
	in.Do("GET", "/users", nil, admin...).JSON(t, &users)
	edited := docs.Policy + "\np, role:base, users, list\ng, " + users[1].ID + ", role:base\n"
	if r := in.Do("PUT", "/policies?dry_run=true", documents{docs.Model, edited}, admin...); r.Status != 200 {
		t.Fatalf("dry run: %d %s", r.Status, r.Body)
	}
	if ok, _ := check("credential:ws_key", "users", "list"); ok {
		t.Fatal("a dry run changed the decision")
	}
	// A good edit takes effect at once, for requests too.
	if r := in.Do("PUT", "/policies", documents{docs.Model, edited}, admin...); r.Status != 200 {
		t.Fatalf("edit: %d %s", r.Status, r.Body)
	}
	ok, rule := check("credential:ws_key", "users", "list")
	if !ok || rule != "p, role:base, users, list, allow" {
		t.Errorf("after the edit: %v by %q", ok, rule)
	}
	if r := in.Do("GET", "/users", nil, userTok...); r.Status != 200 {
		t.Errorf("base user listing users after the edit: %d", r.Status)
	}
	// Bad input to check is a 4xx.
	if r := in.Do("POST", "/policies/check", map[string]string{"subject": "x", "object": "users", "action": "fly"}, admin...); r.Status != 422 {
		t.Errorf("check with a bad action: %d", r.Status)
	}
}

func TestStatusOpenAPIAndDocs(t *testing.T) {
	in := authRequired(t)
	if r := in.Do("GET", "/", nil, apptest.Bearer(in.Login("user", apptest.UserPassword))...); r.Status != 200 || r.Map(t)["status"] != "We're all mad here, dear!" {
		t.Errorf("GET /: %d %s", r.Status, r.Body)
	}
	r := in.Do("GET", "/openapi.json", nil)
	if r.Status != 200 {
		t.Fatalf("openapi.json: %d", r.Status)
	}
	doc := r.Map(t)
	schemes := doc["components"].(map[string]any)["securitySchemes"].(map[string]any)
	for _, s := range []string{"bearer", "access_token", "user_id"} {
		if _, ok := schemes[s]; !ok {
			t.Errorf("security scheme %q missing", s)
		}
	}
	ops := map[string]bool{}
	for path, item := range doc["paths"].(map[string]any) {
		for method, op := range item.(map[string]any) {
			o := op.(map[string]any)
			ops[o["operationId"].(string)] = true
			if o["operationId"] == "" || o["summary"] == nil {
				t.Errorf("%s %s lacks operationId or summary", method, path)
			}
			public := path == "/auth/token" || path == "/auth/available-permissions" || path == "/plugins/hooks"
			if !public && o["security"] == nil {
				t.Errorf("%s %s declares no security", method, path)
			}
		}
	}
	for _, id := range []string{"getStatus", "createToken", "getAvailablePermissions", "createUser", "listUsers", "getUser",
		"updateUser", "deleteUser", "getPolicies", "updatePolicies", "checkPolicy", "listAuthHandlerSettings",
		"getAuthHandlerSetting", "updateAuthHandlerSetting"} {
		if !ops[id] {
			t.Errorf("operation %s is not documented", id)
		}
	}
	if r := in.Do("GET", "/openapi.yaml", nil); r.Status != 200 || !strings.Contains(string(r.Body), "openapi: 3.1") {
		t.Errorf("openapi.yaml: %d", r.Status)
	}
	page := in.Do("GET", "/docs", nil)
	if page.Status != 200 || !strings.Contains(string(page.Body), "/docs/assets/swagger-ui-bundle.js") {
		t.Fatalf("docs page: %d", page.Status)
	}
	if strings.Contains(string(page.Body), "https://") {
		t.Error("the docs page loads something from the network; it must work offline")
	}
	if r := in.Do("GET", "/docs/assets/swagger-ui-bundle.js", nil); r.Status != 200 || len(r.Body) < 100_000 {
		t.Errorf("docs script: %d, %d bytes", r.Status, len(r.Body))
	}
}
