package redact_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/grin-ai/grin/platform/redact"
)

func TestSecretName(t *testing.T) {
	for _, tc := range []struct {
		name   string
		secret bool
	}{
		{"password", true}, {"new_password", true}, {"passwordHash", true},
		{"api_key", true}, {"openai_api_key", true}, {"apiKey", true}, {"APIKey", true}, {"x-api-key", true},
		{"accessKey", true}, {"access_key_id", true}, {"AWS_SECRET_ACCESS_KEY", true}, {"secretKey", true},
		{"Authorization", true}, {"authorization", true}, {"Cookie", true}, {"Set-Cookie", true},
		{"access_token", true}, {"refreshToken", true}, {"X-Auth-Token", true}, {"mytoken", true},
		{"client_secret", true}, {"jwt_secret", true}, {"credentials", true}, {"key", true}, {"signing_key", true},
		{"pwd", true}, {"body.password", true},
		{"username", false}, {"model", false}, {"base_url", false}, {"max_tokens", false}, {"monkey", false},
		{"keyboard", false}, {"key_id", false}, {"permissions", false}, {"url", false}, {"temperature", false},
	} {
		if got := redact.SecretName(tc.name); got != tc.secret {
			t.Errorf("SecretName(%q) = %v, want %v", tc.name, got, tc.secret)
		}
	}
}

func TestText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://alice:hunter22@llm.example.com/v1", "https://********@llm.example.com/v1"},
		{"reach redis://:s3cr3t@cache:6379 now", "reach redis://********@cache:6379 now"},
		{"https://ghp_abcdef123456@github.com/x", "https://********@github.com/x"},
		{"https://api.example.com/v1?api_key=sk-123&model=m", "https://api.example.com/v1?api_key=********&model=m"},
		{"http://h/?accessToken=abc;x=1", "http://h/?accessToken=********;x=1"},
		{"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig", "Authorization: Bearer ********"},
		{"Basic YWxpY2U6aHVudGVyMg==", "Basic ********"},
		{"$2a$10$abcdefghijklmnopqrstuv", redact.Masked},
		{"https://llm.example.com/v1", "https://llm.example.com/v1"},
		{"a plain sentence with a=b in it", "a plain sentence with a=b in it"},
	} {
		if got := redact.Text(tc.in); got != tc.want {
			t.Errorf("Text(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestJSONMasksAtEveryDepth(t *testing.T) {
	const secrets = "sk-one|tok-two|pw-three|ck-four|ak-five|url-six|hdr-seven"
	in := `{"llm":{"api_key":"sk-one","model":"m"},"headers":{"Authorization":"Bearer tok-two","Cookie":"sid=ck-four"},` +
		`"users":[{"name":"a","password":"pw-three"}],"accessKey":"ak-five","base_url":"https://u:url-six@h/v1",` +
		`"note":"sent with Bearer hdr-seven-long","max_tokens":512}`
	out := string(redact.JSON(json.RawMessage(in)))
	for _, s := range strings.Split(secrets, "|") {
		if strings.Contains(out, s) {
			t.Errorf("%s is still in %s", s, out)
		}
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	if v["max_tokens"] != float64(512) || v["llm"].(map[string]any)["model"] != "m" {
		t.Errorf("plain values changed: %s", out)
	}
}
