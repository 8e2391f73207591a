package loadtest

import "testing"

func TestFrameType(t *testing.T) {
	cases := []struct{ frame, want string }{
		{`{"type":"chat","why":{"input":"x"},"text":"hi"}`, "chat"},
		{`{"type":"chat_token","content":"Hel"}`, "chat_token"},
		{`{"text":"hi","type":"chat"}`, "chat"}, // not first: decoded whole
		{`{"type":7,"text":"hi"}`, ""},
		{`{"type":"error","name":"ChatFailed","description":"no"}`, "error"},
		{`not json`, ""},
		{`[]`, ""},
		{`{"type":"odd\"name","text":"hi"}`, "odd\"name"}, // escaped: decoded
		{`{"type": "chat"}`, "chat"},                      // spaced: decoded
	}
	for _, c := range cases {
		if got := frameType([]byte(c.frame)); got != c.want {
			t.Errorf("frameType(%s) = %q, want %q", c.frame, got, c.want)
		}
	}
}
