package integration

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// An administrator wipes one user's episodic memory after typing the
// user's name; another user's memory stays; a deny rule on deletions is
// answered with the refusal on screen and nothing deleted.
func TestPanelMemoryWipe(t *testing.T) {
	eachViewport(t, func(t *testing.T, vp viewport) {
		url, admin := panelServer(t)
		count := func(user string) int {
			t.Helper()
			status, b := call(t, url, admin, "GET", "/memory/collections?user_id="+user, nil)
			var out struct {
				Collections []struct {
					Name  string `json:"name"`
					Count int    `json:"vectors_count"`
				} `json:"collections"`
			}
			if status != 200 || json.Unmarshal(b, &out) != nil {
				t.Fatalf("count %s's memories: %d %s", user, status, b)
			}
			for _, c := range out.Collections {
				if c.Name == "episodic" {
					return c.Count
				}
			}
			return -1
		}
		ids := map[string]string{}
		for _, name := range []string{"carol", "dave"} {
			ids[name] = createUser(t, url, admin, name, map[string][]string{"CONVERSATION": {"WRITE"}})
			tok := token(t, url, name, "pw-"+name)
			for i := 1; i <= 3; i++ {
				if status, b := call(t, url, tok, "POST", "/message", map[string]string{"text": fmt.Sprintf("%s's note %d", name, i)}); status != 200 {
					t.Fatalf("%s chats: %d %s", name, status, b)
				}
			}
		}
		p := openPanel(t, url, vp)
		p.open("#/memory?user=carol")
		p.login("admin", adminPassword)
		p.wait("carol's memories", `document.querySelectorAll("#points li.point").length === 3`)
		if got := p.text("#memory-wipe"); got != "Delete all of carol's memories…" {
			t.Errorf("the wipe button reads %q", got)
		}
		p.click("#memory-wipe")
		p.wait("the confirmation", `document.querySelector("#confirm").open`)
		p.setValue("#confirm-input", "caro")
		var disabled bool
		p.eval(`document.querySelector("#confirm-ok").disabled`, &disabled)
		if !disabled {
			t.Error("the wipe can be confirmed before the name is typed")
		}
		p.setValue("#confirm-input", "carol")
		p.shot("wipe-confirm")
		p.click("#confirm-ok")
		got := p.wait("the notice", `document.querySelector("#notices .notice.ok") && document.querySelector("#notices .notice.ok").innerText`)
		if !strings.Contains(got, "3 memories of carol deleted.") {
			t.Errorf("the wipe's notice reads %q", got)
		}
		p.wait("no memories", `document.querySelector("#points li.empty")`)
		if n := count(ids["carol"]); n != 0 {
			t.Errorf("carol has %d memories after the wipe", n)
		}
		if n := count(ids["dave"]); n != 3 {
			t.Errorf("dave has %d memories after carol's wipe, want 3", n)
		}

		// A deny rule on the administrator's deletions there: refused in
		// words, nothing deleted.
		if status, b := call(t, url, admin, "POST", "/policies/rules", map[string]string{"rule": "p, user:admin, episodic:*, delete, deny"}); status != 200 {
			t.Fatalf("deny: %d %s", status, b)
		}
		p.open("#/memory?user=dave")
		p.wait("dave's memories", `location.hash.includes("user=dave") && document.querySelectorAll("#points li.point").length === 3`)
		p.click("#memory-wipe")
		p.wait("the confirmation", `document.querySelector("#confirm").open`)
		p.setValue("#confirm-input", "dave")
		p.click("#confirm-ok")
		why := p.wait("the refusal", `document.querySelector("#notices .notice.error") && document.querySelector("#notices .notice.error").innerText`)
		if !strings.Contains(why, "Could not delete the memories of dave") || !strings.Contains(why, "deny") {
			t.Errorf("the refused wipe reads %q", why)
		}
		if n := count(ids["dave"]); n != 3 {
			t.Errorf("dave has %d memories after a refused wipe, want 3", n)
		}
		if !p.fitsWidth() {
			t.Errorf("memory scrolls sideways at %dpx", vp.width)
		}
	})
}
