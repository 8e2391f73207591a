//go:build !wasip1

package pdk

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestEnvelope(t *testing.T) {
	for _, tc := range []struct {
		in, payload, user string
		bad               bool
	}{
		{`{"abi":1,"hook":"h","ctx":{"user_id":"alice"},"settings":{},"payload":{"text":"a \"quoted\" } ]"}}`, `{"text":"a \"quoted\" } ]"}`, "alice", false},
		{` { "payload" : [1, {"a":[2]}] , "ctx":{"user_id":"b"} } `, `[1, {"a":[2]}]`, "b", false},
		{`{"payload":"text"}`, `"text"`, "", false},
		{`{"ctx":{"plugin_id":"p","user_id":"a\"b\u00e9"},"payload":1}`, `1`, "a\"bé", false},
		{`{"payload":12.5e3,"ctx":null}`, `12.5e3`, "", false},
		{`{"payload":null}`, `null`, "", false},
		{`[1]`, "", "", true},
		{`{"payload":{"a":1}`, "", "", true},
		{`{"payload":"unterminated}`, "", "", true},
		{``, "", "", true},
	} {
		e, err := splitEnvelope([]byte(tc.in))
		if tc.bad {
			if err == nil {
				t.Errorf("%q: accepted", tc.in)
			}
			continue
		}
		if err != nil || string(e.payload) != tc.payload {
			t.Errorf("%q: payload %q, %v; want %q", tc.in, e.payload, err, tc.payload)
			continue
		}
		err = cur.loadEnvelope(e, "h")
		if got := (Ctx{}).UserID(); err != nil || got != tc.user {
			t.Errorf("%q: user %q %v", tc.in, got, err)
		}
	}
}

// TestInvoke runs hooks outside WebAssembly, as a hook author's own tests
// would.
func TestInvoke(t *testing.T) {
	Hook("before_cat_reads_message", func(ctx Ctx, in json.RawMessage) (json.RawMessage, error) {
		var m map[string]any
		json.Unmarshal(in, &m)
		m["who"] = ctx.UserID()
		m["suffix"] = ctx.Settings()["suffix"]
		return json.Marshal(m)
	})
	Hook("fast_reply", func(Ctx, json.RawMessage) (json.RawMessage, error) { return nil, errors.New("no fast reply today") })
	Hook("cat_recall_query", func(Ctx, json.RawMessage) (json.RawMessage, error) { panic("off with its head") })
	in := []byte(`{"abi":1,"hook":"before_cat_reads_message","ctx":{"user_id":"alice"},"settings":{"suffix":"!"},"payload":{"text":"hi"}}`)
	status, out, _ := Invoke("before_cat_reads_message", in)
	if status != 0 || !strings.Contains(string(out), `"who":"alice"`) || !strings.Contains(string(out), `"suffix":"!"`) {
		t.Errorf("transform: %d %s", status, out)
	}
	if status, _, msg := Invoke("fast_reply", in); status != 1 || msg != "no fast reply today" {
		t.Errorf("error: %d %q", status, msg)
	}
	if status, _, msg := Invoke("cat_recall_query", in); status != 1 || !strings.Contains(msg, "panicked: off with its head") {
		t.Errorf("panic: %d %q", status, msg)
	}
	if status, _, _ := Invoke("agent_prompt_suffix", in); status != 2 {
		t.Errorf("unregistered hook: %d, want unchanged", status)
	}
	if status, _, msg := Invoke("before_cat_reads_message", []byte("nope")); status != 1 || msg == "" {
		t.Errorf("bad input: %d %q", status, msg)
	}
}
